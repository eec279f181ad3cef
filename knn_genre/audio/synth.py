"""A deterministic synthetic music collection for the demo and the tests.

Five genre-like classes that differ in timbre and rhythm, so the pipeline
has something real to separate on a machine with no music:

* ``ambient``: slowly swelling filtered noise over a soft low drone, no beat;
* ``drums``: kick drum on the beat and hi-hat noise on the off-beat;
* ``organ``: sustained bright chords rich in harmonics;
* ``plucked``: decaying plucked-string notes on a steady pulse;
* ``bass``: a low sawtooth bass line with short notes.

Every clip is drawn from its own seeded generator, so the same seed writes
the same bytes on every machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import lfilter

from ..errors import ParameterError

__all__ = ["GENRES", "synthesize", "write_collection"]

GENRES = ("ambient", "bass", "drums", "organ", "plucked")
BLEED = 0.6  # largest level of another genre's material mixed into a clip


def _envelope_train(n, sr, bpm, offset, decay_s, rng):
    """Sum of exponentially decaying impulses on a beat grid, shape (n,)."""
    period = 60.0 / bpm
    env = np.zeros(n)
    t = np.arange(int(decay_s * sr * 6)) / sr
    shape = np.exp(-t / decay_s)
    start = offset * period + rng.uniform(0, 0.02)
    for onset in np.arange(start, n / sr, period):
        i = int(onset * sr)
        seg = shape[: n - i]
        env[i : i + len(seg)] += seg * rng.uniform(0.7, 1.0)
    return env


def _ambient(n, sr, rng):
    t = np.arange(n) / sr
    noise = lfilter([1.0], [1.0, -rng.uniform(0.95, 0.99)], rng.standard_normal(n))
    noise /= np.abs(noise).max() + 1e-12
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t + rng.uniform(0, 6.28))
    drone = np.sin(2 * np.pi * rng.uniform(55, 110) * t)
    return 0.5 * noise * swell + 0.3 * drone


def _drums(n, sr, rng):
    t = np.arange(n) / sr
    bpm = rng.uniform(95, 140)
    kick_env = _envelope_train(n, sr, bpm, 0.0, 0.08, rng)
    kick = kick_env * np.sin(2 * np.pi * rng.uniform(50, 70) * t)
    hat_env = _envelope_train(n, sr, bpm, 0.5, 0.02, rng)
    hat = hat_env * lfilter([1.0, -1.0], [1.0], rng.standard_normal(n))  # high-passed noise
    return 0.8 * kick + 0.3 * hat


def _organ(n, sr, rng):
    t = np.arange(n) / sr
    root = rng.uniform(220, 440)
    out = np.zeros(n)
    for ratio in (1.0, 1.25, 1.5):  # a major triad
        for h in range(1, 9):
            out += np.sin(2 * np.pi * root * ratio * h * t) / h
    return out / 6.0


def _plucked(n, sr, rng):
    t = np.arange(n) / sr
    bpm = rng.uniform(80, 120)
    notes = rng.uniform(300, 900, size=64)
    period = 60.0 / bpm
    out = np.zeros(n)
    for k, onset in enumerate(np.arange(rng.uniform(0, 0.05), n / sr, period)):
        i = int(onset * sr)
        tt = t[: n - i]
        tone = sum(np.sin(2 * np.pi * notes[k % 64] * h * tt) * np.exp(-tt * (3.0 + 2.0 * h)) / h for h in range(1, 6))
        out[i:] += tone
    return 0.5 * out


def _bass(n, sr, rng):
    bpm = rng.uniform(100, 130)
    period = 60.0 / (2 * bpm)  # eighth notes
    freqs = rng.choice([41.2, 55.0, 61.7, 73.4, 82.4], size=int(n / sr / period) + 2)
    step = (np.arange(n) / sr / period).astype(int)
    phase = np.cumsum(freqs[step] / sr)
    saw = 2.0 * (phase % 1.0) - 1.0
    gate = np.exp(-((np.arange(n) / sr) % period) / (0.4 * period))
    return 0.7 * lfilter([0.2], [1.0, -0.8], saw * gate)


_MAKERS = {"ambient": _ambient, "bass": _bass, "drums": _drums, "organ": _organ, "plucked": _plucked}


def synthesize(
    genre: str, index: int, *, seconds: float = 4.0, sample_rate: int = 22050, seed: int = 0, bleed: float = BLEED
) -> np.ndarray:
    """One synthetic clip as float64 samples in [-1, 1].

    Parameters
    ----------
    genre : str
        One of :data:`GENRES`.
    index : int
        Clip number; with ``seed`` it fixes the random draw.
    seconds : float, default=4.0
    sample_rate : int, default=22050
    seed : int, default=0
    bleed : float, default=BLEED
        Largest relative level of another genre's material mixed in; 0
        gives pure clips.

    Returns
    -------
    ndarray of shape (round(seconds * sample_rate),)
    """
    if genre not in _MAKERS:
        raise ParameterError(f"genre={genre!r} must be one of {GENRES}")
    rng = np.random.default_rng([seed, GENRES.index(genre), index])
    n = int(round(seconds * sample_rate))
    x = _MAKERS[genre](n, sample_rate, rng)
    x = x / (np.abs(x).max() + 1e-12)
    # Real genres overlap: mix in another genre's material, quieter, so the
    # classes are separable but not trivially so.
    other = GENRES[(GENRES.index(genre) + rng.integers(1, len(GENRES))) % len(GENRES)]
    other_x = _MAKERS[other](n, sample_rate, rng)
    x = x + rng.uniform(0.0, bleed) * other_x / (np.abs(other_x).max() + 1e-12)
    x = x + 10 ** (-rng.uniform(35, 50) / 20) * rng.standard_normal(n)  # a noise floor, as in recordings
    return rng.uniform(0.3, 0.9) * x / (np.abs(x).max() + 1e-12)


def write_collection(
    root: str | os.PathLike,
    *,
    genres=GENRES,
    n_per_genre: int = 20,
    seconds: float = 4.0,
    sample_rate: int = 22050,
    seed: int = 0,
    bleed: float = BLEED,
) -> list[Path]:
    """Write ``root/<genre>/<genre>.<NNNNN>.wav`` clips (int16 PCM), GTZAN-style.

    Existing files with the expected name are left as they are, so a second
    call is cheap.

    Returns
    -------
    list of Path
        The clip paths, sorted.
    """
    root = Path(root)
    paths = []
    for genre in genres:
        folder = root / genre
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_genre):
            path = folder / f"{genre}.{i:05d}.wav"
            if not path.exists():
                x = synthesize(genre, i, seconds=seconds, sample_rate=sample_rate, seed=seed, bleed=bleed)
                tmp = path.with_name(path.name + ".tmp")
                wavfile.write(tmp, sample_rate, np.round(x * 32767).astype(np.int16))
                os.replace(tmp, path)
            paths.append(path)
    return sorted(paths)
