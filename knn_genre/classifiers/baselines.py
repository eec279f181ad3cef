"""Chance-level baselines whose guesses do not depend on batch order.

scikit-learn's ``DummyClassifier(strategy="stratified")`` draws its guesses
from one random stream per call: the guess for a track depends on how many
tracks come before it in the call. Scored on a test fold, it would not give
the guess that the same trained baseline gives the track on its own, and
with stratified folds (which list their tracks in the same class order) it
can draw the same lucky or unlucky sequence in every fold.
:class:`RowSeededDummyClassifier` draws each row's guess from a hash of the
row's values and ``random_state`` instead: the same track gets the same
guess however it is batched, different tracks get independent guesses,
distributed as the training genres are.
"""

from __future__ import annotations

import hashlib
from numbers import Integral

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

__all__ = ["RowSeededDummyClassifier", "row_uniforms"]


def row_uniforms(X, seed) -> np.ndarray:
    """One number in [0, 1) per row of ``X``, a hash of the row's bytes and ``seed``.

    >>> import numpy as np
    >>> from knn_genre.classifiers.baselines import row_uniforms
    >>> X = np.arange(6.0).reshape(3, 2)
    >>> bool(np.all(row_uniforms(X, 0)[1:] == row_uniforms(X[1:], 0)))
    True
    """
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
    salt = str(seed).encode()
    out = np.empty(len(X))
    for i, row in enumerate(X):
        digest = hashlib.blake2b(row.tobytes(), digest_size=8, key=salt[:64]).digest()
        out[i] = int.from_bytes(digest, "little") / 2.0**64
    return out


class RowSeededDummyClassifier(DummyClassifier):
    """``DummyClassifier`` whose random strategies guess per row, not per call.

    Parameters and attributes are those of
    :class:`sklearn.dummy.DummyClassifier`. For ``strategy="stratified"``
    each row's genre is drawn with the training genre frequencies, and for
    ``"uniform"`` with equal ones, from :func:`row_uniforms` of the row and
    ``random_state``; ``predict`` is the argmax of ``predict_proba``. The
    other strategies are unchanged.

    An integer ``random_state`` is the hash's key itself; ``None`` or a
    ``RandomState`` draw the key at ``fit`` (``seed_``), so ``None`` gives
    other guesses at each fit, as in scikit-learn, and a fitted baseline
    keeps its guesses, pickled or not.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.baselines import RowSeededDummyClassifier
    >>> X = np.random.default_rng(0).normal(size=(8, 3))
    >>> y = ["a", "a", "a", "b", "b", "b", "c", "c"]
    >>> clf = RowSeededDummyClassifier(strategy="stratified", random_state=0).fit(X, y)
    >>> bool(np.all(clf.predict(X)[4:] == clf.predict(X[4:])))
    True
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # rows are hashed as dense numbers
        return tags

    def fit(self, X, y, sample_weight=None):
        check_array(X, dtype=None, ensure_all_finite=False)  # dense, as predict needs
        if isinstance(self.random_state, Integral):
            self.seed_ = int(self.random_state)
        else:
            self.seed_ = int(check_random_state(self.random_state).randint(2**62))
        return super().fit(X, y, sample_weight=sample_weight)

    def predict_proba(self, X):
        check_is_fitted(self)
        if self._strategy not in ("stratified", "uniform") or self.n_outputs_ != 1:
            return super().predict_proba(X)
        X = check_array(X, dtype=np.float64, ensure_all_finite=False)
        n = len(self.classes_)
        prior = self.class_prior_ if self._strategy == "stratified" else np.full(n, 1.0 / n)
        cumulative = np.cumsum(prior)
        cumulative[-1] = 1.0  # rounding must not leave a gap below 1
        u = row_uniforms(X, self.seed_)
        out = np.zeros((len(u), n))
        out[np.arange(len(u)), np.searchsorted(cumulative, u, side="right")] = 1.0
        return out

    def predict(self, X):
        check_is_fitted(self)
        if self._strategy not in ("stratified", "uniform") or self.n_outputs_ != 1:
            return super().predict(X)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
