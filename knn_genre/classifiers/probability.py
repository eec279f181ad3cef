"""Probabilities for classifiers that only give decision values, when calibration cannot run.

The registry's SVMs get probabilities from a sigmoid calibrated on inner
folds (Platt scaling). With a genre of a single training track there is
no fold in which that genre is both trained on and tested, and a
calibration would learn that the genre never occurs. Then
:class:`SoftmaxClassifier` is used instead: the softmax of the one-vs-rest
decision values, whose argmax is the prediction. Not calibrated, but
deterministic and faithful to the fitted SVM.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["SoftmaxClassifier"]


class SoftmaxClassifier(ClassifierMixin, BaseEstimator):
    """``predict_proba`` as the softmax of ``estimator.decision_function``.

    Parameters
    ----------
    estimator : classifier with ``decision_function``
        Cloned and fitted by :meth:`fit`.

    Attributes
    ----------
    estimator_ : the fitted clone
    classes_ : ndarray of shape (n_classes,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.svm import SVC
    >>> X = np.array([[0.0], [0.1], [1.0], [1.1], [2.0]])
    >>> clf = SoftmaxClassifier(SVC()).fit(X, ["a", "a", "b", "b", "c"])
    >>> clf.predict_proba(X).shape, clf.predict([[2.0]]).tolist()
    ((5, 3), ['c'])
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64)
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        scores = np.asarray(self.estimator_.decision_function(X), dtype=np.float64)
        if scores.ndim == 1:  # two classes: one signed score for the second
            scores = np.column_stack([-scores, scores]) / 2
        scores = scores - scores.max(axis=1, keepdims=True)
        weights = np.exp(scores)
        return weights / weights.sum(axis=1, keepdims=True)

    def predict(self, X):
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
