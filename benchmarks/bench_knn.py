"""Speed and memory of KLKNNClassifier against the tutorial's per-pair loop.

The tutorial classifies a query by computing, for every training track, the
divergence in both directions with a fresh matrix inverse and determinant per
call, then sorting and voting in Python. KLKNNClassifier inverts each
Gaussian once and computes tiles of divergences as matrix products.

Usage::

    python benchmarks/bench_knn.py                      # 660 x 340, loop on 34 queries, 20000 x 20000
    python benchmarks/bench_knn.py --loop-queries 340   # time the whole loop (minutes)
    python benchmarks/bench_knn.py --large 0            # skip the large run

Every timing runs on one BLAS thread unless ``--blas-threads`` says otherwise,
and the matrix product the classifier needs is timed in the same run, taking
turns with fit+predict, so that the ratio of the two is fair on a busy machine.

Inputs are synthetic Gaussians at the scale of 13 MFCCs (mean c0 around -20,
variances from ~40 down to ~1), one cluster per genre, each track's
covariance a Wishart draw around its genre's.
"""

from __future__ import annotations

import argparse
import operator
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from knn_genre.features.gaussian import pack
from knn_genre.classifiers.knn import KLKNNClassifier

GENRES = 10


# -- inputs ------------------------------------------------------------------------------


def genre_models(rng: np.random.Generator, d: int, n_genres: int = GENRES):
    """Per-genre centre means (n_genres, d) and Cholesky factors of base covariances."""
    spread = 10.0 / (1.0 + np.arange(d))  # higher cepstra vary less
    centres = rng.normal(0.0, 1.0, (n_genres, d)) * spread
    centres[:, 0] -= 20.0  # c0: log energy, negative for audio in [-1, 1]
    std = np.geomspace(6.0, 1.0, d)
    chols = []
    for _ in range(n_genres):
        q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        base = (q * std) @ (q * std).T * 0.5 + np.diag(std**2) * 0.5
        chols.append(np.linalg.cholesky(base))
    return centres, np.stack(chols)


def synthetic_tracks(rng, n, d, models, *, dof=60, chunk=2000):
    """``n`` packed track Gaussians and their genre labels, generated in chunks to keep memory low."""
    centres, chols = models
    labels = np.arange(n) % len(centres)
    rows = []
    for start in range(0, n, chunk):
        lab = labels[start : start + chunk]
        m = len(lab)
        means = centres[lab] + rng.normal(0.0, 2.0, (m, d)) * (3.0 / (1.0 + np.arange(d)))
        z = chols[lab] @ rng.normal(size=(m, d, dof))
        covs = z @ z.transpose(0, 2, 1) / dof
        rows.append(pack(means, covs))
    return np.concatenate(rows), np.array([f"genre{g}" for g in labels])


# -- the tutorial's algorithm ----------------------------------------------------------------


def tutorial_distance(instance1, instance2, k):
    mm1, cm1 = instance1
    mm2, cm2 = instance2
    distance = np.trace(np.dot(np.linalg.inv(cm2), cm1))
    distance += np.dot(np.dot((mm2 - mm1).transpose(), np.linalg.inv(cm2)), mm2 - mm1)
    distance += np.log(np.linalg.det(cm2)) - np.log(np.linalg.det(cm1))
    distance -= k
    return distance


def tutorial_neighbors(training, labels, queries, k):
    """Per-pair loop, sort, and majority vote exactly as the tutorial does it.

    Returns the predictions and the indices of each query's k nearest
    training tracks, nearest first.
    """
    predictions, neighbors = [], []
    for instance in queries:
        distances = []
        for x in range(len(training)):
            dist = tutorial_distance(training[x], instance, k) + tutorial_distance(instance, training[x], k)
            distances.append((labels[x], dist, x))
        distances.sort(key=operator.itemgetter(1))
        votes = {}
        for label, _, _ in distances[:k]:
            votes[label] = votes.get(label, 0) + 1
        predictions.append(sorted(votes.items(), key=operator.itemgetter(1), reverse=True)[0][0])
        neighbors.append([x for _, _, x in distances[:k]])
    return np.array(predictions), np.array(neighbors)


def tutorial_predict(training, labels, queries, k):
    return tutorial_neighbors(training, labels, queries, k)[0]


def unpacked_pairs(X, d):
    iu = np.triu_indices(d)
    pairs = []
    for row in X:
        cov = np.zeros((d, d))
        cov[iu] = row[d:]
        cov.T[iu] = row[d:]
        pairs.append((row[:d], cov))
    return pairs


# -- measurements ------------------------------------------------------------------------------


def timings(fn, repeat):
    """Wall times of ``repeat`` calls (seconds), and the last result."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return np.array(times), result


def maxrss_bytes() -> int:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def fmt_seconds(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.0f} MiB"


def the_product(clf, Xq):
    """The one matrix product fit+predict needs: query left operand times reference right operand.

    Its operands are built outside the timing, so what is timed is the
    product alone: the floor of any algorithm that computes every divergence.
    """
    from knn_genre.classifiers.divergence import packed_gaussian_terms

    left = packed_gaussian_terms(Xq, origin=clf.origin_).left_operand()
    right = clf.reference_terms_.right_operand()
    return lambda: left @ right.T


def interleaved(fns, repeat):
    """Best wall time (s) of each function over ``repeat`` rounds that call them in turn.

    Taking turns exposes every function to the same disturbances from other
    processes; the best of many rounds is the least disturbed.
    """
    times = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - start)
    return [np.array(t) for t in times]


def compare_with_loop(args, rng, models, rows):
    d, k = args.dim, args.k
    Xr, yr = synthetic_tracks(rng, args.n_ref, d, models)
    Xq, _ = synthetic_tracks(rng, args.n_query, d, models)

    def fast():
        return KLKNNClassifier(k, block_size=args.block_size).fit(Xr, yr).predict(Xq)

    pred_fast = fast()  # warm up BLAS and imports
    product = the_product(KLKNNClassifier(k, block_size=args.block_size).fit(Xr, yr), Xq)
    fast_times, product_times = interleaved([fast, product], args.repeat)
    t_fast, t_product = fast_times.min(), product_times.min()
    print(
        f"KLKNNClassifier fit+predict {args.n_ref} refs x {args.n_query} queries: {fmt_seconds(t_fast)} "
        f"(best of {args.repeat}; median {fmt_seconds(np.median(fast_times))})"
    )
    width = 2 * d * (d + 1) // 2 + 2 * d + 2
    print(
        f"its matrix product alone, ({args.n_query} x {width}) @ ({width} x {args.n_ref}): {fmt_seconds(t_product)} "
        f"(best of {args.repeat}); fit+predict / product = {t_fast / t_product:.2f} (target <= 2)"
    )

    n_loop = min(args.loop_queries, args.n_query)
    training = unpacked_pairs(Xr, d)
    queries = unpacked_pairs(Xq[:n_loop], d)
    start = time.perf_counter()
    pred_loop = tutorial_predict(training, yr, queries, k)
    t_loop = time.perf_counter() - start
    t_loop_full = t_loop * args.n_query / n_loop
    extrapolated = n_loop < args.n_query
    print(f"tutorial loop on {n_loop} queries: {fmt_seconds(t_loop)}")
    if extrapolated:
        print(
            f"tutorial loop on all {args.n_query} queries: {fmt_seconds(t_loop_full)} "
            f"(EXTRAPOLATED linearly from {n_loop} queries)"
        )
    same = np.array_equal(pred_loop, pred_fast[:n_loop])
    n_diff = int(np.sum(pred_loop != pred_fast[:n_loop]))
    ratio = t_loop_full / t_fast
    print(f"predictions identical on the {n_loop} loop queries: {same} ({n_diff} differ)")
    print(f"speed-up: {ratio:,.0f}x (target >= 2000x)")
    rows.append((f"tutorial loop, {args.n_ref} x {n_loop} (measured)", fmt_seconds(t_loop)))
    if extrapolated:
        label = f"tutorial loop, {args.n_ref} x {args.n_query} (extrapolated from {n_loop} queries)"
        rows.append((label, fmt_seconds(t_loop_full)))
    rows += [
        (
            f"KLKNNClassifier(k={k}) fit+predict, {args.n_ref} x {args.n_query} (best of {args.repeat})",
            fmt_seconds(t_fast),
        ),
        (f"  its matrix product alone (best of {args.repeat})", fmt_seconds(t_product)),
        ("  fit+predict / product (target <= 2)", f"{t_fast / t_product:.2f}"),
        ("speed-up (target >= 2000x)", f"{ratio:,.0f}x"),
        (f"same predictions on the {n_loop} loop queries", "yes" if same else f"NO ({n_diff} differ)"),
    ]
    return same


def compare_on_features(args, rows):
    """Neighbours and predictions of both algorithms on a real feature file, seeded 66/34 split."""
    from knn_genre import store
    from knn_genre.evaluation.splits import random_split

    fs = store.load(args.features)
    X, y = fs.to_xy()
    (train, test), = random_split(y, train_fraction=0.66, seed=args.seed)[0]
    training = unpacked_pairs(X[train], fs.dim)
    queries = unpacked_pairs(X[test], fs.dim)
    start = time.perf_counter()
    pred_loop, nn_loop = tutorial_neighbors(training, y[train], queries, args.k)
    t_loop = time.perf_counter() - start
    model = KLKNNClassifier(args.k).fit(X[train], y[train])
    start = time.perf_counter()
    nn_fast = model.kneighbors(X[test], return_distance=False)
    pred_fast = model.predict(X[test])
    t_fast = time.perf_counter() - start
    same_nn = np.array_equal(nn_loop, nn_fast)
    same_pred = np.array_equal(pred_loop, pred_fast)
    print(
        f"{args.features}: {len(train)} training x {len(test)} query tracks (66/34, seed {args.seed}); "
        f"same {args.k} neighbours in the same order: {same_nn}; same predictions: {same_pred}; "
        f"tutorial loop {fmt_seconds(t_loop)}, KLKNNClassifier {fmt_seconds(t_fast)}"
    )
    rows += [
        (f"real features {args.features}, {len(train)} x {len(test)}: same neighbours as the tutorial", "yes" if same_nn else "NO"),
        ("  same predictions as the tutorial", "yes" if same_pred else "NO"),
    ]
    return same_nn and same_pred


def large_run(args, rng, models, rows):
    n, d, k = args.large, args.dim, args.k
    Xr, yr = synthetic_tracks(rng, n, d, models)
    Xq, _ = synthetic_tracks(rng, n, d, models)
    full_matrix = n * n * 8
    rss_before = maxrss_bytes()
    tracemalloc.start()
    try:
        start = time.perf_counter()
        KLKNNClassifier(k, block_size=args.block_size).fit(Xr, yr).predict(Xq)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = maxrss_bytes() - rss_before
    print(
        f"KLKNNClassifier fit+predict {n} refs x {n} queries: {fmt_seconds(elapsed)}; "
        f"peak numpy allocations (tracemalloc) {mib(peak)}; max RSS grew by {mib(rss_growth)} "
        f"(to {mib(maxrss_bytes())}); a full {n} x {n} float64 matrix would be {mib(full_matrix)}"
    )
    rows += [
        (f"KLKNNClassifier(k={k}) fit+predict, {n} x {n}", fmt_seconds(elapsed)),
        ("  peak Python-level allocations, tracemalloc (target < 1 GiB)", mib(peak)),
        ("  growth of process max RSS (getrusage)", mib(rss_growth)),
        (f"  (a dense {n} x {n} float64 matrix)", mib(full_matrix)),
    ]
    return peak < 2**30


def markdown_table(rows) -> str:
    lines = ["| measurement | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-ref", type=int, default=660, help="training tracks (default: 660)")
    parser.add_argument("--n-query", type=int, default=340, help="query tracks (default: 340)")
    parser.add_argument("--dim", type=int, default=13, help="MFCC dimension d (default: 13)")
    parser.add_argument("--k", type=int, default=5, help="neighbours (default: 5)")
    parser.add_argument(
        "--loop-queries",
        type=int,
        default=34,
        help="queries the slow tutorial loop is timed on; its time is extrapolated linearly "
        "to --n-query (default: 34)",
    )
    parser.add_argument(
        "--large",
        type=int,
        default=20000,
        help="queries and references of the large run, 0 to skip (default: 20000)",
    )
    parser.add_argument("--block-size", type=int, default=1024, help="tile side (default: 1024)")
    parser.add_argument("--repeat", type=int, default=50, help="repeats of the fast timings (default: 50)")
    parser.add_argument(
        "--blas-threads", type=int, default=1,
        help="BLAS threads of every measurement (default: 1, like the tutorial loop, which cannot use more; "
        "on a shared machine more threads also wait for each other)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--features", metavar="FILE",
        help="also compare neighbours and predictions with the tutorial's loop on this feature file "
        "(from build_features), on a seeded 66/34 split",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("n_ref", "n_query", "dim", "k", "loop_queries", "block_size", "repeat", "blas_threads"):
        if getattr(args, name) < 1:
            print(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= 1", file=sys.stderr)
            return 2
    if args.large < 0 or (0 < args.large < args.k):
        print(f"--large={args.large} must be 0 (skip) or >= --k={args.k}", file=sys.stderr)
        return 2
    print(
        f"numpy {np.__version__}, {os.cpu_count()} CPUs, {args.blas_threads} BLAS thread(s), "
        f"d={args.dim}, k={args.k}, seed={args.seed}; load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        return _run(args)


def _run(args) -> int:
    rng = np.random.default_rng(args.seed)
    models = genre_models(rng, args.dim)
    rows = []
    ok = compare_with_loop(args, rng, models, rows)
    if args.features:
        ok = compare_on_features(args, rows) and ok
    if args.large:
        ok = large_run(args, rng, models, rows) and ok
    print()
    print(markdown_table(rows))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
