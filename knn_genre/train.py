"""``python -m knn_genre.train``: train a model on a whole feature file and save it."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from . import store
from .cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, error, positive_int
from .errors import KnnGenreError
from .model import KINDS, save_model, train_model

PROG = "python -m knn_genre.train"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train a genre model on every track of a feature file and save it (an .npz that loads without unpickling).",
        epilog="Exit status: 0 success, 1 training or writing failed, 2 usage errors (bad options, unreadable feature file).",
    )
    parser.add_argument("--features", default="data/features.npz", help="feature file from build_features (default: %(default)s)")
    parser.add_argument("--model", choices=KINDS, default="knn", help="knn: symmetric-KL k-NN; svm: RBF SVM on vectorised Gaussians; klsvm: SVM on a KL kernel (default: %(default)s)")
    parser.add_argument("--k", type=positive_int, default=5, help="neighbours for --model knn (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the SVM grid search's folds (default: %(default)s)")
    parser.add_argument("-o", "--output", default="data/model.npz", help="model file to write (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        fs = store.load(args.features)
    except KnnGenreError as exc:
        error(PROG, str(exc))
        return EXIT_USAGE
    if args.model == "knn" and args.k > len(fs):
        error(PROG, f"--k {args.k} is larger than the {len(fs)} tracks of {args.features}; use --k between 1 and {len(fs)}")
        return EXIT_USAGE
    start = time.perf_counter()
    try:
        model = train_model(fs, args.model, k=args.k, seed=args.seed)
        save_model(model, args.output)
    except (KnnGenreError, ValueError) as exc:
        error(PROG, f"training failed: {exc}")
        return EXIT_FAILED
    except OSError as exc:
        error(PROG, f"cannot write {args.output}: {exc.strerror or exc}")
        return EXIT_FAILED
    print(
        f"wrote {args.output}: {args.model} on {len(fs)} tracks, {len(model.genres)} genres, "
        f"settings {model.settings}, {time.perf_counter() - start:.1f} s"
    )
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
