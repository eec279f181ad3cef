"""MFCC settings: the parameters of the Gaussian feature family.

Pure Python, so that feature files and models can be read and described
without importing any DSP library.
"""

from __future__ import annotations

import decimal
from dataclasses import asdict, dataclass, fields

from ..errors import ParameterError, check_integer, check_number

__all__ = ["MFCCParams", "round_half_up"]


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
    >>> from knn_genre.features.params import MFCCParams
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
        check_integer("sample_rate", self.sample_rate, 1000)
        check_integer("numcep", self.numcep, 1)
        check_integer("nfilt", self.nfilt, 1)
        check_integer("ceplifter", self.ceplifter, 0)
        for name in ("winlen", "winstep"):
            check_number(name, getattr(self, name), minimum=0, strict=True, unit="seconds")
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
            check_integer("nfft", self.nfft, self.frame_length)

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
        return int(round_half_up(self.winlen * self.sample_rate))

    @property
    def frame_step(self) -> int:
        """Samples between the starts of consecutive frames."""
        return int(round_half_up(self.winstep * self.sample_rate))

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


def round_half_up(x: float) -> float:
    """python_speech_features.sigproc.round_half_up, so that frame counts agree with it."""
    return float(decimal.Decimal(x).quantize(decimal.Decimal("1"), rounding=decimal.ROUND_HALF_UP))
