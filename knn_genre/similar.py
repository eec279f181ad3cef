"""``python -m knn_genre.similar SONG ... --model model.npz``: the library tracks nearest to each song."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .audio import AUDIO_SUFFIXES
from .classifiers.model import load_model
from .cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, entry, error, make_parser, positive_float, positive_int, printable, with_hint
from .errors import KnnGenreError
from .pipeline.similar import check_references, distance_measure, similar_file

PROG = "python -m knn_genre.similar"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = make_parser(
        prog,
        (
            f"List the tracks of a KNN model's library (its training tracks) nearest to audio files "
            f"({', '.join(AUDIO_SUFFIXES)}). A song is cut into the windows predict uses; its distance to a "
            "track is the mean over its windows of the divergence to the track's nearest row (symmetric KL "
            "in nats; mutual-proximity distance for knn-mp)."
        ),
        (
            "Exit status: 0 when every file was compared, 1 when some files could not be read (they are "
            "listed on stderr, and in --json with an 'error'), 2 for usage errors, an unreadable model or "
            "one that keeps no reference tracks, or when no file could be compared."
        ),
    )
    parser.add_argument("songs", nargs="+", metavar="SONG", help="audio files")
    parser.add_argument("--model", default="data/model.npz", help="model file from knn_genre.train, a KNN model (default: %(default)s)")
    parser.add_argument("--top", type=positive_int, default=10, help="tracks listed per file (default: %(default)s)")
    parser.add_argument("--window", type=positive_float, default=None, help="window length in seconds (default: as predict)")
    parser.add_argument("--hop", type=positive_float, default=None, help="hop between windows in seconds (default: as predict)")
    parser.add_argument("--json", action="store_true", help="print a JSON list with one object per file")
    return parser


def _text(song: str, tracks) -> str:
    lines = [f"{printable(song)}:"]
    width = max((len(printable(t.path)) for t in tracks), default=0)
    for rank, t in enumerate(tracks, 1):
        lines.append(f"  {rank:3d}. {printable(t.path):<{width}}  {printable(t.genre):<12} {t.divergence:.4g}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        model = load_model(args.model)
        check_references(model)
    except KnnGenreError as exc:
        error(prog, with_hint(exc))
        return EXIT_USAGE
    if not args.json:
        print(f"nearest tracks of {printable(args.model)} ({model.data.n_tracks} tracks) by {distance_measure(model)}")
    records, failed = [], 0
    for song in args.songs:
        try:
            tracks = similar_file(model, song, args.top, window_seconds=args.window, hop_seconds=args.hop)
        except KnnGenreError as exc:
            failed += 1
            print(f"{prog}: {printable(exc)}", file=sys.stderr, flush=True)
            records.append({"path": song, "error": getattr(exc, "reason", str(exc))})
            continue
        if args.json:
            records.append({"path": song, "similar": [t.to_dict() for t in tracks]})
        else:
            print(_text(song, tracks), flush=True)
    if args.json:
        print(json.dumps(records, indent=2))
    if failed == len(args.songs):
        error(prog, "no file could be compared")
        return EXIT_USAGE
    if failed:
        error(prog, f"{failed} of {len(args.songs)} files could not be compared")
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(entry(main))
