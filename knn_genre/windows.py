"""Reading long files window by window, in memory that does not grow with length.

Songs longer than a window are cut into overlapping windows (default 30 s,
hop 15 s); each window is read through a memory map, normalised exactly as
:func:`knn_genre.audio.read_wav` normalises a whole file (scaled to [-1, 1],
channels averaged, resampled), and analysed on its own. Only one window of
samples is held in memory at a time.
"""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Iterator

import numpy as np
from scipy.io import wavfile

from .audio import resample, to_float, to_mono
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


def _pcm24_map(path: str):
    """Memory map of a 24-bit PCM file's samples as raw bytes, shape (n_frames, channels, 3).

    scipy cannot memory-map 3-byte samples, so the chunks are walked here.
    """
    with open(path, "rb") as fh:
        riff = fh.read(12)
        if len(riff) < 12 or riff[:4] not in (b"RIFF",) or riff[8:12] != b"WAVE":
            raise AudioError(path, "not a RIFF/WAVE file")
        channels = rate = None
        size = os.path.getsize(path)
        while True:
            head = fh.read(8)
            if len(head) < 8:
                raise AudioError(path, "no data chunk")
            cid, length = head[:4], struct.unpack("<I", head[4:])[0]
            if cid == b"fmt ":
                fmt = fh.read(length + (length & 1))
                channels, rate = struct.unpack("<HI", fmt[2:8])
            elif cid == b"data":
                if channels is None:
                    raise AudioError(path, "data chunk before the fmt chunk")
                offset = fh.tell()
                length = min(length, size - offset)
                n = length // (3 * channels)
                data = np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=(n, channels, 3))
                return rate, data
            else:
                fh.seek(length + (length & 1), 1)


def _decode_pcm24(raw: np.ndarray) -> np.ndarray:
    """(n, channels, 3) little-endian bytes -> (n, channels) left-justified int32, as scipy reads it."""
    out = np.zeros(raw.shape[:2] + (4,), dtype=np.uint8)
    out[..., 1:] = raw
    return out.view("<i4")[..., 0]


def open_wav(path: str | os.PathLike):
    """Sample rate and a lazily read sample array of a wav file.

    Returns
    -------
    rate : int
    data : ndarray-like of shape (n_frames,) or (n_frames, channels)
        A memory map: slicing reads only that part of the file.
    decode : callable
        Turns a slice of ``data`` into samples that :func:`to_float` accepts.

    Raises
    ------
    AudioError
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise AudioError(path, "is a directory, not a wav file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", wavfile.WavFileWarning)
        try:
            rate, data = wavfile.read(path, mmap=True)
            return int(rate), data, np.asarray
        except ValueError as exc:
            if "3-byte" not in str(exc):
                raise AudioError(path, f"not a readable wav file: {exc}") from None
        except wavfile.WavFileWarning as exc:
            raise AudioError(path, f"damaged wav: {exc}") from None
        except FileNotFoundError:
            raise AudioError(path, "no such file") from None
        except PermissionError:
            raise AudioError(path, "permission denied") from None
        except (OSError, EOFError, IndexError, TypeError, OverflowError) as exc:
            raise AudioError(path, f"not a readable wav file: {exc}") from None
    rate, raw = _pcm24_map(path)
    return int(rate), raw, _decode_pcm24


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
    rate, data, decode = open_wav(path)
    if rate <= 0:
        raise AudioError(path, f"invalid sample rate {rate} Hz in the header")
    n = len(data)
    if n == 0:
        raise AudioError(path, "no audio samples (0 frames)")
    window = max(1, int(round(window_seconds * rate)))
    hop = max(1, int(round(hop_seconds * rate)))
    for start, stop in window_spans(n, window, hop):
        samples = to_mono(to_float(decode(data[start:stop])))
        if not np.all(np.isfinite(samples)):
            raise AudioError(path, f"samples contain NaN or infinity (at {start / rate:.1f} s)")
        yield start / rate, stop / rate, resample(samples, rate, sample_rate)
