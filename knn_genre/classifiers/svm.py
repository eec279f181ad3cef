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

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, OneToOneFeatureMixin, TransformerMixin, clone
from sklearn.model_selection import ParameterGrid
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import QuantileTransformer, StandardScaler
from sklearn.svm import SVC
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ..errors import ParameterError, check_choice, check_integer, check_number
from ..features.gaussian import DEFAULT_FLOOR, DEFAULT_RIDGE, packed_dim, regularize_covariances, unpack
from .cv import InnerStratifiedKFold, check_groups
from .divergence import DEFAULT_BLOCK_SIZE, packed_gaussian_terms, symmetric_kl_from_terms
from .probability import fit_sigmoid, sigmoid_probabilities, softmax_probabilities

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
    "search_klsvm",
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

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: ``mean{i}``, then the covariance's coordinates.

        ``cov{i}_{j}`` (raw), ``logvar{i}`` and ``corr{i}_{j}`` (log-variance)
        or ``logcov{i}_{j}`` (log-Euclidean), ``i <= j`` in the packed order.
        ``input_features`` are only checked: the columns are new quantities.
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features)
        d = self.dim_
        names = [f"mean{i}" for i in range(d)]
        if self.covariance == "log-variance":
            names += [f"logvar{i}" for i in range(d)] + [f"corr{i}_{j}" for i, j in zip(*np.triu_indices(d, 1))]
        else:
            prefix = "cov" if self.covariance == "raw" else "logcov"
            names += [f"{prefix}{i}_{j}" for i, j in zip(*np.triu_indices(d))]
        return np.asarray(names, dtype=object)

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


class FeatureScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
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


def _divergence_scale(divergences: np.ndarray, scale) -> float:
    """``scale_`` of a training divergence matrix: the median or mean over distinct pairs, or ``scale`` itself."""
    if not isinstance(scale, str):
        return float(scale)
    pairs = divergences[np.triu_indices(len(divergences), 1)]
    if len(pairs) == 0:
        return 1.0
    typical = np.median(pairs) if scale == "median" else np.mean(pairs)
    # Identical training tracks (or a single one) give no scale: any
    # positive number then yields the same all-ones kernel.
    return float(typical) if typical > 0 else 1.0


@dataclass(frozen=True, eq=False)
class _TrainingKernel:
    """The kernel an SVM is trained on, and the map that makes query rows consistent with it."""

    kernel: np.ndarray  # (n, n), positive semi-definite after a clip
    projection: np.ndarray | None  # P of the clip, None if nothing was clipped
    n_negative: int
    negative_mass: float

    @classmethod
    def of(cls, divergences, gamma: float, scale: float, spectrum: str) -> "_TrainingKernel":
        kernel = np.exp(-gamma * divergences / scale)
        if spectrum != "clip":
            return cls(kernel, None, 0, 0.0)
        return cls(*clip_spectrum(kernel))

    def frozen(self) -> "_TrainingKernel":
        """Itself with read-only arrays: kept by a cache for other fits, nobody may change them."""
        for array in (self.kernel, self.projection):
            if array is not None:
                array.setflags(write=False)
        return self

    def rows(self, divergences, gamma: float, scale: float) -> np.ndarray:
        """Kernel rows of queries at these divergences from the training tracks, shape (m, n)."""
        kernel = np.exp(-gamma * divergences / scale)
        return kernel if self.projection is None else kernel @ self.projection


def _fold_kernels(divergences, train, test, gamma: float, scale, spectrum: str):
    """``(training kernel, test kernel rows)`` of a fold, as a fit on its training tracks builds them.

    ``divergences`` are between all the tracks; ``scale`` is the
    estimator's parameter (the fold's median or mean divergence, or a number).
    """
    inside = divergences[np.ix_(train, train)]
    fold_scale = _divergence_scale(inside, scale)
    fitted = _TrainingKernel.of(inside, gamma, fold_scale, spectrum)
    return fitted, fitted.rows(divergences[np.ix_(test, train)], gamma, fold_scale)


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

    With ``probability=True``, ``fit`` also calibrates probabilities by
    Platt scaling (:func:`~knn_genre.classifiers.probability.fit_sigmoid`):
    the SVM is refitted on ``cv`` seeded stratified folds of the training
    tracks (:class:`~knn_genre.classifiers.cv.InnerStratifiedKFold`, tracks
    kept whole when ``groups`` are given), each from the training
    divergences already computed, and one sigmoid per genre is fitted to the
    out-of-fold decision values. ``predict`` is then the most probable
    genre. A genre with a single training track cannot be calibrated (no
    fold both trains and tests it): the probabilities are then the softmax
    of the decision values, and ``calibrated_`` is False.

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
    class_weight : dict, "balanced" or None, default=None
        Weights of the genres in the SVM's penalty, as ``sklearn.svm.SVC``:
        ``"balanced"`` weighs each genre inversely to its number of
        training tracks, so a small genre is not sacrificed to a large one.
    probability : bool, default=False
        Calibrate probabilities at ``fit`` (``cv`` more SVM fits) and
        provide ``predict_proba``.
    cv : int or cross-validation splitter, default=5
        Calibration folds: a number >= 2 (seeded stratified folds, fewer when
        a genre has fewer tracks), or an object with ``split(X, y, groups)``
        (e.g. ``StratifiedGroupKFold``) whose test folds hold every training
        row once.
    random_state : int, default=0
        Seed of the calibration folds.
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
    calibrated_ : bool
        With ``probability=True``: whether the sigmoids were fitted (False:
        softmax of the decision values).
    sigmoids_ : ndarray of shape (n_classes, 2), (1, 2) for two classes, or None
        ``(a, b)`` of each genre's Platt sigmoid.

    See Also
    --------
    knn_genre.classifiers.registry : the ``klsvm`` model searches ``C`` and ``gamma``
        (with :func:`search_klsvm`) and calibrates its probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.features.gaussian import pack
    >>> from knn_genre.classifiers.svm import KLSVMClassifier
    >>> rng = np.random.default_rng(0)
    >>> means = np.concatenate([rng.normal(0, 1, (10, 2)), rng.normal(4, 1, (10, 2))])
    >>> X = pack(means, np.tile(np.eye(2), (20, 1, 1)))
    >>> y = ["jazz"] * 10 + ["metal"] * 10
    >>> clf = KLSVMClassifier(C=10.0, probability=True).fit(X, y)
    >>> queries = pack(np.array([[0.0, 0.5], [4.0, 3.5]]), np.tile(np.eye(2), (2, 1, 1)))
    >>> clf.predict(queries).tolist()
    ['jazz', 'metal']
    >>> clf.predict_proba(queries).round(1).tolist()
    [[0.9, 0.1], [0.1, 0.9]]
    """

    def __init__(
        self,
        C=1.0,
        gamma=1.0,
        *,
        scale="median",
        spectrum="clip",
        class_weight=None,
        probability=False,
        cv=5,
        random_state=0,
        ridge=DEFAULT_RIDGE,
        block_size=DEFAULT_BLOCK_SIZE,
        cache=None,
    ):
        self.C = C
        self.gamma = gamma
        self.scale = scale
        self.spectrum = spectrum
        self.class_weight = class_weight
        self.probability = probability
        self.cv = cv
        self.random_state = random_state
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
        if not (self.class_weight is None or self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise ParameterError(f"class_weight={self.class_weight!r} must be None, 'balanced' or a dict of genre -> weight")
        if not hasattr(self.cv, "split"):
            check_integer("cv", self.cv, 2)
        check_number("ridge", self.ridge, minimum=0)
        check_integer("block_size", self.block_size)

    def _terms(self, X):
        return packed_gaussian_terms(X, origin=self.origin_, ridge=self.ridge)

    def _training_divergences(self, X) -> np.ndarray:
        """Symmetric KL between the rows of ``X``, as ``fit`` uses them, shape (n, n).

        Sets ``origin_`` and ``reference_terms_`` (``fit`` calls it first).
        Exactly symmetric with a zero diagonal, as the divergence is; the
        expanded form is only so up to rounding.
        """
        means, _ = unpack(X)
        self.origin_ = means.mean(axis=0)
        self.reference_terms_ = self._terms(X)
        self._fit_rows = self._cache_rows(X, fitting=True)
        if self._fit_rows is None:
            div = symmetric_kl_from_terms(self.reference_terms_, self.reference_terms_)
        else:
            div = self.cache.block(self._fit_rows, self._fit_rows)
        div = 0.5 * (div + div.T)
        np.fill_diagonal(div, 0.0)
        return div

    def _svc(self, C=None) -> SVC:
        return SVC(kernel="precomputed", C=float(self.C if C is None else C), class_weight=self.class_weight)

    def fit(self, X, y, groups=None):
        """Compute the training kernel, make it PSD, fit the SVM (and calibrate).

        Parameters
        ----------
        X : array-like of shape (n_samples, d + d * (d + 1) / 2)
            Packed training Gaussians.
        y : array-like of shape (n_samples,)
            Genre labels, strings or integers.
        groups : array-like of shape (n_samples,), optional
            Track of each row when rows are segments: the calibration folds
            keep each track's rows together.

        Returns
        -------
        self : KLSVMClassifier

        Raises
        ------
        ParameterError
            If a parameter is out of range, the width of ``X`` is not a
            packed width, or ``y`` has fewer than 2 classes.
        """
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_ = check_separable(np.unique(y))
        if groups is not None:
            groups = check_groups(groups, len(y))
        self.dim_ = packed_dim(X.shape[1])
        div = self._training_divergences(X)
        self.scale_ = _divergence_scale(div, self.scale)
        fitted = self._training_kernel(div)
        self.projection_ = fitted.projection
        self.n_negative_eigenvalues_ = fitted.n_negative
        self.negative_mass_ = fitted.negative_mass
        self.svc_ = self._svc().fit(fitted.kernel, y)
        self.calibrated_ = False
        self.sigmoids_ = None
        if self.probability:
            self._calibrate(div, y, groups)
        return self

    def _calibrate(self, div, y, groups):
        """Platt sigmoids on out-of-fold decision values of the training tracks."""
        if hasattr(self.cv, "split"):
            folds = list(self.cv.split(div, y, groups))
            tested = np.bincount(np.concatenate([test for _, test in folds]), minlength=len(y)) if folds else np.zeros(len(y))
            if np.any(tested != 1):
                raise ParameterError(f"cv={self.cv!r} must test every training row exactly once to calibrate; "
                                     f"{int(np.sum(tested != 1))} of {len(y)} rows are not")
            if any(len(np.unique(y[train])) < len(self.classes_) for train, _ in folds):
                raise ParameterError(f"cv={self.cv!r} leaves a genre out of the training part of a fold, "
                                     "whose decision values then lack its column; use stratified folds")
        else:
            inner = InnerStratifiedKFold(self.cv, random_state=self.random_state)
            _, counts = np.unique(inner.units(y, groups)[0], return_counts=True)
            if counts.min() < 2:
                return  # a genre of one track: softmax of the decision values
            folds = list(inner.split(div, y, groups))
        binary = len(self.classes_) == 2
        scores = np.empty(len(y)) if binary else np.empty((len(y), len(self.classes_)))
        for train, test in folds:
            fitted, rows = _fold_kernels(div, train, test, self.gamma, self.scale, self.spectrum)
            scores[test] = self._svc().fit(fitted.kernel, y[train]).decision_function(rows)
        # The class weights the SVM was fitted with weigh its calibration too: otherwise the argmax of
        # the calibrated probabilities, which predict returns, would undo them.
        w = None if self.class_weight is None else compute_sample_weight(self.class_weight, y)
        if binary:
            self.sigmoids_ = np.array([fit_sigmoid(scores, y == self.classes_[1], w)])
        else:
            self.sigmoids_ = np.array([fit_sigmoid(scores[:, k], y == c, w) for k, c in enumerate(self.classes_)])
        self.calibrated_ = True

    def _training_kernel(self, div) -> "_TrainingKernel":
        """The kernel of the training divergences; shared through ``cache`` when the tracks are its rows."""
        def build():
            return _TrainingKernel.of(div, self.gamma, self.scale_, self.spectrum)

        if self._fit_rows is None:
            return build()
        # The same tracks and gamma (and scale, which follows from them) give the same kernel, whatever C.
        key = ("klsvm", self._fit_rows.tobytes(), float(self.gamma), self.scale_, self.spectrum)
        return self.cache.kernel(key, lambda: build().frozen())

    def _cache_rows(self, X, fitting=False):
        """Rows of ``X`` in ``cache``, if it can serve them (and the training tracks); else None."""
        if self.cache is None or (not fitting and self._fit_rows is None):
            return None
        return self.cache.serves(X, self.ridge)

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
        # validate_data refuses 0 rows, as scikit-learn's estimators do: there is always a block.
        return np.concatenate(self._per_block(X, "decision_function"))

    @available_if(lambda self: self.probability)
    def predict_proba(self, X):
        """Genre probabilities of the queries (needs ``probability=True``).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features_in_)
            Packed query Gaussians.

        Returns
        -------
        ndarray of shape (n_queries, n_classes)
            Calibrated (Platt) when ``calibrated_``, else the softmax of the
            decision values; columns as ``classes_``, rows sum to 1.
        """
        decisions = self.decision_function(X)
        if self.sigmoids_ is None:
            return softmax_probabilities(decisions)
        return sigmoid_probabilities(decisions, self.sigmoids_)

    def predict(self, X):
        """Genre of each query: the SVM's decision, or the most probable genre with ``probability=True``.

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
        if self.probability:
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        return np.concatenate(self._per_block(X, "predict"))


#: Parameters :func:`search_klsvm` can search; other grids need a plain grid search.
_KLSVM_SEARCHABLE = {"C", "gamma", "class_weight"}


def search_klsvm(estimator: KLSVMClassifier, grid, X, y, folds) -> tuple[dict, float] | None:
    """Grid search of a :class:`KLSVMClassifier` that shares the work between grid points.

    A plain grid search refits every point on every fold, recomputing the
    same divergences and, for each ``C``, the same eigen-decomposition.
    Here the divergences are computed once for all the tracks, each fold's
    training kernel is built (and clipped) once per ``gamma``, and only the
    SVM is refitted per ``C``: each point is scored exactly as a fit of
    ``estimator`` with those parameters on the fold's training tracks would
    score (up to the rounding of the divergences), by accuracy on the
    fold's test tracks. The best mean accuracy wins; ties go to the first
    point in ``sklearn.model_selection.ParameterGrid`` order, as in
    ``GridSearchCV``.

    Parameters
    ----------
    estimator : KLSVMClassifier
        Its other parameters are kept.
    grid : dict or list of dict
        Values of ``C``, ``gamma`` and ``class_weight``.
    X : ndarray of shape (n, n_features)
        Packed Gaussians.
    y : ndarray of shape (n,)
    folds : list of (train_indices, test_indices)

    Returns
    -------
    (best_params, best_score) or None
        None when the grid has other parameters (search those with
        ``GridSearchCV``).
    """
    points = list(ParameterGrid(grid))
    if any(set(point) - _KLSVM_SEARCHABLE for point in points):
        return None
    template = clone(estimator).set_params(probability=False)
    template._check_params()
    y = np.asarray(y)
    div = template._training_divergences(validate_data(template, X, dtype=np.float64))
    scores = np.zeros(len(points))
    for train, test in folds:
        kernels = {}
        for i, point in enumerate(points):
            params = template.get_params() | point
            gamma = params["gamma"]
            if gamma not in kernels:
                kernels[gamma] = _fold_kernels(div, train, test, gamma, template.scale, params["spectrum"])
            fitted, rows = kernels[gamma]
            svc = SVC(kernel="precomputed", C=float(params["C"]), class_weight=params["class_weight"])
            scores[i] += np.mean(svc.fit(fitted.kernel, y[train]).predict(rows) == y[test])
    scores /= len(folds)
    best = int(np.argmax(scores))  # the first of equal scores
    return dict(points[best]), float(scores[best])


def check_separable(classes: np.ndarray) -> np.ndarray:
    """``classes`` if an SVM can separate them (at least 2), else a ParameterError naming the one."""
    if len(classes) < 2:
        raise ParameterError(f"an SVM needs at least 2 genres to separate; got 1 class ({str(classes[0])!r})")
    return classes


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
