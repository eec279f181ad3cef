"""``python -m knn_genre.evaluate``: score the classifiers on a feature file."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from sklearn.dummy import DummyClassifier

from . import store
from .cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, error, positive_int
from .errors import KnnGenreError
from .evaluation import (
    cross_validation_splits,
    evaluate_models,
    format_report,
    random_split,
    results_to_json,
    smallest_training_size,
    split_from_lists,
)
from .knn import KLKNNClassifier

PROG = "python -m knn_genre.evaluate"
DEFAULT_FEATURES = "data/features.npz"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Classify the tracks of a feature file with a k-nearest-neighbour voter under the "
            "symmetric Kullback-Leibler divergence, beside DummyClassifier baselines, all on the same "
            "seeded splits, and report accuracy (mean ± std over folds), macro-F1, per-genre precision "
            "and recall, confusion matrices and timings."
        ),
        epilog="Exit status: 0 success, 1 the evaluation failed, 2 usage errors (bad options, unreadable feature file).",
    )
    parser.add_argument("--features", default=DEFAULT_FEATURES, help=f"feature file from build_features (default: {DEFAULT_FEATURES})")
    parser.add_argument("--k", type=positive_int, default=5, help="neighbours that vote (default: 5); at most the smallest training fold")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--folds", type=positive_int, default=10, help="stratified cross-validation folds (default: 10; fewer if a genre is smaller)")
    split.add_argument("--split", type=float, metavar="FRACTION", help="one stratified random split with this training fraction, e.g. 0.66")
    split.add_argument("--split-files", nargs=2, metavar=("TRAIN", "TEST"), help="files listing training and test tracks, one path or name per line")
    parser.add_argument("--seed", type=int, default=0, help="seed for folds, splits and randomised baselines (default: 0)")
    parser.add_argument("--json", metavar="OUT", help="also write the numbers as JSON to OUT")
    return parser


def make_models(k: int, seed: int) -> dict:
    """The models compared, by report name."""
    return {
        "knn": KLKNNClassifier(n_neighbors=k),
        "dummy-most-frequent": DummyClassifier(strategy="most_frequent"),
        "dummy-stratified": DummyClassifier(strategy="stratified", random_state=seed),
    }


def _read_list(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().splitlines()
    except OSError as exc:
        raise KnnGenreError(f"{path}: cannot read split file: {exc.strerror or exc}") from None


def make_splits(args, fs):
    """The splits the options ask for, and their protocol."""
    if args.split_files:
        train, test = (_read_list(p) for p in args.split_files)
        return split_from_lists(fs.paths.tolist(), fs.labels, train, test)
    if args.split is not None:
        return random_split(fs.labels, train_fraction=args.split, seed=args.seed)
    if args.folds < 2:
        raise KnnGenreError(f"--folds {args.folds} must be at least 2")
    return cross_validation_splits(fs.labels, folds=args.folds, seed=args.seed)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        fs = store.load(args.features)
        splits, protocol = make_splits(args, fs)
    except KnnGenreError as exc:
        error(PROG, str(exc))
        return EXIT_USAGE
    largest_k = smallest_training_size(splits)
    if args.k > largest_k:
        error(PROG, f"--k {args.k} is larger than the smallest training fold ({largest_k} tracks); use --k between 1 and {largest_k}")
        return EXIT_USAGE

    X, y = fs.to_xy()
    try:
        results = evaluate_models(make_models(args.k, args.seed), X, y, splits)
    except (KnnGenreError, ValueError) as exc:
        error(PROG, f"evaluation failed: {exc}")
        return EXIT_FAILED
    print(f"Features: {args.features} ({fs.params.numcep} MFCCs); KNN with k={args.k}, symmetric KL")
    print(format_report(protocol, results))
    if args.json:
        payload = results_to_json(protocol, results)
        payload["features"] = args.features
        payload["k"] = args.k
        text = json.dumps(payload, indent=2)
        try:
            store.atomic_write(args.json, lambda fh: fh.write(text.encode("utf-8")))
        except OSError as exc:
            error(PROG, f"cannot write {args.json}: {exc.strerror or exc}")
            return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
