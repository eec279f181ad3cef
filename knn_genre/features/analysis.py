"""The one path from an audio file to features.

file -> :func:`~knn_genre.audio.open_audio` (header checked) -> spans cut in
the file's own frames (the whole file, consecutive segments, or overlapping
windows) -> each span read on its own, as mono float64 -> resampled to the
family's rate -> the family's features.

``build_features`` (whole tracks and ``--segment-seconds``) and ``predict``
(windows) both call :func:`analyse_file`, so the same stretch of a file gives
the same features bit for bit whichever command computed it, at any sample
rate and channel count. Only one span of samples is in memory at a time.
Several families (the Gaussians and the table, say) are computed from the
same span, read once.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..audio import open_audio, resample, window_spans
from ..audio.signal import constant_value
from ..audio.windows import seconds_to_frames
from ..errors import AnalysisStopped, FeatureError, check_number

__all__ = ["Analysis", "spans_of", "analyse_file"]


@dataclass(frozen=True)
class Analysis:
    """The features of one file's spans.

    Attributes
    ----------
    path : str
    spans : ndarray of shape (k, 2)
        ``[start, end]`` of each analysed span, in seconds of the file.
    arrays : dict of str -> ndarray
        The family's arrays stacked over the spans (``means`` (k, d),
        ``covs`` (k, d, d) for the Gaussian family).
    dropped : tuple of (start_s, end_s, reason)
        Spans left out because every sample in them is the same (silence, DC).
    seconds : float
        Duration of the file.
    """

    path: str
    spans: np.ndarray
    arrays: dict
    dropped: tuple
    seconds: float

    def __len__(self) -> int:
        return len(self.spans)


@functools.lru_cache(maxsize=1)
def _blas():
    """The process's BLAS libraries (found once: looking them up takes 0.2 ms, limiting them 7 us)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def spans_of(frames: int, rate: int, window_seconds: float | None = None, hop_seconds: float | None = None) -> list[tuple[int, int]]:
    """Frame spans of a file of ``frames`` frames at ``rate`` Hz.

    ``window_seconds=None`` is the whole file; otherwise windows of that
    length every ``hop_seconds`` (default: the window, i.e. consecutive
    segments), as :func:`knn_genre.audio.window_spans` places them.
    """
    if window_seconds is None:
        return [(0, frames)]
    check_number("window_seconds", window_seconds, minimum=0, strict=True, unit="seconds")
    hop_seconds = window_seconds if hop_seconds is None else hop_seconds
    check_number("hop_seconds", hop_seconds, minimum=0, strict=True, unit="seconds")
    return window_spans(frames, seconds_to_frames(window_seconds, rate), seconds_to_frames(hop_seconds, rate))


def analyse_file(
    path: str | os.PathLike,
    family,
    *,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Analysis:
    """Features of a whole file, of its segments, or of its windows.

    Parameters
    ----------
    path : str or path-like
        An audio file of a supported format.
    family : feature family, or sequence of them
        E.g. :class:`~knn_genre.features.families.GaussianFamily`; several
        families are computed from each span read once, their arrays merged
        (their keys differ).
    window_seconds : float, optional
        None analyses the whole file as one span. Otherwise spans of this
        length; a tail shorter than half a hop joins the last span.
    hop_seconds : float, optional
        Seconds between span starts; default ``window_seconds`` (segments).
    should_stop : callable () -> bool, optional
        Asked before each span is read; True ends the analysis there (a
        server stops the analysis of a request that ran out of time).

    Returns
    -------
    Analysis

    Raises
    ------
    AnalysisStopped
        When ``should_stop`` returned True.
    AudioError, FeatureError
        With the path and a one-line reason: the file cannot be read, every
        span is silent or constant, a span is too short for the family, the
        features are not finite, or the file is too large for memory.
    """
    path = os.fspath(path)
    families = tuple(family) if isinstance(family, (list, tuple)) else (family,)
    # One BLAS thread: multi-threaded matrix products round differently, and
    # the features of a stretch must not depend on which command (or how
    # many worker processes) computed them.
    with _blas().limit(limits=1, user_api="blas"), open_audio(path) as source:
        rate, frames = source.sample_rate, source.frames
        spans = spans_of(frames, rate, window_seconds, hop_seconds)
        kept, rows, dropped, constants = [], [], [], []
        for a, b in spans:
            if should_stop is not None and should_stop():
                raise AnalysisStopped(f"{path}: analysis stopped at {a / rate:.1f} s of {frames / rate:.1f} s")
            signal = source.read(a, b)
            value = constant_value(signal)
            if value is not None:
                constants.append(value)
                dropped.append((a / rate, b / rate, _constant_reason(value)))
                continue
            rows.append(_compute_all(families, signal, rate, path))
            kept.append((a, b))
    if not rows:
        raise FeatureError(path, _all_constant_reason(constants, len(spans)))
    arrays = {key: np.stack([row[key] for row in rows]) for key in rows[0]}
    return Analysis(path, np.array(kept, dtype=np.float64) / rate, arrays, tuple(dropped), frames / rate)


def _compute_all(families, signal: np.ndarray, rate: int, path: str) -> dict:
    row = {}
    for family in families:
        row.update(_compute(family, signal, rate, path))
    return row


def _compute(family, signal: np.ndarray, rate: int, path: str) -> dict:
    try:
        # Overflow in the features of absurd float samples is reported as a
        # FeatureError ("not finite"), not as warnings on the terminal.
        with np.errstate(all="ignore"):
            return family.compute(resample(signal, rate, family.sample_rate), path=path)
    except MemoryError:
        raise FeatureError(path, f"too large to analyse in memory ({len(signal) / rate:.0f} s of audio)") from None


def _constant_reason(value: float) -> str:
    if value == 0:
        return "digital silence: every sample is 0"
    return f"constant signal (DC offset only): every sample is {value:.6g}"


def _all_constant_reason(values: list, n_spans: int) -> str:
    if len(set(values)) == 1:
        return _constant_reason(values[0])
    return f"every one of its {n_spans} segments is silent or constant (no timbre to analyse)"
