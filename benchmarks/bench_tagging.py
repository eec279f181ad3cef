"""Tagging a library of 10,000 files: rate, and memory that does not grow with the files.

Usage::

    python benchmarks/bench_tagging.py --data /path/to/gtzan [--files 10000] [--jobs 2]
    python benchmarks/bench_tagging.py --scheduler local:2   # on a local Dask cluster
    python benchmarks/bench_tagging.py                       # generated 30 s clips

A k-NN model is trained on the clips of ``--data`` (or generated ones);
``--files`` symbolic links to them, in nested folders, are then tagged into a
CSV by :func:`knn_genre.pipeline.tagging.tag_library` (what ``predict
FOLDER --output`` runs), twice: on a quarter of the library, then on all of
it. The main process's peak allocations (tracemalloc) must be about the same
for both (they are bounded by the chunk of files in flight, 2048, not by the
library); its rows are checked: one per file, none twice.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_features import make_collection  # noqa: E402


def library_of(dest: Path, sources: list[Path], files: int) -> None:
    """``files`` links to ``sources``, 100 per folder, two levels deep."""
    for i in range(files):
        target = dest / f"disc{i // 1000:03d}" / f"cd{i // 100 % 10}" / f"{i:06d}-{sources[i % len(sources)].name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(sources[i % len(sources)], target)


def tag(model: Path, folder: Path, output: Path, jobs: int, cluster) -> tuple[float, int, int]:
    """Seconds, peak traced bytes of this process, and rows written."""
    from knn_genre.pipeline.tagging import TagOutput, count_audio_files, tag_library

    tracemalloc.start()
    start = time.perf_counter()
    with TagOutput(output) as out:
        total = count_audio_files([folder], skip=out.has)
        report = tag_library(model, [folder], out, n_jobs=jobs, cluster=cluster, total=total)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak, report.done


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a DATA_DIR/<genre>/*.wav collection (default: generated clips)")
    parser.add_argument("--files", type=int, default=10_000, help="files to tag (default: 10,000)")
    parser.add_argument("--jobs", type=int, default=-1, help="local worker processes (default: all cores)")
    parser.add_argument("--scheduler", help="a Dask scheduler address, or local:N, instead of local processes")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from knn_genre import build_features, train
    from knn_genre.pipeline.cluster import open_cluster
    from knn_genre.pipeline.workers import keep_freed_memory

    keep_freed_memory()
    print(f"{os.cpu_count()} CPUs, load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}; "
          f"{args.files:,} files, {args.scheduler or f'--jobs {args.jobs}'}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        if args.data is None:
            make_collection(data, None, 50, link=True)
            sources = sorted(p.resolve() for p in data.glob("*/*.wav"))
        else:
            data = args.data
            sources = sorted(Path(data).resolve().glob("*/*.wav"))
        assert build_features.main([str(data), "-o", str(tmp / "f.npz"), "-q"]) == 0
        assert train.main(["--features", str(tmp / "f.npz"), "--model", "knn", "-o", str(tmp / "knn.npz"), "-q"]) == 0
        small, large = tmp / "small", tmp / "large"
        library_of(small, sources, args.files // 4)
        library_of(large, sources, args.files)
        cluster = open_cluster(args.scheduler, folders=[tmp]) if args.scheduler else None
        try:
            t_small, peak_small, n_small = tag(tmp / "knn.npz", small, tmp / "small.csv", args.jobs, cluster)
            t_large, peak_large, n_large = tag(tmp / "knn.npz", large, tmp / "large.csv", args.jobs, cluster)
        finally:
            if cluster is not None:
                cluster.close()
        with open(tmp / "large.csv", newline="") as fh:
            paths = [row[0] for row in csv.reader(fh)][1:]
        exactly_once = len(paths) == len(set(paths)) == args.files
    rows = [
        (f"tag {n_small:,} files", f"{t_small:.1f} s", f"{n_small / t_small:.0f} files/s", f"{peak_small / 2**20:.1f} MiB"),
        (f"tag {n_large:,} files", f"{t_large:.1f} s", f"{n_large / t_large:.0f} files/s", f"{peak_large / 2**20:.1f} MiB"),
    ]
    print("\n| run | time | rate | peak allocations of the main process |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nevery file exactly once in the output: {'yes' if exactly_once else 'NO'}")
    return 0 if exactly_once else 1


if __name__ == "__main__":
    raise SystemExit(main())
