"""Running models on folds and measuring them: numbers in, numbers out, nothing printed.

Each model is cloned and fitted on every training side, then decides the
genre of each test *track* with the rule ``predict`` applies to a file
(:func:`~knn_genre.classifiers.registry.decide_groups` over the track's rows).
Accuracy is reported per fold and as mean and standard deviation; confusion
matrices, macro-F1 and per-genre precision and recall are computed on the
out-of-fold predictions pooled over all folds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from ..classifiers.registry import decide_groups
from .parallel import FoldFit, fit_folds

__all__ = ["ModelResult", "track_decisions", "evaluate_models"]


@dataclass
class ModelResult:
    """One model's scores on a protocol.

    ``accuracy_per_fold`` and the pooled scores are per row: per track for
    files of whole tracks; per segment for segmented files, whose track
    accuracy is in ``extra`` (``track_accuracy_per_fold``, ``_mean``, ``_std``).
    ``predictions`` lists ``(fold, track, genre, predicted)`` for every
    tested track.
    """

    name: str
    accuracy_per_fold: list
    macro_f1: float
    confusion: list
    genres: list
    precision: list
    recall: list
    fit_seconds: float
    predict_seconds: float
    extra: dict = field(default_factory=dict)
    predictions: list = field(default_factory=list)

    @property
    def accuracy_mean(self) -> float:
        return float(np.mean(self.accuracy_per_fold))

    @property
    def accuracy_std(self) -> float:
        return float(np.std(self.accuracy_per_fold))


def track_decisions(estimator, X, groups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row predictions and one genre per group (track), as ``predict`` decides a file.

    Returns
    -------
    row_predictions : ndarray of shape (n,)
    tracks : ndarray
        The distinct groups, sorted.
    track_predictions : ndarray
        The genre of each (:func:`~knn_genre.classifiers.registry.decide_groups`);
        for an estimator without ``predict_proba``, the majority of its rows.
    """
    rows = estimator.predict(X)
    classes = np.asarray(estimator.classes_)
    if hasattr(estimator, "predict_proba"):
        proba = estimator.predict_proba(X)
    else:
        proba = (rows[:, None] == classes[None, :]).astype(float)
    tracks, index = np.unique(np.asarray(groups), return_inverse=True)
    return rows, tracks, decide_groups(proba, rows, index, len(tracks), classes)


def evaluate_models(models: dict, X, y, splits, *, groups=None, on_fold: Callable | None = None,
                    on_progress: Callable | None = None, n_jobs: int | None = 1) -> list[ModelResult]:
    """Fit and score every model on the same splits.

    Parameters
    ----------
    models : dict of name -> estimator
        Each is cloned for every split, so nothing leaks between folds.
    X : array-like of shape (n, n_features), or dict of family -> array-like
        The rows; with a dict, each model gets the rows of its ``family``
        attribute (a :class:`~knn_genre.classifiers.registry.RegisteredModel`'s),
        so models on different feature families share the splits.
    y : array-like of shape (n,)
    splits : list of (train_indices, test_indices)
    groups : array-like of shape (n,), optional
        Track of each row (default: every row its own track). When tracks
        have several rows (segments), a model whose ``fit`` takes ``groups``
        gets them (its inner folds then keep tracks whole), and track
        accuracy is reported beside segment accuracy.
    on_fold : callable(name, fold_index, fitted_estimator), optional
        Called after each fit, e.g. to record chosen hyper-parameters.
    on_progress : callable(done, total, label), optional
        Called after each (model, fold), with the number done of
        ``len(models) * len(splits)``, as they finish.
    n_jobs : int or None, default=1
        (model, fold) fits run at once, in worker processes (joblib's
        ``n_jobs``: -1 is all cores) or on the active joblib backend (see
        :mod:`knn_genre.evaluation.parallel`); the numbers do not depend on it.

    Returns
    -------
    list of ModelResult, in the order of ``models``
    """
    X = {family: np.asarray(rows) for family, rows in X.items()} if isinstance(X, dict) else np.asarray(X)
    y = np.asarray(y)
    genres = np.unique(y)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    segmented = len(np.unique(groups)) < len(groups)
    total, finished = len(models) * len(splits), []

    def done_one(name, fold):
        finished.append((name, fold))
        if on_progress:
            on_progress(len(finished), total, f"{name} fold {fold + 1}/{len(splits)}")

    fits = fit_folds(_fit_fold, models, X, y, splits, groups, segmented=segmented, n_jobs=n_jobs, on_done=done_one)
    results = []
    for name, model in models.items():
        accs, fit_s, pred_s, track_accs = [], [], [], []
        true_all, pred_all, predictions = [], [], []
        for fold, (train, test) in enumerate(splits):
            fitted = fits.pop((name, fold))
            est, rows, tracks, decided = fitted.estimator, fitted.rows, fitted.tracks, fitted.decided
            fit_s.append(fitted.fit_seconds)
            pred_s.append(fitted.predict_seconds)
            truth = dict(zip(groups[test].tolist(), y[test].tolist()))
            tracks, decided = tracks.tolist(), decided.tolist()
            predictions += [(fold, t, truth[t], p) for t, p in zip(tracks, decided)]
            track_accuracy = float(np.mean([truth[t] == p for t, p in zip(tracks, decided)]))
            if segmented:
                accs.append(float(accuracy_score(y[test], rows)))
                track_accs.append(track_accuracy)
                true_all.append(y[test])
                pred_all.append(rows)
            else:
                accs.append(track_accuracy)
                true_all.append(np.array([truth[t] for t in tracks]))
                pred_all.append(np.array(decided))
            if on_fold:
                on_fold(name, fold, est)
        yt, yp = np.concatenate(true_all), np.concatenate(pred_all)
        precision, recall, _, _ = precision_recall_fscore_support(yt, yp, labels=genres, zero_division=0)
        extra = {}
        if segmented:
            extra = {
                "track_accuracy_per_fold": track_accs,
                "track_accuracy_mean": float(np.mean(track_accs)),
                "track_accuracy_std": float(np.std(track_accs)),
            }
        results.append(
            ModelResult(
                name=name,
                accuracy_per_fold=accs,
                macro_f1=float(f1_score(yt, yp, labels=genres, average="macro", zero_division=0)),
                confusion=confusion_matrix(yt, yp, labels=genres).tolist(),
                genres=[str(g) for g in genres],
                precision=[float(v) for v in precision],
                recall=[float(v) for v in recall],
                fit_seconds=float(np.mean(fit_s)),
                predict_seconds=float(np.mean(pred_s)),
                extra=extra,
                predictions=predictions,
            )
        )
    return results


def _fit_fold(model, X, y, groups, train, test, segmented: bool) -> FoldFit:
    """One (model, fold) task: fit a clone of ``model`` on ``train``, decide the tracks of ``test``."""
    est = clone(model)
    t0 = time.perf_counter()
    if segmented and _takes_groups(est):
        est.fit(X[train], y[train], groups=groups[train])
    else:
        est.fit(X[train], y[train])
    t1 = time.perf_counter()
    rows, tracks, decided = track_decisions(est, X[test], groups[test])
    t2 = time.perf_counter()
    return FoldFit(est, rows, tracks, decided, t1 - t0, t2 - t1)


def _takes_groups(estimator) -> bool:
    import inspect

    return "groups" in inspect.signature(estimator.fit).parameters
