"""Samples to the canonical signal: float scaling, channel mixing, resampling.

Whatever the container, decoded audio goes through the same three steps:
integer PCM scaled to [-1, 1] (uint8 ``(x - 128) / 128``, int16
``x / 2**15``, 24- and 32-bit ``x / 2**31``, samples being left-justified in
their container; float passes through), channels averaged, and other rates
resampled with :func:`scipy.signal.resample_poly`.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..errors import AudioError, ParameterError

__all__ = ["MIN_SAMPLE_RATE", "MAX_SAMPLE_RATE", "to_float", "to_mono", "resample", "check_rate", "constant_value"]

#: Plausible sample rates of a music file, in Hz (telephone audio is 8 kHz). Outside
#: this range a header is damaged, and resampling from it would cost unbounded time
#: and memory: a few megabytes of samples declared at 1 kHz are an hour at 22050 Hz.
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 768000

# Largest term of the up/down ratio given to resample_poly: its filter has
# about 20 * max(up, down) taps, so this bounds the work for odd rates.
_MAX_RATIO_TERM = 2**15

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
        uint8, int16, int32 (also 24-bit, left-justified), int64, float32 or
        float64, in either byte order.

    Returns
    -------
    ndarray of float64, same shape

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.audio.signal import to_float
    >>> to_float(np.array([-32768, 0, 16384], dtype=np.int16))
    array([-1. ,  0. ,  0.5])
    >>> to_float(np.array([0, 128, 255], dtype=np.uint8))
    array([-1.       ,  0.       ,  0.9921875])
    """
    dtype = data.dtype.newbyteorder("=")
    if dtype.kind == "f":
        return np.array(data, dtype=np.float64)  # a copy: never a view of a mapped file
    if dtype not in _INT_SCALE:
        raise ParameterError(f"unsupported sample type {data.dtype}; expected uint8, int16, int32, int64 or float")
    out = data.astype(np.float64)
    if dtype == np.uint8:
        out -= 128.0
    out /= _INT_SCALE[dtype]
    return out


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average channels: (n_samples, n_channels) -> (n_samples,); mono passes through."""
    if data.ndim == 1:
        return data
    return data.mean(axis=1)


def resample(signal: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Resample a 1-d signal from ``rate`` to ``target_rate`` Hz (polyphase).

    The ratio is exact for every common rate (8000, 11025, 16000, 44100,
    48000, 96000, ... Hz). For an odd rate whose exact ratio would need a
    filter of millions of taps, the nearest ratio with terms up to 32768 is
    used instead; the rates then differ by less than a millionth.
    """
    if rate == target_rate:
        return signal
    ratio = Fraction(int(target_rate), int(rate))
    if max(ratio.numerator, ratio.denominator) > _MAX_RATIO_TERM:
        # Bound the denominator (down) so that the numerator (up) stays bounded too.
        max_down = max(1, min(_MAX_RATIO_TERM, _MAX_RATIO_TERM * int(rate) // int(target_rate)))
        ratio = ratio.limit_denominator(max_down)
    # Imported here: scipy.signal takes half a second to import, and most
    # collections need no resampling (worker start-up time matters).
    from scipy.signal import resample_poly

    return resample_poly(signal, ratio.numerator, ratio.denominator)


def check_rate(path: str, rate) -> int:
    """``rate`` if it is a plausible sample rate, else an AudioError naming ``path``."""
    if not rate:
        raise AudioError(path, "damaged header: sample rate 0 Hz")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            path, f"implausible sample rate {rate} Hz in the header (supported: {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz)"
        )
    return int(rate)


def constant_value(signal: np.ndarray):
    """The value of every sample if they are all equal, else None.

    Digital silence and a constant (DC) signal give identical MFCC frames,
    hence an all-zero or rank-one covariance: features with no timbre that
    nothing can be compared with. Tested before resampling, which would add
    ripple at the edges of a constant signal.

    >>> import numpy as np
    >>> from knn_genre.audio.signal import constant_value
    >>> constant_value(np.zeros(4)), constant_value(np.array([0.0, 0.1]))
    (0.0, None)
    """
    if len(signal) and np.all(signal == signal[0]):
        return float(signal[0])
    return None
