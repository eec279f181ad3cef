"""The table family: the 57 features of GTZAN's published ``features_30_sec.csv``.

GTZAN's feature tables were computed with librosa's default settings at
22050 Hz (frames of 2048 samples every 512, centred, the signal reflected at
its ends as librosa did before version 0.10): for each clip the mean and
variance over frames of

==========================  ==============================================================
column                      librosa function (defaults)
==========================  ==============================================================
``chroma_stft``             ``feature.chroma_stft`` (tuning estimated by ``piptrack``)
``rms``                     ``feature.rms``
``spectral_centroid``       ``feature.spectral_centroid``
``spectral_bandwidth``      ``feature.spectral_bandwidth``
``rolloff``                 ``feature.spectral_rolloff`` (85 %)
``zero_crossing_rate``      ``feature.zero_crossing_rate``
``harmony``, ``perceptr``   the samples of ``effects.hpss``' harmonic and percussive signals
``tempo``                   the tempo ``beat.beat_track`` estimates (one value)
``mfcc1`` ... ``mfcc20``    ``feature.mfcc`` (128 Slaney mel bands, dB, DCT-II orthonormal)
==========================  ==============================================================

:func:`table_features` computes them in numpy and scipy, from librosa's
definitions (tested against librosa itself, and against the published
rows of real GTZAN clips, see the README). It is faster than calling the
librosa functions one by one:

- one STFT serves every feature that needs a spectrum (librosa computes
  it six times); the mel spectrogram in dB serves both the MFCCs and the
  onset envelope behind the tempo;
- the two median filters of the harmonic/percussive separation, most of
  librosa's time, use :func:`knn_genre.features.median.median_filter_1d`
  (the same values, several times faster);
- the percussive signal is the signal minus the harmonic one: the two
  soft masks sum to one and the inverse STFT is linear, so librosa's second
  inverse STFT gives the same samples up to rounding.

Everything is float64 (librosa loads audio as float32, so published values
differ from these in their last float32 digits).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from ..errors import FeatureError
from .median import median_filter_1d
from .params import TableParams
from .spectrum import chroma_filters, fft_frequencies, hann, hz_to_octs, istft, mel_filters, power_to_db, stft

__all__ = ["table_features", "estimate_tuning", "beat_tempo", "TableFamily"]

_TINY = np.finfo(np.float64).tiny


def _mean_var(values: np.ndarray) -> tuple[float, float]:
    return float(np.mean(values)), float(np.var(values))


def _normalize_max(x: np.ndarray, axis: int) -> np.ndarray:
    """``x`` divided by its largest magnitude along ``axis``, where that is not tiny (librosa's ``normalize``)."""
    peak = np.max(np.abs(x), axis=axis, keepdims=True)
    return x / np.where(peak < _TINY, 1.0, peak)


def estimate_tuning(power: np.ndarray, sample_rate: float, n_fft: int) -> float:
    """Deviation from A440 in fractions of a semitone, as ``librosa.estimate_tuning``.

    Peaks of each frame's spectrum between 150 and 4000 Hz, above a tenth
    of the frame's maximum, are located by parabolic interpolation; those
    at least as strong as their median vote, in steps of 0.01 semitone.

    Parameters
    ----------
    power : ndarray of shape (n_frames, n_fft // 2 + 1)
        The spectrum it is estimated from (chroma uses the power spectrum).
    sample_rate : float
    n_fft : int

    Returns
    -------
    float in [-0.5, 0.5)
    """
    freqs = fft_frequencies(sample_rate, n_fft)
    ref = 0.1 * power.max(axis=1, keepdims=True)
    x = power * (power > ref)
    peaks = np.zeros(x.shape, dtype=bool)
    peaks[:, 1:-1] = (x[:, 1:-1] > x[:, :-2]) & (x[:, 1:-1] >= x[:, 2:])
    peaks[:, -1] = x[:, -1] > x[:, -2]
    peaks &= ((freqs >= 150.0) & (freqs < min(4000.0, sample_rate / 2.0)))[None, :]
    t, k = np.nonzero(peaks)
    # The band excludes the first and last bins, whose shift librosa sets to 0.
    up, mid, down = power[t, k + 1], power[t, k], power[t, k - 1]
    a = up + down - 2 * mid
    b = (up - down) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(b) >= np.abs(a), 0.0, -b / a)
    pitch = (k + shift) * sample_rate / n_fft
    mag = mid + 0.5 * b * shift
    voiced = pitch > 0
    if not voiced.any():
        return 0.0
    threshold = np.median(mag[voiced])
    chosen = pitch[(mag >= threshold) & voiced]
    residual = np.mod(12 * hz_to_octs(chosen), 1.0)
    residual[residual >= 0.5] -= 1.0
    counts, edges = np.histogram(residual, np.linspace(-0.5, 0.5, 101))
    return float(edges[np.argmax(counts)])


def beat_tempo(db_mel: np.ndarray, sample_rate: float, params: TableParams) -> float:
    """The tempo in BPM that ``librosa.beat.beat_track`` estimates, from the mel spectrum in dB.

    Onset envelope: the median over mel bands of the positive dB increase
    from one frame to the next, delayed by 3 frames (the lag and half a
    frame). Tempo: the autocorrelation of 8-s Hann-windowed stretches of
    the envelope (each normalised to 1 at lag 0), averaged over time,
    weighted by a log-normal prior around 120 BPM (one octave wide), no
    faster than 320 BPM; the best lag in BPM.

    Parameters
    ----------
    db_mel : ndarray of shape (n_frames, n_mels)
    sample_rate : float
    params : TableParams

    Returns
    -------
    float
        0 for an envelope without onsets, as librosa.
    """
    hop, n = params.hop_length, len(db_mel)
    rise = np.maximum(0.0, db_mel[1:] - db_mel[:-1])
    delay = 1 + params.n_fft // (2 * hop)
    envelope = np.concatenate([np.zeros(delay), np.median(rise, axis=1)])[:n]
    if len(envelope) < n:
        envelope = np.pad(envelope, (0, n - len(envelope)))
    if not envelope.any():
        return 0.0
    win = int(8.0 * sample_rate) // hop
    padded = np.pad(envelope, win // 2, mode="linear_ramp", end_values=0)
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[:n] * hann(win)
    size = scipy.fft.next_fast_len(2 * win - 1, real=True)
    ac = scipy.fft.irfft(np.abs(scipy.fft.rfft(frames, n=size, axis=1)) ** 2, n=size, axis=1)[:, :win]
    strength = _normalize_max(ac, axis=1).mean(axis=0)
    bpms = np.full(win, np.inf)
    bpms[1:] = 60.0 * sample_rate / (hop * np.arange(1.0, win))
    with np.errstate(invalid="ignore"):
        prior = -0.5 * (np.log2(bpms) - np.log2(120.0)) ** 2
    prior[: int(np.argmax(bpms < 320.0))] = -np.inf
    return float(bpms[np.argmax(np.log1p(1e6 * strength) + prior)])


def _zero_crossing_rates(signal: np.ndarray, frame: int, hop: int, n_frames: int) -> np.ndarray:
    """librosa's ``zero_crossing_rate``: crossings inside each edge-padded frame, over its length."""
    padded = np.pad(signal, frame // 2, mode="edge")
    negative = np.signbit(np.where(np.abs(padded) <= 1e-10, 0.0, padded))
    crossed = np.concatenate([[0], np.cumsum(negative[1:] != negative[:-1])])
    starts = np.arange(n_frames) * hop
    # Crossings between samples start..start+frame-1 of a frame, not into its first one.
    return (crossed[starts + frame - 1] - crossed[starts]) / frame


def _rms(signal: np.ndarray, frame: int, hop: int, pad_mode: str) -> np.ndarray:
    padded = np.pad(signal, frame // 2, mode=pad_mode)
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop]
    return np.sqrt(np.einsum("ij,ij->i", frames, frames) / frame)


def _harmonic(spectrum: np.ndarray, magnitude: np.ndarray, params: TableParams, length: int) -> np.ndarray:
    """The harmonic signal of librosa's ``effects.hpss`` (soft masks, power 2, margin 1).

    ``spectrum`` is overwritten (with its harmonic part).
    """
    width = params.hpss_width
    harmonic = median_filter_1d(magnitude, width, axis=0)  # along time
    percussive = median_filter_1d(magnitude, width, axis=1)  # along frequency
    # In place, one spectrogram-sized array at a time: long stretches are big.
    scale = np.maximum(harmonic, percussive)
    silent = scale < _TINY
    scale[silent] = 1.0
    harmonic /= scale
    harmonic **= 2
    percussive /= scale
    percussive **= 2
    del scale
    percussive += harmonic
    with np.errstate(invalid="ignore"):  # 0 / 0 where silent, replaced below
        mask = np.divide(harmonic, percussive, out=harmonic)
    mask[silent] = 0.5  # both medians zero: librosa splits the bin evenly
    del percussive, silent
    spectrum *= mask  # the caller's spectrum: table_features needs it no more
    return istft(spectrum, params.n_fft, params.hop_length, length)


def table_features(signal: np.ndarray, params: TableParams = TableParams()) -> np.ndarray:
    """The table columns of one stretch of audio.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
        Mono float samples in [-1, 1] at ``params.sample_rate``; at least
        ``params.n_fft`` samples.
    params : TableParams

    Returns
    -------
    ndarray of shape (len(params.columns()),)
        In the order of :meth:`TableParams.columns`.
    """
    y = np.asarray(signal, dtype=np.float64)
    sr, n_fft, hop = params.sample_rate, params.n_fft, params.hop_length
    spectrum = stft(y, n_fft, hop, params.pad_mode)
    magnitude = np.abs(spectrum)
    n_frames = len(spectrum)

    freqs = fft_frequencies(sr, n_fft)
    total = magnitude.sum(axis=1)
    norm = np.where(total < _TINY, 1.0, total)  # silent frames stay unnormalised, as in librosa
    first, second = (magnitude @ freqs) / norm, (magnitude @ freqs**2) / norm
    centroid = first
    spread = second - 2 * centroid * first + centroid**2 * (total / norm)
    bandwidth = np.sqrt(np.maximum(spread, 0.0))
    cumulative = np.cumsum(magnitude, axis=1)
    rolloff = freqs[np.argmax(cumulative >= 0.85 * cumulative[:, -1:], axis=1)]
    del cumulative

    power = magnitude**2
    tuning = estimate_tuning(power, sr, n_fft)
    chroma = _normalize_max(power @ chroma_filters(sr, n_fft, tuning).T, axis=1)
    db_mel = power_to_db(power @ mel_filters(sr, n_fft, params.n_mels).T)
    del power
    mfcc = scipy.fft.dct(db_mel, type=2, norm="ortho", axis=1)[:, : params.n_mfcc]
    tempo = beat_tempo(db_mel, sr, params)

    harmony = _harmonic(spectrum, magnitude, params, len(y))
    del spectrum, magnitude
    percussive = y - harmony

    columns = [
        *_mean_var(chroma),
        *_mean_var(_rms(y, n_fft, hop, params.pad_mode)),
        *_mean_var(centroid),
        *_mean_var(bandwidth),
        *_mean_var(rolloff),
        *_mean_var(_zero_crossing_rates(y, n_fft, hop, n_frames)),
        *_mean_var(harmony),
        *_mean_var(percussive),
        tempo,
    ]
    for i in range(params.n_mfcc):
        columns += _mean_var(mfcc[:, i])
    return np.array(columns)


@dataclass(frozen=True)
class TableFamily:
    """GTZAN's published table features of a stretch of audio (see the module docstring).

    ``compute`` returns ``{"table": (57,) values, "length": samples}``, the
    length at ``sample_rate`` being the table's ``length`` column.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.features.table import TableFamily
    >>> family = TableFamily()
    >>> t = np.arange(22050) / 22050
    >>> rows = family.compute(0.5 * np.sin(2 * np.pi * 440 * t))
    >>> rows["table"].shape, int(rows["length"]), family.columns()[0]
    ((57,), 22050, 'chroma_stft_mean')
    >>> round(float(rows["table"][family.columns().index("rms_mean")]), 3)  # 0.5 / sqrt(2)
    0.354
    """

    params: TableParams = field(default_factory=TableParams)
    name = "table"

    @property
    def sample_rate(self) -> int:
        return self.params.sample_rate

    def compute(self, signal: np.ndarray, *, path: str = "<signal>") -> dict:
        if len(signal) < self.params.n_fft:
            seconds = len(signal) / self.params.sample_rate
            raise FeatureError(
                path, f"too short: {seconds:.3f} s; the table features need at least one frame of {self.params.n_fft} samples"
            )
        values = table_features(signal, self.params)
        if not np.all(np.isfinite(values)):
            raise FeatureError(path, "table features are not finite")
        return {"table": values, "length": np.int64(len(signal))}

    def columns(self) -> list[str]:
        return self.params.columns()
