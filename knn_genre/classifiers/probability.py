"""Probabilities for classifiers that only give decision values.

Two ways, both deterministic:

* Platt scaling (:func:`fit_sigmoid`, :func:`sigmoid_probabilities`): one
  sigmoid per genre, fitted to *out-of-fold* decision values of the training
  tracks (Platt, 1999, with the target smoothing and the stable objective of
  Lin, Lin & Weng, "A note on Platt's probabilistic outputs for support
  vector machines", Machine Learning 68, 2007), the per-genre probabilities
  then normalised to sum to 1 as scikit-learn's ``CalibratedClassifierCV``
  does. The SVMs of the registry are calibrated so.
* The softmax of the one-vs-rest decision values
  (:func:`softmax_probabilities`, :class:`SoftmaxClassifier`), when a
  calibration cannot run: with a genre of a single training track there is
  no fold in which that genre is both trained on and tested, and a
  calibration would learn that the genre never occurs. Not calibrated, but
  faithful to the fitted SVM: its argmax is the prediction.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["SoftmaxClassifier", "fit_sigmoid", "sigmoid_probabilities", "softmax_probabilities"]


def fit_sigmoid(scores, positive, sample_weight=None) -> tuple[float, float]:
    """Platt's sigmoid ``P(positive | s) = 1 / (1 + exp(a * s + b))``, fitted by maximum likelihood.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Decision values, larger for the positive class.
    positive : array-like of shape (n,), bool
        Whether each sample is of the positive class.
    sample_weight : array-like of shape (n,), optional
        Weight of each sample in the likelihood and in Platt's priors (as
        scikit-learn's sigmoid calibration weighs them).

    Returns
    -------
    a, b : float
        ``a`` is negative when larger scores mean the positive class.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.probability import fit_sigmoid
    >>> a, b = fit_sigmoid([-2.0, -1.0, 1.0, 2.0], [False, False, True, True])
    >>> bool(a < 0), round(float(1 / (1 + np.exp(a * 0.0 + b))), 2)
    (True, 0.5)
    """
    f = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    w = np.ones(len(f)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    n_pos, n_neg = float(w[pos].sum()), float(w[~pos].sum())
    # Platt's targets: not 0 and 1, so a separable training set does not
    # push the sigmoid to a step.
    t = np.where(pos, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def loss(ab):
        z = ab[0] * f + ab[1]
        # -log-likelihood: sum w*(t*log(1+e^z) + (1-t)*(log(1+e^z) - z)), stably.
        value = np.dot(w, np.logaddexp(0.0, z) - (1.0 - t) * z)
        g = w * (t - expit(-z))  # d loss / d z = w * ((1 - p) - (1 - t)), with p = expit(-z)
        return value, np.array([np.dot(g, f), g.sum()])

    start = np.array([0.0, np.log((n_neg + 1.0) / (n_pos + 1.0))])
    result = minimize(loss, start, jac=True, method="L-BFGS-B")
    return float(result.x[0]), float(result.x[1])


def sigmoid_probabilities(decisions, coefficients) -> np.ndarray:
    """Genre probabilities from decision values and the fitted sigmoids.

    Parameters
    ----------
    decisions : ndarray of shape (n, n_classes), or (n,) for two classes
        One-vs-rest decision values (a single score for the second class
        when there are two).
    coefficients : ndarray of shape (n_classes, 2), or (1, 2) for two classes
        ``(a, b)`` of each genre's sigmoid (:func:`fit_sigmoid`).

    Returns
    -------
    ndarray of shape (n, n_classes)
        Rows sum to 1; a row whose sigmoids are all 0 is uniform.
    """
    decisions = np.asarray(decisions, dtype=np.float64)
    coefficients = np.asarray(coefficients, dtype=np.float64)
    if decisions.ndim == 1:
        p = expit(-(coefficients[0, 0] * decisions + coefficients[0, 1]))
        return np.column_stack([1.0 - p, p])
    proba = expit(-(decisions * coefficients[:, 0] + coefficients[:, 1]))
    total = proba.sum(axis=1, keepdims=True)
    uniform = np.full_like(proba, 1.0 / proba.shape[1])
    return np.divide(proba, total, out=uniform, where=total > 0)


def softmax_probabilities(decisions) -> np.ndarray:
    """The softmax of one-vs-rest decision values, shape (n, n_classes).

    For two classes, ``decisions`` is the single score of the second class.
    """
    scores = np.asarray(decisions, dtype=np.float64)
    if scores.ndim == 1:  # two classes: one signed score for the second
        scores = np.column_stack([-scores, scores]) / 2
    scores = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)
    return weights / weights.sum(axis=1, keepdims=True)


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
    >>> from knn_genre.classifiers.probability import SoftmaxClassifier
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
        return softmax_probabilities(self.estimator_.decision_function(X))

    def predict(self, X):
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
