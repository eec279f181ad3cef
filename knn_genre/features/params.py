"""Feature parameters: ``MFCCParams`` (the Gaussian family) and ``TableParams`` (the table family).

Pure Python, so that feature files and models can be read and described
without importing any DSP library.
"""

from __future__ import annotations

import decimal
from dataclasses import asdict, dataclass, fields

from ..errors import ParameterError, check_choice, check_integer, check_number

__all__ = ["MFCCParams", "TableParams", "TABLE_STATISTICS", "round_half_up"]


def _from_fields(cls, values: dict, what: str):
    """``cls(**values)``, naming any key that is not one of its fields."""
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ParameterError(f"unknown {what} parameter(s) {sorted(unknown)}; known: {sorted(known)}")
    return cls(**values)


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
        return _from_fields(cls, values, "MFCC")


#: The frame-level features of the table family, in the column order of
#: GTZAN's ``features_30_sec.csv``, each summarised by its mean and variance
#: over frames (``tempo`` is one number per stretch and comes after them).
TABLE_STATISTICS = (
    "chroma_stft", "rms", "spectral_centroid", "spectral_bandwidth", "rolloff",
    "zero_crossing_rate", "harmony", "perceptr",
)


@dataclass(frozen=True)
class TableParams:
    """Settings of the table family: those of GTZAN's published feature tables.

    Parameters
    ----------
    sample_rate : int, default=22050
        Rate in Hz that audio is resampled to (librosa's default).
    n_fft : int, default=2048
        Frame and FFT length in samples, centred frames (``n_fft // 2``
        zeros each side).
    hop_length : int, default=512
        Samples between frames.
    n_mels : int, default=128
        Mel bands (Slaney-style, area-normalised) of the MFCCs and of the
        onset envelope that ``tempo`` comes from.
    n_mfcc : int, default=20
        MFCCs kept (DCT-II, orthonormal, of the mel power in dB).
    hpss_width : int, default=31
        Median-filter length of the harmonic/percussive separation, in
        frames (harmonic) and bins (percussive); odd.
    pad_mode : {"reflect", "constant"}, default="reflect"
        How a signal is extended by half a frame each side for the centred
        frames of the spectra and of ``rms``. The published tables were
        computed with librosa's default of the time (up to version 0.9),
        ``"reflect"``; librosa pads zeros (``"constant"``) since 0.10. On
        real GTZAN clips the two differ by up to 5 % of a column's spread in
        the variances of short clips' MFCCs, and can move the tempo estimate.

    Examples
    --------
    >>> from knn_genre.features.params import TableParams
    >>> columns = TableParams().columns()
    >>> len(columns), columns[:3], columns[16:18], columns[-1]
    (57, ['chroma_stft_mean', 'chroma_stft_var', 'rms_mean'], ['tempo', 'mfcc1_mean'], 'mfcc20_var')
    """

    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    n_mfcc: int = 20
    hpss_width: int = 31
    pad_mode: str = "reflect"

    def __post_init__(self):
        check_integer("sample_rate", self.sample_rate, 1000)
        check_integer("n_fft", self.n_fft, 16)
        check_integer("hop_length", self.hop_length, 1)
        check_integer("n_mels", self.n_mels, 1)
        check_integer("n_mfcc", self.n_mfcc, 1)
        check_integer("hpss_width", self.hpss_width, 1)
        if self.n_fft % 2:
            raise ParameterError(f"n_fft={self.n_fft} must be even")
        if self.hop_length > self.n_fft:
            raise ParameterError(f"hop_length={self.hop_length} must not exceed n_fft={self.n_fft}: frames would leave gaps")
        if self.n_mfcc > self.n_mels:
            raise ParameterError(f"n_mfcc={self.n_mfcc} must not exceed n_mels={self.n_mels}")
        check_choice("pad_mode", self.pad_mode, ("reflect", "constant"))
        if self.hpss_width % 2 == 0:
            raise ParameterError(f"hpss_width={self.hpss_width} must be odd, so that the median window is centred")

    def columns(self) -> list[str]:
        """Names of the table columns, in the published order."""
        names = [f"{name}_{stat}" for name in TABLE_STATISTICS for stat in ("mean", "var")]
        names.append("tempo")
        names += [f"mfcc{i}_{stat}" for i in range(1, self.n_mfcc + 1) for stat in ("mean", "var")]
        return names

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TableParams":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        return _from_fields(cls, values, "table")


def round_half_up(x: float) -> float:
    """python_speech_features.sigproc.round_half_up, so that frame counts agree with it."""
    return float(decimal.Decimal(x).quantize(decimal.Decimal("1"), rounding=decimal.ROUND_HALF_UP))
