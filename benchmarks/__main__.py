"""``python -m benchmarks``: accuracy of every model against the dummy baseline, as tables.

Usage::

    python -m benchmarks                                   # generated demo collection
    python -m benchmarks --features data/features.npz      # a feature file (Gaussians)
    python -m benchmarks --features-csv features_30_sec.csv
    python -m benchmarks --features both.npz --models svm,svm:table,klsvm,fusion,dummy \
        --genres blues,classical,country,jazz,metal,rock --folds 5 --repeats 3
                                                           # a file of both families (build_features --families gaussian,table)
    python -m benchmarks --speed                           # also the speed benchmarks

Every model runs on the same seeded outer folds (nested cross-validation for
the grid-searched SVMs), through :func:`knn_genre.evaluation.scoring.evaluate_models`,
with the registry's models, exactly as ``python -m knn_genre.evaluate`` does. The table gives accuracy
as mean ± std over the outer folds, macro-F1 on the pooled out-of-fold
predictions, fit and predict seconds per fold, and the difference to the
better dummy baseline in accuracy points, paired fold by fold (mean ± std
of the per-fold differences). It is printed as Markdown and written to
``benchmarks/results/<name>.md`` and ``<name>.csv``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from knn_genre.cli import add_progress_options, progress_enabled

RESULTS = Path(__file__).resolve().parent / "results"
ACCURACY_MODELS = "knn,knn-mp,svm,klsvm,dummy"
TABLE_MODELS = "knn,svm,dummy"
DEMO = "demo collection (5 genres x 20 clips x 4 s)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--features", metavar="FILE", help="feature file from build_features")
    source.add_argument("--features-csv", metavar="FILE", help="feature table (CSV with a 'label' column)")
    parser.add_argument(
        "--models",
        help=f"models to compare (default: {ACCURACY_MODELS}; with --features-csv: {TABLE_MODELS})",
    )
    parser.add_argument("--folds", type=int, default=10, help="outer folds (default: %(default)s; fewer if a genre is smaller)")
    parser.add_argument("--repeats", type=int, default=1, help="repetitions of the cross-validation (default: %(default)s)")
    parser.add_argument("--family", help="feature family of a file that holds several (as evaluate --family)")
    parser.add_argument("--genres", help="comma-separated genres to keep (as evaluate --genres), e.g. the well-populated ones")
    parser.add_argument("--k", type=int, default=5, help="neighbours of the KNNs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of all folds and baselines (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=-1, help="(model, fold) fits in parallel, as evaluate --jobs (default: all cores)")
    parser.add_argument("--name", help="results file name (default: the input file's stem, or 'demo')")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)")
    parser.add_argument(
        "--speed", action="store_true",
        help="also run benchmarks/bench_knn.py, bench_features.py and bench_table.py (needs librosa) with their defaults (minutes)",
    )
    parser.add_argument("--no-accuracy", action="store_true", help="skip the accuracy table (with --speed)")
    add_progress_options(parser)
    return parser


def demo_features(folder: Path, seed: int) -> Path:
    """Generate the demo collection (as ``make demo`` does) and build its feature file."""
    from knn_genre import build_features
    from knn_genre.audio.synth import write_collection

    clips = folder / "demo"
    write_collection(clips, n_per_genre=20, seconds=4.0, seed=seed)
    out = folder / "demo-features.npz"
    status = build_features.main([str(clips), "-o", str(out), "-q"])
    if status != 0:
        raise SystemExit(f"building the demo features failed with exit status {status}")
    return out


def evaluate_argv(args, features: str | None) -> list[str]:
    """The ``python -m knn_genre.evaluate`` options that reproduce this benchmark."""
    argv = ["--features-csv", args.features_csv] if args.features_csv else ["--features", features]
    argv += ["--models", args.models or (TABLE_MODELS if args.features_csv else ACCURACY_MODELS)]
    argv += ["--folds", str(args.folds), "--repeats", str(args.repeats), "--k", str(args.k), "--seed", str(args.seed)]
    if getattr(args, "family", None):
        argv += ["--family", args.family]
    if getattr(args, "genres", None):
        argv += ["--genres", args.genres]
    return argv


def run_accuracy(args, features: str | None):
    """Evaluate as the evaluate command does: (protocol, results, header line, hubness or None)."""
    from knn_genre import evaluate
    from knn_genre.classifiers.cache import DivergenceCache
    from knn_genre.cli.progress import Progress
    from knn_genre.evaluation.scoring import evaluate_models

    eargs = evaluate.build_parser().parse_args(evaluate_argv(args, features))
    table = eargs.features_csv is not None
    names = evaluate.parse_models(eargs.models, table=table, family=eargs.family)
    X, y, paths, groups, header = evaluate.keep_genres(evaluate.load_data(eargs), eargs.genres)
    splits, protocol = evaluate.make_splits(eargs, y, paths, groups)
    cache = DivergenceCache(X["gaussian"]) if "gaussian" in X else None
    models = evaluate.make_models(
        names, k=eargs.k, seed=eargs.seed, table=table, family=eargs.family, available=tuple(X),
        gaussian_columns=X["gaussian"].shape[1] if "gaussian" in X else None, cache=cache,
    )
    recorder = evaluate.FoldRecorder()
    progress = Progress(len(models) * len(splits), "folds") if progress_enabled(args) else None
    try:
        results = evaluate_models(
            models, X, y, splits, groups=groups, on_fold=recorder, n_jobs=args.jobs,
            on_progress=(lambda done, total, label: progress.update(done, label)) if progress else None,
        )
    finally:
        if progress:
            progress.close()
    results = recorder.attach(results)
    hubness = hubness_of(X["gaussian"], y, eargs.k) if "gaussian" in X else None
    return protocol, results, header, hubness


def hubness_of(X, y, k: int) -> dict:
    """Skewness of the k-occurrence on the whole collection, plain sKL and mutual proximity."""
    from knn_genre.classifiers.hubness import hubness_skewness
    from knn_genre.classifiers.knn import KLKNNClassifier

    k = min(k, len(X) - 1)
    skewness = {"k": k}
    for hubness in (None, "mutual_proximity"):
        neighbours = KLKNNClassifier(k, hubness=hubness).fit(X, y).kneighbors(return_distance=False)
        skewness[hubness] = hubness_skewness(neighbours, len(X))
    return skewness


def dummy_margin(result, dummies) -> tuple[float, float]:
    """Accuracy points above the better dummy, paired per fold: (mean, std)."""
    best = max(dummies, key=lambda r: r.accuracy_mean)
    diff = 100.0 * (np.asarray(result.accuracy_per_fold) - np.asarray(best.accuracy_per_fold))
    return float(diff.mean()), float(diff.std())


def rows_of(results) -> list[dict]:
    dummies = [r for r in results if r.name.startswith("dummy")]
    rows = []
    for r in results:
        margin = dummy_margin(r, dummies) if dummies else (float("nan"), float("nan"))
        rows.append(
            {
                "model": r.name,
                "accuracy_mean": r.accuracy_mean,
                "accuracy_std": r.accuracy_std,
                "macro_f1": r.macro_f1,
                "fit_seconds": r.fit_seconds,
                "predict_seconds": r.predict_seconds,
                "vs_dummy_points_mean": margin[0],
                "vs_dummy_points_std": margin[1],
                "splits": len(r.accuracy_per_fold),
            }
        )
        if "track_accuracy_mean" in r.extra:  # rows are segments of tracks
            rows[-1]["track_accuracy_mean"] = r.extra["track_accuracy_mean"]
            rows[-1]["track_accuracy_std"] = r.extra["track_accuracy_std"]
    return rows


def markdown(title, protocol, results, rows, command, elapsed, hubness=None) -> str:
    from knn_genre.evaluation.report import group_folds

    best_dummy = max((r for r in results if r.name.startswith("dummy")), key=lambda r: r.accuracy_mean, default=None)
    lines = [f"## {title}", "", f"Protocol: {protocol.describe()}."]
    lines += [f"Note: {n}." for n in protocol.notes]
    segments = bool(rows) and "track_accuracy_mean" in rows[0]
    lines += [
        "",
        "| model | accuracy (mean ± std) | " + ("track accuracy | " if segments else "") + "macro-F1 | fit s / fold | predict s / fold | vs dummy (points) |",
        "|---|---:|" + ("---:|" if segments else "") + "---:|---:|---:|---:|",
    ]
    for row in rows:
        margin = "—" if row["model"].startswith("dummy") else f"{row['vs_dummy_points_mean']:+.1f} ± {row['vs_dummy_points_std']:.1f}"
        track = f"{row['track_accuracy_mean']:.3f} ± {row['track_accuracy_std']:.3f} | " if segments else ""
        lines.append(
            f"| {row['model']} | {row['accuracy_mean']:.3f} ± {row['accuracy_std']:.3f} | {track}{row['macro_f1']:.3f} "
            f"| {row['fit_seconds']:.3f} | {row['predict_seconds']:.3f} | {margin} |"
        )
    if segments:
        lines += ["", "Rows are segments: accuracy, macro-F1 and \"vs dummy\" count segments; track accuracy decides each test track from its segments as predict decides a file."]
    lines.append("")
    if best_dummy is not None:
        lines.append(
            f"\"vs dummy\": accuracy minus that of {best_dummy.name} (the better baseline), per outer fold, "
            "mean ± std over folds."
        )
    for r in results:
        if r.extra.get("chosen_params"):
            chosen = "; ".join(f"{setting} ({which})" for setting, which in group_folds(r.extra["chosen_params"]))
            lines.append(f"{r.name}, chosen by the inner search: {chosen}.")
        if r.extra.get("kernel_negative_mass"):
            mass = 100 * np.asarray(r.extra["kernel_negative_mass"])
            lines.append(
                f"{r.name}, negative share of the training-kernel spectrum clipped: "
                f"{mass.mean():.1f} % on average (max {mass.max():.1f} %)."
            )
    if hubness:
        lines.append(
            f"Hubness, skewness of the {hubness['k']}-occurrence over the whole collection (0: no hubs): "
            f"symmetric KL {hubness[None]:.2f}, mutual proximity {hubness['mutual_proximity']:.2f}."
        )
    lines += [
        "",
        f"Reproduce: `{command}` ({elapsed:.0f} s on {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"scikit-learn {_version('sklearn')}, numpy {np.__version__}).",
    ]
    return "\n".join(lines)


def _version(module: str) -> str:
    return getattr(__import__(module), "__version__", "?")


def write_results(out: Path, name: str, md: str, rows: list[dict]) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md_path, csv_path = out / f"{name}.md", out / f"{name}.csv"
    md_path.write_text(md + "\n", encoding="utf-8")
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return md_path, csv_path


def run_speed(out: Path) -> int:
    """Both speed benchmarks with their defaults; their output goes to ``speed.md`` too."""
    from . import bench_features, bench_knn, bench_table

    buffer = io.StringIO()
    status = 0
    benches = (
        ("KL-KNN speed and memory (bench_knn.py)", bench_knn),
        ("Feature extraction speed (bench_features.py)", bench_features),
        ("Table features against librosa (bench_table.py)", bench_table),
    )
    for title, module in benches:
        print(f"\n## {title}\n", flush=True)
        buffer.write(f"## {title}\n\n")
        capture = io.StringIO()
        with contextlib.redirect_stdout(_Tee(sys.stdout, capture)):
            status = max(status, module.main([]))
        buffer.write(capture.getvalue() + "\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.md").write_text(buffer.getvalue(), encoding="utf-8")
    print(f"\nwrote {out / 'speed.md'}")
    return status


class _Tee(io.TextIOBase):
    """Write to several streams: print the speed benchmarks live and keep a copy."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self):
        for stream in self.streams:
            stream.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from knn_genre.errors import KnnGenreError

    status = 0
    if not args.no_accuracy:
        with tempfile.TemporaryDirectory(prefix="knn_genre_bench_") as tmp:
            start = time.perf_counter()
            features = args.features
            if not args.features and not args.features_csv:
                print(f"No --features or --features-csv: generating the {DEMO}", flush=True)
                features = str(demo_features(Path(tmp), args.seed))
            source = args.features_csv or args.features
            name = args.name or (Path(source).stem if source else "demo")
            try:
                protocol, results, header, hubness = run_accuracy(args, features)
            except KnnGenreError as exc:
                print(f"python -m benchmarks: error: {exc}", file=sys.stderr)
                return 2
            elapsed = time.perf_counter() - start
        options = evaluate_argv(args, args.features)
        if not source:  # the demo features are made again by the command itself
            options = options[2:]
        command = " ".join(["python -m benchmarks", *options])
        title = "Accuracy: " + (header.removeprefix("Features: ") if source else f"generated {DEMO}")
        rows = rows_of(results)
        md = markdown(title, protocol, results, rows, command, elapsed, hubness)
        md_path, csv_path = write_results(args.out, name, md, rows)
        print()
        print(md)
        print(f"\nwrote {md_path} and {csv_path}")
    if args.speed:
        status = max(status, run_speed(args.out))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
