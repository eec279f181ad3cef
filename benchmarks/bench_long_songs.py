"""Long songs: windowed prediction of joined clips against the clips themselves, and memory.

Usage::

    python benchmarks/bench_long_songs.py --data DATA_DIR [--clips-per-song 4] [--model knn]

Songs are made by joining consecutive clips of one genre of DATA_DIR (GTZAN
layout) and writing them as stereo 44.1 kHz int16 wavs, several minutes
long. Each song is left out in turn: a model is trained on the features of
every clip *not* in the song, then predicts the song (30 s windows, hop
15 s, probabilities averaged) and, separately, each of its clips as a
30-second file. Only genres with at least two songs are used, so the genre
of a left-out song always has training clips. Peak memory (tracemalloc) of
predicting a song is measured for a short and a 10-minute song.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

from knn_genre.classifiers.model import train_on_featureset
from knn_genre.classifiers.registry import model_names
from knn_genre.features.analysis import analyse_file
from knn_genre.features.families import GaussianFamily
from knn_genre.pipeline.apply import predict_file
from knn_genre.store import FeatureSet


def analyse_track(path) -> tuple[np.ndarray, np.ndarray]:
    analysis = analyse_file(path, GaussianFamily())
    return analysis.arrays["means"][0], analysis.arrays["covs"][0]


def make_song(clips: list[Path], dest: Path) -> float:
    """Join clips, upsample to 44.1 kHz stereo int16; return the length in seconds."""
    parts = []
    for clip in clips:
        rate, x = wavfile.read(clip)
        parts.append(resample_poly(x.astype(np.float64), 2, 1) if rate == 22050 else x.astype(np.float64))
    song = np.concatenate(parts)
    stereo = np.clip(np.stack([song, 0.9 * song], axis=1), -32768, 32767).astype(np.int16)
    wavfile.write(dest, 44100, stereo)
    return len(song) / 44100


def peak_memory(model, path) -> tuple[float, int]:
    tracemalloc.start()
    try:
        start = time.perf_counter()
        pred = predict_file(model, path)
        elapsed = time.perf_counter() - start
        return elapsed, tracemalloc.get_traced_memory()[1], len(pred.windows)
    finally:
        tracemalloc.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="DATA_DIR/<genre>/*.wav (GTZAN layout)")
    parser.add_argument("--clips-per-song", type=int, default=4, help="clips joined into one song (default: %(default)s)")
    parser.add_argument("--model", choices=model_names("gaussian"), default="knn", help="registry model (default: %(default)s)")
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args(argv)

    clips = sorted(args.data.glob("*/*.wav"))
    if not clips:
        print(f"{args.data}: no DATA_DIR/<genre>/*.wav files", file=sys.stderr)
        return 2
    print(f"analysing {len(clips)} clips ...", file=sys.stderr)
    gaussians = [analyse_track(c) for c in clips]
    genres = [c.parent.name for c in clips]
    songs = []  # (genre, [clip indices])
    for genre in sorted(set(genres)):
        idx = [i for i, g in enumerate(genres) if g == genre]
        chunks = [idx[i : i + args.clips_per_song] for i in range(0, len(idx), args.clips_per_song)]
        if len(chunks) >= 2:
            songs += [(genre, chunk) for chunk in chunks]
    if not songs:
        print("no genre has enough clips for two songs", file=sys.stderr)
        return 2

    song_hits, clip_hits, n_clips, lengths = 0, 0, 0, []
    with tempfile.TemporaryDirectory(prefix="long_songs_") as tmp:
        for s, (genre, members) in enumerate(songs):
            train = [i for i in range(len(clips)) if i not in members]
            fs = FeatureSet(
                means=np.stack([gaussians[i][0] for i in train]),
                covs=np.stack([gaussians[i][1] for i in train]),
                labels=[genres[i] for i in train],
                paths=[str(clips[i]) for i in train],
            )
            model = train_on_featureset(fs, args.model, k=args.k)
            song = Path(tmp) / f"song{s}.wav"
            lengths.append(make_song([clips[i] for i in members], song))
            song_hits += predict_file(model, song).genre == genre
            clip_hits += sum(predict_file(model, clips[i]).genre == genre for i in members)
            n_clips += len(members)

        model = train_on_featureset(
            FeatureSet(np.stack([g[0] for g in gaussians]), np.stack([g[1] for g in gaussians]), genres, [str(c) for c in clips]),
            args.model, k=args.k,
        )
        short = Path(tmp) / "short.wav"
        long = Path(tmp) / "long.wav"
        t_short = make_song(clips[:1], short)
        t_long = make_song((clips * 20)[:20], long)
        mem = [(t_short, *peak_memory(model, short)), (t_long, *peak_memory(model, long))]

    print(
        f"\nLong songs, {args.model} (k={args.k}), each song left out of training in turn; "
        f"{len(songs)} songs of {args.clips_per_song} clips ({min(lengths):.0f}-{max(lengths):.0f} s, stereo 44.1 kHz) "
        f"from the genres of {args.data} with at least two songs\n"
    )
    print("| input | predicted | correct | accuracy |")
    print("|---|---:|---:|---:|")
    print(f"| whole songs (30 s windows, hop 15 s) | {len(songs)} | {song_hits} | {song_hits / len(songs):.3f} |")
    print(f"| their 30 s clips, one by one | {n_clips} | {clip_hits} | {clip_hits / n_clips:.3f} |")
    print("\n| song | windows | seconds to predict | peak traced memory |")
    print("|---|---:|---:|---:|")
    for seconds, elapsed, peak, windows in mem:
        print(f"| {seconds / 60:.1f} min, stereo 44.1 kHz | {windows} | {elapsed:.2f} | {peak / 2**20:.1f} MiB |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
