"""Formats: the same clips as WAV, AU, FLAC, MP3 and Ogg Vorbis; features, predictions, speed.

Usage::

    python benchmarks/bench_formats.py --data DATA_DIR [--limit N] [--folds 5] [--seed 0]

Every WAV clip of DATA_DIR (GTZAN layout, e.g. ``../shared/gtzan-dev``) is
written again, from its own samples, as a 16-bit big-endian ``.au`` (the
layout of GTZAN's original release), a 16-bit FLAC, MP3 (LAME through
libsndfile: 64 and 128 kbit/s at the clip's 22050 Hz, 320 kbit/s after
upsampling to 44100 Hz, as a ripped CD would be, and libsndfile's default
VBR, about 50 kbit/s, which is what ``soundfile.write`` gives unasked) and
Ogg Vorbis. Then:

(a) whether the ``.au`` and FLAC Gaussians equal the WAV ones bit for bit;
(b) how far the lossy Gaussians are from the WAV ones: relative difference
    of the mean (Euclidean) and of the covariance (Frobenius), and the
    symmetric KL divergence between a clip's WAV and encoded Gaussians,
    beside the divergence from each WAV clip to its nearest *other* clip;
(c) how often the predicted genre changes: the registry's ``knn`` and
    ``svm`` are trained on the WAV features of each training fold
    (stratified k-fold, genres with at least ``--min-clips`` clips) and
    predict the test clips in every format;
(d) decoding speed per format (open and decode to mono float, in-process,
    one thread) and the whole analysis (decode, resample, MFCC, Gaussian).

Prints Markdown. Encoding and decoding run in this one process.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# (name, suffix, description); "wav" is the reference.
VERSIONS = (
    ("wav", ".wav", "WAV, 16-bit PCM (the clip itself)"),
    ("au", ".au", "AU, 16-bit PCM, big-endian"),
    ("flac", ".flac", "FLAC, 16-bit"),
    ("mp3-64", ".mp3", "MP3 64 kbit/s CBR, 22.05 kHz"),
    ("mp3-128", ".mp3", "MP3 128 kbit/s CBR, 22.05 kHz"),
    ("mp3-320", ".mp3", "MP3 320 kbit/s CBR, 44.1 kHz"),
    ("mp3-vbr", ".mp3", "MP3 VBR, libsndfile's default settings (what soundfile writes unasked)"),
    ("ogg", ".ogg", "Ogg Vorbis VBR (libsndfile compression level 0.3)"),
)
LOSSLESS = ("au", "flac")
LOSSY = ("mp3-64", "mp3-128", "mp3-320", "mp3-vbr", "ogg")
# libsndfile's compression levels that give these LAME bitrates (measured from the frame headers).
_MP3_LEVELS = {"mp3-64": 0.6, "mp3-128": 0.2, "mp3-320": 0.0}


def encode(version: str, samples: np.ndarray, rate: int, dest: Path) -> Path:
    """Write int16 ``samples`` at ``rate`` as ``version``; return the path."""
    import soundfile as sf
    from scipy.io import wavfile

    if version == "wav":
        wavfile.write(dest, rate, samples)
    elif version == "au":
        sf.write(dest, samples, rate, format="AU", subtype="PCM_16", endian="BIG")
    elif version == "flac":
        sf.write(dest, samples, rate, format="FLAC", subtype="PCM_16")
    elif version == "mp3-vbr":
        sf.write(dest, samples / 2**15, rate, format="MP3")
    elif version.startswith("mp3"):
        x = samples / 2**15
        if version == "mp3-320":
            from scipy.signal import resample_poly

            x, rate = np.clip(resample_poly(x, 2, 1), -1, 1), 2 * rate
        sf.write(dest, x, rate, format="MP3", bitrate_mode="CONSTANT", compression_level=_MP3_LEVELS[version])
    elif version == "ogg":
        sf.write(dest, samples / 2**15, rate, format="OGG", subtype="VORBIS", compression_level=0.3)
    else:
        raise ValueError(version)
    return dest


def analyse(paths: dict, clips: list[str]) -> dict:
    """Per version: Gaussians (means, covs), decode seconds and analysis seconds per clip, kbit/s."""
    from knn_genre.audio import open_audio
    from knn_genre.features.analysis import analyse_file
    from knn_genre.features.families import GaussianFamily

    family = GaussianFamily()
    out = {}
    for version, _, _ in VERSIONS:
        means, covs, decode, total, bits, seconds = [], [], [], [], 0, 0.0
        for clip in clips:
            path = paths[version, clip]
            start = time.perf_counter()
            with open_audio(path) as source:
                source.read()
                length = source.frames / source.sample_rate
            decode.append(time.perf_counter() - start)
            start = time.perf_counter()
            analysis = analyse_file(path, family)
            total.append(time.perf_counter() - start)
            means.append(analysis.arrays["means"][0])
            covs.append(analysis.arrays["covs"][0])
            bits += 8 * path.stat().st_size
            seconds += length
        out[version] = {
            "means": np.array(means), "covs": np.array(covs),
            "decode": float(np.mean(decode)), "analyse": float(np.mean(total)),
            "kbps": bits / seconds / 1000, "seconds": seconds / len(clips),
        }
    return out


def closeness(features: dict) -> list[dict]:
    """(b): distances between each clip's WAV Gaussian and its encoded one."""
    from knn_genre.classifiers.divergence import pairwise_symmetric_kl

    ref = features["wav"]
    between = pairwise_symmetric_kl(ref["means"], ref["covs"], ref["means"], ref["covs"])
    np.fill_diagonal(between, np.inf)
    nearest_other = between.min(axis=1)
    others = between[np.isfinite(between)]
    rows = []
    for version in LOSSLESS + LOSSY:
        got = features[version]
        mean_rel = np.linalg.norm(got["means"] - ref["means"], axis=1) / np.linalg.norm(ref["means"], axis=1)
        cov_rel = np.linalg.norm(got["covs"] - ref["covs"], axis=(1, 2)) / np.linalg.norm(ref["covs"], axis=(1, 2))
        skl = np.array([
            pairwise_symmetric_kl(ref["means"][i : i + 1], ref["covs"][i : i + 1], got["means"][i : i + 1], got["covs"][i : i + 1])[0, 0]
            for i in range(len(ref["means"]))
        ])
        rows.append({
            "version": version,
            "identical": int(sum(np.array_equal(got["means"][i], ref["means"][i]) and np.array_equal(got["covs"][i], ref["covs"][i])
                                 for i in range(len(ref["means"])))),
            "mean_rel_median": float(np.median(mean_rel)), "mean_rel_max": float(mean_rel.max()),
            "cov_rel_median": float(np.median(cov_rel)), "cov_rel_max": float(cov_rel.max()),
            "skl_median": float(np.median(skl)), "skl_max": float(skl.max()),
            "closer_than_nearest_other": float(np.mean(skl < nearest_other)),
        })
    return rows, float(np.median(nearest_other)), float(np.median(others))


def prediction_changes(features: dict, labels: np.ndarray, keep: np.ndarray, folds: int, seed: int, models: Sequence[str]):
    """(c): per model and version, test predictions that differ from the WAV ones, and accuracy."""
    from knn_genre.classifiers.registry import make_model
    from knn_genre.evaluation.splits import cross_validation_splits
    from knn_genre.features.gaussian import pack

    y = labels[keep]
    X = {v: pack(f["means"][keep], f["covs"][keep]) for v, f in features.items()}
    splits, protocol = cross_validation_splits(y, folds=folds, seed=seed)
    results = {}
    for name in models:
        predicted = {v: np.empty(len(y), dtype=object) for v in X}
        for train, test in splits:
            model = make_model(name, seed=seed).fit(X["wav"][train], y[train])
            for v in X:
                predicted[v][test] = model.predict(X[v][test])
        for v in X:
            changed = int(np.sum(predicted[v] != predicted["wav"]))
            results[name, v] = (changed, float(np.mean(predicted[v] == y)))
    return results, protocol, len(y), len(np.unique(y))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench_formats.py", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="GTZAN-style folder of WAV clips")
    parser.add_argument("--limit", type=int, default=None, help="use only N clips, taken from the genres in turn")
    parser.add_argument("--folds", type=int, default=5, help="stratified folds for (c) (default: %(default)s)")
    parser.add_argument("--min-clips", type=int, default=10, help="genres with fewer clips are left out of (c) (default: %(default)s)")
    parser.add_argument("--models", default="knn,svm", help="registry models for (c) (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds and the models' inner searches (default: %(default)s)")
    args = parser.parse_args(argv)
    from scipy.io import wavfile

    import soundfile

    from knn_genre.errors import KnnGenreError
    from knn_genre.pipeline.discover import discover

    tracks = [t for t in discover(args.data).tracks if t.path.endswith(".wav")]
    if args.limit is not None:
        # Round-robin over the genres, so that a few clips still span several genres.
        rank = {t.path: sum(u.genre == t.genre for u in tracks[:i]) for i, t in enumerate(tracks)}
        tracks = sorted(sorted(tracks, key=lambda t: (rank[t.path], t.genre))[: args.limit], key=lambda t: t.path)
    if not tracks:
        print(f"{args.data}: no .wav clips found", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="knn_genre_formats_") as tmp:
        paths, encode_seconds = {}, {v: 0.0 for v, _, _ in VERSIONS}
        for i, track in enumerate(tracks):
            rate, samples = wavfile.read(args.data / track.path)
            if samples.dtype != np.int16 or samples.ndim != 1:
                print(f"{track.path}: not 16-bit mono; skipped", file=sys.stderr)
                continue
            for version, suffix, _ in VERSIONS:
                start = time.perf_counter()
                paths[version, track.path] = encode(version, samples, rate, Path(tmp) / f"{i:04d}-{version}{suffix}")
                encode_seconds[version] += time.perf_counter() - start
        clips = [t.path for t in tracks if ("wav", t.path) in paths]
        labels = np.array([t.genre for t in tracks if ("wav", t.path) in paths])
        features = analyse(paths, clips)
    rows, nearest_other, median_other = closeness(features)
    genres, counts = np.unique(labels, return_counts=True)
    keep = np.isin(labels, genres[counts >= args.min_clips])
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        changes, protocol, n_kept, n_genres = prediction_changes(features, labels, keep, args.folds, args.seed, models)
    except KnnGenreError as exc:  # e.g. a training fold smaller than the KNN's k
        print(f"{parser.prog}: error: {exc}; use more clips (--limit) or fewer --folds", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    describe = {v: d for v, _, d in VERSIONS}

    print(f"## Formats: {len(clips)} clips of {args.data} ({len(genres)} genres), {features['wav']['seconds']:.1f} s each\n")
    print("### (a, b) Gaussians of each format against the WAV ones\n")
    print("| format | kbit/s | identical to WAV | mean: rel. diff median / max | covariance: rel. diff median / max | sKL to WAV: median / max | closer to its WAV than the nearest other clip |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        v = row["version"]
        print(
            f"| {describe[v]} | {features[v]['kbps']:.0f} | {row['identical']}/{len(clips)} "
            f"| {row['mean_rel_median']:.2e} / {row['mean_rel_max']:.2e} | {row['cov_rel_median']:.2e} / {row['cov_rel_max']:.2e} "
            f"| {row['skl_median']:.3g} / {row['skl_max']:.3g} | {100 * row['closer_than_nearest_other']:.0f} % |"
        )
    print(
        f"\nFor scale: symmetric KL from each WAV clip to its nearest other clip, median {nearest_other:.3g}; "
        f"between any two different clips, median {median_other:.3g}.\n"
    )
    print("### (c) Predicted genre of each format, models trained on the WAV features\n")
    print(f"Protocol: {protocol.describe()} ({n_kept} clips of the {n_genres} genres with at least {args.min_clips} clips); "
          "GTZAN's artist runs make these accuracies optimistic, the count of changes is the point.\n")
    print("| format | " + " | ".join(f"{m}: changed / accuracy" for m in models) + " |")
    print("|---|" + "---:|" * len(models))
    for version, _, _ in VERSIONS:
        cells = [f"{changes[m, version][0]}/{n_kept} / {changes[m, version][1]:.3f}" for m in models]
        print(f"| {describe[version]} | " + " | ".join(cells) + " |")
    print("\n### (d) Speed per clip (one process, one thread)\n")
    print("| format | encode ms | decode ms | x real time (decode) | analyse ms (decode, resample, MFCC, Gaussian) |")
    print("|---|---:|---:|---:|---:|")
    for version, _, _ in VERSIONS:
        f = features[version]
        print(f"| {describe[version]} | {1000 * encode_seconds[version] / len(clips):.1f} | {1000 * f['decode']:.1f} "
              f"| {f['seconds'] / f['decode']:.0f} | {1000 * f['analyse']:.0f} |")
    command = " ".join(["python benchmarks/bench_formats.py", *(argv if argv is not None else sys.argv[1:])])
    print(
        f"\nReproduce: `{command}` ({elapsed:.0f} s on {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"soundfile {soundfile.__version__}, libsndfile {soundfile.__libsndfile_version__}, numpy {np.__version__})."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
