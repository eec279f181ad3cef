"""Feature-extraction speed: clips per second with 1 and 2 jobs, and a no-change rebuild.

Usage::

    python benchmarks/bench_features.py --data DATA_DIR [--clips 1000] [--repeats 3]
    python benchmarks/bench_features.py            # synthetic 30 s clips

Each build runs as its own ``python -m knn_genre.build_features`` process, so
worker start-up is included, as a user would see it. The clips of DATA_DIR
(or, without ``--data``, 50 generated 30-second clips) are copied
round-robin into a temporary collection of ``--clips`` files; the default,
1000, is GTZAN's size.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path


def make_collection(dest: Path, data: Path | None, clips: int, seconds: float = 30.0, *, link: bool = False) -> int:
    """Fill ``dest`` with ``clips`` copies (round-robin) of the wav files of ``data``, or of generated ones.

    ``link`` makes symbolic links instead of copies (for runs where the bytes
    on disk do not matter). Returns the number of distinct source files.
    """
    if data is None:
        from knn_genre.audio.synth import GENRES, write_collection

        data = dest.parent / "synthetic"
        write_collection(data, n_per_genre=-(-min(clips, 50) // len(GENRES)), seconds=seconds, seed=0)
    sources = sorted(Path(data).resolve().glob("*/*.wav"))
    if not sources:
        raise SystemExit(f"{data}: no DATA_DIR/<genre>/*.wav files")
    for i in range(clips):
        src = sources[i % len(sources)]
        target = dest / src.parent.name / f"copy{i // len(sources)}-{src.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if link:
            target.symlink_to(src)
        else:
            shutil.copyfile(src, target)
    return len(sources)


def timed_build(data_dir: Path, output: Path, jobs: int, *extra: str) -> tuple[float, float]:
    """Wall seconds of one build_features process, and the analysis seconds it reports.

    The second excludes the interpreter's start and imports (the same for
    any --jobs) but includes starting the worker processes.
    """
    cmd = [sys.executable, "-m", "knn_genre.build_features", str(data_dir), "-o", str(output), "--jobs", str(jobs), "-q", *extra]
    start = time.perf_counter()
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    reported = re.search(r"([0-9.]+) s$", done.stdout.splitlines()[1].strip())
    return wall, float(reported.group(1)) if reported else float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a DATA_DIR/<genre>/*.wav collection (default: synthetic clips)")
    parser.add_argument("--clips", type=int, default=1000, help="clips to build (default: %(default)s, GTZAN's size)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of synthetic clips (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration, interleaved; the median is reported (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.clips < 1 or args.repeats < 1 or not args.seconds > 0:
        parser.error("--clips and --repeats must be >= 1 and --seconds > 0")

    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        root = Path(tmp) / "collection"
        distinct = make_collection(root, args.data, args.clips, args.seconds)
        n = args.clips
        source = f"copies of {distinct} clips of {args.data}" if args.data else f"copies of {distinct} synthetic {args.seconds:g} s clips"
        # Interleaved runs, so that a slow spell of a shared machine hits both settings alike.
        times = {1: [], 2: []}
        for _ in range(args.repeats):
            for jobs in (1, 2):
                times[jobs].append(timed_build(root, Path(tmp) / f"j{jobs}.npz", jobs, "--no-reuse"))
        rows = [
            (f"build, --jobs {jobs}", *(statistics.median(t[i] for t in times[jobs]) for i in (0, 1))) for jobs in (1, 2)
        ]
        out = Path(tmp) / "reuse.npz"
        timed_build(root, out, 2)
        rebuilds = [timed_build(root, out, 2) for _ in range(args.repeats)]
        rows.append(("no-change rebuild, --jobs 2", *(statistics.median(t[i] for t in rebuilds) for i in (0, 1))))

    base, base_analysis = rows[0][1], rows[0][2]
    print(
        f"Feature extraction: {n} clips ({source}), median of {args.repeats} interleaved runs. "
        "Whole process: wall time of the command; analysis: the seconds it reports (no interpreter "
        "start-up and imports, worker start-up included)\n"
    )
    print("| run | whole process s | clips/s | vs --jobs 1 | analysis s | clips/s | vs --jobs 1 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, wall, analysis in rows:
        build = name.startswith("build")
        ratio = f"{base / wall:.2f}x" if build else "-"
        ratio_a = f"{base_analysis / analysis:.2f}x" if build and analysis > 0 else "-"
        rate_a = f"{n / analysis:.1f}" if build and analysis > 0 else "-"
        print(f"| {name} | {wall:.2f} | {n / wall:.1f} | {ratio} | {analysis:.2f} | {rate_a} | {ratio_a} |")
    (_, wall2, analysis2), (_, rebuild, _) = rows[1], rows[2]
    print(
        f"\n--jobs 2 against --jobs 1: analysis rate {base_analysis / analysis2:.2f}x, whole process "
        f"{base / wall2:.2f}x (target: rate >= 1.6x); no-change rebuild {rebuild:.2f} s (target < 2 s)"
    )
    # Each --jobs 2 run against the --jobs 1 run just before it: the pairs
    # share the machine's spell, so their ratios scatter less than the times.
    pairs = [one[1] / two[1] for one, two in zip(times[1], times[2]) if two[1] > 0]
    if pairs:
        print(
            f"per interleaved pair, analysis rate: median {statistics.median(pairs):.2f}x "
            f"(from {min(pairs):.2f}x to {max(pairs):.2f}x over {len(pairs)} pairs)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
