"""Cutting a file into segments or overlapping windows, in frames of its own rate.

Spans are computed on the file's own frames, before any resampling, so that
a stretch of audio is cut at the same place whichever command cuts it.
"""

from __future__ import annotations

from ..errors import check_integer

__all__ = ["window_spans", "seconds_to_frames"]


def seconds_to_frames(seconds: float, rate: int) -> int:
    """Frames of ``seconds`` at ``rate`` Hz, rounded, at least 1."""
    return max(1, int(round(seconds * rate)))


def window_spans(n_frames: int, window: int, hop: int) -> list[tuple[int, int]]:
    """``(start, stop)`` frames of the windows covering ``n_frames`` frames.

    Windows of ``window`` frames start every ``hop`` frames. A tail that no
    window reaches gets a window of its own, ending at the last frame, when
    it is at least half a hop long; a shorter tail is added to the last
    window instead (so a 30.01 s clip is one 30.01 s window, not two nearly
    equal ones). A signal shorter than one window is a single window.

    Examples
    --------
    >>> from knn_genre.audio.windows import window_spans
    >>> window_spans(100, 30, 15)
    [(0, 30), (15, 45), (30, 60), (45, 75), (60, 90), (70, 100)]
    >>> window_spans(93, 30, 15)
    [(0, 30), (15, 45), (30, 60), (45, 75), (60, 93)]
    >>> window_spans(20, 30, 15)
    [(0, 20)]
    """
    check_integer("window", window)
    check_integer("hop", hop)
    if n_frames <= window:
        return [(0, n_frames)]
    spans = [(s, s + window) for s in range(0, n_frames - window + 1, hop)]
    tail = n_frames - spans[-1][1]
    if tail * 2 >= hop:
        spans.append((n_frames - window, n_frames))
    elif tail > 0:
        spans[-1] = (spans[-1][0], n_frames)
    return spans
