"""``python -m knn_genre.evaluate``: score the classifiers on a feature file or table."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

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
from .svm import make_klsvm_search, make_svm_search, make_table_svm_search

PROG = "python -m knn_genre.evaluate"
DEFAULT_FEATURES = "data/features.npz"

#: Every model name ``--models`` accepts; ``dummy`` selects both baselines.
MODEL_NAMES = ("knn", "knn-mp", "svm", "klsvm", "dummy")
#: Models run by default on a feature file (Gaussians).
DEFAULT_MODELS = ("knn", "svm", "klsvm", "dummy")
#: Models that work on plain feature vectors (``--features-csv``).
TABLE_MODELS = ("knn", "svm", "dummy")

_DESCRIPTIONS = {
    "knn": "k-nearest neighbours, symmetric KL between track Gaussians",
    "knn-mp": "the same KNN on mutual-proximity distances (hubness reduction)",
    "svm": "RBF SVM on vectorised Gaussians, C, gamma and covariance coordinates grid-searched",
    "klsvm": "SVM with the kernel exp(-gamma * sKL / median sKL), C and gamma grid-searched",
    "dummy": "DummyClassifier, most-frequent and stratified strategies",
}
_TABLE_DESCRIPTIONS = {
    "knn": "k-nearest neighbours, Euclidean on standardised features",
    "svm": "RBF SVM on standardised features, C and gamma grid-searched",
    "dummy": _DESCRIPTIONS["dummy"],
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Compare classifiers on the tracks of a feature file (per-track MFCC Gaussians from "
            "build_features) or of a published feature table (CSV), all on the same seeded splits: "
            "a k-nearest-neighbour voter under the symmetric Kullback-Leibler divergence, SVMs whose "
            "hyper-parameters are searched inside each outer training fold (nested cross-validation), "
            "and DummyClassifier baselines. Reports accuracy (mean ± std over folds), macro-F1, "
            "per-genre precision and recall, confusion matrices, the chosen hyper-parameters and timings."
        ),
        epilog="Exit status: 0 success, 1 the evaluation failed, 2 usage errors (bad options, unreadable input).",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--features", metavar="FILE", help=f"feature file from build_features (default: {DEFAULT_FEATURES})")
    source.add_argument(
        "--features-csv",
        metavar="FILE",
        help="a feature table instead: CSV with a 'label' column, an optional 'filename' column and numeric "
        "feature columns (e.g. GTZAN's features_30_sec.csv; its 'length' column is ignored)",
    )
    parser.add_argument(
        "--models",
        default=None,
        help=f"comma-separated models from {', '.join(MODEL_NAMES)} (default: {','.join(DEFAULT_MODELS)}; "
        f"with --features-csv: {','.join(TABLE_MODELS)})",
    )
    parser.add_argument("--k", type=positive_int, default=5, help="neighbours that vote in the KNNs (default: 5); at most the smallest training fold")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--folds", type=positive_int, default=10, help="stratified cross-validation folds (default: 10; fewer if a genre is smaller)")
    split.add_argument("--split", type=float, metavar="FRACTION", help="one stratified random split with this training fraction, e.g. 0.66")
    split.add_argument("--split-files", nargs=2, metavar=("TRAIN", "TEST"), help="files listing training and test tracks, one path or name per line")
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=1,
        help="repeat the cross-validation with differently shuffled folds (default: 1); more splits, a steadier spread",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for folds, splits, inner folds and randomised baselines (default: 0)")
    parser.add_argument("--jobs", type=int, default=None, help="parallel fits within each grid search (joblib n_jobs; default: 1)")
    parser.add_argument("--json", metavar="OUT", help="also write the numbers as JSON to OUT")
    parser.add_argument("--plot", metavar="IMAGE", help="draw every model's confusion matrix into IMAGE (.png, .pdf, .svg); needs matplotlib")
    return parser


def parse_models(text: str | None, *, table: bool = False) -> list[str]:
    """Model names from a ``--models`` value, checked, in the order given.

    Raises
    ------
    KnnGenreError
        For an unknown name, or a model that needs Gaussians on a table.
    """
    if text is None:
        return list(TABLE_MODELS if table else DEFAULT_MODELS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise KnnGenreError(f"--models {text!r} names no model; choose from {', '.join(MODEL_NAMES)}")
    unknown = [name for name in names if name not in MODEL_NAMES]
    if unknown:
        raise KnnGenreError(f"--models: unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODEL_NAMES)}")
    if table:
        gaussian_only = [name for name in names if name not in TABLE_MODELS]
        if gaussian_only:
            raise KnnGenreError(
                f"--models {','.join(gaussian_only)} need(s) track Gaussians (--features); "
                f"a feature table supports {', '.join(TABLE_MODELS)}"
            )
    return list(dict.fromkeys(names))


def make_models(k: int, seed: int, names: Sequence[str] = DEFAULT_MODELS, *, table: bool = False, n_jobs=None) -> dict:
    """The models compared, by report name.

    Parameters
    ----------
    k : int
        Neighbours of the KNNs.
    seed : int
        Seed of the inner folds of the searches and of the stratified dummy.
    names : sequence of str
        From :data:`MODEL_NAMES`; ``"dummy"`` gives ``dummy-most-frequent``
        and ``dummy-stratified``.
    table : bool, default=False
        Models for plain feature vectors (a feature table) rather than
        packed Gaussians.
    n_jobs : int, optional
        Parallel fits of the grid searches.
    """
    models = {}
    for name in names:
        if name == "knn":
            models["knn"] = (
                Pipeline([("scale", StandardScaler()), ("knn", KNeighborsClassifier(n_neighbors=k))])
                if table
                else KLKNNClassifier(n_neighbors=k)
            )
        elif name == "knn-mp":
            models["knn-mp"] = KLKNNClassifier(n_neighbors=k, hubness="mutual_proximity")
        elif name == "svm":
            search = make_table_svm_search if table else make_svm_search
            models["svm"] = search(random_state=seed, n_jobs=n_jobs)
        elif name == "klsvm":
            models["klsvm"] = make_klsvm_search(random_state=seed, n_jobs=n_jobs)
        elif name == "dummy":
            models["dummy-most-frequent"] = DummyClassifier(strategy="most_frequent")
            models["dummy-stratified"] = DummyClassifier(strategy="stratified", random_state=seed)
        else:
            raise KnnGenreError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
    return models


def _plain(value):
    """numpy scalars to Python scalars, for JSON."""
    return value.item() if isinstance(value, np.generic) else value


class FoldRecorder:
    """``on_fold`` hook of :func:`evaluate_models`: what each fold's fit chose.

    Keeps, per model, the ``best_params_`` of a grid search and, for the
    KL-kernel SVM, the share of the kernel spectrum that was clipped.
    """

    def __init__(self):
        self.extra = {}

    def __call__(self, name, fold, estimator):
        record = self.extra.setdefault(name, {})
        if hasattr(estimator, "best_params_"):
            params = {key: _plain(value) for key, value in estimator.best_params_.items()}
            record.setdefault("chosen_params", []).append(params)
            estimator = estimator.best_estimator_
        if hasattr(estimator, "negative_mass_"):
            record.setdefault("kernel_negative_mass", []).append(float(estimator.negative_mass_))

    def attach(self, results):
        for result in results:
            result.extra.update(self.extra.get(result.name, {}))
        return results


def _read_list(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().splitlines()
    except OSError as exc:
        raise KnnGenreError(f"{path}: cannot read split file: {exc.strerror or exc}") from None


def make_splits(args, labels, paths, groups=None):
    """The splits the options ask for, and their protocol."""
    if args.repeats > 1 and (args.split_files or args.split is not None):
        raise KnnGenreError("--repeats applies to cross-validation (--folds), not to --split or --split-files")
    if args.split_files:
        train, test = (_read_list(p) for p in args.split_files)
        return split_from_lists(list(paths), labels, train, test)
    if args.split is not None:
        return random_split(labels, train_fraction=args.split, seed=args.seed, groups=groups)
    if args.folds < 2:
        raise KnnGenreError(f"--folds {args.folds} must be at least 2")
    splits, protocol = cross_validation_splits(labels, folds=args.folds, seed=args.seed, repeats=args.repeats, groups=groups)
    if args.repeats > 1:
        protocol.notes.append(
            f"every track is tested {args.repeats} times: confusion matrices count every test"
        )
    return splits, protocol


def load_data(args):
    """``(X, y, track names, groups, header line)`` from the feature file or table.

    ``groups`` names the track of each row, so that the segments of a track
    are never split between training and test.
    """
    if args.features_csv:
        from .tabular import read_feature_table

        table = read_feature_table(args.features_csv)
        header = (
            f"Features: {args.features_csv} (table: {len(table.y)} rows, {len(table.columns)} numeric "
            f"columns; ignored: {', '.join(table.dropped) or 'none'})"
        )
        # Split lists name tracks, which every segment of a track shares.
        return table.X, table.y, table.groups, table.groups, header
    path = args.features or DEFAULT_FEATURES
    fs = store.load(path)
    X, y = fs.to_xy()
    rows = "one Gaussian per track"
    if fs.n_tracks < len(fs):
        rows = f"{len(fs)} segment Gaussians of {fs.n_tracks} tracks"
    return X, y, fs.paths, fs.groups, f"Features: {path} ({fs.params.numcep} MFCCs, {rows})"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    table = args.features_csv is not None
    try:
        names = parse_models(args.models, table=table)
        if args.plot:
            from .plots import require_matplotlib

            require_matplotlib()
        X, y, paths, groups, header = load_data(args)
        splits, protocol = make_splits(args, y, paths, groups)
    except KnnGenreError as exc:
        error(PROG, str(exc))
        return EXIT_USAGE
    largest_k = smallest_training_size(splits)
    if any(name.startswith("knn") for name in names) and args.k > largest_k:
        error(PROG, f"--k {args.k} is larger than the smallest training fold ({largest_k} tracks); use --k between 1 and {largest_k}")
        return EXIT_USAGE

    models = make_models(args.k, args.seed, names, table=table, n_jobs=args.jobs)
    recorder = FoldRecorder()
    try:
        results = recorder.attach(evaluate_models(models, X, y, splits, on_fold=recorder, groups=groups))
    except (KnnGenreError, ValueError) as exc:
        error(PROG, f"evaluation failed: {exc}")
        return EXIT_FAILED
    descriptions = _TABLE_DESCRIPTIONS if table else _DESCRIPTIONS
    print(header)
    for name in names:
        text = descriptions[name].replace("k-nearest", f"{args.k}-nearest")
        print(f"  {name}: {text}")
    print(format_report(protocol, results))
    status = EXIT_OK
    if args.plot:
        from .plots import plot_confusion_matrices

        try:
            plot_confusion_matrices(results, args.plot, title=protocol.describe())
            print(f"\nConfusion matrices drawn in {args.plot}")
        except (OSError, ValueError) as exc:
            error(PROG, f"cannot write {args.plot}: {exc}")
            status = EXIT_FAILED
    if args.json:
        payload = results_to_json(protocol, results)
        payload["features"] = args.features_csv or args.features or DEFAULT_FEATURES
        payload["features_kind"] = "table" if table else "gaussians"
        payload["k"] = args.k
        text = json.dumps(payload, indent=2)
        try:
            store.atomic_write(args.json, lambda fh: fh.write(text.encode("utf-8")))
        except OSError as exc:
            error(PROG, f"cannot write {args.json}: {exc.strerror or exc}")
            return EXIT_FAILED
    return status


if __name__ == "__main__":
    raise SystemExit(main())
