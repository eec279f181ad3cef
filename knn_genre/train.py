"""``python -m knn_genre.train``: train a registry model on a whole feature file and save it."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

from . import store
from .classifiers.model import GenreModel, save_model, train_on_featureset
from .classifiers.registry import get_spec, model_names
from .cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_progress_options, entry, error, make_parser, output_problem, positive_int, progress_enabled, with_hint
from .errors import KnnGenreError

PROG = "python -m knn_genre.train"
DEFAULT_OUTPUT = "data/model.npz"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    names = model_names("gaussian")
    parser = make_parser(
        prog,
        "Train a genre model on every track of a feature file and save it (an .npz that loads without "
        "unpickling). The model is the one evaluate scores: the same search, fit, calibration and decision rule.",
        "Exit status: 0 success, 1 training or writing failed, 2 usage errors (bad options, unreadable feature file).",
    )
    parser.add_argument("--features", default="data/features.npz", help="feature file from build_features (default: %(default)s)")
    parser.add_argument(
        "--model", choices=names, default="knn", metavar="NAME",
        help="; ".join(f"{n}: {get_spec(n).description('gaussian')}" for n in names) + " (default: %(default)s)",
    )
    parser.add_argument("--k", type=positive_int, default=5, help="neighbours of the KNN models (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inner search and calibration folds (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=None, help="parallel fits of the grid search (joblib n_jobs; default: 1)")
    parser.add_argument(
        "--evaluate", action="store_true",
        help="also cross-validate the model as evaluate does (seeded stratified folds, the same search, fit and "
        "decision rule) and record the protocol and accuracy in the model file",
    )
    parser.add_argument("--folds", type=positive_int, default=10, help="folds of --evaluate (default: %(default)s; fewer if a genre is smaller)")
    parser.add_argument("-o", "--output", default=None, help=f"model file to write (default: {DEFAULT_OUTPUT})")
    add_progress_options(parser)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    args = build_parser(prog).parse_args(argv)
    problem = output_problem(args.output or DEFAULT_OUTPUT, create_folder=args.output is None)
    args.output = args.output or DEFAULT_OUTPUT
    if problem:
        error(prog, problem)
        return EXIT_USAGE
    if args.evaluate and args.folds < 2:
        error(prog, f"--folds {args.folds} must be at least 2")
        return EXIT_USAGE
    try:
        fs = store.load(args.features)
    except KnnGenreError as exc:
        error(prog, with_hint(exc))
        return EXIT_USAGE
    spec = get_spec(args.model)
    if spec.variant("gaussian").k_param and args.k > len(fs):
        error(prog, f"--k {args.k} is larger than the {len(fs)} tracks of {args.features}; use --k between 1 and {len(fs)}")
        return EXIT_USAGE
    if progress_enabled(args):
        search = " (grid search first)" if spec.variant("gaussian").grid else ""
        print(f"training {args.model} on {fs.n_tracks} tracks{search} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        model = train_on_featureset(fs, args.model, k=args.k, seed=args.seed, n_jobs=args.jobs)
        if args.evaluate:
            model = _evaluated(model, fs, args)
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
    print(
        f"wrote {args.output}: {args.model} on {fs.n_tracks} tracks, {len(model.genres)} genres, "
        f"settings {model.settings}, {time.perf_counter() - start:.1f} s"
    )
    return EXIT_OK


def _evaluated(model: GenreModel, fs, args) -> GenreModel:
    """``model`` with the cross-validation of its recipe recorded (the code evaluate runs)."""
    from .evaluation.record import cross_validated_record

    if progress_enabled(args):
        print(f"evaluating {args.model} on {args.folds} folds ...", file=sys.stderr, flush=True)
    X, y = fs.to_xy()
    record = cross_validated_record(X, y, fs.groups, args.model, k=args.k, seed=args.seed, folds=args.folds, n_jobs=args.jobs)
    return GenreModel(replace(model.data, evaluation=record), model.estimator)


if __name__ == "__main__":
    raise SystemExit(entry(main))
