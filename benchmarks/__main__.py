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
the grid-searched models), through :func:`knn_genre.evaluation.scoring.evaluate_models`,
with the registry's models, exactly as ``python -m knn_genre.evaluate`` does. The table gives accuracy
as mean ± std over the outer folds, macro-F1 on the pooled out-of-fold
predictions, fit and predict seconds per fold, and the difference to the
better dummy baseline in accuracy points, paired fold by fold (mean ± std
of the per-fold differences). It is printed as Markdown and written to
``benchmarks/results/<name>.md`` and ``<name>.csv``.

Besides the random folds, the models are scored under GTZAN's published
splits (``--protocols``; a split that matches none of the tracks is left
out with a note), and a last table puts every model's accuracy under each
protocol side by side: random folds over GTZAN's repeated artists score
higher than the artist-filtered and fault-filtered splits.
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
ACCURACY_MODELS = "knn,knn-mp,svm,klsvm,logreg,rf,hgb,mlp,gnb,vote,dummy"
TABLE_MODELS = "knn,svm,logreg,rf,hgb,mlp,gnb,vote,dummy"
PROTOCOLS = "folds,gtzan-fault-filtered,gtzan-artist-3fold"
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
    parser.add_argument(
        "--protocols", default=PROTOCOLS,
        help="comma-separated protocols: 'folds' (random stratified folds) and GTZAN's published splits "
        "(default: %(default)s)",
    )
    parser.add_argument("--min-tracks", type=int, default=None, metavar="N", help="only the genres with at least N tracks")
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


def evaluate_argv(args, features: str | None, protocol: str = "folds") -> list[str]:
    """The ``python -m knn_genre.evaluate`` options that reproduce this benchmark under ``protocol``."""
    argv = ["--features-csv", args.features_csv] if args.features_csv else ["--features", features]
    argv += ["--models", args.models or (TABLE_MODELS if args.features_csv else ACCURACY_MODELS)]
    if protocol == "folds":
        argv += ["--folds", str(args.folds), "--repeats", str(args.repeats)]
    else:
        argv += ["--split", protocol]
    argv += ["--k", str(args.k), "--seed", str(args.seed)]
    if getattr(args, "family", None):
        argv += ["--family", args.family]
    if getattr(args, "genres", None):
        argv += ["--genres", args.genres]
    if getattr(args, "min_tracks", None):
        argv += ["--min-tracks", str(args.min_tracks)]
    return argv


def run_accuracy(args, features: str | None, protocol: str = "folds"):
    """Evaluate as the evaluate command does: (protocol, results, header line, hubness or None)."""
    from knn_genre import evaluate
    from knn_genre.classifiers.cache import DivergenceCache
    from knn_genre.cli.progress import Progress
    from knn_genre.evaluation.scoring import compare_models, evaluate_models

    eargs = evaluate.build_parser().parse_args(evaluate_argv(args, features, protocol))
    table = eargs.features_csv is not None
    names = evaluate.parse_models(eargs.models, table=table, family=eargs.family)
    X, y, paths, groups, header = evaluate.keep_populated_genres(
        evaluate.keep_genres(evaluate.load_data(eargs), eargs.genres), eargs.min_tracks
    )
    X, y, paths, groups, splits, described, *_ = evaluate.prepare(eargs, X, y, paths, groups)
    cache = DivergenceCache(X["gaussian"]) if "gaussian" in X else None
    models = evaluate.make_models(
        names, k=eargs.k, seed=eargs.seed, table=table, family=eargs.family, available=tuple(X),
        gaussian_columns=X["gaussian"].shape[1] if "gaussian" in X else None, cache=cache,
    )
    recorder = evaluate.FoldRecorder()
    progress = Progress(len(models) * len(splits), "folds") if progress_enabled(args) else None
    chance = evaluate.chance_strategies(models)
    try:
        results = evaluate_models(
            models, X, y, splits, groups=groups, on_fold=recorder, chance=chance, n_jobs=args.jobs,
            on_progress=(lambda done, total, label: progress.update(done, label)) if progress else None,
        )
    finally:
        if progress:
            progress.close()
    results = compare_models(recorder.attach(results), baselines=evaluate.baseline_names(models))
    hubness = hubness_of(X["gaussian"], y, eargs.k) if "gaussian" in X and protocol == "folds" else None
    return described, results, header, hubness


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


def rows_of(results) -> list[dict]:
    rows = []
    for r in results:
        margin = r.extra.get("vs_best_dummy") or {"points_mean": float("nan"), "points_std": float("nan")}
        rows.append(
            {
                "model": r.name,
                "accuracy_mean": r.accuracy_mean,
                "accuracy_std": r.accuracy_std,
                "balanced_accuracy": r.balanced_accuracy,
                "macro_f1": r.macro_f1,
                "fit_seconds": r.fit_seconds,
                "predict_seconds": r.predict_seconds,
                "vs_dummy_points_mean": margin["points_mean"],
                "vs_dummy_points_std": margin["points_std"],
                "splits": len(r.accuracy_per_fold),
                "tested": r.n_tested,
            }
        )
        if "segment_accuracy_mean" in r.extra:  # rows are segments of tracks
            rows[-1]["segment_accuracy_mean"] = r.extra["segment_accuracy_mean"]
            rows[-1]["segment_accuracy_std"] = r.extra["segment_accuracy_std"]
    return rows


def side_by_side(runs) -> str:
    """Markdown: each model's accuracy under each protocol (mean ± std; one split: its accuracy and the tracks tested)."""
    names = list(dict.fromkeys(r.name for _, (_, results) in runs for r in results))
    header = "| model | " + " | ".join(title for title, _ in runs) + " |"
    lines = [header, "|---|" + "---:|" * len(runs)]
    for name in names:
        cells = []
        for _, (protocol, results) in runs:
            r = next((r for r in results if r.name == name), None)
            if r is None:
                cells.append("—")
            elif len(r.accuracy_per_fold) == 1:
                cells.append(f"{r.accuracy_mean:.3f} (single split)")
            else:
                cells.append(f"{r.accuracy_mean:.3f} ± {r.accuracy_std:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    tested = ", ".join(f"{title}: {results[0].n_tested} tests" for title, (_, results) in runs if results)
    lines += ["", f"Tracks tested: {tested}."]
    return "\n".join(lines)


def markdown(title, protocol, results, rows, command, elapsed, hubness=None) -> str:
    from knn_genre.evaluation.report import group_folds

    best_dummy = next((r.extra["vs_best_dummy"]["model"] for r in results if "vs_best_dummy" in r.extra), None)
    lines = [f"## {title}", "", f"Protocol: {protocol.describe()}."]
    lines += [f"Note: {n}." for n in protocol.notes]
    segments = bool(rows) and "segment_accuracy_mean" in rows[0]
    lines += [
        "",
        "| model | accuracy (mean ± std) | " + ("segment accuracy | " if segments else "") + "macro-F1 | fit s / fold | predict s / fold | vs dummy (points) |",
        "|---|---:|" + ("---:|" if segments else "") + "---:|---:|---:|---:|",
    ]
    for row, r in zip(rows, results):
        single = row["splits"] == 1

        def spread(mean, std, fmt=".3f", std_fmt=".3f"):
            return f"{mean:{fmt}}" + ("" if single else f" ± {std:{std_fmt}}")

        chance = r.extra.get("chance_level")
        if chance is not None:
            margin = f"— (chance {chance:.3f})"
        else:
            margin = spread(row["vs_dummy_points_mean"], row["vs_dummy_points_std"], "+.1f", ".1f")
        segment = spread(row["segment_accuracy_mean"], row["segment_accuracy_std"]) + " | " if segments else ""
        lines.append(
            f"| {row['model']} | {spread(row['accuracy_mean'], row['accuracy_std'])} | {segment}{row['macro_f1']:.3f} "
            f"| {row['fit_seconds']:.3f} | {row['predict_seconds']:.3f} | {margin} |"
        )
    if rows and rows[0]["splits"] == 1:
        lines += ["", f"A single split: no spread; {rows[0]['tested']} tracks tested."]
    if segments:
        lines += ["", "Rows are segments: accuracy, macro-F1 and \"vs dummy\" decide each test track from its segments as predict decides a file; segment accuracy counts single segments."]
    lines.append("")
    if best_dummy is not None:
        lines.append(
            f"\"vs dummy\": accuracy minus that of {best_dummy} (the better baseline), per outer fold, "
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
        writer = csv.DictWriter(fh, fieldnames=list(dict.fromkeys(key for row in rows for key in row)), restval="")
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


def _protocol_title(protocol: str, args) -> str:
    return f"random {args.folds}-fold" + (f" x {args.repeats}" if args.repeats > 1 else "") if protocol == "folds" else protocol


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from knn_genre.errors import KnnGenreError
    from knn_genre.evaluation.splits import GTZAN_SPLITS

    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    unknown = [p for p in protocols if p != "folds" and p not in GTZAN_SPLITS]
    if unknown or not protocols:
        print(f"python -m benchmarks: error: --protocols: unknown {', '.join(unknown) or 'empty list'}; "
              f"choose from folds, {', '.join(GTZAN_SPLITS)}", file=sys.stderr)
        return 2
    status = 0
    if not args.no_accuracy:
        with tempfile.TemporaryDirectory(prefix="knn_genre_bench_") as tmp:
            features = args.features
            if not args.features and not args.features_csv:
                print(f"No --features or --features-csv: generating the {DEMO}", flush=True)
                features = str(demo_features(Path(tmp), args.seed))
            source = args.features_csv or args.features
            name = args.name or (Path(source).stem if source else "demo")
            sections, runs, all_rows, skipped = [], [], [], []
            for protocol in protocols:
                start = time.perf_counter()
                try:
                    described, results, header, hubness = run_accuracy(args, features, protocol)
                except KnnGenreError as exc:
                    if protocol == "folds":
                        print(f"python -m benchmarks: error: {exc}", file=sys.stderr)
                        return 2
                    skipped.append(f"{protocol}: {exc}")  # e.g. tracks without GTZAN names
                    continue
                elapsed = time.perf_counter() - start
                # The benchmark's own options: evaluate's under "folds" (the benchmark has --protocols,
                # not evaluate's --split, which the line adds below).
                options = evaluate_argv(args, args.features, protocol="folds")
                if not source:  # the demo features are made again by the command itself
                    options = options[2:]
                command = " ".join(["python -m benchmarks", *options, "--protocols", protocol])
                title = f"Accuracy, {_protocol_title(protocol, args)}: " + (
                    header.removeprefix("Features: ") if source else f"generated {DEMO}"
                )
                rows = rows_of(results)
                sections.append(markdown(title, described, results, rows, command, elapsed, hubness))
                runs.append((_protocol_title(protocol, args), (described, results)))
                all_rows += [{"protocol": protocol, **row} for row in rows]
        parts = list(sections)
        if len(runs) > 1 or skipped:
            summary = ["## Accuracy under each protocol, side by side", "", side_by_side(runs)]
            summary += [f"Left out: {s}." for s in skipped]
            parts.append("\n".join(summary))
        md = "\n\n".join(parts)
        md_path, csv_path = write_results(args.out, name, md, all_rows)
        print()
        print(md)
        print(f"\nwrote {md_path} and {csv_path}")
    if args.speed:
        status = max(status, run_speed(args.out))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
