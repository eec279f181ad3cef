"""k-NN queries against a library of a million reference Gaussians, in bounded memory.

Usage::

    python benchmarks/bench_library_knn.py                         # 1,000,000 references, 1000 queries
    python benchmarks/bench_library_knn.py --refs 200000 --shard 8192

The references (synthetic, at the scale of 13 MFCCs, as in bench_knn.py) are
written once to a packed ``.npy`` file in a temporary folder. A query batch
then reads them shard by shard into one reused buffer, computes the shard's
divergence terms and its k nearest for every query, and merges them into the
running k nearest (:func:`knn_genre.classifiers.divergence.kneighbors_sharded`):
only one shard is in memory at a time, however large the library. The same
queries against shards of another size must give the same neighbours.
Everything runs on ``--blas-threads`` BLAS threads (default 1).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_knn import genre_models, synthetic_tracks  # noqa: E402

from knn_genre.classifiers.divergence import kneighbors_sharded, packed_gaussian_terms  # noqa: E402
from knn_genre.pipeline.workers import keep_freed_memory  # noqa: E402


def maxrss() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def write_library(path: Path, n: int, models, seed: int, chunk: int = 65536) -> np.ndarray:
    """``n`` packed references in ``path`` (.npy), written chunk by chunk; the mean of their means."""
    d = models[0].shape[1]
    width = d + d * (d + 1) // 2
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n, width))
    total = np.zeros(d)
    for start in range(0, n, chunk):
        rng = np.random.default_rng([seed, start])
        X, _ = synthetic_tracks(rng, min(chunk, n - start), d, models)
        out[start : start + len(X)] = X
        total += X[:, :d].sum(axis=0)
    out.flush()
    del out
    return total / n


def shards_of(path: Path, shard: int, origin, buffer: np.ndarray):
    """``(offset, terms)`` of each shard of the library file, read into ``buffer`` (no memory map)."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, _ = read_header(fh)
        start_of_data = fh.tell()
        n, width = shape
        for offset in range(0, n, shard):
            rows = min(shard, n - offset)
            fh.seek(start_of_data + offset * width * 8)
            view = buffer[:rows]
            fh.readinto(memoryview(view).cast("B"))
            yield offset, packed_gaussian_terms(view, origin=origin)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", type=int, default=1_000_000, help="reference Gaussians (default: 1,000,000)")
    parser.add_argument("--queries", type=int, default=1000, help="queries (default: 1000)")
    parser.add_argument("--shard", type=int, default=16384, help="references per shard (default: 16384)")
    parser.add_argument("--k", type=int, default=5, help="neighbours (default: 5)")
    parser.add_argument("--dim", type=int, default=13, help="MFCC dimension (default: 13)")
    parser.add_argument("--blas-threads", type=int, default=1, help="BLAS threads (default: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folder", type=Path, help="where to write the library file (default: a temporary folder)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Each shard allocates the same tens of MB again: keep them mapped rather
    # than fault fresh pages in every time (a third of the time otherwise).
    keep_freed_memory()
    print(f"{os.cpu_count()} CPUs, {args.blas_threads} BLAS thread(s), load average "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}; {args.refs:,} references, "
          f"{args.queries} queries, shards of {args.shard}, k={args.k}")
    rng = np.random.default_rng(args.seed)
    models = genre_models(rng, args.dim)
    if args.folder is not None:
        args.folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp, threadpool_limits(limits=args.blas_threads, user_api="blas"):
        path = Path(tmp) / "library.npy"
        start = time.perf_counter()
        # In a child process, so that this one's peak memory is the queries' alone.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as child:
            origin = child.submit(write_library, path, args.refs, models, args.seed).result()
        print(f"library written: {path.stat().st_size / 2**20:,.0f} MiB in {time.perf_counter() - start:.1f} s")
        Xq, _ = synthetic_tracks(np.random.default_rng([args.seed, 2**32 - 1]), args.queries, args.dim, models)
        width = Xq.shape[1]
        rss_before = maxrss()
        tracemalloc.start()
        start = time.perf_counter()
        query = packed_gaussian_terms(Xq, origin=origin)
        buffer = np.empty((args.shard, width))
        dist, ind = kneighbors_sharded(query, shards_of(path, args.shard, origin, buffer), args.k)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = maxrss()
        # The same queries (a few) with shards of another size: the same neighbours.
        few = packed_gaussian_terms(Xq[:10], origin=origin)
        other = np.empty((args.shard // 2 + 1, width))
        check = kneighbors_sharded(few, shards_of(path, args.shard // 2 + 1, origin, other), args.k)
        same = np.array_equal(check[1], ind[:10])
    per_1000 = elapsed * 1000 / args.queries
    rows = [
        (f"{args.queries} queries against {args.refs:,} references, k={args.k}", f"{elapsed:.1f} s"),
        ("  seconds per 1000 queries", f"{per_1000:.1f} s"),
        ("  peak Python-level allocations (tracemalloc)", f"{peak / 2**20:.0f} MiB"),
        ("  process peak resident memory (getrusage; target < 2 GiB)", f"{rss / 2**20:.0f} MiB"),
        ("  growth of the peak during the queries", f"{(rss - rss_before) / 2**20:.0f} MiB"),
        (f"  same neighbours with shards of {args.shard // 2 + 1}", "yes" if same else "NO"),
    ]
    print("\n| measurement | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0 if same and rss < 2 * 2**30 else 1


if __name__ == "__main__":
    raise SystemExit(main())
