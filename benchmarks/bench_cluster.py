"""A local Dask cluster against the local worker pool, building the same clips.

Usage::

    python benchmarks/bench_cluster.py --data /path/to/gtzan [--clips 1000] [--workers 2] [--rounds 2]
    python benchmarks/bench_cluster.py                      # generated 30 s clips

The clips of ``--data`` are linked round-robin into a temporary collection of
``--clips`` files (symbolic links: no copy, the same bytes read by both
builds). Each round builds it once with the local pool (``--jobs N``) and once
on a ``LocalCluster`` of N single-threaded worker processes, in turns, so
both see the same disturbances from other processes; the best round of each
is reported. The cluster's start and stop (spawning its worker processes)
are timed apart from the build, and both ratios are given. The two feature
files must be identical, byte for byte.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_features import make_collection  # noqa: E402


def build(data_dir: Path, output: Path, *, jobs: int, cluster=None) -> float:
    """Seconds of one build (discovery, analysis, writing), its output in ``output``."""
    from knn_genre import store
    from knn_genre.pipeline.build import build_featureset
    from knn_genre.pipeline.discover import discover

    start = time.perf_counter()
    fs, _ = build_featureset(data_dir, discover(data_dir), n_jobs=jobs, cluster=cluster)
    store.save(fs, output)
    return time.perf_counter() - start


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a DATA_DIR/<genre>/*.wav collection (default: generated clips)")
    parser.add_argument("--clips", type=int, default=1000, help="files in the collection (default: 1000)")
    parser.add_argument("--workers", type=int, default=2, help="local pool jobs and cluster workers (default: 2)")
    parser.add_argument("--rounds", type=int, default=2, help="builds of each kind, taking turns (default: 2)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from knn_genre.pipeline.cluster import Cluster

    print(f"{os.cpu_count()} CPUs, load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}; "
          f"{args.clips} clips, {args.workers} processes, {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "clips"
        distinct = make_collection(data, args.data, args.clips, link=True)
        print(f"collection: {args.clips} links to {distinct} distinct clips")
        build(data, tmp / "warm.npz", jobs=args.workers)  # file cache and imports warm for both
        local_times, cluster_times, startups = [], [], []
        for _ in range(args.rounds):
            local_times.append(build(data, tmp / "local.npz", jobs=args.workers))
            start = time.perf_counter()
            with Cluster(f"local:{args.workers}") as cluster:
                started = time.perf_counter()
                cluster_times.append(build(data, tmp / "cluster.npz", jobs=args.workers, cluster=cluster))
                stopping = time.perf_counter()
            startups.append(started - start + time.perf_counter() - stopping)
        same = (tmp / "local.npz").read_bytes() == (tmp / "cluster.npz").read_bytes()
    local, on_cluster, startup = min(local_times), min(cluster_times), min(startups)
    rows = [
        (f"local pool, --jobs {args.workers} (best of {args.rounds})", f"{local:.2f} s", f"{args.clips / local:.0f} clips/s"),
        (f"LocalCluster of {args.workers} workers, build (best of {args.rounds})", f"{on_cluster:.2f} s",
         f"{args.clips / on_cluster:.0f} clips/s"),
        ("  its start and stop", f"{startup:.2f} s", ""),
        ("cluster / pool, build alone (target <= 1.3)", f"{on_cluster / local:.2f}", ""),
        ("cluster / pool, with start and stop", f"{(on_cluster + startup) / local:.2f}", ""),
        ("feature files identical", "yes" if same else "NO", ""),
    ]
    print("\n| measurement | time | rate |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
