"""``python -m knn_genre.predict SONG ... --model model.npz``: the genre of each song."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .audio import AUDIO_SUFFIXES
from .classifiers.model import load_model
from .cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, entry, error, make_parser, positive_float, positive_int, printable, with_hint
from .errors import KnnGenreError
from .pipeline.apply import predict_file

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
            "listed on stderr, and in --json with an 'error'), 2 for usage errors, an unreadable model, "
            "or when no file could be predicted."
        ),
    )
    parser.add_argument("songs", nargs="+", metavar="SONG", help="audio files")
    parser.add_argument("--model", default="data/model.npz", help="model file from knn_genre.train (default: %(default)s)")
    parser.add_argument("--window", type=positive_float, default=None, help="window length in seconds (default: the model's segments, or 30)")
    parser.add_argument("--hop", type=positive_float, default=None, help="hop between windows in seconds (default: the model's segments, or 15)")
    parser.add_argument("--top", type=positive_int, default=3, help="genres listed per file (default: %(default)s)")
    parser.add_argument("--windows", action="store_true", help="also print each window's top genres")
    parser.add_argument("--json", action="store_true", help="print a JSON list with one object per file")
    return parser


def _text(pred, top: int, windows: bool) -> str:
    ranked = ", ".join(f"{g} {p:.2f}" for g, p in pred.top(top))
    lines = [f"{printable(pred.path)}: {ranked}  ({len(pred.windows)} window{'s' if len(pred.windows) != 1 else ''})"]
    if windows:
        for item in pred.to_dict(top)["windows"]:
            ranked = ", ".join(f"{t['genre']} {t['probability']:.2f}" for t in item["top"])
            lines.append(f"  {item['start']:7.1f}-{item['end']:7.1f} s: {ranked}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        model = load_model(args.model)
        model.check_analysable()
    except KnnGenreError as exc:
        error(prog, with_hint(exc))
        return EXIT_USAGE
    records, failed = [], 0
    for song in args.songs:
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
    if failed == len(args.songs):
        error(prog, "no file could be predicted")
        return EXIT_USAGE
    if failed:
        error(prog, f"{failed} of {len(args.songs)} files could not be predicted")
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(entry(main))
