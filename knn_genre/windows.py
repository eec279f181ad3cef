"""Reading long files window by window, in memory that does not grow with length.

Songs longer than a window are cut into overlapping windows (default 30 s,
hop 15 s); each window is read through a memory map, normalised exactly as
:func:`knn_genre.audio.read_wav` normalises a whole file (scaled to [-1, 1],
channels averaged, resampled), and analysed on its own. Only one window of
samples is held in memory at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from .audio import resample, samples_from_bytes, to_float, to_mono, wav_info
from .errors import AudioError, ParameterError

__all__ = ["window_spans", "open_wav", "iter_windows"]


def window_spans(n_frames: int, window: int, hop: int) -> list[tuple[int, int]]:
    """``(start, stop)`` frames of the windows covering ``n_frames`` frames.

    Windows of ``window`` frames start every ``hop`` frames. A tail that no
    window reaches gets a window of its own, ending at the last frame, when
    it is at least half a hop long; a shorter tail is added to the last
    window instead (so a 30.01 s clip is one 30.01 s window, not two nearly
    equal ones). A signal shorter than one window is a single window.

    Examples
    --------
    >>> from knn_genre.windows import window_spans
    >>> window_spans(100, 30, 15)
    [(0, 30), (15, 45), (30, 60), (45, 75), (60, 90), (70, 100)]
    >>> window_spans(93, 30, 15)
    [(0, 30), (15, 45), (30, 60), (45, 75), (60, 93)]
    >>> window_spans(20, 30, 15)
    [(0, 20)]
    """
    if window < 1 or hop < 1:
        raise ParameterError(f"window={window} and hop={hop} must be positive numbers of frames")
    if n_frames <= window:
        return [(0, n_frames)]
    spans = [(s, s + window) for s in range(0, n_frames - window + 1, hop)]
    tail = n_frames - spans[-1][1]
    if tail * 2 >= hop:
        spans.append((n_frames - window, n_frames))
    elif tail > 0:
        spans[-1] = (spans[-1][0], n_frames)
    return spans


def open_wav(path: str | os.PathLike):
    """Checked layout and a memory map of a wav file's sample bytes.

    The header is checked by :func:`knn_genre.audio.wav_info` (every size
    against the file) before anything is mapped.

    Returns
    -------
    info : WavInfo
    raw : memmap of uint8, shape (frames, block_align)
        Slicing rows reads only those frames from disk; decode them with
        :func:`knn_genre.audio.samples_from_bytes`.

    Raises
    ------
    AudioError
    """
    path = os.fspath(path)
    info = wav_info(path)
    try:
        raw = np.memmap(path, dtype=np.uint8, mode="r", offset=info.data_offset, shape=(info.frames, info.block_align))
    except (OSError, ValueError) as exc:
        raise AudioError(path, f"cannot map the samples: {exc}") from None
    return info, raw


def iter_windows(
    path: str | os.PathLike,
    *,
    sample_rate: int = 22050,
    window_seconds: float = 30.0,
    hop_seconds: float = 15.0,
) -> Iterator[tuple[float, float, np.ndarray]]:
    """Yield ``(start_s, end_s, signal)`` for each window of a file.

    Parameters
    ----------
    path : str or path-like
    sample_rate : int, default=22050
        Rate in Hz of the yielded signals.
    window_seconds, hop_seconds : float
        Window length and hop in seconds.

    Yields
    ------
    start_s, end_s : float
        Position of the window in the file, in seconds.
    signal : ndarray of shape (n,), float64 in [-1, 1]
        Mono, at ``sample_rate``.

    Raises
    ------
    AudioError
        If the file cannot be read, is empty, or holds non-finite samples.
    """
    if not (window_seconds > 0 and hop_seconds > 0):
        raise ParameterError(f"window={window_seconds} s and hop={hop_seconds} s must be positive")
    path = os.fspath(path)
    info, raw = open_wav(path)
    rate, n = info.sample_rate, info.frames
    window = max(1, int(round(window_seconds * rate)))
    hop = max(1, int(round(hop_seconds * rate)))
    for start, stop in window_spans(n, window, hop):
        with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf are reported just below
            samples = to_mono(to_float(samples_from_bytes(raw[start:stop], info)))
        if not np.all(np.isfinite(samples)):
            raise AudioError(path, f"samples contain NaN or infinity (at {start / rate:.1f} s)")
        yield start / rate, stop / rate, resample(samples, rate, sample_rate)
