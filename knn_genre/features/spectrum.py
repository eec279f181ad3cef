"""Short-time Fourier analysis and filter banks, as librosa defines them, in numpy.

The table family (:mod:`knn_genre.features.table`) reproduces features that
GTZAN's authors computed with librosa; these are the pieces they rest on,
written from librosa's definitions (``core/spectrum.py``, ``filters.py``,
``core/convert.py``) so that the package needs no librosa at run time:

- :func:`stft`: centred frames (the signal padded by ``n_fft // 2`` samples
  each side, reflected as librosa did up to version 0.9, or zeros as it has
  since 0.10), periodic Hann window, ``rfft``; one row per frame;
- :func:`istft`: the inverse by windowed overlap-add, divided by the summed
  squared window, trimmed to the signal's length;
- :func:`mel_filters`: Slaney-style mel filters (``htk=False``), area-normalised
  (``norm="slaney"``);
- :func:`chroma_filters`: librosa's Gaussian chroma bumps (``filters.chroma``);
- :func:`power_to_db`: ``10 log10(max(S, 1e-10))``, floored 80 dB below the peak.

Arrays are time-major: ``(n_frames, n_bins)``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

__all__ = ["hann", "frame_count", "stft", "istft", "fft_frequencies", "mel_filters", "chroma_filters", "power_to_db", "hz_to_octs"]


def hann(n: int) -> np.ndarray:
    """The periodic Hann window of ``n`` samples (``scipy.signal.get_window("hann", n)``)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def frame_count(n_samples: int, hop_length: int) -> int:
    """Centred frames of a signal of ``n_samples``: ``1 + n_samples // hop_length``."""
    return 1 + n_samples // hop_length


def stft(signal: np.ndarray, n_fft: int, hop_length: int, pad_mode: str = "reflect") -> np.ndarray:
    """Complex spectrum of centred, Hann-windowed frames.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
    n_fft : int > 0, even
    hop_length : int > 0
    pad_mode : {"reflect", "constant"}, default="reflect"
        How the signal is extended by ``n_fft // 2`` samples each side
        (``numpy.pad`` modes; "constant" pads zeros).

    Returns
    -------
    ndarray of shape (1 + n_samples // hop_length, n_fft // 2 + 1), complex128
        Frame ``t`` is centred on sample ``t * hop_length``.
    """
    padded = np.pad(np.asarray(signal, dtype=np.float64), n_fft // 2, mode=pad_mode)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    window = hann(n_fft)
    out = np.empty((len(frames), n_fft // 2 + 1), dtype=np.complex128)
    # Blocks of frames: the windowed copies stay small on long signals.
    for first in range(0, len(frames), _BLOCK_FRAMES):
        block = slice(first, first + _BLOCK_FRAMES)
        out[block] = scipy.fft.rfft(frames[block] * window, axis=1)
    return out


#: Frames transformed at once by :func:`stft` and :func:`istft`.
_BLOCK_FRAMES = 512


def _overlap_add(frames: np.ndarray, hop_length: int, out: np.ndarray, offset: int = 0) -> None:
    """Add ``frames`` (n, w), placed every ``hop_length`` samples from ``offset``, into ``out``."""
    n, width = frames.shape
    # Frames ``stride`` apart do not overlap: add each such set as one
    # contiguous run instead of frame by frame.
    stride = -(-width // hop_length)
    for first in range(min(stride, n)):
        chosen = frames[first::stride]
        run = np.zeros((len(chosen), stride * hop_length))
        run[:, :width] = chosen
        begin = offset + first * hop_length
        end = min(begin + run.size, len(out))
        out[begin:end] += run.ravel()[: end - begin]


def istft(spectrum: np.ndarray, n_fft: int, hop_length: int, length: int) -> np.ndarray:
    """The signal of ``length`` samples whose :func:`stft` is ``spectrum``.

    librosa's ``istft(..., center=True, length=length)``: inverse FFT of each
    frame, Hann window, overlap-add, division by the summed squared window
    where it is not tiny, centre padding removed.
    """
    window = hann(n_fft)
    n = len(spectrum)
    size = max(length + n_fft, (n - 1) * hop_length + n_fft)
    full, weight = np.zeros(size), np.zeros(size)
    for first in range(0, n, _BLOCK_FRAMES):
        frames = scipy.fft.irfft(spectrum[first : first + _BLOCK_FRAMES], n=n_fft, axis=1)
        frames *= window
        _overlap_add(frames, hop_length, full, first * hop_length)
        _overlap_add(np.broadcast_to(window**2, frames.shape), hop_length, weight, first * hop_length)
    start = n_fft // 2
    out, weight = full[start : start + length], weight[start : start + length]
    nonzero = weight > np.finfo(np.float64).tiny
    out[nonzero] /= weight[nonzero]
    return out


def fft_frequencies(sample_rate: float, n_fft: int) -> np.ndarray:
    """Centre frequency in Hz of each ``rfft`` bin, shape (n_fft // 2 + 1,)."""
    return np.fft.rfftfreq(n_fft, 1.0 / sample_rate)


def _hz_to_mel(hz):
    # Slaney's scale: linear below 1 kHz, logarithmic above.
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    logstep = np.log(6.4) / 27.0
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-300) / 1000.0) / logstep, linear)


def _mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(logstep * (mel - 15.0)), mel * (200.0 / 3))


def mel_filters(sample_rate: float, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular Slaney mel filters from 0 Hz to Nyquist, area-normalised.

    Returns
    -------
    ndarray of shape (n_mels, n_fft // 2 + 1)
    """
    freqs = fft_frequencies(sample_rate, n_fft)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2.0), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def hz_to_octs(hz, tuning: float = 0.0, bins_per_octave: int = 12):
    """Octaves above A0 / 16 ... as librosa counts them: ``log2(hz / (A440' / 16))``."""
    a440 = 440.0 * 2.0 ** (tuning / bins_per_octave)
    return np.log2(np.asarray(hz, dtype=np.float64) / (a440 / 16))


def chroma_filters(sample_rate: float, n_fft: int, tuning: float = 0.0, n_chroma: int = 12) -> np.ndarray:
    """librosa's ``filters.chroma`` (ctroct 5, octwidth 2, L2-normalised columns, base C).

    Returns
    -------
    ndarray of shape (n_chroma, n_fft // 2 + 1)
    """
    frequencies = np.linspace(0, sample_rate, n_fft, endpoint=False)[1:]
    bins = n_chroma * hz_to_octs(frequencies, tuning=tuning, bins_per_octave=n_chroma)
    # The 0 Hz bin is put 1.5 octaves below bin 1, as librosa does.
    bins = np.concatenate(([bins[0] - 1.5 * n_chroma], bins))
    widths = np.concatenate((np.maximum(bins[1:] - bins[:-1], 1.0), [1.0]))
    distance = bins[None, :] - np.arange(n_chroma, dtype=np.float64)[:, None]
    half = np.round(n_chroma / 2.0)
    distance = np.remainder(distance + half + 10 * n_chroma, n_chroma) - half
    weights = np.exp(-0.5 * (2 * distance / widths[None, :]) ** 2)
    norms = np.sqrt(np.sum(weights**2, axis=0, keepdims=True))
    weights = weights / np.where(norms < np.finfo(np.float64).tiny, 1.0, norms)
    weights *= np.exp(-0.5 * ((bins / n_chroma - 5.0) / 2.0) ** 2)[None, :]
    weights = np.roll(weights, -3 * (n_chroma // 12), axis=0)
    return np.ascontiguousarray(weights[:, : n_fft // 2 + 1])


def power_to_db(power: np.ndarray, top_db: float = 80.0) -> np.ndarray:
    """``10 log10(max(power, 1e-10))`` (reference 1), floored ``top_db`` below its maximum."""
    db = 10.0 * np.log10(np.maximum(power, 1e-10))
    return np.maximum(db, db.max() - top_db)
