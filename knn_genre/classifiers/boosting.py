"""Gradient boosting of small trees, on one thread.

scikit-learn's ``HistGradientBoostingClassifier`` builds its histograms with
OpenMP threads on every core. For a genre collection (a few hundred to a few
thousand tracks) each histogram is a few microseconds of work, and on a
machine whose cores are busy the threads' waiting dominates: a 10-fold
evaluation of 1000 GTZAN tracks took 170 s with the threads and 13 s on one
thread (2 shared cores). :class:`SerialHistGradientBoostingClassifier` is
the same estimator, with the same parameters and results, run on one thread.
"""

from __future__ import annotations

from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

__all__ = ["SerialHistGradientBoostingClassifier"]


class SerialHistGradientBoostingClassifier(HistGradientBoostingClassifier):
    """``HistGradientBoostingClassifier`` that fits and predicts on one OpenMP thread.

    Parameters and attributes are those of
    :class:`sklearn.ensemble.HistGradientBoostingClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.boosting import SerialHistGradientBoostingClassifier
    >>> X = np.array([[0.0], [0.1], [0.2], [1.0], [1.1], [1.2]] * 5)
    >>> y = ["a", "a", "a", "b", "b", "b"] * 5
    >>> SerialHistGradientBoostingClassifier(max_iter=10, min_samples_leaf=2).fit(X, y).predict([[0.05], [1.05]]).tolist()
    ['a', 'b']
    """

    def fit(self, X, y, sample_weight=None):
        with threadpool_limits(1, user_api="openmp"):
            return super().fit(X, y, sample_weight=sample_weight)

    def decision_function(self, X):
        with threadpool_limits(1, user_api="openmp"):
            return super().decision_function(X)

    def predict_proba(self, X):
        with threadpool_limits(1, user_api="openmp"):
            return super().predict_proba(X)

    def predict(self, X):
        with threadpool_limits(1, user_api="openmp"):
            return super().predict(X)
