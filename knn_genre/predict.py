"""``python -m knn_genre.predict SONG ... --model model.npz``: the genre of each song."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence

from .audio import AUDIO_SUFFIXES
from .classifiers.model import load_model
from .cli import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_progress_options,
    checked,
    entry,
    error,
    jobs_count,
    make_parser,
    note,
    output_problem,
    positive_float,
    positive_int,
    printable,
    progress_enabled,
    with_hint,
)
from .cli.progress import Progress
from .errors import KnnGenreError
from .pipeline.apply import predict_file
from .pipeline.cluster import check_address, open_cluster, require_dask
from .pipeline.signals import stop_signals_raise
from .pipeline.tagging import TagOutput, count_audio_files, iter_audio_files, tag_library

PROG = "python -m knn_genre.predict"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = make_parser(
        prog,
        (
            f"Predict the genre of audio files ({', '.join(AUDIO_SUFFIXES)}) of any length, rate and channel count. "
            "Files are cut into windows, the model's training segments by default (30-s windows every 15 s for "
            "a model of whole tracks), and decided from the windows' probabilities as evaluate decides a test track."
        ),
        (
            "Exit status: 0 when every file was predicted, 1 when some files could not be read (they are "
            "listed on stderr, and in --json or --output with an 'error'), 2 for usage errors, an unreadable model, "
            "or when no file could be predicted; 130/143/129 when stopped by SIGINT/SIGTERM/SIGHUP "
            "(with --output, the rows written are kept and the next run continues)."
        ),
    )
    parser.add_argument("songs", nargs="+", metavar="PATH", help="audio files, or folders to search for them recursively")
    parser.add_argument("--model", default="data/model.npz", help="model file from knn_genre.train (default: %(default)s)")
    parser.add_argument("--window", type=positive_float, default=None, help="window length in seconds (default: the model's segments, or 30)")
    parser.add_argument("--hop", type=positive_float, default=None, help="hop between windows in seconds (default: the model's segments, or 15)")
    parser.add_argument("--top", type=positive_int, default=3, help="genres listed per file (default: %(default)s)")
    parser.add_argument("--windows", action="store_true", help="also print each window's top genres")
    parser.add_argument("--json", action="store_true", help="print a JSON list with one object per file")
    library = parser.add_argument_group("tagging a library (with --output)")
    library.add_argument(
        "-o", "--output", metavar="FILE",
        help="append one row per file to FILE (.csv or .jsonl): path, genre, probability, top genres, windows, "
        "error; files already in FILE are skipped, so an interrupted run is continued by running it again",
    )
    library.add_argument("--jobs", type=jobs_count, default=-1, help="worker processes with --output; -1 uses all cores (default: -1)")
    library.add_argument(
        "--scheduler", metavar="ADDRESS", type=checked(check_address), default=None,
        help="with --output, predict on a Dask cluster: tcp://HOST:8786, or local:N to start one of N worker "
        "processes; every worker must see the files and the model under the same paths",
    )
    add_progress_options(library)
    return parser


def _text(pred, top: int, windows: bool) -> str:
    ranked = ", ".join(f"{printable(g)} {p:.2f}" for g, p in pred.top(top))
    lines = [f"{printable(pred.path)}: {ranked}  ({len(pred.windows)} window{'s' if len(pred.windows) != 1 else ''})"]
    if windows:
        for item in pred.to_dict(top)["windows"]:
            ranked = ", ".join(f"{printable(t['genre'])} {t['probability']:.2f}" for t in item["top"])
            lines.append(f"  {item['start']:7.1f}-{item['end']:7.1f} s: {ranked}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.output is None and (args.scheduler or args.jobs != -1):
        parser.error("--jobs and --scheduler apply to tagging a library with --output FILE")
    if args.output is not None and (args.json or args.windows):
        parser.error("--json and --windows print to the terminal; --output writes rows to FILE")
    try:
        if args.scheduler:
            require_dask()  # before the output file is opened
        model = load_model(args.model)
        model.check_analysable()
    except KnnGenreError as exc:
        error(prog, with_hint(exc))
        return EXIT_USAGE
    if args.output is not None:
        return tag(args, prog)
    records, failed = [], 0
    songs, unlisted = [], 0
    for given in args.songs:
        found = 0
        for song, problem in iter_audio_files([given]):
            found += 1
            if problem is not None:  # a folder that cannot be listed
                failed += 1
                unlisted += 1
                print(f"{prog}: {printable(song)}: {problem}", file=sys.stderr, flush=True)
                records.append({"path": song, "error": problem})
            else:
                songs.append(song)
        if not found and len(args.songs) > 1:  # alone, it is the closing "no audio file found"
            note(f"{printable(given)}: no audio files in this folder ({', '.join(AUDIO_SUFFIXES)})")
    for song in songs:
        try:
            pred = predict_file(model, song, window_seconds=args.window, hop_seconds=args.hop)
        except KnnGenreError as exc:
            failed += 1
            print(f"{prog}: {printable(exc)}", file=sys.stderr, flush=True)
            records.append({"path": song, "error": getattr(exc, "reason", str(exc))})
            continue
        if args.json:
            records.append(pred.to_dict(args.top))
        else:
            print(_text(pred, args.top, args.windows), flush=True)
    if args.json:
        print(json.dumps(records, indent=2))
    return _status(prog, failed, len(songs) + unlisted)


def _status(prog: str, failed: int, total: int) -> int:
    """predict's exit status for ``failed`` of ``total`` files, with the closing error line."""
    if total and failed == total:
        error(prog, "no file could be predicted")
        return EXIT_USAGE
    if not total:
        error(prog, "no audio file found")
        return EXIT_USAGE
    if failed:
        error(prog, f"{failed} of {total} files could not be predicted")
        return EXIT_FAILED
    return EXIT_OK


def _folders_of(paths) -> list[str]:
    """The folders the cluster's workers must see: the folders given, and those of the files given."""
    return sorted({p if os.path.isdir(p) else os.path.dirname(os.path.abspath(p)) for p in paths})


def tag(args, prog: str) -> int:
    """``--output``: tag every file under the paths given, appending rows; resumable."""
    problem = output_problem(args.output)
    if problem:
        error(prog, problem)
        return EXIT_USAGE
    try:
        output = TagOutput(args.output).open()
    except (KnnGenreError, OSError) as exc:
        error(prog, f"cannot use {args.output}: {getattr(exc, 'strerror', None) or exc}")
        return EXIT_USAGE
    with output:
        total = count_audio_files(args.songs, skip=output.has)
        if output.rows_before:
            note(f"{args.output} already has {output.rows_before} rows: those files are skipped")
        cluster = None
        if args.scheduler and total:
            try:
                cluster = open_cluster(args.scheduler, folders=_folders_of([args.model, *args.songs]))
                note(f"predicting on {cluster.describe()}")
            except KnnGenreError as exc:
                error(prog, with_hint(exc))
                return EXIT_FAILED
        progress = Progress(total, "files") if progress_enabled(args) and total else None
        report = None
        try:
            with stop_signals_raise():
                report = tag_library(
                    args.model, args.songs, output, window=args.window, hop=args.hop, top=args.top,
                    n_jobs=args.jobs, cluster=cluster, total=total,
                    on_progress=(lambda done, _: progress.update(done)) if progress else None,
                )
        except KeyboardInterrupt as exc:
            signum = getattr(exc, "signum", signal.SIGINT)
            error(prog, f"interrupted by {signal.Signals(signum).name}; the rows written are kept in {args.output}: "
                        "run the same command again to continue")
            return 128 + signum
        except KnnGenreError as exc:  # the cluster failed, or the output could not be written
            error(prog, f"{exc}; the rows written are kept in {args.output}: run the same command again to continue")
            return EXIT_FAILED
        finally:
            if progress:
                progress.close()
            if cluster is not None:
                cluster.close()
    for path, reason in report.failures:
        print(f"{prog}: {printable(path)}: {reason}", file=sys.stderr)
    if report.failed > len(report.failures):
        print(f"{prog}: ... and {report.failed - len(report.failures)} more (see the 'error' column of {args.output})", file=sys.stderr)
    print(
        f"wrote {report.done} rows to {args.output} ({report.tagged} tagged, {report.failed} failed) "
        f"in {report.seconds:.1f} s; {report.already} files were already in it"
    )
    if report.done == 0:
        return EXIT_OK if report.already else _status(prog, 0, 0)
    return _status(prog, report.failed, report.done)


if __name__ == "__main__":
    raise SystemExit(entry(main))
