"""Fitting every (model, fold) of an evaluation, in parallel: worker processes or a Dask cluster.

Each (model, outer fold) is one task: clone the model, fit it on the
training side (its own grid search and calibration run inside, in order),
decide the test tracks. Tasks are independent and deterministic (seeded,
one BLAS thread each), so where and in which order they run changes no
number; :func:`fit_folds` returns them keyed by (model, fold), and the
caller aggregates them in its own order.

The tasks go through joblib: its process pool (loky) on one machine, or
joblib's Dask backend on a cluster (:func:`dask_backend`), the grid
searches' fits running inside the tasks. The most expensive models (those
with a grid) are sent first, so that the cheap ones fill the gaps at the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["FoldFit", "fit_folds", "dask_backend"]


@dataclass
class FoldFit:
    """One model fitted on one outer fold, and its decisions on the test side."""

    estimator: object
    rows: np.ndarray
    tracks: np.ndarray
    decided: np.ndarray
    fit_seconds: float
    predict_seconds: float
    track_proba: np.ndarray | None = None  # the mean over each track's rows, columns as the estimator's classes_


def _cost_order(models: dict) -> list[str]:
    """Model names, those with a grid search (the slow ones) first, else in the given order."""
    def searched(name):
        model = models[name]
        spec = getattr(model, "spec", None)
        return spec is not None and getattr(model, "search", False) and spec.variant(model.family).grid is not None

    return sorted(models, key=lambda name: not searched(name))


def _rows(X, model):
    """The rows a model is fitted on: ``X``, or its family's rows of a dict of families."""
    return X[model.family] if isinstance(X, dict) else X


def fit_folds(
    fit_one: Callable,
    models: dict,
    X,
    y: np.ndarray,
    splits,
    groups: np.ndarray,
    *,
    segmented: bool = False,
    n_jobs: int | None = 1,
    on_done: Callable[[str, int], None] | None = None,
) -> dict:
    """Fit every model on every split; ``{(name, fold): fit_one(...)}``.

    Parameters
    ----------
    fit_one : callable(model, X, y, groups, train, test, segmented)
        The task, a module-level function (worker processes import it by
        name): fit a clone of ``model`` on ``train``, decide ``test``.
    models : dict of name -> estimator
    X : ndarray, or dict of family -> ndarray
        The rows; with a dict, each model gets those of its ``family``.
    y, groups : ndarray
    splits : list of (train, test) index arrays
    segmented : bool
        Rows are segments of tracks (``groups``), passed to the fits that take them.
    n_jobs : int or None, default=1
        1 (or None): one task after the other, in this process. Otherwise
        joblib's ``n_jobs`` (-1: all cores) with the active joblib backend
        (processes by default; see :func:`dask_backend`).
    on_done : callable(name, fold), optional
        Called in this process as each task finishes, in the order they finish.
    """
    tasks = [(name, fold) for name in _cost_order(models) for fold in range(len(splits))]
    results = {}
    if n_jobs in (None, 1):
        outcomes = (_keyed(fit_one, key, models[key[0]], _rows(X, models[key[0]]), y, groups, *splits[key[1]], segmented) for key in tasks)
    else:
        from joblib import Parallel, delayed

        outcomes = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_keyed)(fit_one, key, models[key[0]], _rows(X, models[key[0]]), y, groups, *splits[key[1]], segmented)
            for key in tasks
        )
    for key, fitted in outcomes:
        results[key] = fitted
        if on_done:
            on_done(*key)
    return results


def _keyed(fit_one, key, *args):
    # One BLAS thread: the parallelism is the tasks', and the numbers must
    # not depend on how many run at once.
    with threadpool_limits(limits=1, user_api="blas"):
        return key, fit_one(*args)


@contextlib.contextmanager
def dask_backend(cluster):
    """joblib's Dask backend on ``cluster`` (a :class:`~knn_genre.pipeline.cluster.Cluster`'s client) for the block."""
    from joblib import parallel_config

    with cluster.client.as_current(), parallel_config(backend="dask"):
        yield
