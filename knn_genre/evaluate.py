"""``python -m knn_genre.evaluate``: compare the registry's models on a feature file or table.

Every model is the estimator ``train`` would save (search, fit, calibration,
decision rule: :mod:`knn_genre.classifiers.registry`), scored on the same
seeded folds, so the reported accuracy is that of the model ``predict`` uses.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np

from . import store
from .classifiers.registry import ALIASES, REGISTRY, expand_names, get_spec, make_model, model_names
from .cli import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_progress_options,
    check_outputs,
    entry,
    error,
    make_parser,
    positive_int,
    progress_enabled,
    with_hint,
)
from .cli.progress import Progress
from .errors import KnnGenreError
from .classifiers.duplicates import GAUSSIAN_THRESHOLD, VECTOR_THRESHOLD, gaussian_duplicates, keep_one_of_each, track_gaussians, vector_duplicates
from .evaluation.report import format_duplicates, format_report, results_to_json
from .evaluation.scoring import compare_models, evaluate_models
from .evaluation.splits import (
    GTZAN_SPLITS,
    cross_validation_splits,
    gtzan_split,
    pairs_across_splits,
    random_split,
    smallest_training_size,
    split_from_lists,
)
from .features.gaussian import unpack

PROG = "python -m knn_genre.evaluate"
DEFAULT_FEATURES = "data/features.npz"
#: Models run by default on a feature file (Gaussians), and on a table: all of them.
DEFAULT_MODELS = tuple(model_names("gaussian"))
DEFAULT_TABLE_MODELS = tuple(model_names("table"))


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


def genre_list(text: str) -> list[str]:
    """argparse type: comma-separated genre names."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names no genre")
    return names


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
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--genres", type=genre_list, metavar="LIST", help="evaluate only these comma-separated genres")
    chosen.add_argument(
        "--min-tracks", type=positive_int, metavar="N",
        help="evaluate only the genres with at least N tracks (e.g. 10, to leave out genres too small for 10 folds)",
    )
    parser.add_argument(
        "--drop-duplicates", action="store_true",
        help="keep one track of each group of copies (tracks closer than the duplicate threshold) before splitting",
    )
    parser.add_argument(
        "--duplicate-threshold", type=float, default=None, metavar="T",
        help=f"copies are closer than T: symmetric KL in nats between Gaussians without c0 (default: {GAUSSIAN_THRESHOLD:g}), "
        f"or root-mean-square difference between standardised rows of a table (default: {VECTOR_THRESHOLD:g})",
    )
    parser.add_argument("--jobs", type=int, default=None, help="parallel fits within each grid search (joblib n_jobs; default: 1)")
    parser.add_argument("--json", metavar="OUT", help="also write the numbers (and every out-of-fold prediction) as JSON to OUT")
    parser.add_argument(
        "--plot", metavar="IMAGE",
        help="draw every model's confusion matrix and precision-recall curves into IMAGE (.png, .pdf, .svg); needs matplotlib",
    )
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


def make_models(names: Sequence[str], *, k: int, seed: int, table: bool = False, n_jobs=None) -> dict:
    """The registry models compared, by name, unfitted."""
    family = "table" if table else "gaussian"
    return {name: make_model(name, family=family, k=k, seed=seed, n_jobs=n_jobs) for name in names}


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
    if isinstance(args.split, str):
        return gtzan_split(args.split, paths, labels)
    if args.split is not None:
        return random_split(labels, train_fraction=args.split, seed=args.seed, groups=groups)
    if args.folds < 2:
        raise KnnGenreError(f"--folds {args.folds} must be at least 2")
    splits, protocol = cross_validation_splits(labels, folds=args.folds, seed=args.seed, repeats=args.repeats, groups=groups)
    if args.repeats > 1:
        protocol.notes.append(f"every track is tested {args.repeats} times: confusion matrices count every test")
    return splits, protocol


def select_genres(args, X, y, paths, groups):
    """The rows of the genres ``--genres`` or ``--min-tracks`` keep, and a note on what was left out.

    Returns
    -------
    (X, y, paths, groups, note or None)
    """
    if args.genres is None and args.min_tracks is None:
        return X, y, paths, groups, None
    tracks = dict(zip(np.asarray(groups).tolist(), np.asarray(y).tolist()))
    genres, counts = np.unique(list(tracks.values()), return_counts=True)
    if args.genres is not None:
        unknown = sorted(set(args.genres) - set(genres.tolist()))
        if unknown:
            raise KnnGenreError(f"--genres: no track of {', '.join(unknown)}; the data's genres are {', '.join(genres)}")
        keep = [g for g in genres.tolist() if g in args.genres]
    else:
        keep = [g for g, n in zip(genres.tolist(), counts) if n >= args.min_tracks]
        if len(keep) < 2:
            raise KnnGenreError(
                f"--min-tracks {args.min_tracks} leaves {len(keep)} genre(s); the genres have "
                + ", ".join(f"{g} {n}" for g, n in zip(genres, counts))
                + " tracks"
            )
    left = [f"{g} ({n})" for g, n in zip(genres.tolist(), counts) if g not in keep]
    rows = np.isin(y, keep)
    why = f"with at least {args.min_tracks} tracks" if args.genres is None else "named by --genres"
    note = f"only the genres {why}: {', '.join(keep)}; left out: {', '.join(left) or 'none'}"
    return X[rows], y[rows], np.asarray(paths)[rows], np.asarray(groups)[rows], note


def find_duplicates(X, groups, *, table: bool, threshold=None):
    """Copies among the tracks: by Gaussian divergence, or by distance between a table's rows."""
    if table:
        tracks, index = np.unique(np.asarray(groups), return_inverse=True)
        sums = np.zeros((len(tracks), X.shape[1]))
        np.add.at(sums, index, X)
        vectors = sums / np.bincount(index)[:, None]  # segments of a track: their mean row
        return vector_duplicates(vectors, tracks, threshold=VECTOR_THRESHOLD if threshold is None else threshold)
    tracks, means, covs = track_gaussians(*unpack(X), groups)
    return gaussian_duplicates(means, covs, tracks, threshold=GAUSSIAN_THRESHOLD if threshold is None else threshold)


def drop_copies(duplicates, X, y, paths, groups):
    """Rows of the tracks that are not copies of an earlier one; the dropped track names."""
    dropped = keep_one_of_each(duplicates)
    rows = ~np.isin(np.asarray(groups), sorted(dropped))
    return X[rows], y[rows], np.asarray(paths)[rows], np.asarray(groups)[rows], sorted(dropped)


def straddling_warning(duplicates, splits, groups) -> tuple[list, str | None]:
    """Pairs of copies with one copy trained on and the other tested, and the warning to print."""
    across = pairs_across_splits([(a, b) for a, b, _ in duplicates.pairs], splits, groups)
    if not across:
        return across, None
    shown = "; ".join(f"{a} / {b} ({'fold' if len(f) == 1 else 'folds'} {', '.join(str(i + 1) for i in f)})" for a, b, f in across[:3])
    more = f"; and {len(across) - 3} more" if len(across) > 3 else ""
    return across, (
        f"{len(across)} pair(s) of copies straddle the splits (one copy trained on, the other tested), which inflates "
        f"accuracy: {shown}{more}; --drop-duplicates keeps one of each group"
    )


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


def prepare(args, X, y, paths, groups, *, table: bool):
    """Genres kept, copies found (and dropped), splits: everything decided before a model runs.

    Returns
    -------
    (X, y, paths, groups, splits, protocol, duplicates, dropped, across, warning)
    """
    X, y, paths, groups, genre_note = select_genres(args, X, y, paths, groups)
    duplicates = find_duplicates(X, groups, table=table, threshold=args.duplicate_threshold)
    dropped = []
    if args.drop_duplicates and duplicates.groups:
        X, y, paths, groups, dropped = drop_copies(duplicates, X, y, paths, groups)
    splits, protocol = make_splits(args, y, paths, groups)
    if genre_note:
        protocol.notes.insert(0, genre_note)
    if dropped:
        protocol.notes.append(f"--drop-duplicates: left out {len(dropped)} copies ({', '.join(dropped[:3])}{', ...' if len(dropped) > 3 else ''})")
    across, warning = straddling_warning(duplicates, splits, groups) if not dropped else ([], None)
    return X, y, paths, groups, splits, protocol, duplicates, dropped, across, warning


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    args = build_parser(prog).parse_args(argv)
    table = args.features_csv is not None
    try:
        check_outputs(args.json, args.plot)  # before minutes of work, not after
        names = parse_models(args.models, table=table)
        if args.plot:
            from .evaluation.plots import check_image_path

            check_image_path(args.plot)
        if args.duplicate_threshold is not None and not args.duplicate_threshold >= 0:
            raise KnnGenreError(f"--duplicate-threshold {args.duplicate_threshold} must be a number >= 0")
        X, y, paths, groups, header = load_data(args)
        X, y, paths, groups, splits, protocol, duplicates, dropped, across, warning = prepare(args, X, y, paths, groups, table=table)
    except KnnGenreError as exc:
        error(prog, with_hint(exc))
        return EXIT_USAGE
    largest_k = smallest_training_size(splits)
    if any(get_spec(name).keeps_references or name == "vote" for name in names) and args.k > largest_k:
        error(prog, f"--k {args.k} is larger than the smallest training fold ({largest_k} tracks); use --k between 1 and {largest_k}")
        return EXIT_USAGE
    if warning:
        print(f"{prog}: warning: {warning}", file=sys.stderr, flush=True)

    models = make_models(names, k=args.k, seed=args.seed, table=table, n_jobs=args.jobs)
    recorder = FoldRecorder()
    progress = Progress(len(models) * len(splits), "folds") if progress_enabled(args) else None
    chance = {name: get_spec(name).chance for name in names if get_spec(name).chance}
    try:
        results = evaluate_models(
            models, X, y, splits, groups=groups, on_fold=recorder, chance=chance,
            on_progress=(lambda done, total, label: progress.update(done, label)) if progress else None,
        )
        results = compare_models(recorder.attach(results), baselines={name for name in names if get_spec(name).baseline})
    except (KnnGenreError, ValueError) as exc:
        error(prog, f"evaluation failed: {exc}")
        return EXIT_FAILED
    finally:
        if progress:
            progress.close()
    family = "table" if table else "gaussian"
    print(header)
    for name in names:
        print(f"  {name}: {get_spec(name).description(family, args.k)}")
    print(format_duplicates(duplicates, across, dropped))
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
