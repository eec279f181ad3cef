"""Support vector machines on track Gaussians and feature vectors, and their grids.

Two ways to put an SVM on packed Gaussians (see :mod:`knn_genre.features`):

* :class:`GaussianVectorizer` turns each Gaussian into a plain vector (its
  mean and its covariance, raw or in log coordinates), which
  :func:`make_svm_pipeline` standardises and classifies with an RBF ``SVC``;
* :class:`KLSVMClassifier` keeps the Gaussians and uses the kernel
  ``K = exp(-gamma * skl / scale)`` on their symmetric KL divergence
  (Mandel & Ellis, "Song-level features and support vector machines for
  music classification", ISMIR 2005).

Their parameter grids are searched by the registry's models
(:mod:`knn_genre.classifiers.registry`) on seeded inner folds of the
training tracks only, so an evaluation is nested.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import QuantileTransformer, StandardScaler
from sklearn.svm import SVC
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import ParameterError, check_choice, check_integer, check_number
from ..features.gaussian import DEFAULT_FLOOR, DEFAULT_RIDGE, packed_dim, regularize_covariances, unpack
from .divergence import DEFAULT_BLOCK_SIZE, packed_gaussian_terms, symmetric_kl_from_terms

__all__ = [
    "clip_spectrum",
    "GaussianVectorizer",
    "FeatureScaler",
    "KLSVMClassifier",
    "SVM_PARAM_GRID",
    "TABLE_SVM_PARAM_GRID",
    "KLSVM_PARAM_GRID",
    "make_svm_pipeline",
    "make_table_svm_pipeline",
]

_COVARIANCE_MODES = ("raw", "log-variance", "log-euclidean")
_SCALER_METHODS = ("standard", "quantile")
_SCALES = ("median", "mean")
_SPECTRA = ("clip", "none")

#: Grid of the ``svm`` model. The features are standardised, so
#: sklearn's ``gamma="scale"`` would be 1/104 for 13 MFCCs; on a sample of
#: real GTZAN clips smaller values scored higher and larger ones lower.
#: There, ``"log-variance"`` coordinates scored below ``"log-euclidean"``
#: ones and a linear kernel no higher than the RBF, so the search leaves
#: them out.
SVM_PARAM_GRID = {
    "vectorize__covariance": ["raw", "log-euclidean"],
    "svc__C": [1.0, 10.0, 100.0],
    "svc__gamma": [0.001, 0.003, 0.01, 0.03],
}

#: Grid of the ``svm`` model on tables (feature tables). ``gamma`` in
#: steps of 2 around sklearn's ``"scale"`` (1/57 for GTZAN's 57 features).
#: On ``features_30_sec.csv`` both this finer grid (rather than steps of
#: about 3 over a wider range) and the quantile option raised the nested
#: accuracy, for every outer seed tried.
TABLE_SVM_PARAM_GRID = {
    "scale__method": list(_SCALER_METHODS),
    "svc__C": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
    "svc__gamma": [0.005, 0.01, 0.02, 0.04],
}

#: Grid of the ``klsvm`` model; ``gamma`` is relative to the median
#: training divergence, so the same grid suits any collection.
KLSVM_PARAM_GRID = {
    "C": [1.0, 10.0, 100.0],
    "gamma": [0.3, 1.0, 3.0, 10.0],
}


def clip_spectrum(kernel: np.ndarray):
    """The nearest positive semi-definite matrix to a symmetric training kernel, and its map.

    With ``kernel = V diag(lam) V^T`` and ``P = V diag(lam > 0) V^T``, returns
    ``V diag(max(lam, 0)) V^T``, ``P`` (None when nothing was negative, so
    nothing changed), the number of negative eigenvalues and their share of
    the sum of absolute eigenvalues. A test kernel row ``k`` must become
    ``k P`` (see :class:`KLSVMClassifier`).
    """
    lam, vecs = np.linalg.eigh(kernel)
    negative = lam < 0
    total = np.abs(lam).sum()
    mass = float(-lam[negative].sum() / total) if total > 0 else 0.0
    if not negative.any():
        return kernel, None, 0, mass
    kept = vecs[:, ~negative]
    clipped = (kept * lam[~negative]) @ kept.T
    return 0.5 * (clipped + clipped.T), kept @ kept.T, int(negative.sum()), mass


class GaussianVectorizer(TransformerMixin, BaseEstimator):
    """Packed Gaussians to feature vectors for vector classifiers.

    Each row ``[mean, cov[triu]]`` becomes ``[mean, f(cov)]`` with ``f``:

    * ``"raw"``: the upper triangle of the covariance, as packed;
    * ``"log-variance"``: the log of the ``d`` variances, then the
      ``d (d - 1) / 2`` correlations above the diagonal. Variances span
      orders of magnitude across MFCCs and tracks; their logs and the
      scale-free correlations are closer to what a standardiser and an RBF
      kernel expect;
    * ``"log-euclidean"``: the upper triangle of the matrix logarithm
      ``logm(cov)``, off-diagonal entries times ``sqrt(2)`` so that the
      Euclidean distance between two rows is the Frobenius distance between
      the logarithms (Arsigny et al., 2006), a metric on covariances that
      respects their geometry.

    Covariances that are not safely positive definite are first regularised
    as in :func:`knn_genre.features.gaussian.regularize_covariances`, so logarithms
    are always finite. The transform is row by row and has nothing to learn;
    ``fit`` only checks the width.

    Parameters
    ----------
    covariance : {"raw", "log-variance", "log-euclidean"}, default="log-euclidean"
    ridge : float, default=1e-8
        Relative eigenvalue floor of the regularisation, >= 0.
    cache : knn_genre.classifiers.cache.DivergenceCache, optional
        When the rows of ``X`` are all rows of it, their vectors are
        computed once for all its rows and taken from it (the same numbers:
        the transform is row by row).

    Attributes
    ----------
    n_features_in_ : int
        Width of the packed rows, ``d + d * (d + 1) / 2``.
    dim_ : int
        Dimension ``d`` of the Gaussians.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.features.gaussian import pack
    >>> from knn_genre.classifiers.svm import GaussianVectorizer
    >>> X = pack(np.array([[1.0, 2.0]]), np.array([[[4.0, 1.0], [1.0, 1.0]]]))
    >>> GaussianVectorizer(covariance="raw").fit_transform(X).tolist()
    [[1.0, 2.0, 4.0, 1.0, 1.0]]
    >>> GaussianVectorizer(covariance="log-variance").fit_transform(X).round(4).tolist()
    [[1.0, 2.0, 1.3863, 0.0, 0.5]]
    >>> GaussianVectorizer().fit_transform(X).shape
    (1, 5)
    """

    def __init__(self, covariance="log-euclidean", *, ridge=DEFAULT_RIDGE, cache=None):
        self.covariance = covariance
        self.ridge = ridge
        self.cache = cache

    def _check_params(self):
        check_choice("covariance", self.covariance, _COVARIANCE_MODES)
        check_number("ridge", self.ridge, minimum=0)

    def fit(self, X, y=None):
        """Check the packed width of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, d + d * (d + 1) / 2)
            Packed Gaussians.
        y : ignored

        Returns
        -------
        self : GaussianVectorizer
        """
        self._check_params()
        X = validate_data(self, X, dtype=np.float64)
        self.dim_ = packed_dim(X.shape[1])
        return self

    def transform(self, X):
        """Vectors of the Gaussians.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Packed Gaussians.

        Returns
        -------
        ndarray of shape (n_samples, n_features_in_)
            ``[mean (d), f(cov) (d (d + 1) / 2)]``, the same width as the input.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        if self.covariance == "raw":
            return X.copy()
        rows = self.cache.rows_of(X) if self.cache is not None else None
        if rows is not None:
            key = ("vectorize", self.covariance, float(self.ridge))
            return self.cache.vectors(key, self._vectors)[rows]
        return self._vectors(X)

    def _vectors(self, X: np.ndarray) -> np.ndarray:
        """The transform of validated packed rows, row by row."""
        means, covs = unpack(X)
        covs, _, _ = regularize_covariances(covs, ridge=self.ridge, floor=DEFAULT_FLOOR)
        d = self.dim_
        upper = np.triu_indices(d, 1)
        if self.covariance == "log-variance":
            var = np.einsum("nii->ni", covs)
            sd = np.sqrt(var)
            corr = covs[:, upper[0], upper[1]] / (sd[:, upper[0]] * sd[:, upper[1]])
            return np.hstack([means, np.log(var), corr])
        lam, vecs = np.linalg.eigh(covs)
        logm = (vecs * np.log(lam)[:, None, :]) @ vecs.swapaxes(1, 2)
        iu = np.triu_indices(d)
        weight = np.where(iu[0] == iu[1], 1.0, np.sqrt(2.0))
        return np.hstack([means, logm[:, iu[0], iu[1]] * weight])


class FeatureScaler(TransformerMixin, BaseEstimator):
    """Per-column scaling of plain feature vectors, with the method as a parameter.

    A grid search can then choose the method by name (and report it as a
    string), which it cannot do with scaler objects.

    * ``"standard"``: ``StandardScaler``, zero mean and unit variance;
    * ``"quantile"``: ``QuantileTransformer(output_distribution="normal")``,
      each column mapped through its training quantiles onto a standard
      normal. Published feature tables mix means, variances and tempi whose
      distributions are skewed and heavy-tailed; after this map no single
      extreme track dominates the RBF kernel's distances.

    Parameters
    ----------
    method : {"standard", "quantile"}, default="standard"

    Attributes
    ----------
    scaler_ : StandardScaler or QuantileTransformer
        The fitted scaler. The quantile map uses ``min(1000, n_samples)``
        quantiles, all the training values when they are fewer.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.svm import FeatureScaler
    >>> X = np.array([[1.0], [2.0], [3.0], [100.0]])
    >>> FeatureScaler().fit_transform(X).round(2).ravel().tolist()
    [-0.6, -0.58, -0.55, 1.73]
    >>> FeatureScaler(method="quantile").fit_transform(X).round(2).ravel().tolist()
    [-5.2, -0.43, 0.43, 5.2]
    """

    def __init__(self, method="standard"):
        self.method = method

    def fit(self, X, y=None):
        """Fit the scaler on training vectors ``X`` of shape (n_samples, n_features)."""
        check_choice("method", self.method, _SCALER_METHODS)
        X = validate_data(self, X, dtype=np.float64)
        if self.method == "standard":
            self.scaler_ = StandardScaler().fit(X)
        else:
            quantiles = min(1000, X.shape[0])
            self.scaler_ = QuantileTransformer(n_quantiles=quantiles, output_distribution="normal").fit(X)
        return self

    def transform(self, X):
        """Scaled ``X``, same shape."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.scaler_.transform(X)


class KLSVMClassifier(ClassifierMixin, BaseEstimator):
    """Support vector machine with the exponentiated symmetric-KL kernel.

    The kernel between tracks ``p`` and ``q`` is
    ``K(p, q) = exp(-gamma * skl(p, q) / scale_)`` with the symmetric KL of
    :mod:`knn_genre.classifiers.divergence` and ``scale_`` a typical divergence between
    *training* tracks (their median by default), fixed at ``fit`` so that
    ``gamma`` is dimensionless and no test track influences the model.

    The kernel is not positive semi-definite in general (the symmetric KL is
    not a squared Euclidean distance); on real music at small ``gamma`` the
    training kernel has negative eigenvalues holding a few per cent of its
    spectrum. With ``spectrum="clip"`` (the default) they are set to zero
    (Chen et al., "Similarity-based classification", JMLR 2009): with the
    training kernel ``K = V diag(lam) V^T`` and ``P = V diag(lam > 0) V^T``,
    the SVM is trained on ``K P = V diag(max(lam, 0)) V^T``, the nearest
    positive semi-definite matrix to ``K``, and a test track's kernel row
    ``k`` becomes ``k P``, the same linear map, so training and test
    kernels stay consistent. The SVM problem is then convex, so libsvm
    finds its global optimum rather than whatever its solver makes of an
    indefinite matrix, at the cost of one ``O(n^3)`` eigen-decomposition
    per fit (a fraction of a second for 700 tracks). ``spectrum="none"``
    hands the raw kernel to libsvm, which still terminates on indefinite
    kernels (Fan, Chen & Lin, 2005) but then finds only a stationary point.
    Both are deterministic.

    Parameters
    ----------
    C : float, default=1.0
        SVM regularisation, > 0.
    gamma : float, default=1.0
        Kernel width relative to ``scale_``, > 0: ``gamma=1`` puts the
        median training pair at kernel value ``exp(-1)``.
    scale : {"median", "mean"} or float, default="median"
        How ``scale_`` is set: the median or mean divergence over distinct
        training pairs, or a fixed number of nats. The median is not moved
        by the huge divergences of regularised (e.g. silent) tracks.
    spectrum : {"clip", "none"}, default="clip"
        What to do with negative eigenvalues of the training kernel, see
        above.
    ridge : float, default=1e-8
        Relative eigenvalue floor for covariances that are not safely
        positive definite, see :func:`knn_genre.features.gaussian.regularize_covariances`.
    block_size : int, default=1024
        Test tracks whose kernel rows are computed at once
        (``block_size * n_train * 8`` bytes).
    cache : knn_genre.classifiers.cache.DivergenceCache, optional
        Divergences computed once for a set of tracks (an evaluation's):
        when the training tracks and the queries are all rows of it, their
        divergences are taken from it, and the clipped training kernel of
        the same tracks and ``gamma`` is decomposed once whatever ``C``.
        Results are the same up to rounding.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
        Width of the packed rows, ``d + d * (d + 1) / 2``.
    dim_ : int
        Dimension ``d`` of the Gaussians.
    origin_ : ndarray of shape (d,)
        Mean of the training means, subtracted before the divergence terms
        are computed (see :class:`knn_genre.classifiers.knn.KLKNNClassifier`).
    reference_terms_ : knn_genre.classifiers.divergence.GaussianTerms
        Divergence terms of the training tracks.
    scale_ : float
        Divergence in nats that ``gamma`` is relative to.
    projection_ : ndarray of shape (n_train, n_train) or None
        ``P`` of the spectrum clip, or ``None`` if nothing was clipped.
    n_negative_eigenvalues_ : int
        Negative eigenvalues of the training kernel (0 with ``spectrum="none"``,
        where they are not computed).
    negative_mass_ : float
        Their share of the sum of absolute eigenvalues, in [0, 1].
    svc_ : sklearn.svm.SVC
        The fitted ``SVC(kernel="precomputed")``.

    See Also
    --------
    knn_genre.classifiers.registry : the ``klsvm`` model searches ``C`` and ``gamma``.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.features.gaussian import pack
    >>> from knn_genre.classifiers.svm import KLSVMClassifier
    >>> rng = np.random.default_rng(0)
    >>> means = np.concatenate([rng.normal(0, 1, (10, 2)), rng.normal(4, 1, (10, 2))])
    >>> X = pack(means, np.tile(np.eye(2), (20, 1, 1)))
    >>> y = ["jazz"] * 10 + ["metal"] * 10
    >>> clf = KLSVMClassifier(C=10.0).fit(X, y)
    >>> queries = pack(np.array([[0.0, 0.5], [4.0, 3.5]]), np.tile(np.eye(2), (2, 1, 1)))
    >>> clf.predict(queries).tolist()
    ['jazz', 'metal']
    """

    def __init__(
        self,
        C=1.0,
        gamma=1.0,
        *,
        scale="median",
        spectrum="clip",
        ridge=DEFAULT_RIDGE,
        block_size=DEFAULT_BLOCK_SIZE,
        cache=None,
    ):
        self.C = C
        self.gamma = gamma
        self.scale = scale
        self.spectrum = spectrum
        self.ridge = ridge
        self.block_size = block_size
        self.cache = cache

    def _check_params(self):
        check_number("C", self.C, minimum=0, strict=True)
        check_number("gamma", self.gamma, minimum=0, strict=True)
        if isinstance(self.scale, str):
            if self.scale not in _SCALES:
                raise ParameterError(f"scale={self.scale!r} must be one of {_SCALES} or a number > 0")
        else:
            check_number("scale", self.scale, minimum=0, strict=True)
        check_choice("spectrum", self.spectrum, _SPECTRA)
        check_number("ridge", self.ridge, minimum=0)
        check_integer("block_size", self.block_size)

    def _terms(self, X):
        return packed_gaussian_terms(X, origin=self.origin_, ridge=self.ridge)

    def _scale(self, divergences: np.ndarray) -> float:
        if not isinstance(self.scale, str):
            return float(self.scale)
        pairs = divergences[np.triu_indices(len(divergences), 1)]
        if len(pairs) == 0:
            return 1.0
        typical = np.median(pairs) if self.scale == "median" else np.mean(pairs)
        # Identical training tracks (or a single one) give no scale: any
        # positive number then yields the same all-ones kernel.
        return float(typical) if typical > 0 else 1.0

    def fit(self, X, y):
        """Compute the training kernel, make it PSD, and fit the SVM.

        Parameters
        ----------
        X : array-like of shape (n_samples, d + d * (d + 1) / 2)
            Packed training Gaussians.
        y : array-like of shape (n_samples,)
            Genre labels, strings or integers.

        Returns
        -------
        self : KLSVMClassifier

        Raises
        ------
        ParameterError
            If a parameter is out of range or the width of ``X`` is not a
            packed width.
        ValueError
            If ``y`` has fewer than 2 classes.
        """
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ParameterError(
                f"an SVM needs at least 2 genres to separate; got 1 class ({self.classes_[0]!r})"
            )
        self.dim_ = packed_dim(X.shape[1])
        self.origin_ = X[:, : self.dim_].mean(axis=0)
        self.reference_terms_ = self._terms(X)
        self._fit_rows = self._cache_rows(X, fitting=True)
        if self._fit_rows is None:
            div = symmetric_kl_from_terms(self.reference_terms_, self.reference_terms_)
        else:
            div = self.cache.block(self._fit_rows, self._fit_rows)
        # Exactly symmetric with a zero diagonal, as the divergence is;
        # the expanded form is only so up to rounding.
        div = 0.5 * (div + div.T)
        np.fill_diagonal(div, 0.0)
        self.scale_ = self._scale(div)
        if self._fit_rows is None:
            kernel, self.projection_, self.n_negative_eigenvalues_, self.negative_mass_ = self._training_kernel(div)
        else:
            # The same tracks and gamma (and scale, which follows from them) give the same kernel, whatever C.
            key = ("klsvm", self._fit_rows.tobytes(), float(self.gamma), self.scale_, self.spectrum)
            kernel, self.projection_, self.n_negative_eigenvalues_, self.negative_mass_ = self.cache.kernel(
                key, lambda: self._training_kernel(div, shared=True)
            )
        self.svc_ = SVC(kernel="precomputed", C=float(self.C)).fit(kernel, y)
        return self

    def _training_kernel(self, div, shared=False):
        """``(kernel, projection or None, negative eigenvalues, their mass)`` of training divergences."""
        kernel = np.exp(-self.gamma * div / self.scale_)
        projection, n_negative, mass = None, 0, 0.0
        if self.spectrum == "clip":
            kernel, projection, n_negative, mass = clip_spectrum(kernel)
        if shared:  # kept by the cache for other fits: nobody may change them
            for array in (kernel, projection):
                if array is not None:
                    array.setflags(write=False)
        return kernel, projection, n_negative, mass

    def _cache_rows(self, X, fitting=False):
        """Rows of ``X`` in ``cache``, if it can serve them (and the training tracks); else None."""
        cache = self.cache
        if cache is None or (not fitting and self._fit_rows is None):
            return None
        if not cache.usable or cache.ridge != self.ridge:
            return None
        return cache.rows_of(X)

    def _per_block(self, X, method: str) -> list:
        """``method`` of the fitted SVC on each block of kernel rows of the queries ``X``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return [getattr(self.svc_, method)(kernel) for kernel in self._kernel_rows(X)]

    def _kernel_rows(self, X):
        """Kernel of query blocks against the training tracks, shape (m, n_train) each."""
        cached = self._cache_rows(X)
        terms = self._terms(X) if cached is None else None
        n = len(X)
        for r0 in range(0, n, self.block_size):
            rows = slice(r0, min(r0 + self.block_size, n))
            # Computed as at fit: identical tracks are at exactly 0 here too.
            if cached is None:
                div = symmetric_kl_from_terms(terms, self.reference_terms_, rows)
            else:
                div = self.cache.block(cached[rows], self._fit_rows)
            kernel = np.exp(-self.gamma * div / self.scale_)
            yield kernel if self.projection_ is None else kernel @ self.projection_

    def decision_function(self, X):
        """SVM decision values of the queries.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features_in_)
            Packed query Gaussians.

        Returns
        -------
        ndarray of shape (n_queries, n_classes), or (n_queries,) for two classes
            As ``SVC.decision_function`` (one-vs-rest shape).
        """
        parts = self._per_block(X, "decision_function")
        if not parts:
            shape = (0,) if len(self.classes_) == 2 else (0, len(self.classes_))
            return np.empty(shape)
        return np.concatenate(parts)

    def predict(self, X):
        """Genre of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features_in_)
            Packed query Gaussians.

        Returns
        -------
        y : ndarray of shape (n_queries,)
            Labels from ``classes_``.
        """
        parts = self._per_block(X, "predict")
        return np.concatenate(parts) if parts else self.classes_[:0]


def make_svm_pipeline(*, covariance="log-euclidean") -> Pipeline:
    """``GaussianVectorizer -> StandardScaler -> SVC(RBF)`` on packed Gaussians.

    Parameters
    ----------
    covariance : str, default="log-euclidean"
        See :class:`GaussianVectorizer`.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``vectorize``, ``scale`` and ``svc``.
    """
    return Pipeline(
        [
            ("vectorize", GaussianVectorizer(covariance=covariance)),
            ("scale", StandardScaler()),
            ("svc", SVC(kernel="rbf")),
        ]
    )


def make_table_svm_pipeline() -> Pipeline:
    """``FeatureScaler -> SVC(RBF)`` for plain feature vectors (published tables)."""
    return Pipeline([("scale", FeatureScaler()), ("svc", SVC(kernel="rbf"))])
