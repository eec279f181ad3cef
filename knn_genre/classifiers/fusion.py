"""An SVM on the product of a kernel on the MFCC Gaussians and an RBF kernel on the table.

Rows of the ``gaussian+table`` family are ``[packed Gaussian, table
columns]`` (see :mod:`knn_genre.classifiers.registry`); the estimator is told
where the Gaussian block ends (``gaussian_columns``). Between tracks ``p`` and
``q``::

    K(p, q) = exp(-gamma_gaussian * Dg(p, q) / sg) * exp(-gamma_table * Dt(p, q) / st)

with ``Dg`` either the symmetric KL divergence between the Gaussians
(``gaussian_kernel="kl"``, the kernel of ``klsvm``) or the squared Euclidean
distance between their standardised log-Euclidean vectors
(``"log-euclidean"``, the vectors of ``svm``), ``Dt`` the squared Euclidean
distance between standardised table rows, and ``sg``, ``st`` the median of
each over distinct training pairs (so the two gammas are dimensionless and
one grid suits any collection). A product of kernels is a kernel on the pair
of representations (Schur); it is large only where both agree that two
tracks are alike. The KL kernel is not positive semi-definite, so with it the
training kernel's negative eigenvalues are clipped as in
:class:`~knn_genre.classifiers.svm.KLSVMClassifier`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ..errors import ParameterError, check_choice, check_integer, check_number
from ..features.gaussian import DEFAULT_RIDGE, packed_dim, unpack
from .divergence import DEFAULT_BLOCK_SIZE, gaussian_terms, symmetric_kl_from_terms
from .svm import GaussianVectorizer, check_separable, clip_spectrum

__all__ = ["split_columns", "FusionSVMClassifier", "FUSION_PARAM_GRID", "CombinedVectorizer"]

_GAUSSIAN_KERNELS = ("kl", "log-euclidean")

#: Grid of the ``fusion`` model's inner search: which Gaussian kernel, both
#: widths (relative to the median training distance) and ``C``. On real
#: GTZAN clips (six genres) the search chose widths of 0.1 to 1, never 3, and
#: most often the smallest offered: the grid reaches down to 0.03.
FUSION_PARAM_GRID = {
    "gaussian_kernel": list(_GAUSSIAN_KERNELS),
    "gamma_gaussian": [0.03, 0.1, 0.3, 1.0],
    "gamma_table": [0.03, 0.1, 0.3, 1.0],
    "C": [1.0, 10.0, 100.0],
}


def split_columns(X: np.ndarray, gaussian_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """``(packed Gaussians, table columns)`` of ``gaussian+table`` rows.

    Raises
    ------
    ParameterError
        If ``gaussian_columns`` is not a packed width, or leaves no table column.
    """
    check_integer("gaussian_columns", gaussian_columns)
    packed_dim(gaussian_columns, f"gaussian_columns={gaussian_columns} must be the width of packed Gaussians")
    if X.shape[1] <= gaussian_columns:
        raise ParameterError(
            f"rows of {X.shape[1]} columns hold no table columns after the {gaussian_columns} of the Gaussian"
        )
    return X[:, :gaussian_columns], X[:, gaussian_columns:]


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = (a**2).sum(axis=1)[:, None] + (b**2).sum(axis=1)[None, :] - 2 * a @ b.T
    return np.maximum(out, 0.0)


def _median_scale(distances: np.ndarray) -> float:
    pairs = distances[np.triu_indices(len(distances), 1)]
    typical = float(np.median(pairs)) if len(pairs) else 0.0
    return typical if typical > 0 else 1.0  # identical tracks: any scale gives the same kernel


class FusionSVMClassifier(ClassifierMixin, BaseEstimator):
    """SVM with the product of a Gaussian-track kernel and a table RBF kernel.

    Parameters
    ----------
    gaussian_columns : int, default=104
        Width of the packed Gaussian block at the start of each row
        (``d + d (d + 1) / 2``; 104 for 13 MFCCs); the rest are table columns.
    gaussian_kernel : {"kl", "log-euclidean"}, default="kl"
        Distance between the Gaussians, see the module docstring.
    gamma_gaussian, gamma_table : float > 0, default=1.0
        Widths of the two factors, relative to the median training distance.
    C : float > 0, default=1.0
        SVM regularisation.
    ridge : float >= 0, default=1e-8
        Relative eigenvalue floor of the covariances (see
        :func:`knn_genre.features.gaussian.regularize_covariances`).
    block_size : int > 0, default=1024
        Test tracks whose kernel rows are computed at once.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    scale_gaussian_, scale_table_ : float
        The median training distances the gammas are relative to.
    origin_ : ndarray of shape (d,) or None
        Mean of the training means, subtracted before the KL terms (KL kernel; else None).
    vectorizer_, gaussian_scaler_ : GaussianVectorizer, StandardScaler or None
        The log-Euclidean vectors of the Gaussians and their scaling (log-Euclidean kernel; else None).
    table_scaler_ : sklearn.preprocessing.StandardScaler
        Standardises the table columns.
    projection_ : ndarray of shape (n_train, n_train) or None
        The spectrum clip's map (KL kernel with negative eigenvalues), else None.
    negative_mass_ : float
        Share of the training kernel's spectrum that was negative (0 for
        the log-Euclidean kernel, which is positive semi-definite).
    svc_ : sklearn.svm.SVC
        Fitted on the precomputed training kernel.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.features.gaussian import pack
    >>> from knn_genre.classifiers.fusion import FusionSVMClassifier
    >>> rng = np.random.default_rng(0)
    >>> gaussians = pack(np.concatenate([rng.normal(0, 1, (8, 2)), rng.normal(3, 1, (8, 2))]), np.tile(np.eye(2), (16, 1, 1)))
    >>> table = np.concatenate([rng.normal(0, 1, (8, 3)), rng.normal(2, 1, (8, 3))])
    >>> X, y = np.hstack([gaussians, table]), ["jazz"] * 8 + ["metal"] * 8
    >>> clf = FusionSVMClassifier(gaussian_columns=5, C=10.0).fit(X, y)
    >>> clf.predict(X[[0, 15]]).tolist()
    ['jazz', 'metal']
    """

    def __init__(self, gaussian_columns=104, *, gaussian_kernel="kl", gamma_gaussian=1.0, gamma_table=1.0, C=1.0,
                 ridge=DEFAULT_RIDGE, block_size=DEFAULT_BLOCK_SIZE):
        self.gaussian_columns = gaussian_columns
        self.gaussian_kernel = gaussian_kernel
        self.gamma_gaussian = gamma_gaussian
        self.gamma_table = gamma_table
        self.C = C
        self.ridge = ridge
        self.block_size = block_size

    def _check_params(self):
        check_choice("gaussian_kernel", self.gaussian_kernel, _GAUSSIAN_KERNELS)
        for name in ("gamma_gaussian", "gamma_table", "C"):
            check_number(name, getattr(self, name), minimum=0, strict=True)
        check_number("ridge", self.ridge, minimum=0)
        check_integer("block_size", self.block_size)

    def _gaussian_side(self, G: np.ndarray):
        """What the Gaussian distance needs of rows: divergence terms, or scaled log-Euclidean vectors."""
        if self.gaussian_kernel == "kl":
            means, covs = unpack(G)
            return gaussian_terms(means - self.origin_, covs, ridge=self.ridge)
        return self.gaussian_scaler_.transform(self.vectorizer_.transform(G))

    def _gaussian_distances(self, side, reference, rows=slice(None)):
        if self.gaussian_kernel == "kl":
            return symmetric_kl_from_terms(side, reference, rows)
        return _squared_distances(side[rows], reference)

    def fit(self, X, y):
        """Fit the scalers, the training kernel and the SVM.

        Parameters
        ----------
        X : array-like of shape (n_samples, gaussian_columns + n_table_columns)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : FusionSVMClassifier
        """
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_ = check_separable(np.unique(y))
        G, T = split_columns(X, self.gaussian_columns)
        # The attributes of the other kernel are reset, so a refit after set_params keeps none of an earlier fit.
        self.origin_ = self.vectorizer_ = self.gaussian_scaler_ = None
        if self.gaussian_kernel == "kl":
            self.origin_ = unpack(G)[0].mean(axis=0)
        else:
            self.vectorizer_ = GaussianVectorizer(covariance="log-euclidean", ridge=self.ridge).fit(G)
            self.gaussian_scaler_ = StandardScaler().fit(self.vectorizer_.transform(G))
        self.reference_gaussian_ = self._gaussian_side(G)
        dg = self._gaussian_distances(self.reference_gaussian_, self.reference_gaussian_)
        dg = 0.5 * (dg + dg.T)  # exactly symmetric with a zero diagonal, as distances are
        np.fill_diagonal(dg, 0.0)
        self.table_scaler_ = StandardScaler().fit(T)
        self.reference_table_ = self.table_scaler_.transform(T)
        dt = _squared_distances(self.reference_table_, self.reference_table_)
        dt = 0.5 * (dt + dt.T)
        np.fill_diagonal(dt, 0.0)
        self.scale_gaussian_, self.scale_table_ = _median_scale(dg), _median_scale(dt)
        kernel = self._kernel(dg, dt)
        self.projection_, self.negative_mass_ = None, 0.0
        if self.gaussian_kernel == "kl":
            kernel, self.projection_, _, self.negative_mass_ = clip_spectrum(kernel)
        self.svc_ = SVC(kernel="precomputed", C=float(self.C)).fit(kernel, y)
        return self

    def _kernel(self, dg, dt):
        return np.exp(-self.gamma_gaussian * dg / self.scale_gaussian_ - self.gamma_table * dt / self.scale_table_)

    def _kernel_rows(self, X):
        """Kernel rows of query blocks against the training tracks, shape (m, n_train) each."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        G, T = split_columns(X, self.gaussian_columns)
        side = self._gaussian_side(G)
        table = self.table_scaler_.transform(T)
        for r0 in range(0, len(X), self.block_size):
            rows = slice(r0, min(r0 + self.block_size, len(X)))
            dg = self._gaussian_distances(side, self.reference_gaussian_, rows)
            dt = _squared_distances(table[rows], self.reference_table_)
            kernel = self._kernel(dg, dt)
            yield kernel if self.projection_ is None else kernel @ self.projection_

    def _per_block(self, X, method: str) -> list:
        return [getattr(self.svc_, method)(kernel) for kernel in self._kernel_rows(X)]

    def decision_function(self, X):
        """SVM decision values, shape (n_queries, n_classes), or (n_queries,) for two classes."""
        return np.concatenate(self._per_block(X, "decision_function"))  # 0 rows are refused, as by scikit-learn

    def predict(self, X):
        """Genre of each query row, labels from ``classes_``."""
        return np.concatenate(self._per_block(X, "predict"))


class CombinedVectorizer(TransformerMixin, BaseEstimator):
    """``gaussian+table`` rows to plain vectors: the vectorised Gaussian, then the table columns.

    The Gaussian block becomes :class:`~knn_genre.classifiers.svm.GaussianVectorizer`'s
    vector (same width); the table columns pass unchanged. A scaler after it
    puts both on one footing, so any vector classifier can use both families.

    Parameters
    ----------
    gaussian_columns : int, default=104
        Width of the packed Gaussian block at the start of each row.
    covariance : {"raw", "log-variance", "log-euclidean"}, default="log-euclidean"
        Coordinates of the covariance, as :class:`~knn_genre.classifiers.svm.GaussianVectorizer`.

    Attributes
    ----------
    vectorizer_ : GaussianVectorizer
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.fusion import CombinedVectorizer
    >>> from knn_genre.features.gaussian import pack
    >>> X = np.hstack([pack(np.array([[1.0, 2.0]]), np.array([[[4.0, 1.0], [1.0, 1.0]]])), [[7.0, 8.0]]])
    >>> CombinedVectorizer(gaussian_columns=5, covariance="raw").fit_transform(X).tolist()
    [[1.0, 2.0, 4.0, 1.0, 1.0, 7.0, 8.0]]
    """

    def __init__(self, gaussian_columns=104, *, covariance="log-euclidean"):
        self.gaussian_columns = gaussian_columns
        self.covariance = covariance

    def fit(self, X, y=None):
        """Check the layout of ``X`` (n_samples, gaussian_columns + table columns)."""
        X = validate_data(self, X, dtype=np.float64)
        gaussians, _ = split_columns(X, self.gaussian_columns)
        self.vectorizer_ = GaussianVectorizer(covariance=self.covariance).fit(gaussians)
        return self

    def get_feature_names_out(self, input_features=None):
        """The Gaussian vector's names (see :class:`~knn_genre.classifiers.svm.GaussianVectorizer`), then the table's columns."""
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        return np.concatenate([self.vectorizer_.get_feature_names_out(), names[self.gaussian_columns :]]).astype(object)

    def transform(self, X):
        """Vectors of the same width as ``X``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        gaussians, table = split_columns(X, self.gaussian_columns)
        return np.hstack([self.vectorizer_.transform(gaussians), table])
