"""Reading ``.wav`` files into normalised mono float signals at one rate.

All file reading of audio happens here. Integer PCM is scaled to [-1, 1]
(uint8 ``(x - 128) / 128``, int16 ``x / 2**15``, int32 and 24-bit
``x / 2**31`` because scipy left-justifies 24-bit samples into int32), float
files pass through, channels are averaged and other rates are resampled with
:func:`scipy.signal.resample_poly`.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

from .errors import AudioError

__all__ = ["read_wav", "to_float", "to_mono", "resample"]

# Divisor that maps each integer dtype onto [-1, 1]; uint8 is also offset.
_INT_SCALE = {
    np.dtype(np.uint8): 2.0**7,
    np.dtype(np.int16): 2.0**15,
    np.dtype(np.int32): 2.0**31,
    np.dtype(np.int64): 2.0**63,
}


def to_float(data: np.ndarray) -> np.ndarray:
    """Scale PCM samples to float64 in [-1, 1].

    Parameters
    ----------
    data : ndarray of shape (n_samples,) or (n_samples, n_channels)
        As returned by :func:`scipy.io.wavfile.read`: uint8, int16, int32
        (also 24-bit, left-justified), int64, float32 or float64.

    Returns
    -------
    ndarray of float64, same shape

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.audio import to_float
    >>> to_float(np.array([-32768, 0, 16384], dtype=np.int16))
    array([-1. ,  0. ,  0.5])
    >>> to_float(np.array([0, 128, 255], dtype=np.uint8))
    array([-1.       ,  0.       ,  0.9921875])
    """
    dtype = data.dtype
    if dtype.kind == "f":
        return data.astype(np.float64, copy=False)
    if dtype not in _INT_SCALE:
        raise TypeError(f"unsupported sample type {dtype}; expected uint8, int16, int32, int64 or float")
    scale = _INT_SCALE[dtype]
    out = data.astype(np.float64)
    if dtype == np.uint8:
        out -= 128.0
    out /= scale
    return out


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average channels: (n_samples, n_channels) -> (n_samples,); mono passes through."""
    if data.ndim == 1:
        return data
    return data.mean(axis=1)


def resample(signal: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Resample a 1-d signal from ``rate`` to ``target_rate`` Hz (polyphase, exact ratio)."""
    if rate == target_rate:
        return signal
    g = math.gcd(int(rate), int(target_rate))
    return resample_poly(signal, target_rate // g, rate // g)


def read_wav(path: str | os.PathLike, sample_rate: int = 22050) -> np.ndarray:
    """Read a ``.wav`` file as a mono float64 signal at ``sample_rate`` Hz.

    Parameters
    ----------
    path : str or path-like
    sample_rate : int, default=22050
        Target rate in Hz.

    Returns
    -------
    signal : ndarray of shape (n_samples,), float64 in [-1, 1]

    Raises
    ------
    AudioError
        If the file cannot be opened or decoded as a wav, holds no samples,
        or holds non-finite samples. The message names the file.
    """
    path = os.fspath(path)
    rate, data = _decode(path)
    if data.size == 0:
        raise AudioError(path, "no audio samples (0 frames)")
    if data.ndim > 2:
        raise AudioError(path, f"unexpected sample array of shape {data.shape}")
    try:
        signal = to_mono(to_float(data))
    except TypeError as exc:
        raise AudioError(path, str(exc)) from None
    if not np.all(np.isfinite(signal)):
        raise AudioError(path, "samples contain NaN or infinity")
    return resample(signal, rate, sample_rate)


def _decode(path: str) -> tuple[int, np.ndarray]:
    """scipy's decoder with every failure turned into an AudioError."""
    if os.path.isdir(path):
        raise AudioError(path, "is a directory, not a wav file")
    with warnings.catch_warnings():
        # scipy warns (rather than fails) on truncated or odd chunks; a
        # silently shortened track would give wrong features, so fail.
        warnings.simplefilter("error", wavfile.WavFileWarning)
        try:
            rate, data = wavfile.read(path, mmap=False)
        except wavfile.WavFileWarning as exc:
            raise AudioError(path, f"damaged wav: {_first_line(exc)}") from None
        except PermissionError:
            raise AudioError(path, "permission denied") from None
        except FileNotFoundError:
            raise AudioError(path, "no such file") from None
        except OSError as exc:
            raise AudioError(path, f"cannot read: {exc.strerror or exc}") from None
        except (ValueError, EOFError, IndexError, TypeError, MemoryError, OverflowError) as exc:
            raise AudioError(path, f"not a readable wav file: {_first_line(exc)}") from None
    if rate <= 0:
        raise AudioError(path, f"invalid sample rate {rate} Hz in the header")
    return int(rate), data


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
