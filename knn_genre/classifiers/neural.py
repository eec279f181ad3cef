"""A small neural network that stops early, also on collections of a few hundred tracks.

scikit-learn's ``MLPClassifier(early_stopping=True)`` holds out
``validation_fraction`` of the training tracks and stops when their
*accuracy* has not improved for ``n_iter_no_change`` epochs. On a few dozen
held-out tracks the accuracy moves in coarse steps and often stays flat for
the first epochs, so the network stops before it has learnt much (on real
GTZAN clips: 0.84 against 0.90 under 10-fold cross-validation of four
genres). :class:`EarlyStoppingMLPClassifier` stops on the held-out *log-loss*
instead, which moves with every epoch, and then trains a network on all the
training tracks for the number of epochs that was best, so no track is lost
to the held-out set. When rows are segments of tracks, ``fit(X, y, groups)``
holds out whole tracks: a track with segments on both sides would make the
held-out loss an optimistic measure of how well the network generalises.

The matrices of one batch (64 tracks x a few hundred units) are too small
for several BLAS threads to help; on a busy machine the threads' waiting
made a fit 5 to 8 times slower, so the network trains on one thread.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from ..errors import ParameterError, check_integer, check_number
from .cv import track_units

__all__ = ["EarlyStoppingMLPClassifier"]

#: Smallest decrease of the held-out log-loss, in nats per track, that counts
#: as an improvement.
TOL = 1e-3


class EarlyStoppingMLPClassifier(ClassifierMixin, BaseEstimator):
    """One hidden layer of ReLU units, trained by Adam, stopped on held-out log-loss; seeded.

    ``fit`` holds out a stratified ``validation_fraction`` of the training
    tracks (raised to one track per genre if that is more; with ``groups``,
    each track with all its segments), trains on the rest one epoch at a
    time and records the held-out log-loss; when it has
    not improved for ``n_iter_no_change`` epochs, the best epoch count is
    known, and the final network is trained on *all* the tracks for that
    many epochs, from the same seeded start. A collection with a genre of a
    single track has nothing to hold out for that genre: the network then
    trains on all the tracks until the training loss stops improving
    (scikit-learn's own stopping rule).

    Parameters
    ----------
    hidden_units : int > 0, default=256
        Units of the hidden layer.
    alpha : float >= 0, default=1.0
        L2 penalty on the weights. Genre collections are small next to the
        weights of even one hidden layer (104 inputs x 256 units), so the
        penalty is strong by default.
    validation_fraction : float in (0, 1), default=0.2
        Share of the training tracks held out to find the epoch count.
    n_iter_no_change : int > 0, default=10
        Epochs without a lower held-out loss before stopping.
    max_iter : int > 0, default=200
        Most epochs.
    batch_size : int > 0, default=64
        Tracks per Adam step (several steps per epoch even on small sets).
    random_state : int, default=0
        Seed of the initial weights, the batches and the held-out split.

    Attributes
    ----------
    mlp_ : sklearn.neural_network.MLPClassifier
        The fitted network.
    n_epochs_ : int
        Epochs the final network was trained for.
    n_iter_ : int
        The same count, under the name scikit-learn's ``MLPClassifier``
        gives its epochs.
    early_stopping_ : bool
        Whether a held-out set chose ``n_epochs_``.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.neural import EarlyStoppingMLPClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (30, 3)), rng.normal(2, 1, (30, 3))])
    >>> y = ["jazz"] * 30 + ["rock"] * 30
    >>> clf = EarlyStoppingMLPClassifier(hidden_units=16, alpha=0.1).fit(X, y)
    >>> clf.predict([[0, 0, 0], [2, 2, 2]]).tolist(), clf.early_stopping_
    (['jazz', 'rock'], True)
    """

    def __init__(self, hidden_units=256, *, alpha=1.0, validation_fraction=0.2, n_iter_no_change=10, max_iter=200,
                 batch_size=64, random_state=0):
        self.hidden_units = hidden_units
        self.alpha = alpha
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags

    def _network(self, n_samples: int) -> MLPClassifier:
        return MLPClassifier(
            hidden_layer_sizes=(self.hidden_units,), alpha=self.alpha, batch_size=min(self.batch_size, n_samples),
            max_iter=self.max_iter, n_iter_no_change=self.n_iter_no_change, random_state=self.random_state,
        )

    def fit(self, X, y, groups=None):
        """Fit the network on feature vectors and genres.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Feature vectors.
        y : array-like of shape (n_samples,)
            Genre of each row.
        groups : array-like of shape (n_samples,), optional
            Track of each row when rows are segments of tracks: the
            held-out set that chooses the epoch count is then made of whole
            tracks, stratified by genre. Without it every row is a track.

        Returns
        -------
        self : EarlyStoppingMLPClassifier

        Raises
        ------
        ParameterError
            If a parameter is out of range, ``y`` has fewer than 2 classes,
            or ``groups`` does not give one track per row.
        """
        check_integer("hidden_units", self.hidden_units)
        check_number("alpha", self.alpha, minimum=0)
        check_number("validation_fraction", self.validation_fraction, minimum=0, strict=True, maximum=1)
        check_integer("n_iter_no_change", self.n_iter_no_change)
        check_integer("max_iter", self.max_iter)
        check_integer("batch_size", self.batch_size)
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            # A network of one output unit gives two probability columns for one class.
            raise ParameterError(f"an MLP needs at least 2 genres; got 1 class ({str(classes[0])!r})")
        units, index = track_units(y, groups)
        _, counts = np.unique(units, return_counts=True)
        held_out = max(int(np.ceil(self.validation_fraction * len(units))), len(classes))
        self.early_stopping_ = bool(counts.min() >= 2 and len(units) - held_out >= len(classes))
        with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
            # Stopping at max_iter is the limit the parameter sets, not a fault.
            warnings.simplefilter("ignore", ConvergenceWarning)
            if not self.early_stopping_:
                self.mlp_ = self._network(len(y)).fit(X, y)
                self.n_epochs_ = int(self.mlp_.n_iter_)
            else:
                train, test = self._hold_out(units, index, held_out)
                self.n_epochs_ = self._best_epochs(X, y, classes, train, test)
                self.mlp_ = self._network(len(y))
                for _ in range(self.n_epochs_):
                    self.mlp_.partial_fit(X, y, classes=classes)
        # Not mlp_.n_iter_: each partial_fit restarts that count, so it says 1 after early stopping.
        self.n_iter_ = self.n_epochs_
        self.classes_ = self.mlp_.classes_
        return self

    def _hold_out(self, units, index, held_out: int):
        """Rows (train, test) of a seeded split of ``held_out`` tracks, stratified by genre."""
        train, test = train_test_split(np.arange(len(units)), test_size=held_out, stratify=units, random_state=self.random_state)
        if index is None:
            return train, test
        # Tracks mapped back to their segments, so each track is on one side only.
        return np.flatnonzero(np.isin(index, train)), np.flatnonzero(np.isin(index, test))

    def _best_epochs(self, X, y, classes, train, test) -> int:
        """Epochs after which the log-loss on rows ``test`` was lowest (training on rows ``train``)."""
        network = self._network(len(train))
        truth = np.searchsorted(classes, y[test])
        best, best_epoch, waited = np.inf, 1, 0
        for epoch in range(1, self.max_iter + 1):
            network.partial_fit(X[train], y[train], classes=classes)
            # Held-out log-loss (nats per row); a gain below TOL is no gain.
            proba = network.predict_proba(X[test])[np.arange(len(test)), truth]
            loss = -np.mean(np.log(np.clip(proba, 1e-15, 1.0)))
            if loss < best - TOL:
                best, best_epoch, waited = loss, epoch, 0
            else:
                waited += 1
                if waited >= self.n_iter_no_change:
                    break
        return best_epoch

    def predict_proba(self, X):
        """Genre probabilities, shape (n_samples, n_classes), columns as ``classes_``."""
        check_is_fitted(self)
        with threadpool_limits(1, user_api="blas"):
            return self.mlp_.predict_proba(validate_data(self, X, reset=False, dtype=np.float64))

    def predict(self, X):
        """Most probable genre of each row."""
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
