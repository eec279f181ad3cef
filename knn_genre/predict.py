"""``python -m knn_genre.predict SONG.wav ... --model model.npz``: the genre of each song."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .cli import EXIT_OK, EXIT_USAGE, error, positive_float, positive_int
from .errors import KnnGenreError
from .model import load_model
from .prediction import predict_file

PROG = "python -m knn_genre.predict"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Predict the genre of .wav files of any length, rate and channel count. Files longer than "
            "the window are cut into overlapping windows whose probabilities are averaged."
        ),
        epilog=(
            "Exit status: 0 when at least one file was predicted (files that could not be read are "
            "listed on stderr, and in --json with an 'error'), 2 for usage errors, an unreadable model, "
            "or when no file could be predicted."
        ),
    )
    parser.add_argument("songs", nargs="+", metavar="SONG.wav", help="audio files")
    parser.add_argument("--model", default="data/model.npz", help="model file from knn_genre.train (default: %(default)s)")
    parser.add_argument("--window", type=positive_float, default=30.0, help="window length in seconds (default: %(default)s)")
    parser.add_argument("--hop", type=positive_float, default=15.0, help="hop between windows in seconds (default: %(default)s)")
    parser.add_argument("--top", type=positive_int, default=3, help="genres listed per file (default: %(default)s)")
    parser.add_argument("--windows", action="store_true", help="also print each window's top genres")
    parser.add_argument("--json", action="store_true", help="print a JSON list with one object per file")
    return parser


def _text(pred, top: int, windows: bool) -> str:
    ranked = ", ".join(f"{g} {p:.2f}" for g, p in pred.top(top))
    lines = [f"{pred.path}: {ranked}  ({len(pred.windows)} window{'s' if len(pred.windows) != 1 else ''})"]
    if windows:
        for item in pred.to_dict(top)["windows"]:
            ranked = ", ".join(f"{t['genre']} {t['probability']:.2f}" for t in item["top"])
            lines.append(f"  {item['start']:7.1f}-{item['end']:7.1f} s: {ranked}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        model = load_model(args.model)
    except KnnGenreError as exc:
        error(PROG, str(exc))
        return EXIT_USAGE
    records, predicted = [], 0
    for song in args.songs:
        try:
            pred = predict_file(model, song, window_seconds=args.window, hop_seconds=args.hop)
        except KnnGenreError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            records.append({"path": song, "error": getattr(exc, "reason", str(exc))})
            continue
        predicted += 1
        if args.json:
            records.append(pred.to_dict(args.top))
        else:
            print(_text(pred, args.top, args.windows), flush=True)
    if args.json:
        print(json.dumps(records, indent=2))
    if predicted == 0:
        error(PROG, "no file could be predicted")
        return EXIT_USAGE
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
