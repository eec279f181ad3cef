"""MFCC frames, their Gaussian summary, and the packed-row layout.

A track is summarised by one Gaussian over its MFCC frames: a mean vector of
length ``d`` (``d = numcep``) and a full ``d x d`` covariance. Estimators take
Gaussians as *packed rows* so that they fit scikit-learn's ``X`` contract::

    row = [mean (d values), cov[np.triu_indices(d)] (d * (d + 1) / 2 values)]

``d = 13`` gives 104 columns; ``d`` is recovered from the width alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import python_speech_features as psf
import python_speech_features.base  # noqa: F401 - psf.base and psf.sigproc below
from scipy.fftpack import dct  # the DCT python_speech_features uses

from .errors import FeatureError, ParameterError

__all__ = [
    "MFCCParams",
    "mfcc_frames",
    "gaussian",
    "track_gaussian",
    "pack",
    "unpack",
    "packed_width",
    "dim_from_width",
    "packed_dim",
]


@dataclass(frozen=True, eq=False)
class MFCCParams:
    """MFCC settings, identical to the original tutorial's at 22050 Hz.

    Parameters
    ----------
    sample_rate : int, default=22050
        Rate in Hz that all audio is resampled to before analysis.
    winlen : float, default=0.020
        Frame length in seconds.
    winstep : float, default=0.010
        Hop between frames in seconds.
    numcep : int, default=13
        Number of cepstral coefficients kept, the Gaussian's dimension ``d``.
    nfilt : int, default=26
        Number of mel filters.
    nfft : int or None, default=None
        FFT size. ``None`` picks the smallest power of two that holds one
        frame (512 at 22050 Hz and 20 ms); python_speech_features would
        otherwise silently truncate longer frames.
    preemph : float, default=0.97
        Pre-emphasis coefficient; 0 disables the filter.
    ceplifter : int, default=22
        Cepstral lifter; 0 disables it.

    Examples
    --------
    >>> from knn_genre.features import MFCCParams
    >>> MFCCParams().fft_size
    512
    >>> MFCCParams(sample_rate=44100).fft_size
    1024
    """

    sample_rate: int = 22050
    winlen: float = 0.020
    winstep: float = 0.010
    numcep: int = 13
    nfilt: int = 26
    nfft: int | None = None
    preemph: float = 0.97
    ceplifter: int = 22

    def __post_init__(self):
        _check_int("sample_rate", self.sample_rate, minimum=1000)
        _check_int("numcep", self.numcep, minimum=1)
        _check_int("nfilt", self.nfilt, minimum=1)
        _check_int("ceplifter", self.ceplifter, minimum=0)
        for name in ("winlen", "winstep"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ParameterError(f"{name}={value!r} must be a positive number of seconds")
        if self.numcep > self.nfilt:
            raise ParameterError(
                f"numcep={self.numcep} must not exceed nfilt={self.nfilt}: "
                "there are only nfilt cepstral coefficients"
            )
        if not (0.0 <= self.preemph < 1.0):
            raise ParameterError(f"preemph={self.preemph!r} must be in [0, 1)")
        if self.frame_length < 2:
            raise ParameterError(
                f"winlen={self.winlen} s at sample_rate={self.sample_rate} Hz gives "
                f"{self.frame_length} sample(s) per frame; at least 2 are needed"
            )
        if self.nfft is not None:
            _check_int("nfft", self.nfft, minimum=self.frame_length)

    def __eq__(self, other):
        # nfft=None and the size it resolves to describe the same analysis.
        if not isinstance(other, MFCCParams):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(tuple(self.to_dict().items()))

    @property
    def frame_length(self) -> int:
        """Samples per frame, rounded as python_speech_features rounds."""
        return int(_round_half_up(self.winlen * self.sample_rate))

    @property
    def fft_size(self) -> int:
        """The FFT size actually used: ``nfft`` or the smallest power of two >= one frame."""
        if self.nfft is not None:
            return self.nfft
        return 1 << (self.frame_length - 1).bit_length()

    @property
    def min_frames(self) -> int:
        """Fewest frames that give a full-rank covariance estimate: ``numcep + 1``."""
        return self.numcep + 1

    def to_dict(self) -> dict:
        """Plain dict of the settings, with ``nfft`` resolved to the size used."""
        out = asdict(self)
        out["nfft"] = self.fft_size
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "MFCCParams":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ParameterError(f"unknown MFCC parameter(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)


def _check_int(name, value, *, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{name}={value!r} must be an integer >= {minimum}")


def _round_half_up(x: float) -> float:
    # python_speech_features.sigproc.round_half_up, so frame counts agree.
    import decimal

    return float(decimal.Decimal(x).quantize(decimal.Decimal("1"), rounding=decimal.ROUND_HALF_UP))


def frame_count(n_samples: int, params: MFCCParams) -> int:
    """Frames python_speech_features cuts from ``n_samples`` samples (the last one zero-padded)."""
    frame_len = params.frame_length
    step = int(_round_half_up(params.winstep * params.sample_rate))
    if n_samples <= frame_len:
        return 1
    return 1 + int(math.ceil((n_samples - frame_len) / step))


def mfcc_frames(signal: np.ndarray, params: MFCCParams = MFCCParams()) -> np.ndarray:
    """MFCC frames of a mono signal, equal to ``python_speech_features.mfcc``.

    The result is that of ``psf.mfcc(signal, sample_rate, winlen, winstep,
    numcep, nfilt, nfft, preemph=..., ceplifter=..., appendEnergy=False)``,
    computed with python_speech_features' own power spectrum, filter bank
    and lifter, and its pre-emphasis arithmetic (tested). What differs is
    how the work is laid out:

    - psf builds an index array and a copy of every frame (and multiplies
      by a window of ones), which took more than half of the time; here the
      frames are a strided view of the padded signal, the same numbers
      without the copies;
    - frames are analysed ``_BLOCK_FRAMES`` (512, about 5 s) at a time,
      from pre-emphasis to cepstra, so that their samples and spectra stay
      in the CPU caches: faster on one core, and more so when two processes
      share the machine, and memory stays bounded on long files.

    Up to 512 frames the result is psf's bit for bit. Beyond, it differs in
    the last bits (about 1e-15 relative): BLAS rounds the filter-bank
    product of a row differently depending on how many rows it is given.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
        Float samples in [-1, 1] at ``params.sample_rate``.
    params : MFCCParams

    Returns
    -------
    frames : ndarray of shape (n_frames, params.numcep)
    """
    signal = np.asarray(signal, dtype=np.float64)
    sr = params.sample_rate
    frame_len = params.frame_length
    step = int(_round_half_up(params.winstep * sr))
    n = frame_count(len(signal), params)
    bank = psf.base.get_filterbanks(params.nfilt, params.fft_size, sr, 0, sr / 2)
    blocks = []
    for first in range(0, n, _BLOCK_FRAMES):
        m = min(_BLOCK_FRAMES, n - first)
        samples = _preemphasised(signal, first * step, (m - 1) * step + frame_len, params.preemph)
        frames = np.lib.stride_tricks.sliding_window_view(samples, frame_len)[::step]
        blocks.append(_block_mfcc(frames, params, bank))
    return np.concatenate(blocks)


# Frames analysed at once: their samples and spectra (about 1 MB at the
# defaults) stay in the CPU caches; see mfcc_frames.
_BLOCK_FRAMES = 512


def _preemphasised(signal: np.ndarray, start: int, length: int, coeff: float) -> np.ndarray:
    """``length`` samples from ``start`` of psf's pre-emphasised signal, zero-padded past its end.

    psf computes ``append(x[0], x[1:] - coeff * x[:-1])``; each sample
    depends only on itself and the one before, so any stretch can be
    computed alone, with the same arithmetic.
    """
    out = np.empty(length)
    stop = max(min(start + length, len(signal)), start)
    out[stop - start :] = 0.0  # past the end of the signal
    if start == stop:
        return out
    if start == 0:
        out[0] = signal[0]
        start_ = 1
    else:
        start_ = start
    np.subtract(signal[start_:stop], coeff * signal[start_ - 1 : stop - 1], out=out[start_ - start : stop - start])
    return out


def _block_mfcc(frames: np.ndarray, params: MFCCParams, bank: np.ndarray) -> np.ndarray:
    """MFCCs of a block of frames, python_speech_features' steps after framing."""
    pspec = psf.sigproc.powspec(frames, params.fft_size)
    feat = np.dot(pspec, bank.T)
    feat = np.where(feat == 0, np.finfo(float).eps, feat)  # as psf does, so log() stays finite
    feat = dct(np.log(feat), type=2, axis=1, norm="ortho")[:, : params.numcep]
    return psf.base.lifter(feat, params.ceplifter)


def gaussian(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased full covariance of a set of frames.

    Parameters
    ----------
    frames : ndarray of shape (n_frames, d)
        Needs ``n_frames >= d + 1`` for a covariance that can be full rank.

    Returns
    -------
    mean : ndarray of shape (d,)
    cov : ndarray of shape (d, d), symmetric

    Raises
    ------
    ValueError
        If there are fewer than ``d + 1`` frames.
    """
    frames = np.asarray(frames, dtype=np.float64)
    n, d = frames.shape
    if n < d + 1:
        raise ValueError(f"{n} frame(s) of dimension {d}; a covariance needs at least {d + 1}")
    mean = frames.mean(axis=0)
    cov = np.cov(frames.T)
    # np.cov is symmetric up to rounding; make it exactly so for storage checks.
    cov = 0.5 * (cov + cov.T)
    return mean, cov


def track_gaussian(signal, params: MFCCParams = MFCCParams(), *, path="<signal>"):
    """Gaussian summary of one track's MFCCs.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
        Mono float samples at ``params.sample_rate``.
    params : MFCCParams
    path : str
        Named in the error message.

    Returns
    -------
    mean : ndarray of shape (numcep,)
    cov : ndarray of shape (numcep, numcep)

    Raises
    ------
    FeatureError
        If the signal is too short for a covariance or gives non-finite MFCCs.
    """
    frames = mfcc_frames(signal, params)
    if len(frames) < params.min_frames:
        seconds = len(signal) / params.sample_rate
        raise FeatureError(
            path,
            f"too short: {seconds:.3f} s gives {len(frames)} MFCC frame(s), "
            f"a {params.numcep}-dimensional covariance needs at least {params.min_frames}",
        )
    mean, cov = gaussian(frames)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        raise FeatureError(path, "MFCCs are not finite")
    return mean, cov


def packed_width(d: int) -> int:
    """Columns of a packed row for dimension ``d``: ``d + d * (d + 1) / 2``."""
    return d + d * (d + 1) // 2


def dim_from_width(width: int) -> int:
    """Dimension ``d`` of the Gaussians packed in rows of ``width`` columns.

    Raises
    ------
    ValueError
        If no ``d`` gives that width (3, 4 and 5 are not widths of anything).
    """
    # width = d(d + 3) / 2  =>  d = (-3 + sqrt(9 + 8 width)) / 2
    d = int(round((-3 + math.sqrt(9 + 8 * width)) / 2)) if width > 0 else 0
    if d < 1 or packed_width(d) != width:
        raise ValueError(
            f"{width} columns is not a packed Gaussian width; "
            "valid widths are d + d*(d+1)/2: 2, 5, 9, 14, ..., 104 for d=13"
        )
    return d


def packed_dim(width: int) -> int:
    """:func:`dim_from_width` for an estimator's ``X``: a ParameterError naming the columns."""
    try:
        return dim_from_width(width)
    except ValueError as err:
        raise ParameterError(f"X has n_features={width} columns, which must hold packed Gaussians: {err}") from None


def pack(means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """Pack Gaussians into rows ``[mean, cov[triu]]``.

    Parameters
    ----------
    means : ndarray of shape (n, d)
    covs : ndarray of shape (n, d, d)

    Returns
    -------
    X : ndarray of shape (n, d + d * (d + 1) / 2)
    """
    means = np.asarray(means, dtype=np.float64)
    covs = np.asarray(covs, dtype=np.float64)
    if means.ndim != 2 or covs.shape != means.shape + (means.shape[1],):
        raise ValueError(f"means (n, d) and covs (n, d, d) expected, got {means.shape} and {covs.shape}")
    iu = np.triu_indices(means.shape[1])
    return np.hstack([means, covs[:, iu[0], iu[1]]])


def unpack(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`pack`: rows to ``(means (n, d), covs (n, d, d))``."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"packed Gaussians must be a 2-d array, got shape {X.shape}")
    d = dim_from_width(X.shape[1])
    # Column of X that holds each entry of a d x d covariance: one gather
    # fills both triangles.
    iu = np.triu_indices(d)
    column = np.empty((d, d), dtype=np.intp)
    column[iu] = column.T[iu] = d + np.arange(len(iu[0]))
    covs = np.take(X, column.ravel(), axis=1).reshape(X.shape[0], d, d)
    return X[:, :d].copy(), covs
