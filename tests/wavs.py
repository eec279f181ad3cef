"""Writing test audio in every format the reader supports, including 24-bit
PCM, which scipy can read but not write."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from scipy.io import wavfile


def encode(x: np.ndarray, fmt: str) -> np.ndarray:
    """Float samples in [-1, 1] to the sample array of ``fmt``."""
    if fmt == "uint8":
        return np.clip(np.round(x * 128 + 128), 0, 255).astype(np.uint8)
    if fmt == "int16":
        return np.clip(np.round(x * 2**15), -(2**15), 2**15 - 1).astype(np.int16)
    if fmt in ("int32", "int24"):
        return np.clip(np.round(x * 2**31), -(2**31), 2**31 - 1).astype(np.int32)
    if fmt in ("float32", "float64"):
        return x.astype(fmt)
    raise ValueError(fmt)


def write_wav(path, x: np.ndarray, rate: int = 22050, fmt: str = "int16") -> Path:
    """Write ``x`` (float, (n,) or (n, channels)) to ``path`` as ``fmt``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = encode(np.asarray(x, dtype=np.float64), fmt)
    if fmt == "int24":
        write_pcm24(path, data, rate)
    else:
        wavfile.write(path, rate, data)
    return path


def write_pcm24(path, data32: np.ndarray, rate: int) -> None:
    """24-bit PCM wav from left-justified int32 samples (the top 3 bytes)."""
    frames = data32.reshape(len(data32), -1)
    channels = frames.shape[1]
    raw = (frames.astype("<i4").view(np.uint8).reshape(-1, 4)[:, 1:]).tobytes()
    fmt_chunk = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 3, channels * 3, 24)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk
    body += b"data" + struct.pack("<I", len(raw)) + raw + (b"\0" if len(raw) % 2 else b"")
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def tone(seconds: float = 1.0, rate: int = 22050, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a noise floor: rich enough for full-rank MFCCs."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * 220 * h * t + rng.uniform(0, 6)) / h for h in range(1, 8))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)) + 0.01 * rng.standard_normal(len(t))
    return 0.8 * x / np.abs(x).max()


def read_signal(path, rate: int = 22050) -> np.ndarray:
    """The whole file as mono float64 at ``rate``, as the package reads it."""
    from knn_genre.audio import read_audio

    return read_audio(path, rate)[0]


def analyse_track(path, params=None):
    """Mean and covariance of a whole file, through the package's one analysis path."""
    from knn_genre.features.analysis import analyse_file
    from knn_genre.features.families import GaussianFamily
    from knn_genre.features.params import MFCCParams

    analysis = analyse_file(path, GaussianFamily(params or MFCCParams()))
    return analysis.arrays["means"][0], analysis.arrays["covs"][0]
