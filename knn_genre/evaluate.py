"""``python -m knn_genre.evaluate``: compare the registry's models on a feature file or table.

Every model is the estimator ``train`` would save (search, fit, calibration,
decision rule: :mod:`knn_genre.classifiers.registry`), scored on the same
seeded folds, so the reported accuracy is that of the model ``predict`` uses.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
from collections.abc import Sequence

from . import store
from .classifiers.cache import DivergenceCache
from .classifiers.registry import ALIASES, REGISTRY, expand_names, get_spec, make_model, model_names
from .cli import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_progress_options,
    check_outputs,
    checked,
    entry,
    error,
    make_parser,
    note,
    positive_int,
    progress_enabled,
    with_hint,
)
from .cli.progress import Progress
from .errors import ClusterError, KnnGenreError
from .evaluation.parallel import dask_backend
from .evaluation.report import format_report, results_to_json
from .evaluation.scoring import evaluate_models
from .evaluation.splits import cross_validation_splits, random_split, smallest_training_size, split_from_lists
from .pipeline.cluster import Cluster, check_address
from .pipeline.signals import stop_signals_raise

PROG = "python -m knn_genre.evaluate"
DEFAULT_FEATURES = "data/features.npz"
#: Models run by default on a feature file (Gaussians), and on a table.
DEFAULT_MODELS = ("knn", "svm", "klsvm", "dummy")
DEFAULT_TABLE_MODELS = ("knn", "svm", "dummy")


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = make_parser(
        prog,
        (
            "Compare classifiers on the tracks of a feature file (per-track MFCC Gaussians from "
            "build_features) or of a published feature table (CSV), all on the same seeded splits: "
            "a k-nearest-neighbour voter under the symmetric Kullback-Leibler divergence, SVMs whose "
            "hyper-parameters are searched inside each outer training fold (nested cross-validation), "
            "and DummyClassifier baselines. Each model is scored as train saves it and predict applies it. "
            "Reports accuracy (mean ± std over folds), macro-F1, per-genre precision and recall, confusion "
            "matrices, the chosen hyper-parameters and timings."
        ),
        "Exit status: 0 success, 1 the evaluation failed or an output could not be written, "
        "2 usage errors (bad options, unreadable input).",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--features", metavar="FILE", help=f"feature file from build_features (default: {DEFAULT_FEATURES})")
    source.add_argument(
        "--features-csv",
        metavar="FILE",
        help="a feature table instead: CSV with a 'label' column, an optional 'filename' column and numeric "
        "feature columns (e.g. GTZAN's features_30_sec.csv; its 'length' column is ignored)",
    )
    names = ", ".join(list(REGISTRY) + list(ALIASES))
    parser.add_argument(
        "--models",
        default=None,
        help=f"comma-separated models from {names} (default: {','.join(DEFAULT_MODELS)}; "
        f"with --features-csv: {','.join(DEFAULT_TABLE_MODELS)}); 'dummy' selects both baselines",
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
    parser.add_argument(
        "--jobs", type=int, default=-1,
        help="worker processes fitting the (model, fold) pairs in parallel, one BLAS thread each; -1 uses all "
        "cores (default: -1). The numbers do not depend on it",
    )
    parser.add_argument(
        "--scheduler", metavar="ADDRESS", type=checked(check_address), default=None,
        help="fit on a Dask cluster instead, through joblib's Dask backend: tcp://HOST:8786, or local:N to start "
        "one of N worker processes; the same numbers as a local run",
    )
    parser.add_argument(
        "--no-cache", action="store_true",
        help="compute every divergence, kernel and vector within each fit, instead of once for the whole "
        "evaluation (slower; the same numbers)",
    )
    parser.add_argument("--json", metavar="OUT", help="also write the numbers (and every out-of-fold prediction) as JSON to OUT")
    parser.add_argument("--plot", metavar="IMAGE", help="draw every model's confusion matrix into IMAGE (.png, .pdf, .svg); needs matplotlib")
    add_progress_options(parser)
    return parser


def parse_models(text: str | None, *, table: bool = False) -> list[str]:
    """Registry names from a ``--models`` value, checked, in the order given.

    Raises
    ------
    KnnGenreError
        For an unknown name, or a model that needs Gaussians on a table.
    """
    if text is None:
        return expand_names(DEFAULT_TABLE_MODELS if table else DEFAULT_MODELS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise KnnGenreError(f"--models {text!r} names no model; choose from {', '.join(model_names() + list(ALIASES))}")
    try:
        expanded = expand_names(names)
    except KnnGenreError as exc:
        raise KnnGenreError(f"--models: {exc}") from None
    if table:
        gaussian_only = [name for name in expanded if "table" not in get_spec(name).families]
        if gaussian_only:
            raise KnnGenreError(
                f"--models {','.join(gaussian_only)} need(s) track Gaussians (--features); "
                f"a feature table supports {', '.join(model_names('table'))}"
            )
    return expanded


def make_models(names: Sequence[str], *, k: int, seed: int, table: bool = False, n_jobs=None, cache=None) -> dict:
    """The registry models compared, by name, unfitted; ``cache`` shared by all of them."""
    family = "table" if table else "gaussian"
    return {name: make_model(name, family=family, k=k, seed=seed, n_jobs=n_jobs, cache=cache) for name in names}


class FoldRecorder:
    """``on_fold`` hook of :func:`~knn_genre.evaluation.scoring.evaluate_models`: what each fold's fit chose.

    Keeps, per model, the parameters its inner search chose and, for the
    KL-kernel SVM, the share of the kernel spectrum that was clipped.
    """

    def __init__(self):
        self.extra = {}

    def __call__(self, name, fold, estimator):
        record = self.extra.setdefault(name, {})
        if getattr(estimator, "searched_params_", None) is not None:
            record.setdefault("chosen_params", []).append(dict(estimator.searched_params_))
        base = getattr(estimator, "base_estimator_", estimator)
        if hasattr(base, "negative_mass_"):
            record.setdefault("kernel_negative_mass", []).append(float(base.negative_mass_))

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
        protocol.notes.append(f"every track is tested {args.repeats} times: confusion matrices count every test")
    return splits, protocol


def load_data(args):
    """``(X, y, track names, groups, header line)`` from the feature file or table.

    ``groups`` names the track of each row, so that the segments of a track
    are never split between training and test.
    """
    if args.features_csv:
        from .store.tables import read_feature_table

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


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    args = build_parser(prog).parse_args(argv)
    table = args.features_csv is not None
    try:
        check_outputs(args.json, args.plot)  # before minutes of work, not after
        names = parse_models(args.models, table=table)
        if args.plot:
            from .evaluation.plots import check_image_path

            check_image_path(args.plot)
        X, y, paths, groups, header = load_data(args)
        splits, protocol = make_splits(args, y, paths, groups)
    except KnnGenreError as exc:
        error(prog, with_hint(exc))
        return EXIT_USAGE
    largest_k = smallest_training_size(splits)
    if any(get_spec(name).keeps_references for name in names) and args.k > largest_k:
        error(prog, f"--k {args.k} is larger than the smallest training fold ({largest_k} tracks); use --k between 1 and {largest_k}")
        return EXIT_USAGE

    if args.jobs == 0:
        error(prog, "--jobs must be a positive number of processes or -1 for all cores, not 0")
        return EXIT_USAGE
    cache = None if table or args.no_cache else DivergenceCache(X)
    models = make_models(names, k=args.k, seed=args.seed, table=table, cache=cache)
    recorder = FoldRecorder()
    progress = Progress(len(models) * len(splits), "folds") if progress_enabled(args) else None
    try:
        with contextlib.ExitStack() as stack:
            jobs = args.jobs
            if args.scheduler:
                cluster = stack.enter_context(Cluster(args.scheduler))
                note(f"fitting on {cluster.describe()}")
                stack.enter_context(dask_backend(cluster))
                jobs = -1
            if progress:
                progress.update(0, "starting")
            with stop_signals_raise():
                results = evaluate_models(
                    models, X, y, splits, groups=groups, on_fold=recorder, n_jobs=jobs,
                    on_progress=(lambda done, total, label: progress.update(done, label)) if progress else None,
                )
        results = recorder.attach(results)
    except ClusterError as exc:
        error(prog, with_hint(exc))
        return EXIT_FAILED
    except (KnnGenreError, ValueError) as exc:
        error(prog, f"evaluation failed: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        error(prog, f"interrupted by {signal.Signals(signum).name}; nothing was written")
        return 128 + signum
    finally:
        if progress:
            progress.close()
    family = "table" if table else "gaussian"
    print(header)
    for name in names:
        print(f"  {name}: {get_spec(name).description(family, args.k)}")
    print(format_report(protocol, results))
    status = EXIT_OK
    if args.plot:
        from .evaluation.plots import plot_confusion_matrices

        try:
            plot_confusion_matrices(results, args.plot, title=protocol.describe())
            print(f"\nConfusion matrices drawn in {args.plot}")
        except (OSError, ValueError) as exc:
            error(prog, f"cannot write {args.plot}: {exc}")
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
            error(prog, f"cannot write {args.json}: {exc.strerror or exc}")
            return EXIT_FAILED
    return status


if __name__ == "__main__":
    raise SystemExit(entry(main))
