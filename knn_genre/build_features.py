"""``python -m knn_genre.build_features DATA_DIR``: a music collection to a feature file.

``--families gaussian,table`` stores the MFCC Gaussians and GTZAN's table
columns in one file (``--families table`` the table alone); ``--format csv``
writes the table in the published ``features_30_sec.csv`` layout.

Also converts between the feature file and the original tutorial's pickled
``my.dat`` (``--from-legacy``, ``--from-features``, ``--format legacy``).

A build saves its finished tracks in ``<output>.partial.npz`` every
``--checkpoint-every`` seconds and when it is stopped by SIGINT, SIGTERM or
SIGHUP, so the next run continues where it stopped; the previous output is
only ever replaced atomically, at the end. The checkpoint is removed once
the output is written.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from .audio import AUDIO_SUFFIXES
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
    non_negative_float,
    note,
    one_line,
    output_problem,
    positive_float,
    positive_int,
    printable,
    progress_enabled,
    with_hint,
)
from .classifiers.duplicates import find_duplicates
from .cli.progress import Progress
from .errors import BuildError, KnnGenreError
from .features.params import MFCCParams, TableParams
from .pipeline.build import CHECKPOINT_SUFFIX, CheckpointWriter, build_featureset, checkpoint_path, load_previous
from .pipeline.cluster import check_address, open_cluster, require_dask
from .pipeline.discover import discover
from .pipeline.signals import stop_signals_raise
from .pipeline.workers import keep_freed_memory
from . import store
from .store import legacy
from .store.featureset import FAMILY_ORDER
from .store.tables import write_feature_table

PROG = "python -m knn_genre.build_features"
DEFAULT_OUTPUT = "data/features.npz"
DEFAULT_LEGACY_OUTPUT = "data/my.dat"
DEFAULT_CSV_OUTPUT = "data/features.csv"
DEFAULT_OUTPUTS = {"npz": DEFAULT_OUTPUT, "legacy": DEFAULT_LEGACY_OUTPUT, "csv": DEFAULT_CSV_OUTPUT}


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    defaults = MFCCParams()
    parser = make_parser(
        prog,
        (
            f"Read DATA_DIR/<genre>/<track> ({', '.join(AUDIO_SUFFIXES)}), compute MFCCs and store one Gaussian "
            "(mean and full covariance) per track in a feature file (.npz), and/or the 57 columns of GTZAN's "
            "published feature table (--families). "
            "Or convert a feature file from or to the original tutorial's pickled my.dat, or to a CSV table."
        ),
        (
            "Exit status: 0 when at least one track was built (skipped files are listed), "
            "1 with --strict when any file was skipped (nothing is written) or when the output "
            "cannot be written, 2 for usage errors or when no usable track exists, "
            "130/143/129 when stopped by SIGINT/SIGTERM/SIGHUP (finished tracks are kept in "
            f"OUTPUT{CHECKPOINT_SUFFIX} and reused by the next run)."
        ),
    )
    parser.add_argument("data_dir", metavar="DATA_DIR", nargs="?", help="folder with one sub-folder of audio files per genre")
    parser.add_argument(
        "-o", "--output", default=None,
        help=f"file to write (default: {DEFAULT_OUTPUT}, {DEFAULT_LEGACY_OUTPUT} with --format legacy, "
        f"{DEFAULT_CSV_OUTPUT} with --format csv)",
    )
    parser.add_argument(
        "--format", choices=tuple(DEFAULT_OUTPUTS), default="npz",
        help="npz: the feature file (default); legacy: the tutorial's stream of pickled "
        "(mean, covariance, label_index) tuples, label indices 1-based in sorted genre order; "
        "csv: the table family in the layout of GTZAN's features_30_sec.csv "
        "(filename, length in samples, the 57 columns, label), needs --families table",
    )
    parser.add_argument(
        "--families", type=_family_list, default=("gaussian",), metavar="NAMES",
        help="comma-separated feature families to compute, from one reading of each track: gaussian "
        "(MFCC mean and covariance), table (the columns of GTZAN's published features_30_sec.csv, "
        "librosa's definitions at 22050 Hz); default: gaussian",
    )
    parser.add_argument("--jobs", type=jobs_count, default=-1, help="worker processes; -1 uses all cores (default: -1)")
    parser.add_argument(
        "--scheduler", metavar="ADDRESS", type=checked(check_address), default=None,
        help="analyse on a Dask cluster instead: the scheduler's address (tcp://HOST:8786), or local:N to start "
        "a local cluster of N worker processes for this build; workers read the files by path, so every worker "
        "must see DATA_DIR under the same path. Needs pip install 'knn_genre[dask]'",
    )
    mfcc = parser.add_argument_group("MFCC parameters (recorded in the feature file)")
    mfcc.add_argument("--sample-rate", type=positive_int, default=defaults.sample_rate, help="resample all audio to this rate in Hz (default: %(default)s)")
    mfcc.add_argument("--winlen", type=positive_float, default=defaults.winlen, help="frame length in seconds (default: %(default)s)")
    mfcc.add_argument("--winstep", type=positive_float, default=defaults.winstep, help="hop between frames in seconds (default: %(default)s)")
    mfcc.add_argument("--numcep", type=positive_int, default=defaults.numcep, help="cepstral coefficients, the Gaussian's dimension (default: %(default)s)")
    mfcc.add_argument("--nfilt", type=positive_int, default=defaults.nfilt, help="mel filters (default: %(default)s)")
    mfcc.add_argument("--nfft", type=positive_int, default=None, help="FFT size (default: smallest power of two >= one frame)")
    parser.add_argument(
        "--segment-seconds", type=positive_float, default=None, metavar="S",
        help="cut each track into segments of S seconds and store one Gaussian per segment, "
        "with the track's path as its id (default: one Gaussian per whole track)",
    )
    parser.add_argument("--no-reuse", action="store_true", help="analyse every track even if the output file or a checkpoint already has it")
    parser.add_argument(
        "--checkpoint-every", type=non_negative_float, default=10.0, metavar="SECONDS",
        help=f"save finished tracks to OUTPUT{CHECKPOINT_SUFFIX} this often, 0 after every track (default: %(default)s)",
    )
    parser.add_argument("--strict", action="store_true", help="fail (exit 1, write nothing) if any file is skipped")
    add_progress_options(parser)
    convert = parser.add_argument_group("conversion (instead of DATA_DIR)")
    convert.add_argument("--from-legacy", metavar="FILE", help="import a tutorial my.dat (read safely: only numpy arrays are accepted)")
    convert.add_argument(
        "--legacy-genres", metavar="NAMES", type=_genre_list,
        help="comma-separated genre names in label-index order (index 1 first) for --from-legacy; "
        "default genre1, genre2, ...",
    )
    convert.add_argument("--from-features", metavar="FILE", help="read an existing feature file, e.g. to write it with --format legacy")
    return parser


def _family_list(text: str) -> tuple:
    """argparse type: comma-separated family names, known and distinct, in the file's order."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAMILY_ORDER]
    if not names or unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text!r} must name distinct families among {', '.join(FAMILY_ORDER)}, separated by commas")
    return tuple(name for name in FAMILY_ORDER if name in names)


def _genre_list(text: str) -> list:
    """argparse type: comma-separated, non-empty, distinct names."""
    names = [name.strip() for name in text.split(",")]
    if any(not name for name in names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text!r} must be distinct, non-empty names separated by commas")
    return names


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    sources = [s for s in (args.data_dir, args.from_legacy, args.from_features) if s is not None]
    if len(sources) != 1:
        parser.error("give exactly one of DATA_DIR, --from-legacy FILE or --from-features FILE")
    if args.legacy_genres is not None and args.from_legacy is None:
        parser.error("--legacy-genres only applies to --from-legacy")
    if args.data_dir is not None:
        if args.format == "csv" and "table" not in args.families:
            parser.error("--format csv writes the table family: add --families table")
        if args.format == "legacy" and "gaussian" not in args.families:
            parser.error("--format legacy writes Gaussians: --families must include gaussian")
    args.prog = prog
    output = args.output or DEFAULT_OUTPUTS[args.format]
    problem = output_problem(output, create_folder=args.output is None)
    if problem:  # found now rather than after a long build
        error(prog, problem)
        return EXIT_USAGE
    if args.scheduler:
        try:
            require_dask()
        except KnnGenreError as exc:
            error(prog, with_hint(exc))
            return EXIT_USAGE
    try:
        with stop_signals_raise():
            if args.data_dir is None:
                return _convert(args, output)
            return _build(args, output)
    except KeyboardInterrupt as exc:  # outside a build: nothing was written
        signum = getattr(exc, "signum", signal.SIGINT)
        error(args.prog, f"interrupted by {signal.Signals(signum).name}; {output} not written")
        return 128 + signum


def _build(args, output: str) -> int:
    keep_freed_memory()  # this process analyses tracks itself with --jobs 1
    try:
        params = MFCCParams(
            sample_rate=args.sample_rate, winlen=args.winlen, winstep=args.winstep,
            numcep=args.numcep, nfilt=args.nfilt, nfft=args.nfft,
        )
        discovery = discover(args.data_dir)
    except KnnGenreError as exc:
        error(args.prog, with_hint(exc))
        return EXIT_USAGE
    if not discovery.tracks:
        for path, reason in discovery.unreadable:
            print(f"skipped {printable(path)}: {reason}", file=sys.stderr)
        if discovery.outside:  # most likely one genre's folder given as DATA_DIR
            error(args.prog, f"{printable(args.data_dir)}: its {len(discovery.outside)} audio file(s) are in no genre folder; "
                             "give the folder that holds the genre folders (DATA_DIR/<genre>/<track>)")
        else:
            error(args.prog, f"{printable(args.data_dir)}: no audio files found ({', '.join(AUDIO_SUFFIXES)}); "
                             "expected DATA_DIR/<genre>/<track>")
        return EXIT_USAGE
    if discovery.outside:
        note(f"left out {len(discovery.outside)} audio file(s) in no genre folder, directly in {printable(args.data_dir)} "
             f"(e.g. {printable(discovery.outside[0])}): put them in DATA_DIR/<genre>/ to build them")

    partial = checkpoint_path(output)
    previous = []
    if not args.no_reuse:
        previous = load_previous(([output] if args.format == "npz" else []) + [partial], on_note=note)
    total = len(discovery.tracks)
    progress = Progress(total, "files") if progress_enabled(args) else None
    done = [0]

    def on_progress(count, _total):
        done[0] = count
        if progress:
            progress.update(count)

    save_checkpoint = CheckpointWriter(partial, on_note=note)
    cluster = None
    if args.scheduler:
        try:
            cluster = open_cluster(args.scheduler, folders=[args.data_dir])
            note(f"analysing on {cluster.describe()}")
        except BuildError as exc:
            error(args.prog, with_hint(exc))
            return EXIT_FAILED
    fs = None
    try:
        try:
            fs, report = build_featureset(
                args.data_dir, discovery, params, n_jobs=args.jobs, previous=previous,
                on_progress=on_progress, checkpoint=save_checkpoint, checkpoint_interval=args.checkpoint_every,
                segment_seconds=args.segment_seconds, families=args.families, table_params=TableParams(),
                cluster=cluster,
            )
        finally:
            if progress:
                progress.close()
            if cluster is not None:
                cluster.close()
        return _finish(args, output, fs, report, save_checkpoint)
    except BuildError as exc:
        kept = f"; finished tracks are kept in {partial}" if save_checkpoint.saved else ""
        error(args.prog, f"{exc}{kept}")
        return EXIT_FAILED
    except KeyboardInterrupt as exc:
        if fs is not None:
            save_checkpoint(fs)  # the analysis had finished: keep all of it
        signum = getattr(exc, "signum", signal.SIGINT)
        kept = (
            f"finished tracks are kept in {partial}; run the same command again to continue"
            if save_checkpoint.saved else "no finished track to keep"
        )
        error(args.prog, f"interrupted by {signal.Signals(signum).name} after {done[0]} of {total} tracks; {kept}")
        return 128 + signum


def _finish(args, output: str, fs, report, save_checkpoint) -> int:
    """Report skipped files, apply --strict, write the output and remove the checkpoint."""
    for path, reason in report.skipped:
        print(f"skipped {printable(path)}: {one_line(reason)}", file=sys.stderr)
    if fs is None:
        error(args.prog, f"no usable track in {args.data_dir}: all {len(report.skipped)} audio file(s) were skipped")
        return EXIT_USAGE
    if args.strict and report.skipped:
        save_checkpoint(fs)  # nothing lost: the next run reuses every analysed track
        kept = f"; the {len(fs)} finished track(s) are kept in {save_checkpoint.path} for the next run" if save_checkpoint.saved else ""
        error(args.prog, f"--strict: {len(report.skipped)} file(s) skipped; {output} not written{kept}")
        return EXIT_FAILED
    # The summary (its duplicate check grows with the square of the tracks) is made before the output is
    # written: an interrupt then finds either no output and the checkpoint, or the output and no checkpoint.
    summary = _summary(fs, report, output, args.format)
    status = _write(args, fs, output)
    if status != EXIT_OK:
        save_checkpoint(fs)
        return status
    save_checkpoint.remove()
    print(summary)
    return EXIT_OK


def _convert(args, output: str) -> int:
    source = args.from_legacy or args.from_features
    try:
        if args.from_legacy:
            fs = legacy.load_legacy(args.from_legacy, args.legacy_genres)
            skipped = list(fs.skipped)
        else:
            fs = store.load(args.from_features)
            skipped = []  # a feature file's skipped list belongs to its build, reported then
    except KnnGenreError as exc:
        error(args.prog, with_hint(exc))
        return EXIT_USAGE
    for path, reason in skipped:
        print(f"skipped {printable(path)}: {one_line(reason)}", file=sys.stderr)
    if args.strict and skipped:
        error(args.prog, f"--strict: {len(skipped)} record(s) skipped; {output} not written")
        return EXIT_FAILED
    status = _write(args, fs, output)
    if status != EXIT_OK:
        return status
    lines = [
        f"wrote {output}: {len(fs)} tracks, {len(fs.genres)} genres ({', '.join(fs.genres)})",
        f"  converted from {source}, skipped {len(skipped)}",
    ]
    if args.format == "legacy":
        lines.append(_label_indices(fs))
    lines += [f"  skipped {printable(path)}: {one_line(reason)}" for path, reason in skipped]
    print("\n".join(lines))
    return EXIT_OK


def _write(args, fs, output: str) -> int:
    """Write ``fs`` atomically in ``--format``; EXIT_FAILED with a one-line error if that fails."""
    try:
        if args.format == "legacy":
            legacy.save_legacy(fs, output)
        elif args.format == "csv":
            write_feature_table(fs, output)
        else:
            store.save(fs, output)
    except OSError as exc:
        error(args.prog, f"cannot write {output}: {exc.strerror or exc}")
        return EXIT_FAILED
    except KnnGenreError as exc:  # e.g. a feature file without the family the format needs
        error(args.prog, with_hint(exc))
        return EXIT_USAGE
    return EXIT_OK


def _label_indices(fs) -> str:
    return "  label indices: " + ", ".join(f"{i + 1}={printable(g)}" for i, g in enumerate(fs.genres))


def _summary(fs, report, output, fmt="npz") -> str:
    rows = f"{fs.n_tracks} tracks in {len(fs)} segments of {fs.segment_seconds:g} s" if fs.segments is not None else f"{len(fs)} tracks"
    lines = [
        f"wrote {printable(output)}: {rows}, {len(fs.genres)} genres ({', '.join(map(printable, fs.genres))}), features: {', '.join(fs.families)}",
        f"  analysed {report.analysed}, reused {report.reused} unchanged, "
        f"skipped {len(report.skipped)}, ignored {len(report.ignored)} non-audio or hidden file(s), "
        f"{report.seconds:.2f} s",
    ]
    if fmt == "legacy":
        lines.append(_label_indices(fs))
    lines += [f"  skipped {printable(path)}: {one_line(reason)}" for path, reason in report.skipped]
    lines.append(_duplicates_line(fs))
    return "\n".join(lines)


def _duplicates_line(fs, limit: int = 5) -> str:
    """The copies among the built tracks (identical or nearly identical Gaussians), for the summary."""
    if fs.has_gaussians and fs.dim < 2:
        return "  duplicates: not checked (Gaussians of dimension 1)"
    weights = None if fs.segments is None else fs.segments[:, 1] - fs.segments[:, 0]
    # The Gaussians when there are any, else the table (a file of the table family alone).
    rows = {"gaussian": fs.packed()} if fs.has_gaussians else {"table": fs.table}
    found = find_duplicates(rows, fs.groups, weights=weights)
    if not found.groups:
        return f"  duplicates: none ({found.measure})"
    shown = "; ".join(" = ".join(printable(t) for t in group) for group in found.groups[:limit])
    more = f"; and {len(found.groups) - limit} more" if len(found.groups) > limit else ""
    return (
        f"  duplicates: {len(found.groups)} group(s) of copies, {sum(map(len, found.groups))} tracks ({found.measure}): "
        f"{shown}{more} (evaluate warns when copies straddle its splits; --drop-duplicates keeps one of each)"
    )


if __name__ == "__main__":
    raise SystemExit(entry(main))
