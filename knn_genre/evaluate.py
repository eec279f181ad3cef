"""``python -m knn_genre.evaluate``: compare the registry's models on a feature file or table.

Every model is the estimator ``train`` would save (search, fit, calibration,
decision rule: :mod:`knn_genre.classifiers.registry`), scored on the same
seeded folds, so the reported accuracy is that of the model ``predict`` uses.

A feature file may hold several families; each model runs on the family
``--family`` names, else on the first of its own families that the file
holds (``svm`` on the Gaussians, ``fusion`` on ``gaussian+table``). An entry
``name:family`` of ``--models`` fixes one model's family, so that ``svm`` on
the Gaussians and ``svm:table`` run side by side, on the same folds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Sequence

import numpy as np

from . import store
from .classifiers.cache import DivergenceCache
from .classifiers.registry import ALIASES, FAMILY_NAMES, REGISTRY, expand_names, get_spec, make_model, model_names
from .cli import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_progress_options,
    check_outputs,
    checked,
    entry,
    error,
    jobs_count,
    make_parser,
    note,
    positive_int,
    progress_enabled,
    with_hint,
)
from .cli.progress import Progress
from .errors import ClusterError, KnnGenreError, printable
from .classifiers.duplicates import GAUSSIAN_THRESHOLD, VECTOR_THRESHOLD
from .evaluation.copies import drop_copies, find_duplicates, straddling_warning
from .evaluation.parallel import dask_backend
from .evaluation.report import format_duplicates, format_report, results_to_json
from .evaluation.scoring import compare_models, evaluate_models
from .evaluation.splits import (
    GTZAN_SPLITS,
    cross_validation_splits,
    gtzan_split,
    random_split,
    smallest_training_size,
    split_from_lists,
)
from .pipeline.cluster import Cluster, check_address, require_dask
from .pipeline.signals import stop_signals_raise

PROG = "python -m knn_genre.evaluate"
DEFAULT_FEATURES = "data/features.npz"
#: Models run by default on each family: every model of the registry that accepts it.
DEFAULT_MODELS = tuple(model_names("gaussian"))
DEFAULT_TABLE_MODELS = tuple(model_names("table"))
DEFAULT_FUSION_MODELS = tuple(model_names("gaussian+table"))
_DEFAULTS = {"gaussian": DEFAULT_MODELS, "table": DEFAULT_TABLE_MODELS, "gaussian+table": DEFAULT_FUSION_MODELS}


def split_option(text: str):
    """argparse type of ``--split``: a training fraction, or the name of a published split."""
    if text in GTZAN_SPLITS:
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a training fraction (e.g. 0.66) nor a named split ({', '.join(GTZAN_SPLITS)})"
        ) from None


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
        help=f"comma-separated models from {names} (default: every model that accepts the features); "
        "'dummy' selects both baselines; NAME:FAMILY runs a model on that family (e.g. svm:table)",
    )
    parser.add_argument(
        "--family", choices=FAMILY_NAMES, default=None,
        help="feature family of a feature file that holds several: gaussian (MFCC Gaussians), table (GTZAN's "
        "table columns), gaussian+table (both, for fusion); default: for each model, the first of its families "
        "that the file holds",
    )
    parser.add_argument(
        "--genres", metavar="NAMES", default=None,
        help="comma-separated genres to keep (the other tracks are left out), e.g. the well-populated genres "
        "of an unbalanced collection; default: all",
    )
    parser.add_argument(
        "--min-tracks", type=positive_int, metavar="N", default=None,
        help="keep only the genres with at least N tracks (e.g. 10, to leave out genres too small for 10 folds)",
    )
    parser.add_argument(
        "--drop-duplicates", action="store_true",
        help="keep one track of each group of copies (tracks closer than the duplicate threshold) before splitting",
    )
    parser.add_argument(
        "--duplicate-threshold", type=float, default=None, metavar="T",
        help=f"copies are closer than T: symmetric KL in nats between Gaussians without c0 (default: {GAUSSIAN_THRESHOLD:g}), "
        f"or, without Gaussians, the root-mean-square difference between standardised table rows (default: {VECTOR_THRESHOLD:g})",
    )
    parser.add_argument("--k", type=positive_int, default=5, help="neighbours that vote in the KNNs (default: 5); at most the smallest training fold")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--folds", type=positive_int, default=10, help="stratified cross-validation folds (default: 10; fewer if a genre is smaller)")
    split.add_argument(
        "--split", type=split_option, metavar="FRACTION|NAME",
        help="one stratified random split with this training fraction, e.g. 0.66; or GTZAN's published split "
        "gtzan-fault-filtered (train on its train+valid lists, test on its test list; Kereliuk, Sturm & Larsen 2015) "
        "or gtzan-artist-3fold (artist-filtered stratified 3 folds; Foleiss & Tavares 2020), matched to the tracks "
        "by their GTZAN names (blues.00012)",
    )
    split.add_argument("--split-files", nargs=2, metavar=("TRAIN", "TEST"), help="files listing training and test tracks, one path or name per line")
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=1,
        help="repeat the cross-validation with differently shuffled folds (default: 1); more splits, a steadier spread",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for folds, splits, inner folds and randomised baselines (default: 0)")
    parser.add_argument(
        "--jobs", type=jobs_count, default=-1,
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
    parser.add_argument(
        "--plot", metavar="IMAGE",
        help="draw every model's confusion matrix and precision-recall curves into IMAGE (.png, .pdf, .svg); needs matplotlib",
    )
    add_progress_options(parser)
    return parser


def split_entry(entry: str) -> tuple[str, str | None]:
    """``"svm:table"`` -> ``("svm", "table")``; ``"svm"`` -> ``("svm", None)``."""
    name, _, family = entry.partition(":")
    return name, (family or None)


def parse_models(text: str | None, *, table: bool = False, family: str | None = None) -> list[str]:
    """Model entries (``name`` or ``name:family``) from a ``--models`` value, checked, in the order given.

    Raises
    ------
    KnnGenreError
        For an unknown name or family, or a model that needs Gaussians on a table.
    """
    if text is None:
        return expand_names(DEFAULT_TABLE_MODELS if table else _DEFAULTS[family or "gaussian"])
    entries = [name.strip() for name in text.split(",") if name.strip()]
    if not entries:
        raise KnnGenreError(f"--models {text!r} names no model; choose from {', '.join(model_names() + list(ALIASES))}")
    out = []
    for entry in entries:
        name, fixed = split_entry(entry)
        if fixed is not None and fixed not in FAMILY_NAMES:
            raise KnnGenreError(f"--models {entry}: unknown family {fixed!r}; choose from {', '.join(FAMILY_NAMES)}")
        try:
            members = expand_names([name], fixed)
        except KnnGenreError as exc:
            raise KnnGenreError(f"--models: {exc}") from None
        out += [member if fixed is None else f"{member}:{fixed}" for member in members]
    out = list(dict.fromkeys(out))
    if table:
        refused = [e for e in out if "table" not in get_spec(split_entry(e)[0]).families or split_entry(e)[1] not in (None, "table")]
        if refused:
            raise KnnGenreError(
                f"--models {','.join(refused)} need(s) track Gaussians (--features); "
                f"a feature table supports {', '.join(model_names('table'))}"
            )
    return out


def model_family(entry: str, available: Sequence[str], family: str | None = None) -> str:
    """The family a model entry runs on: its own ``:family``, else ``family``, else the first of
    the model's families among ``available``.

    Raises
    ------
    KnnGenreError
        If that family is not available or the model does not accept it.
    """
    name, fixed = split_entry(entry)
    spec = get_spec(name)
    chosen = fixed or family or next((f for f in spec.families if f in available), None)
    if chosen is None:
        raise KnnGenreError(
            f"model {name!r} needs {' or '.join(spec.families)} features; these hold {', '.join(available)}"
        )
    if chosen not in available:
        raise KnnGenreError(f"model {entry!r} runs on {chosen!r} features; these hold {', '.join(available)}")
    spec.variant(chosen)  # raises if the model does not accept it
    return chosen


def make_models(names: Sequence[str], *, k: int, seed: int, table: bool = False, n_jobs=None,
                family: str | None = None, available: Sequence[str] | None = None, gaussian_columns: int | None = None,
                cache=None) -> dict:
    """The registry models compared, by entry, unfitted, each made for its family (see :func:`model_family`).

    ``cache`` (divergences and vectors of the Gaussians, see
    :class:`~knn_genre.classifiers.cache.DivergenceCache`) is shared by the models on the Gaussians.
    """
    available = ("table",) if table else tuple(available or ("gaussian",))
    return {
        entry: make_model(
            split_entry(entry)[0], family=model_family(entry, available, family), k=k, seed=seed, n_jobs=n_jobs,
            gaussian_columns=gaussian_columns, cache=cache if model_family(entry, available, family) == "gaussian" else None,
        )
        for entry in names
    }


def chance_strategies(models: dict) -> dict:
    """The baselines among the models, with the guessing rule whose chance level is reported."""
    return {entry: get_spec(model.name).chance for entry, model in models.items() if get_spec(model.name).chance}


def baseline_names(models: dict) -> set:
    return {entry for entry, model in models.items() if get_spec(model.name).baseline}


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
        return split_from_lists(list(paths), labels, train, test, seed=args.seed)
    if isinstance(args.split, str):
        return gtzan_split(args.split, paths, labels, seed=args.seed)
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

    ``X`` maps each family the data can feed (``gaussian``, ``table``,
    ``gaussian+table``) to its rows. ``groups`` names the track of each
    row, so that the segments of a track are never split between training
    and test.
    """
    if args.features_csv:
        from .store.tables import read_feature_table

        table = read_feature_table(args.features_csv)
        header = (
            f"Features: {args.features_csv} (table: {len(table.y)} rows, {len(table.columns)} numeric "
            f"columns; ignored: {', '.join(table.dropped) or 'none'})"
        )
        # Split lists name tracks, which every segment of a track shares.
        return {"table": table.X}, table.y, table.groups, table.groups, header
    path = args.features or DEFAULT_FEATURES
    fs = store.load(path)
    X = {family: fs.features(family) for family in fs.feature_families()}
    rows = "one row per track"
    if fs.n_tracks < len(fs):
        rows = f"{len(fs)} segment rows of {fs.n_tracks} tracks"
    held = []
    if fs.has_gaussians:
        held.append(f"{fs.params.numcep}-MFCC Gaussians")
    if fs.table is not None:
        held.append(f"{fs.table.shape[1]} table columns")
    return X, fs.labels.copy(), fs.paths, fs.groups, f"Features: {path} ({' and '.join(held)}, {rows})"


def keep_genres(data, genres: str | None):
    """``load_data``'s tuple restricted to the tracks of the comma-separated ``genres`` (None: all)."""
    if genres is None:
        return data
    X, y, paths, groups, header = data
    wanted = [g.strip() for g in genres.split(",") if g.strip()]
    unknown = sorted(set(wanted) - set(y.tolist()))
    if not wanted or unknown:
        raise KnnGenreError(f"--genres {genres!r}: {'unknown genre(s) ' + ', '.join(unknown) if unknown else 'no genre named'}; "
                            f"the data hold {', '.join(map(printable, sorted(set(y.tolist()))))}")
    rows = np.isin(y, wanted)
    kept = ", ".join(map(printable, sorted(set(wanted))))
    return ({f: x[rows] for f, x in X.items()}, y[rows], np.asarray(paths)[rows], np.asarray(groups)[rows],
            f"{header}; genres kept: {kept} ({int(rows.sum())} of {len(y)} rows)")


def keep_populated_genres(data, min_tracks: int | None):
    """``load_data``'s tuple restricted to the genres with at least ``min_tracks`` tracks (None: all)."""
    if min_tracks is None:
        return data
    X, y, paths, groups, header = data
    tracks = dict(zip(np.asarray(groups).tolist(), np.asarray(y).tolist()))
    genres, counts = np.unique(list(tracks.values()), return_counts=True)
    keep = [str(g) for g, n in zip(genres, counts) if n >= min_tracks]
    if len(keep) < 2:
        raise KnnGenreError(
            f"--min-tracks {min_tracks} leaves {len(keep)} genre(s); the genres have "
            + ", ".join(f"{printable(g)} {n}" for g, n in zip(genres, counts)) + " tracks"
        )
    rows = np.isin(y, keep)
    left = ", ".join(f"{printable(g)} ({n})" for g, n in zip(genres, counts) if n < min_tracks) or "none"
    return ({f: x[rows] for f, x in X.items()}, y[rows], np.asarray(paths)[rows], np.asarray(groups)[rows],
            f"{header}; genres with at least {min_tracks} tracks: {', '.join(map(printable, keep))} (left out: {left})")


def prepare(args, X, y, paths, groups):
    """Copies found (and dropped), splits: everything decided before a model runs.

    Returns
    -------
    (X, y, paths, groups, splits, protocol, duplicates, dropped, across, warning)
    """
    duplicates = find_duplicates(X, groups, threshold=args.duplicate_threshold)
    dropped = []
    if args.drop_duplicates and duplicates.groups:
        X, y, paths, groups, dropped = drop_copies(duplicates, X, y, paths, groups)
    splits, protocol = make_splits(args, y, paths, groups)
    if dropped:
        shown = ", ".join(map(printable, dropped[:3])) + (", ..." if len(dropped) > 3 else "")
        protocol.notes.append(f"--drop-duplicates: left out {len(dropped)} copies ({shown})")
    across, warning = straddling_warning(duplicates, splits, groups) if not dropped else ([], None)
    return X, y, paths, groups, splits, protocol, duplicates, dropped, across, warning


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    args = build_parser(prog).parse_args(argv)
    table = args.features_csv is not None
    try:
        check_outputs(args.json, args.plot)  # before minutes of work, not after
        if args.scheduler:
            require_dask()
        if table and args.family not in (None, "table"):
            raise KnnGenreError(f"--family {args.family}: a feature table (--features-csv) holds the table family only")
        names = parse_models(args.models, table=table, family=args.family)
        if args.plot:
            from .evaluation.plots import check_image_path

            check_image_path(args.plot)
        if args.genres is not None and args.min_tracks is not None:
            raise KnnGenreError("give --genres or --min-tracks, not both")
        if args.duplicate_threshold is not None and not args.duplicate_threshold >= 0:
            raise KnnGenreError(f"--duplicate-threshold {args.duplicate_threshold} must be a number >= 0")
        X, y, paths, groups, header = keep_populated_genres(keep_genres(load_data(args), args.genres), args.min_tracks)
        if args.models is None and args.family is None and "gaussian" not in X:
            names = parse_models(None, family="table")  # a feature file of the table family alone
        # Divergences and vectors of the Gaussians, computed once for every fold (the fits run in parallel
        # at the level of (model, fold) pairs, so the searches themselves stay serial).
        cache = DivergenceCache(X["gaussian"]) if "gaussian" in X and not args.no_cache else None
        models = make_models(
            names, k=args.k, seed=args.seed, table=table, family=args.family, available=tuple(X),
            gaussian_columns=X["gaussian"].shape[1] if "gaussian" in X else None, cache=cache,
        )
        X, y, paths, groups, splits, protocol, duplicates, dropped, across, warning = prepare(args, X, y, paths, groups)
    except KnnGenreError as exc:
        error(prog, with_hint(exc))
        return EXIT_USAGE
    largest_k = smallest_training_size(splits)
    neighbours = ("knn", "knn-mp", "vote")  # the vote's KNN candidates too
    if any(get_spec(split_entry(name)[0]).keeps_references or split_entry(name)[0] in neighbours for name in names) and args.k > largest_k:
        error(prog, f"--k {args.k} is larger than the smallest training fold ({largest_k} tracks); use --k between 1 and {largest_k}")
        return EXIT_USAGE

    # What is compared is shown before the minutes of work, not after them
    # (a reader that only wants the first lines, as `| head -1`, has them at once).
    print(header)
    for name, model in models.items():
        print(f"  {name}: {get_spec(model.name).description(model.family, args.k)} (on {model.family})")
    print(format_duplicates(duplicates, across, dropped))
    sys.stdout.flush()
    if warning:
        print(f"{prog}: warning: {warning}", file=sys.stderr, flush=True)
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
                    models, X, y, splits, groups=groups, on_fold=recorder, n_jobs=jobs, chance=chance_strategies(models),
                    on_progress=(lambda done, total, label: progress.update(done, label)) if progress else None,
                )
        results = compare_models(recorder.attach(results), baselines=baseline_names(models))
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
    print(format_report(protocol, results))
    status = EXIT_OK
    if args.plot:
        from .evaluation.plots import plot_evaluation

        try:
            plot_evaluation(results, args.plot, title=protocol.describe())
            print(f"\nConfusion matrices and precision-recall curves drawn in {args.plot}")
        except (OSError, ValueError) as exc:
            error(prog, f"cannot write {args.plot}: {exc}")
            status = EXIT_FAILED
    if args.json:
        payload = results_to_json(protocol, results)
        payload["features"] = args.features_csv or args.features or DEFAULT_FEATURES
        payload["features_kind"] = "table" if table else "gaussians"
        payload["families"] = {name: model.family for name, model in models.items()}
        payload["k"] = args.k
        payload["duplicates"] = {
            **duplicates.to_dict(),
            "across_splits": [{"a": a, "b": b, "folds": list(f)} for a, b, f in across],
            "dropped": dropped,
        }
        text = json.dumps(payload, indent=2)
        try:
            store.atomic_write(args.json, lambda fh: fh.write(text.encode("utf-8")))
        except OSError as exc:
            error(prog, f"cannot write {args.json}: {exc.strerror or exc}")
            return EXIT_FAILED
    return status


if __name__ == "__main__":
    raise SystemExit(entry(main))
