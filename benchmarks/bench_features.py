"""Feature-extraction speed: clips per second with 1 and 2 jobs, and a no-change rebuild.

Usage::

    python benchmarks/bench_features.py --data DATA_DIR [--clips 100] [--repeats 3]
    python benchmarks/bench_features.py            # synthetic 30 s clips

Each build runs as its own ``python -m knn_genre.build_features`` process, so
worker start-up is included, as a user would see it. With ``--clips N`` the
clips of DATA_DIR are copied (round-robin) into a temporary collection of N
files; without ``--data`` N synthetic 30-second clips are generated.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path


def make_collection(dest: Path, data: Path | None, clips: int, seconds: float) -> int:
    """Fill ``dest`` with ``clips`` wav files; return how many were written."""
    if data is None:
        from knn_genre.synth import GENRES, write_collection

        per = -(-clips // len(GENRES))
        paths = write_collection(dest, n_per_genre=per, seconds=seconds, seed=0)
        for extra in paths[clips:]:
            extra.unlink()
        return min(clips, len(paths))
    sources = sorted(data.glob("*/*.wav"))
    if not sources:
        raise SystemExit(f"{data}: no DATA_DIR/<genre>/*.wav files")
    for i in range(clips):
        src = sources[i % len(sources)]
        target = dest / src.parent.name / f"copy{i // len(sources)}-{src.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    return clips


def timed_build(data_dir: Path, output: Path, jobs: int, *extra: str) -> float:
    """Wall seconds of one build_features process."""
    cmd = [sys.executable, "-m", "knn_genre.build_features", str(data_dir), "-o", str(output), "--jobs", str(jobs), "-q", *extra]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a DATA_DIR/<genre>/*.wav collection (default: synthetic clips)")
    parser.add_argument("--clips", type=int, default=100, help="clips to build (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of synthetic clips (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per configuration, interleaved; the median is reported (default: %(default)s)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        root = Path(tmp) / "collection"
        n = make_collection(root, args.data, args.clips, args.seconds)
        source = str(args.data) if args.data else f"synthetic {args.seconds:g} s clips"
        # Interleaved runs, so that a slow spell of a shared machine hits both settings alike.
        times = {1: [], 2: []}
        for _ in range(args.repeats):
            for jobs in (1, 2):
                times[jobs].append(timed_build(root, Path(tmp) / f"j{jobs}.npz", jobs, "--no-reuse"))
        rows = [(f"build, --jobs {jobs}", statistics.median(times[jobs])) for jobs in (1, 2)]
        out = Path(tmp) / "reuse.npz"
        timed_build(root, out, 2)
        rebuilds = [timed_build(root, out, 2) for _ in range(args.repeats)]
        rows.append(("no-change rebuild, --jobs 2", statistics.median(rebuilds)))

    base = rows[0][1]
    print(f"Feature extraction: {n} clips ({source}), median of {args.repeats} runs, whole process wall time\n")
    print("| run | seconds | clips/s | vs --jobs 1 |")
    print("|---|---:|---:|---:|")
    for name, sec in rows:
        ratio = f"{base / sec:.2f}x" if name.startswith("build") else "-"
        print(f"| {name} | {sec:.2f} | {n / sec:.1f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
