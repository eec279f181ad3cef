"""``python -m knn_genre.train``: train a registry model on a whole feature file, or a feature table, and save it."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

from . import store
from .classifiers.model import GenreModel, default_family, save_model, train_on_featureset, train_on_table
from .classifiers.registry import FAMILY_NAMES, REGISTRY, get_spec, model_names
from .cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_progress_options, entry, error, jobs_count, make_parser, output_problem, positive_int, progress_enabled, with_hint
from .errors import KnnGenreError
from .evaluation.copies import copies_warning

PROG = "python -m knn_genre.train"
DEFAULT_OUTPUT = "data/model.npz"
#: Folds of --evaluate, as evaluate's default.
DEFAULT_FOLDS = 10


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    names = list(REGISTRY)
    parser = make_parser(
        prog,
        "Train a genre model on every track of a feature file, or on a feature table (CSV, e.g. GTZAN's "
        "published features_30_sec.csv), and save it (an .npz that loads without unpickling). The model is "
        "the one evaluate scores: the same search, fit, calibration and decision rule. A model trained on "
        "GTZAN's table classifies songs: predict computes the same columns from the audio.",
        "Exit status: 0 success, 1 training or writing failed, 2 usage errors (bad options, unreadable feature file).",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--features", default=None, help="feature file from build_features (default: data/features.npz)")
    source.add_argument(
        "--features-csv", metavar="FILE",
        help="a feature table instead: CSV with a 'label' column, an optional 'filename' column and numeric "
        "feature columns (its 'length' column is not a feature); every model of the table family trains on it: "
        + ", ".join(model_names("table")),
    )
    parser.add_argument(
        "--model", choices=names, default="knn", metavar="NAME",
        help="; ".join(f"{n}: {get_spec(n).description(get_spec(n).families[0])}" for n in names) + " (default: %(default)s)",
    )
    parser.add_argument(
        "--family", choices=FAMILY_NAMES, default=None,
        help="feature family of a feature file that holds several (gaussian, table, gaussian+table); "
        "default: the first of the model's families that the file holds",
    )
    parser.add_argument("--k", type=positive_int, default=5, help="neighbours of the KNN models (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inner search and calibration folds (default: %(default)s)")
    parser.add_argument("--jobs", type=jobs_count, default=None, help="parallel fits of the grid search (joblib n_jobs; default: 1)")
    parser.add_argument(
        "--evaluate", action="store_true",
        help="also cross-validate the model as evaluate does (seeded stratified folds, the same search, fit and "
        "decision rule) and record the protocol and accuracy in the model file",
    )
    parser.add_argument("--folds", type=positive_int, default=None, help=f"folds of --evaluate (default: {DEFAULT_FOLDS}; fewer if a genre is smaller)")
    parser.add_argument("-o", "--output", default=None, help=f"model file to write (default: {DEFAULT_OUTPUT})")
    add_progress_options(parser)
    return parser


def _load(args):
    """``(features or table, family, rows, tracks, what)`` from the options; KnnGenreError if unusable."""
    if args.features_csv:
        from .store.tables import read_feature_table

        if args.family not in (None, "table"):
            raise KnnGenreError(f"--family {args.family}: a feature table (--features-csv) holds the table family only")
        table = read_feature_table(args.features_csv)
        get_spec(args.model).variant("table")  # a model that needs Gaussians: say so now
        return table, "table", len(table.y), table.n_tracks, args.features_csv
    path = args.features or "data/features.npz"
    fs = store.load(path)
    family = args.family or default_family(args.model, fs.feature_families())
    fs.features(family)  # the file holds it
    get_spec(args.model).variant(family)
    return fs, family, len(fs), fs.n_tracks, path


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    args = build_parser(prog).parse_args(argv)
    problem = output_problem(args.output or DEFAULT_OUTPUT, create_folder=args.output is None)
    args.output = args.output or DEFAULT_OUTPUT
    if problem:
        error(prog, problem)
        return EXIT_USAGE
    if args.folds is not None and not args.evaluate:
        error(prog, f"--folds {args.folds} sets the folds of --evaluate; add --evaluate, or leave --folds out")
        return EXIT_USAGE
    args.folds = DEFAULT_FOLDS if args.folds is None else args.folds
    if args.evaluate and args.folds < 2:
        error(prog, f"--folds {args.folds} must be at least 2")
        return EXIT_USAGE
    try:
        data, family, rows, tracks, source = _load(args)
    except KnnGenreError as exc:
        error(prog, with_hint(exc))
        return EXIT_USAGE
    variant = get_spec(args.model).variant(family)
    if variant.k_param and args.k > rows:
        error(prog, f"--k {args.k} is larger than the {rows} tracks of {source}; use --k between 1 and {rows}")
        return EXIT_USAGE
    if progress_enabled(args):
        search = " (grid search first)" if variant.grid else ""
        print(f"training {args.model} on the {family} features of {tracks} tracks{search} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        if args.features_csv:
            model = train_on_table(data, args.model, k=args.k, seed=args.seed, n_jobs=args.jobs)
        else:
            model = train_on_featureset(data, args.model, k=args.k, seed=args.seed, n_jobs=args.jobs, family=family)
        if args.evaluate:
            model = _evaluated(model, data, family, args)
        save_model(model, args.output)
    except (KnnGenreError, ValueError) as exc:
        error(prog, f"training failed: {exc}")
        return EXIT_FAILED
    except OSError as exc:
        error(prog, f"cannot write {args.output}: {exc.strerror or exc}")
        return EXIT_FAILED
    if args.evaluate:
        record = model.data.evaluation
        print(f"evaluated: {record['protocol']}: accuracy {record['accuracy_mean']:.3f} ± {record['accuracy_std']:.3f}")
        copies = record.get("copies_across_folds") or []
        if copies:
            warning = copies_warning(copies, "the recorded accuracy", "evaluate --drop-duplicates scores without them")
            print(f"{prog}: warning: {warning}", file=sys.stderr, flush=True)
    print(
        f"wrote {args.output}: {args.model} on the {family} features of {tracks} tracks, {len(model.genres)} genres, "
        f"settings {model.settings}, {time.perf_counter() - start:.1f} s"
    )
    return EXIT_OK


def _evaluated(model: GenreModel, data, family: str, args) -> GenreModel:
    """``model`` with the cross-validation of its recipe recorded (the code evaluate runs)."""
    from .evaluation.record import cross_validated_record

    if progress_enabled(args):
        print(f"evaluating {args.model} on {args.folds} folds ...", file=sys.stderr, flush=True)
    if args.features_csv:  # a FeatureTable
        X, y, groups, gaussian_columns = data.X, data.y, data.groups, None
    else:
        X, y, groups, gaussian_columns = data.features(family), data.labels, data.groups, data.layout().get("gaussian")
    record = cross_validated_record(
        X, y, groups, args.model, family=family, k=args.k, seed=args.seed, folds=args.folds, n_jobs=args.jobs,
        gaussian_columns=gaussian_columns,
    )
    return GenreModel(replace(model.data, evaluation=record), model.estimator)


if __name__ == "__main__":
    raise SystemExit(entry(main))
