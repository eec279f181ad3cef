"""k-nearest-neighbour genre classifier on Gaussian MFCC models.

Each track is a Gaussian given as a packed row (see :mod:`knn_genre.features`);
tracks are compared with the symmetric Kullback-Leibler divergence of
:mod:`knn_genre.classifiers.divergence`, and a query takes the majority genre of its ``k``
nearest training tracks. A tie goes to the tied genre whose member is
nearest. Optionally, divergences are replaced by their mutual proximity
(:mod:`knn_genre.classifiers.hubness`) to reduce the influence of hub tracks.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import ParameterError, check_choice, check_integer, check_number
from ..features.gaussian import DEFAULT_RIDGE, packed_dim, unpack
from .divergence import DEFAULT_BLOCK_SIZE, kneighbors_symmetric_kl, packed_gaussian_terms, symmetric_kl_moments
from .hubness import MP_TRANSFORM, mutual_proximity_gaussian

__all__ = ["KLKNNClassifier", "vote"]

_WEIGHTS = ("uniform", "distance")
_HUBNESS = (None, "mutual_proximity")


def _neighbor_weights(distances: np.ndarray, weights: str) -> np.ndarray:
    """Vote weight of each neighbour, shape (nq, k), rows sorted nearest first.

    ``"distance"`` weighs by ``1 / distance``, written as
    ``min_distance / distance`` so that it cannot overflow: the proportions
    are the same. As in scikit-learn, a query at distance 0 from some
    training tracks is decided by those tracks alone.
    """
    if weights == "uniform":
        return np.ones_like(distances)
    nearest = distances[:, :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = nearest / distances
    exact = nearest[:, 0] == 0
    w[exact] = distances[exact] == 0
    return w


def vote(labels: np.ndarray, weights: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Weighted majority vote of sorted neighbours, ties to the nearest tied class.

    Parameters
    ----------
    labels : ndarray of shape (nq, k), int
        Class index (``0 <= label < n_classes``) of each query's neighbours,
        nearest first.
    weights : ndarray of shape (nq, k)
        Vote of each neighbour, >= 0 (all ones for a plain majority).
    n_classes : int

    Returns
    -------
    winners : ndarray of shape (nq,), intp
        Class index with the largest total vote; among classes with equal
        totals, the one that occurs first in the row, i.e. whose member is
        nearest.
    votes : ndarray of shape (nq, n_classes)
        Total vote of each class.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.knn import vote
    >>> labels = np.array([[1, 0, 0, 1], [2, 0, 0, 1]])
    >>> winners, votes = vote(labels, np.ones((2, 4)), 3)
    >>> winners.tolist(), votes.tolist()
    ([1, 0], [[2.0, 2.0, 0.0], [2.0, 1.0, 1.0]])
    """
    rows = np.arange(labels.shape[0])
    votes = np.zeros((labels.shape[0], n_classes))
    for j in range(labels.shape[1]):  # O(k) vectorised passes, as sklearn does
        votes[rows, labels[:, j]] += weights[:, j]
    tied = votes == votes.max(axis=1, keepdims=True)
    first_tied = np.argmax(tied[rows[:, None], labels], axis=1)
    return labels[rows, first_tied], votes


def _check_targets(y: np.ndarray) -> None:
    """``check_classification_targets``, skipped for labels that can only be classes.

    A 1-d array of strings, integers or booleans is always binary or
    multiclass; scikit-learn's inspection of it costs 0.15 ms per fit
    (more than the rest of fitting 600 tracks), so only other labels
    (floats, objects) are inspected.
    """
    if y.ndim != 1 or y.dtype.kind not in "USiub":
        check_classification_targets(y)


def _validate(estimator, X, y="no_validation", *, reset):
    """``validate_data(estimator, X, y, reset=reset, dtype=float64)``, cheaply for plain arrays.

    A finite, non-empty 2-d float64 ``ndarray`` (with 1-d class labels) is
    what scikit-learn's validation returns unchanged, yet checking it costs
    0.05-0.1 ms per call, as much as the per-track work of hundreds of
    tracks. Such input only gets the checks that could fail; anything else
    (lists, frames, other dtypes, NaN, a wrong width) goes through
    ``validate_data``, with its conversions, warnings and errors.
    """
    no_y = isinstance(y, str) and y == "no_validation"
    plain = (
        type(X) is np.ndarray
        and X.dtype == np.float64
        and X.ndim == 2
        and X.size > 0
        and math.isfinite(X.sum())  # NaN and inf propagate into the sum
        and (no_y or (type(y) is np.ndarray and y.ndim == 1 and len(y) == len(X) and y.dtype.kind in "USiub"))
    )
    if plain and reset:
        estimator.n_features_in_ = X.shape[1]
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        return X if no_y else (X, y)
    if plain and X.shape[1] == estimator.n_features_in_ and not hasattr(estimator, "feature_names_in_"):
        return X
    return validate_data(estimator, X, y, reset=reset, dtype=np.float64)


class KLKNNClassifier(ClassifierMixin, BaseEstimator):
    """k-nearest neighbours in symmetric KL divergence between track Gaussians.

    Read more in :mod:`knn_genre.classifiers.divergence` for the divergence and its
    regularisation of singular covariances.

    Parameters
    ----------
    n_neighbors : int, default=5
        Neighbours ``k`` that vote, ``1 <= k <= n_samples`` of the training set.
    weights : {"uniform", "distance"}, default="uniform"
        ``"uniform"``: one vote per neighbour. ``"distance"``: votes weighted by
        ``1 / divergence``; a query identical to some training tracks is
        decided by those tracks alone.
    ridge : float, default=1e-8
        Relative eigenvalue floor for covariances that are not safely
        positive definite, see :func:`knn_genre.features.gaussian.regularize_covariances`.
    block_size : int, default=1024
        Side of the tiles of the query x training divergence matrix held in
        memory at once (``block_size**2 * 8`` bytes). Results do not depend
        on it. The matrix products run on all BLAS threads.
    hubness : {None, "mutual_proximity"}, default=None
        ``None`` ranks neighbours by symmetric KL. ``"mutual_proximity"``
        ranks them by the mutual-proximity distance ``1 - MP`` in [0, 1]
        (Schnitzer et al., 2012, Gaussian variant on ``log1p`` of the
        divergence, see :mod:`knn_genre.classifiers.hubness`), which demotes hub tracks
        that are near everything; ``kneighbors`` then returns these
        distances. It costs a second pass over the divergences, and at fit
        one pass over all training pairs.
    cache : knn_genre.classifiers.cache.DivergenceCache, optional
        Divergences computed once for a set of tracks (an evaluation's):
        when the training tracks and the queries are all rows of it, their
        divergences are taken from it instead of computed. Results are the
        same up to rounding.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Sorted class labels (strings or integers).
    n_features_in_ : int
        Width of the packed rows, ``d + d * (d + 1) / 2``.
    n_samples_fit_ : int
        Number of training tracks.
    dim_ : int
        Dimension ``d`` of the Gaussians.
    means_ : ndarray of shape (n_samples, d)
        Training means, as given.
    covariances_ : ndarray of shape (n_samples, d, d)
        Training covariances, as given (before regularisation); unpacked
        when read.
    origin_ : ndarray of shape (d,)
        Mean of the training means. It is subtracted from every mean before
        the divergence terms are computed: divergences do not change under a
        common translation, and centred means keep the expanded quadratic
        forms from cancelling.
    reference_terms_ : knn_genre.classifiers.divergence.GaussianTerms
        Precomputed per-track terms of the training set (one inverse each).
    reference_moments_ : tuple of two ndarrays of shape (n_samples,), or None
        With mutual proximity: mean and standard deviation of ``log1p`` of
        each training track's divergences to the other training tracks.

    See Also
    --------
    knn_genre.classifiers.divergence.kneighbors_symmetric_kl : the neighbour search used.
    sklearn.neighbors.KNeighborsClassifier : the same interface for vectors.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.features.gaussian import pack
    >>> from knn_genre.classifiers.knn import KLKNNClassifier
    >>> rng = np.random.default_rng(0)
    >>> means = np.concatenate([rng.normal(0, 1, (10, 2)), rng.normal(6, 1, (10, 2))])
    >>> X = pack(means, np.tile(np.eye(2), (20, 1, 1)))
    >>> y = ["jazz"] * 10 + ["metal"] * 10
    >>> clf = KLKNNClassifier(n_neighbors=3).fit(X, y)
    >>> queries = pack(np.array([[0.0, 0.5], [6.0, 5.0]]), np.tile(np.eye(2), (2, 1, 1)))
    >>> clf.predict(queries).tolist()
    ['jazz', 'metal']
    >>> clf.predict_proba(queries).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    >>> distances, indices = clf.kneighbors(queries[:1], n_neighbors=2)
    >>> distances.shape, indices.shape
    ((1, 2), (1, 2))
    """

    def __init__(
        self,
        n_neighbors=5,
        *,
        weights="uniform",
        ridge=DEFAULT_RIDGE,
        block_size=DEFAULT_BLOCK_SIZE,
        hubness=None,
        cache=None,
    ):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.ridge = ridge
        self.block_size = block_size
        self.hubness = hubness
        self.cache = cache

    # -- validation ---------------------------------------------------------

    def _check_params(self):
        check_integer("n_neighbors", self.n_neighbors)
        check_choice("weights", self.weights, _WEIGHTS)
        check_number("ridge", self.ridge, minimum=0)
        check_integer("block_size", self.block_size)
        check_choice("hubness", self.hubness, _HUBNESS)

    def _terms(self, X):
        """Divergence terms of packed Gaussians, centred on the training origin."""
        return packed_gaussian_terms(X, origin=self.origin_, ridge=self.ridge)

    # -- fitting ------------------------------------------------------------

    def fit(self, X, y):
        """Store the training tracks and precompute their divergence terms.

        Parameters
        ----------
        X : array-like of shape (n_samples, d + d * (d + 1) / 2)
            Packed training Gaussians, see :func:`knn_genre.features.gaussian.pack`.
        y : array-like of shape (n_samples,)
            Genre labels, strings or integers.

        Returns
        -------
        self : KLKNNClassifier

        Raises
        ------
        ParameterError
            If a parameter is out of range, ``n_neighbors`` exceeds the number
            of training tracks, or the width of ``X`` is not a packed width.
        """
        self._check_params()
        X, y = _validate(self, X, y, reset=True)
        _check_targets(y)
        n_samples, width = X.shape
        if self.n_neighbors > n_samples:
            raise ParameterError(
                f"n_neighbors={self.n_neighbors} must be <= the number of training tracks, "
                f"n_samples={n_samples}"
            )
        if self.hubness is not None and n_samples < 2:
            raise ParameterError(
                f"hubness={self.hubness!r} needs at least 2 training tracks, n_samples={n_samples}"
            )
        self.dim_ = packed_dim(width)
        self.classes_, self._y = np.unique(y, return_inverse=True)
        self.n_samples_fit_ = n_samples
        self._fit_X = X.copy()  # what covariances_ unpacks, when asked
        self.means_ = self._fit_X[:, : self.dim_]
        self.origin_ = self.means_.mean(axis=0)
        self.reference_terms_ = self._terms(X)
        self._fit_rows = self._cache_rows(X, fitting=True)
        self.reference_moments_ = None
        if self.hubness == "mutual_proximity":
            self.reference_moments_ = self._moments(
                self.reference_terms_, exclude_self=True, divergences=self._cached_divergences(self._fit_rows)
            )
        return self

    def _cache_rows(self, X, fitting=False):
        """Rows of ``X`` in ``cache``, if it can serve them (and the training tracks); else None."""
        if self.cache is None or (not fitting and self._fit_rows is None):
            return None
        return self.cache.serves(X, self.ridge)

    def _cached_divergences(self, rows):
        """Divergences of cached query ``rows`` to the training tracks, or None."""
        if rows is None or self._fit_rows is None:
            return None
        return self.cache.block(rows, self._fit_rows)

    @property
    def covariances_(self) -> np.ndarray:
        """Training covariances, shape (n_samples, d, d), as given (before regularisation)."""
        check_is_fitted(self)
        return unpack(self._fit_X)[1]

    def _moments(self, query_terms, exclude_self, divergences=None):
        return symmetric_kl_moments(
            query_terms,
            self.reference_terms_,
            block_size=self.block_size,
            exclude_self=exclude_self,
            transform=MP_TRANSFORM,
            divergences=divergences,
        )

    # -- queries ------------------------------------------------------------

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """Nearest training tracks of each query, nearest first.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features_in_), or None
            Packed query Gaussians. ``None`` queries the training set itself,
            and a track is then not its own neighbour.
        n_neighbors : int, default=None
            Neighbours to return; ``None`` uses ``self.n_neighbors``. At most
            the number of training tracks (one fewer with ``X=None``).
        return_distance : bool, default=True
            Also return the divergences.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors)
            Symmetric KL divergences in nats (mutual-proximity distances in
            [0, 1] with ``hubness="mutual_proximity"``), ascending; only if
            ``return_distance``.
        indices : ndarray of shape (n_queries, n_neighbors)
            Row indices into the training set; equal divergences are ordered
            by index, lowest first.
        """
        check_is_fitted(self)
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        check_integer("n_neighbors", k)
        if X is not None:
            X = _validate(self, X, reset=False)
        distances, indices = self._neighbors(X, k)
        return (distances, indices) if return_distance else indices

    def _neighbors(self, X, k):
        """``kneighbors`` on validated ``X`` (or ``None``: the training set, self excluded)."""
        if X is None:
            query, exclude_self = self.reference_terms_, True
            divergences = self._cached_divergences(self._fit_rows)
            available = self.n_samples_fit_ - 1
            which = "training tracks other than the query itself (X=None)"
        else:
            divergences = self._cached_divergences(self._cache_rows(X))
            query, exclude_self = (self._terms(X) if divergences is None else None), False
            available = self.n_samples_fit_
            which = "training tracks"
        if k > available:
            raise ParameterError(f"n_neighbors={k} must be <= {available}, the number of {which}")
        transform = None
        if self.hubness == "mutual_proximity":
            ref_mean, ref_std = self.reference_moments_
            q_mean, q_std = (
                (ref_mean, ref_std) if exclude_self else self._moments(query, exclude_self=False, divergences=divergences)
            )

            def transform(block, rows, cols):
                return mutual_proximity_gaussian(
                    MP_TRANSFORM(block), q_mean[rows], q_std[rows], ref_mean[cols], ref_std[cols]
                )

        return kneighbors_symmetric_kl(
            query,
            self.reference_terms_,
            k,
            block_size=self.block_size,
            exclude_self=exclude_self,
            transform=transform,
            divergences=divergences,
        )

    def _vote(self, X):
        distances, indices = self._neighbors(X, self.n_neighbors)
        weights = _neighbor_weights(distances, self.weights)
        return vote(self._y[indices], weights, len(self.classes_))

    def predict(self, X):
        """Genre of each query: the majority of its nearest training tracks.

        With ``weights="distance"`` votes are weighted by ``1 / divergence``.
        Among genres with equal votes, the one whose member is nearest wins,
        so this is not always the argmax of :meth:`predict_proba`, which
        cannot break ties.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features_in_)
            Packed query Gaussians.

        Returns
        -------
        y : ndarray of shape (n_queries,)
            Labels from ``classes_``.
        """
        check_is_fitted(self)
        X = _validate(self, X, reset=False)
        winners, _ = self._vote(X)
        return self.classes_[winners]

    def predict_proba(self, X):
        """Share of the (weighted) neighbour votes that goes to each genre.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features_in_)
            Packed query Gaussians.

        Returns
        -------
        proba : ndarray of shape (n_queries, n_classes)
            Columns in the order of ``classes_``; rows sum to 1.
        """
        check_is_fitted(self)
        X = _validate(self, X, reset=False)
        _, votes = self._vote(X)
        return votes / votes.sum(axis=1, keepdims=True)
