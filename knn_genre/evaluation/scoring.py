"""Running models on folds and measuring them: numbers in, numbers out, nothing printed.

Each model is cloned and fitted on every training side, then decides the
genre of each test *track* with the rule ``predict`` applies to a file
(:func:`~knn_genre.classifiers.registry.decide_groups` over the track's rows).
Accuracy is reported per fold and as mean and standard deviation. The
out-of-fold predictions *and probabilities* of all folds are pooled; from
them come the confusion matrix, balanced accuracy and, per genre,
precision, recall, F1, one-vs-rest ROC-AUC and average precision (the area
under the precision-recall curve), with their macro and weighted
averages. :func:`compare_models` adds each model's paired per-fold
difference to the best baseline and to the best model, and
:func:`chance_accuracy` the accuracy that guessing is expected to reach.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from ..classifiers.cv import track_units
from ..classifiers.registry import decide_groups, fit_groups_kwargs
from ..errors import check_choice
from .parallel import FoldFit, fit_folds

__all__ = ["ModelResult", "track_decisions", "evaluate_models", "compare_models", "chance_accuracy", "pooled_metrics"]

#: Metrics computed per genre and averaged (macro and weighted).
PER_GENRE = ("precision", "recall", "f1", "roc_auc", "average_precision")


@dataclass
class ModelResult:
    """One model's scores on a protocol.

    ``accuracy_per_fold`` and the pooled scores are per track, each test
    track decided from all its rows as ``predict`` decides a file, so they
    are the accuracy of what ``predict`` applies. For segmented files the
    accuracy of the single segments is in ``extra``
    (``segment_accuracy_per_fold``, ``_mean``, ``_std``).
    ``predictions`` lists ``(fold, track, genre, predicted, probabilities)``
    for every tested track, the probabilities (the mean over the track's
    rows) in the order of ``genres``.

    The per-genre lists follow ``genres``; a score that is undefined for a
    genre (ROC-AUC and average precision of a genre no test track has) is
    NaN. ``macro`` and ``weighted`` average each per-genre score over the
    genres that are true or predicted for some test row (NaN scores left
    out), weighted by their test rows for ``weighted``. ``oof_truth`` and
    ``oof_probabilities`` are the pooled test rows' genres and
    probabilities (for curves).
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
    f1: list = field(default_factory=list)
    roc_auc: list = field(default_factory=list)
    average_precision: list = field(default_factory=list)
    support: list = field(default_factory=list)
    macro: dict = field(default_factory=dict)
    weighted: dict = field(default_factory=dict)
    balanced_accuracy: float = float("nan")
    tested_per_fold: list = field(default_factory=list)
    oof_truth: np.ndarray | None = None
    oof_probabilities: np.ndarray | None = None

    @property
    def accuracy_mean(self) -> float:
        return float(np.mean(self.accuracy_per_fold))

    @property
    def accuracy_std(self) -> float:
        return float(np.std(self.accuracy_per_fold))

    @property
    def n_tested(self) -> int:
        """Tests of tracks over all folds (each track once per repetition of the folds)."""
        return int(sum(self.tested_per_fold))


def _fold_decisions(estimator, X, groups):
    """Row predictions, then per track: names, genres, mean probabilities."""
    rows = estimator.predict(X)
    classes = np.asarray(estimator.classes_)
    if hasattr(estimator, "predict_proba"):
        proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    else:
        proba = (rows[:, None] == classes[None, :]).astype(float)
    tracks, index = np.unique(np.asarray(groups), return_inverse=True)
    decided = decide_groups(proba, rows, index, len(tracks), classes)
    sums = np.zeros((len(tracks), proba.shape[1]))
    np.add.at(sums, index, proba)
    counts = np.bincount(index, minlength=len(tracks))[:, None]
    return rows, tracks, decided, sums / counts


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
    rows, tracks, decided, _ = _fold_decisions(estimator, X, groups)
    return rows, tracks, decided


def _columns(proba: np.ndarray, classes, genres: np.ndarray) -> np.ndarray:
    """Probability columns of a fold's classes, placed in the columns of all ``genres`` (zeros elsewhere)."""
    out = np.zeros((len(proba), len(genres)))
    out[:, np.searchsorted(genres, np.asarray(classes))] = proba
    return out


def chance_accuracy(strategy: str, y_train, y_test) -> float:
    """Expected accuracy of guessing the genres of ``y_test`` from those of ``y_train``.

    * ``"stratified"``: guesses drawn with the training shares ``p``: the
      expected accuracy is ``sum_i p_i q_i`` with ``q`` the test shares,
      which is ``sum_i p_i**2`` when the fold is stratified (``q = p``);
    * ``"most_frequent"``: always the largest training genre (the first
      in sorted order among equals), right on its test share ``q``: the
      largest class share when ``q = p``.

    Examples
    --------
    >>> from knn_genre.evaluation.scoring import chance_accuracy
    >>> chance_accuracy("stratified", ["a", "a", "b", "b"], ["a", "b"])
    0.5
    >>> chance_accuracy("most_frequent", ["a", "b", "b"], ["a", "b", "b", "b"])
    0.75
    """
    check_choice("strategy", strategy, ("stratified", "most_frequent"))
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    genres, counts = np.unique(y_train, return_counts=True)
    p = counts / counts.sum()
    q = np.array([np.mean(y_test == g) for g in genres])
    if strategy == "stratified":
        return float(np.dot(p, q))
    return float(q[np.argmax(counts)])


def pooled_metrics(truth, predicted, probabilities, genres) -> dict:
    """Scores of pooled out-of-fold predictions: per genre, averaged, and balanced accuracy.

    Parameters
    ----------
    truth, predicted : array-like of shape (n,)
        True and predicted genre of each test row.
    probabilities : ndarray of shape (n, n_genres)
        Columns in the order of ``genres``.
    genres : array-like of shape (n_genres,)
        Sorted.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1``, ``roc_auc``, ``average_precision``,
        ``support`` (lists over ``genres``, NaN where undefined), ``macro``
        and ``weighted`` (dicts of those scores), ``balanced_accuracy``,
        ``macro_f1``, ``confusion``.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.evaluation.scoring import pooled_metrics
    >>> m = pooled_metrics(["a", "a", "b"], ["a", "b", "b"], np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]]), ["a", "b"])
    >>> m["recall"], m["roc_auc"], round(m["macro"]["f1"], 3), m["balanced_accuracy"]
    ([0.5, 1.0], [1.0, 1.0], 0.667, 0.75)
    """
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    genres = np.asarray(genres)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=genres, zero_division=0)
    auc, ap = [], []
    for j, genre in enumerate(genres):
        positive = truth == genre
        both = 0 < positive.sum() < len(positive)
        auc.append(float(roc_auc_score(positive, probabilities[:, j])) if both else float("nan"))
        ap.append(float(average_precision_score(positive, probabilities[:, j])) if positive.any() else float("nan"))
    scores = {"precision": precision, "recall": recall, "f1": f1, "roc_auc": np.array(auc), "average_precision": np.array(ap)}
    # Averages over the genres that occur (as truth or as prediction), as
    # scikit-learn averages when it is not given the labels.
    occurs = np.isin(genres, np.union1d(truth, predicted))
    macro, weighted = {}, {}
    for name, values in scores.items():
        ok = occurs & ~np.isnan(values)
        macro[name] = float(np.mean(values[ok])) if ok.any() else float("nan")
        weights = support[ok]
        weighted[name] = float(np.average(values[ok], weights=weights)) if weights.sum() > 0 else float("nan")
    out = {name: [float(v) for v in values] for name, values in scores.items()}
    with warnings.catch_warnings():
        # A genre predicted but never true (a test side without it) is counted, as intended.
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true", category=UserWarning)
        balanced = float(balanced_accuracy_score(truth, predicted))
    out.update(
        support=[int(s) for s in support],
        macro=macro,
        weighted=weighted,
        balanced_accuracy=balanced,
        macro_f1=float(f1_score(truth, predicted, average="macro", zero_division=0)),
        confusion=confusion_matrix(truth, predicted, labels=genres).tolist(),
    )
    return out


def evaluate_models(models: dict, X, y, splits, *, groups=None, on_fold: Callable | None = None,
                    on_progress: Callable | None = None, chance: dict | None = None,
                    n_jobs: int | None = 1) -> list[ModelResult]:
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
        gets them (its inner folds then keep tracks whole), and segment
        accuracy is reported beside track accuracy.
    on_fold : callable(name, fold_index, fitted_estimator), optional
        Called after each fit, e.g. to record chosen hyper-parameters.
    on_progress : callable(done, total, label), optional
        Called after each (model, fold), with the number done of
        ``len(models) * len(splits)``, as they finish.
    chance : dict of name -> strategy, optional
        Baselines whose expected accuracy (:func:`chance_accuracy` with that
        strategy, per fold) goes into their ``extra["chance_level"]`` (the
        mean over folds) and ``extra["chance_level_per_fold"]``.
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
        accs, fit_s, pred_s, segment_accs, tested = [], [], [], [], []
        true_all, pred_all, proba_all, predictions = [], [], [], []
        for fold, (train, test) in enumerate(splits):
            fitted = fits.pop((name, fold))
            est, rows, tracks, decided = fitted.estimator, fitted.rows, fitted.tracks, fitted.decided
            fit_s.append(fitted.fit_seconds)
            pred_s.append(fitted.predict_seconds)
            track_proba = _columns(fitted.track_proba, est.classes_, genres)
            truth = dict(zip(groups[test].tolist(), y[test].tolist()))
            tracks, decided = tracks.tolist(), decided.tolist()
            predictions += [
                (fold, t, truth[t], p, [float(v) for v in q]) for t, p, q in zip(tracks, decided, track_proba)
            ]
            tested.append(len(tracks))
            accs.append(float(np.mean([truth[t] == p for t, p in zip(tracks, decided)])))
            true_all.append(np.array([truth[t] for t in tracks]))
            pred_all.append(np.array(decided))
            proba_all.append(track_proba)
            if segmented:
                segment_accs.append(float(accuracy_score(y[test], rows)))
            if on_fold:
                on_fold(name, fold, est)
        yt, yp, pooled = np.concatenate(true_all), np.concatenate(pred_all), np.concatenate(proba_all)
        metrics = pooled_metrics(yt, yp, pooled, genres)
        extra = {}
        if segmented:
            extra = {
                "segment_accuracy_per_fold": segment_accs,
                "segment_accuracy_mean": float(np.mean(segment_accs)),
                "segment_accuracy_std": float(np.std(segment_accs)),
            }
        if chance and name in chance:
            # The baseline learns its shares from the training rows, as it is fitted, and is
            # scored per test track, as the accuracy beside it is.
            levels = [chance_accuracy(chance[name], y[train], track_units(y[test], groups[test])[0]) for train, test in splits]
            extra["chance_level"] = float(np.mean(levels))
            extra["chance_level_per_fold"] = levels
        results.append(
            ModelResult(
                name=name,
                accuracy_per_fold=accs,
                macro_f1=metrics["macro_f1"],
                confusion=metrics["confusion"],
                genres=[str(g) for g in genres],
                precision=metrics["precision"],
                recall=metrics["recall"],
                fit_seconds=float(np.mean(fit_s)),
                predict_seconds=float(np.mean(pred_s)),
                extra=extra,
                predictions=predictions,
                f1=metrics["f1"],
                roc_auc=metrics["roc_auc"],
                average_precision=metrics["average_precision"],
                support=metrics["support"],
                macro=metrics["macro"],
                weighted=metrics["weighted"],
                balanced_accuracy=metrics["balanced_accuracy"],
                tested_per_fold=tested,
                oof_truth=yt,
                oof_probabilities=pooled,
            )
        )
    return results


def _paired(result: ModelResult, reference: ModelResult) -> dict:
    diff = 100.0 * (np.asarray(result.accuracy_per_fold) - np.asarray(reference.accuracy_per_fold))
    return {
        "model": reference.name,
        "points_mean": float(diff.mean()),
        "points_std": float(diff.std()),
        "points_per_fold": [float(d) for d in diff],
    }


def compare_models(results: list[ModelResult], baselines=()) -> list[ModelResult]:
    """Each model's accuracy minus that of the best baseline and of the best model, fold by fold.

    The differences are paired (same folds, same test tracks), in accuracy
    points: ``extra["vs_best_dummy"]`` and ``extra["vs_best_model"]`` hold
    the reference model's name and the mean, standard deviation and
    per-fold values of the difference. "Best" is the highest mean accuracy
    (the first listed among equals); the best model is chosen among the
    models that are not ``baselines``.

    Parameters
    ----------
    results : list of ModelResult
        Scored on the same splits.
    baselines : collection of str
        Names of the chance-level baselines.

    Returns
    -------
    results, with their ``extra`` updated.
    """
    dummies = [r for r in results if r.name in baselines]
    models = [r for r in results if r.name not in baselines]
    best_dummy = max(dummies, key=lambda r: r.accuracy_mean, default=None)
    best_model = max(models, key=lambda r: r.accuracy_mean, default=None)
    for r in results:
        if best_dummy is not None:
            r.extra["vs_best_dummy"] = _paired(r, best_dummy)
        if best_model is not None:
            r.extra["vs_best_model"] = _paired(r, best_model)
    return results


def _fit_fold(model, X, y, groups, train, test, segmented: bool) -> FoldFit:
    """One (model, fold) task: fit a clone of ``model`` on ``train``, decide the tracks of ``test``."""
    est = clone(model)
    t0 = time.perf_counter()
    est.fit(X[train], y[train], **fit_groups_kwargs(est, groups[train] if segmented else None))
    t1 = time.perf_counter()
    rows, tracks, decided, track_proba = _fold_decisions(est, X[test], groups[test])
    t2 = time.perf_counter()
    return FoldFit(est, rows, tracks, decided, t1 - t0, t2 - t1, track_proba)
