"""Turning a folder of tracks into a :class:`~knn_genre.store.FeatureSet`.

Tracks are analysed independently, in parallel with joblib; results are
collected in path order, so the output is the same whatever the number of
jobs. Unchanged tracks (same relative path, genre, size and modification
time, same MFCC parameters) are copied from a previous feature file instead
of being analysed again.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from .audio import read_wav
from .dataset import Discovery, Track
from .errors import KnnGenreError
from .features import MFCCParams, track_gaussian
from .store import FeatureSet

__all__ = ["BuildReport", "analyse_track", "build_featureset", "reusable"]


@dataclass
class BuildReport:
    """What a build did, for the closing summary."""

    analysed: int = 0
    reused: int = 0
    skipped: list = field(default_factory=list)
    ignored: tuple = ()
    seconds: float = 0.0


def analyse_track(path: str | os.PathLike, params: MFCCParams = MFCCParams()):
    """Mean and covariance of one file's MFCCs.

    Parameters
    ----------
    path : str or path-like
        A ``.wav`` file.
    params : MFCCParams

    Returns
    -------
    mean : ndarray of shape (numcep,)
    cov : ndarray of shape (numcep, numcep)

    Raises
    ------
    AudioError, FeatureError
        With the path and the reason.
    """
    signal = read_wav(path, params.sample_rate)
    return track_gaussian(signal, params, path=os.fspath(path))


def _analyse_safely(path: str, params: MFCCParams):
    """Worker: ``("ok", mean, cov)`` or ``("skip", reason)``; never raises.

    One broken file must not stop the others, so even unexpected errors
    become a reason that names their type.
    """
    try:
        # One BLAS thread everywhere: multi-threaded reductions round
        # differently, and the output must not depend on --jobs.
        with threadpool_limits(limits=1, user_api="blas"):
            mean, cov = analyse_track(path, params)
        return ("ok", mean, cov)
    except KnnGenreError as exc:
        return ("skip", getattr(exc, "reason", str(exc)))
    except Exception as exc:  # noqa: BLE001 - reported per file, see docstring
        return ("skip", f"unexpected {type(exc).__name__}: {exc}")


def reusable(previous: FeatureSet | None, params: MFCCParams, data_dir: str) -> dict:
    """Map ``path -> (genre, size, mtime_ns, mean, cov)`` of reusable tracks.

    Nothing is reusable from a file built with other MFCC parameters or from
    another folder.
    """
    if previous is None or previous.params != params or previous.data_dir != data_dir:
        return {}
    return {
        p: (g, int(s), int(t), m, c)
        for p, g, s, t, m, c in zip(
            previous.paths.tolist(), previous.labels.tolist(), previous.file_sizes,
            previous.file_mtimes_ns, previous.means, previous.covs,
        )
    }


def build_featureset(
    data_dir: str | os.PathLike,
    discovery: Discovery,
    params: MFCCParams = MFCCParams(),
    *,
    n_jobs: int = -1,
    previous: FeatureSet | None = None,
    on_progress=None,
) -> tuple[FeatureSet | None, BuildReport]:
    """Analyse every discovered track, reusing unchanged ones from ``previous``.

    Parameters
    ----------
    data_dir : str or path-like
        The folder the discovered paths are relative to.
    discovery : Discovery
        From :func:`knn_genre.dataset.discover`.
    params : MFCCParams
    n_jobs : int, default=-1
        Worker processes (joblib convention: -1 means all cores).
    previous : FeatureSet, optional
        An earlier build of the same folder to reuse tracks from.
    on_progress : callable(done, total), optional

    Returns
    -------
    featureset : FeatureSet or None
        None when no track could be built.
    report : BuildReport
    """
    start = time.perf_counter()
    root = Path(data_dir)
    data_dir_key = str(root.resolve())
    old = reusable(previous, params, data_dir_key)
    report = BuildReport(ignored=discovery.ignored)

    stats, results, todo = [], {}, []
    for i, track in enumerate(discovery.tracks):
        size, mtime = _stat(root / track.path)
        stats.append((size, mtime))
        hit = old.get(track.path)
        if hit is not None and hit[:3] == (track.genre, size, mtime) and size >= 0:
            results[i] = ("ok", hit[3], hit[4])
        else:
            todo.append(i)
    report.reused = len(results)

    total = len(discovery.tracks)
    if on_progress:
        on_progress(len(results), total)
    if todo:
        jobs = Parallel(n_jobs=n_jobs, return_as="generator", batch_size=1)(
            delayed(_analyse_safely)(str(root / discovery.tracks[i].path), params) for i in todo
        )
        for i, outcome in zip(todo, jobs):
            results[i] = outcome
            if on_progress:
                on_progress(len(results), total)
    report.analysed = len(todo)

    kept = [i for i in range(total) if results[i][0] == "ok"]
    report.skipped = [(discovery.tracks[i].path, results[i][1]) for i in range(total) if results[i][0] != "ok"]
    report.seconds = time.perf_counter() - start
    if not kept:
        return None, report
    tracks: list[Track] = [discovery.tracks[i] for i in kept]
    fs = FeatureSet(
        means=np.stack([results[i][1] for i in kept]),
        covs=np.stack([results[i][2] for i in kept]),
        labels=[t.genre for t in tracks],
        paths=[t.path for t in tracks],
        params=params,
        file_sizes=[stats[i][0] for i in kept],
        file_mtimes_ns=[stats[i][1] for i in kept],
        skipped=tuple(report.skipped),
        data_dir=data_dir_key,
    )
    return fs, report


def _stat(path: Path) -> tuple[int, int]:
    """Size and mtime in ns, or (-1, -1) when the file cannot be stat'ed."""
    try:
        st = path.stat()
    except OSError:
        return -1, -1
    return int(st.st_size), int(st.st_mtime_ns)
