"""Table-feature speed: the table family against librosa's functions called one by one.

Usage::

    python benchmarks/bench_table.py --data DATA_DIR [--clips 40] [--repeats 3]
    python benchmarks/bench_table.py            # generated 30 s clips

The same clips, in one run: each clip is read once (22050 Hz, mono); then,
clip by clip and interleaved so that a slow spell of a shared machine hits
both alike, :func:`knn_genre.features.table.table_features` and the librosa
calls that define the columns (``chroma_stft``, ``rms``,
``spectral_centroid``, ``spectral_bandwidth``, ``spectral_rolloff``,
``zero_crossing_rate``, ``effects.hpss``, ``beat.beat_track``, ``mfcc``),
on the float32 samples librosa loads, at librosa's current defaults (zero
padding at the ends rather than the published tables' reflection: the same
work). One process, then two processes
sharing the clips (forked, one BLAS thread each). librosa's first call
(numba compilation) is made before timing. Needs librosa (the ``test`` extra).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def librosa_table(y: np.ndarray, sr: int = 22050) -> np.ndarray:
    """The table columns by librosa's own functions, one call per feature, as GTZAN's authors computed them."""
    import librosa

    out = []

    def mean_var(a):
        out.extend([np.mean(a), np.var(a)])

    mean_var(librosa.feature.chroma_stft(y=y, sr=sr))
    mean_var(librosa.feature.rms(y=y))
    mean_var(librosa.feature.spectral_centroid(y=y, sr=sr))
    mean_var(librosa.feature.spectral_bandwidth(y=y, sr=sr))
    mean_var(librosa.feature.spectral_rolloff(y=y, sr=sr))
    mean_var(librosa.feature.zero_crossing_rate(y))
    harmonic, percussive = librosa.effects.hpss(y)
    mean_var(harmonic)
    mean_var(percussive)
    out.append(float(np.atleast_1d(librosa.beat.beat_track(y=y, sr=sr)[0])[0]))
    mfcc = librosa.feature.mfcc(y=y, sr=sr)
    for row in mfcc:
        mean_var(row)
    return np.array(out, dtype=np.float64)


def ours(y: np.ndarray) -> np.ndarray:
    from knn_genre.features.table import table_features

    return table_features(y)


IMPLEMENTATIONS = {"knn_genre table family": (ours, np.float64), "librosa, function by function": (librosa_table, np.float32)}


def load_clips(data: Path | None, clips: int, tmp: Path) -> tuple[list, str]:
    from knn_genre.audio import read_audio

    if data is None:
        from knn_genre.audio.synth import GENRES, write_collection

        data = tmp / "synthetic"
        write_collection(data, n_per_genre=-(-clips // len(GENRES)), seconds=30.0, seed=0)
        what = "generated 30 s clips"
    else:
        what = f"clips of {data}"
    files = sorted(data.glob("*/*.wav"))
    if not files:
        raise SystemExit(f"{data}: no DATA_DIR/<genre>/*.wav files")
    # Every few clips, so that all genres are in a small sample.
    step = max(1, len(files) // clips)
    chosen = files[::step][:clips]
    return [read_audio(f, 22050)[0] for f in chosen], what


_SHARED = {}


def _run_share(args):
    name, start, stop = args
    fn, dtype = IMPLEMENTATIONS[name]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        for y in _SHARED["clips"][start:stop]:
            fn(y.astype(dtype))
    return stop - start


def two_processes(name: str, clips: list) -> float:
    """Wall seconds for two forked processes to do half of the clips each."""
    _SHARED["clips"] = clips
    half = len(clips) // 2
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_run_share, [(name, 0, 1), (name, 1, 2)])  # warm: imports, numba in each worker
        start = time.perf_counter()
        pool.map(_run_share, [(name, 0, half), (name, half, len(clips))])
        return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a DATA_DIR/<genre>/*.wav collection (default: generated 30 s clips)")
    parser.add_argument("--clips", type=int, default=40, help="clips timed (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=1, help="passes over the clips; per-clip medians are summed (default: %(default)s)")
    parser.add_argument("--no-two", action="store_true", help="skip the two-process runs")
    args = parser.parse_args(argv)
    if args.clips < 2 or args.repeats < 1:
        parser.error("--clips must be >= 2 and --repeats >= 1")
    from threadpoolctl import threadpool_limits

    with tempfile.TemporaryDirectory(prefix="bench_table_") as tmp:
        clips, what = load_clips(args.data, args.clips, Path(tmp))
    n = len(clips)
    seconds = sum(len(y) for y in clips) / 22050
    names = list(IMPLEMENTATIONS)
    per_clip = {name: [[] for _ in clips] for name in names}
    with threadpool_limits(1, "blas"):
        for name in names:  # not timed: librosa compiles its numba kernels on the first call
            fn, dtype = IMPLEMENTATIONS[name]
            fn(clips[0].astype(dtype))
        for _ in range(args.repeats):
            for i, y in enumerate(clips):
                for name in names:
                    fn, dtype = IMPLEMENTATIONS[name]
                    signal = y.astype(dtype)
                    start = time.perf_counter()
                    fn(signal)
                    per_clip[name][i].append(time.perf_counter() - start)
    one = {name: sum(statistics.median(t) for t in per_clip[name]) for name in names}
    two = {} if args.no_two else {name: two_processes(name, clips) for name in names}
    ours_name, ref_name = names
    print(
        f"Table features of {n} {what} ({seconds / n:.1f} s each on average), one run, implementations "
        f"interleaved clip by clip; one BLAS thread per process; {args.repeats} pass(es), per-clip median.\n"
    )
    print("| implementation | 1 process: s / clip | clips/s | 2 processes: clips/s |")
    print("|---|---:|---:|---:|")
    for name in names:
        rate2 = f"{n / two[name]:.2f}" if two else "-"
        print(f"| {name} | {one[name] / n:.3f} | {n / one[name]:.2f} | {rate2} |")
    ratios = [statistics.median(r) / statistics.median(o) for r, o in zip(per_clip[ref_name], per_clip[ours_name])]
    print(
        f"\nlibrosa / table family, 1 process: {one[ref_name] / one[ours_name]:.2f}x in total "
        f"(per clip: median {statistics.median(ratios):.2f}x, {min(ratios):.2f}x to {max(ratios):.2f}x); target >= 3x"
    )
    if two:
        print(f"2 processes: {two[ref_name] / two[ours_name]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
