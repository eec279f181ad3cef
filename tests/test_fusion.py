"""The fused SVM: its kernel is the product of the Gaussian kernel and the table RBF."""

import numpy as np
import pytest

from knn_genre.classifiers.divergence import pairwise_symmetric_kl
from knn_genre.classifiers.fusion import CombinedVectorizer, FusionSVMClassifier, split_columns
from knn_genre.classifiers.svm import GaussianVectorizer
from knn_genre.errors import ParameterError
from knn_genre.features.gaussian import pack
from test_knn import applicable_checks, run_check


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(["jazz", "metal", "rock"], n // 3)
    shift = np.searchsorted(np.unique(y), y)[:, None]
    means = rng.normal(0, 1, (n, 3)) + shift
    a = rng.normal(0, 0.3, (n, 3, 3))
    covs = np.eye(3) + a @ a.swapaxes(1, 2)
    table = rng.normal(0, 1, (n, 4)) + 0.5 * shift
    return np.hstack([pack(means, covs), table]), y, means, covs, table


def median_pairs(d):
    return np.median(d[np.triu_indices(len(d), 1)])


@pytest.mark.parametrize("kernel", ["kl", "log-euclidean"])
def test_the_training_kernel_is_the_product_of_the_two(kernel):
    X, y, means, covs, table = data()
    clf = FusionSVMClassifier(gaussian_columns=9, gaussian_kernel=kernel, gamma_gaussian=0.5, gamma_table=2.0).fit(X, y)
    if kernel == "kl":
        dg = pairwise_symmetric_kl(means, covs, means, covs)
    else:
        v = GaussianVectorizer().fit_transform(X[:, :9])
        v = (v - v.mean(0)) / v.std(0)
        dg = ((v[:, None] - v[None]) ** 2).sum(-1)
    t = (table - table.mean(0)) / table.std(0)
    dt = ((t[:, None] - t[None]) ** 2).sum(-1)
    expected = np.exp(-0.5 * dg / median_pairs(dg)) * np.exp(-2.0 * dt / median_pairs(dt))
    assert clf.scale_gaussian_ == pytest.approx(median_pairs(dg), rel=1e-9)
    assert clf.scale_table_ == pytest.approx(median_pairs(dt), rel=1e-9)
    if kernel == "log-euclidean":  # positive semi-definite: nothing is clipped
        assert clf.projection_ is None and clf.negative_mass_ == 0.0
        np.testing.assert_allclose(np.concatenate(list(clf._kernel_rows(X))), expected, rtol=1e-8, atol=1e-12)
    assert (clf.predict(X) == y).mean() > 0.9
    assert clf.decision_function(X).shape == (len(y), 3)


def test_the_kl_kernel_rows_before_the_clip_are_the_product():
    X, y, means, covs, table = data(seed=2)
    clf = FusionSVMClassifier(gaussian_columns=9, gaussian_kernel="kl").fit(X, y)
    G, T = split_columns(X, 9)
    dg = clf._gaussian_distances(clf._gaussian_side(G), clf.reference_gaussian_)
    t = clf.table_scaler_.transform(T)
    dt = ((t[:, None] - clf.reference_table_[None]) ** 2).sum(-1)
    np.testing.assert_allclose(dg, pairwise_symmetric_kl(means, covs, means, covs), rtol=1e-7, atol=1e-8)
    kernel = clf._kernel(dg, dt)
    projected = kernel if clf.projection_ is None else kernel @ clf.projection_
    np.testing.assert_allclose(np.concatenate(list(clf._kernel_rows(X))), projected, rtol=1e-10, atol=1e-12)


def test_bad_layouts_and_parameters_are_refused():
    X, y, *_ = data()
    with pytest.raises(ParameterError, match="gaussian_columns=8 must be the width of packed Gaussians: 8 columns"):
        FusionSVMClassifier(gaussian_columns=8).fit(X, y)
    with pytest.raises(ParameterError, match="no table columns"):
        FusionSVMClassifier(gaussian_columns=9).fit(X[:, :9], y)
    with pytest.raises(ParameterError):
        FusionSVMClassifier(gaussian_columns=9, gaussian_kernel="rbf").fit(X, y)
    # The genre is named as given, through the registry's calibration too.
    with pytest.raises(ParameterError, match=r"at least 2 genres to separate; got 1 class \('jazz'\)"):
        FusionSVMClassifier(gaussian_columns=9).fit(X, np.array(["jazz"] * len(X)))
    from knn_genre.classifiers.registry import make_model

    with pytest.raises(ParameterError, match=r"model 'fusion' is an SVM, which needs at least 2 genres to separate; got 1 class \('jazz'\)"):
        make_model("fusion", family="gaussian+table", gaussian_columns=9).fit(X, np.array(["jazz"] * len(X)))


# -- scikit-learn's estimator checks -----------------------------------------------------------

# With gaussian_columns=2 (Gaussians of d = 1), sklearn's data of 3 or more columns are fused rows:
# those checks run the estimators for real. Its 2-column blobs hold no table column, and its
# 1-column data no Gaussian: the fused estimators must refuse them, with their layout error.
_NO_TABLE = "hold no table columns after the 2 of the Gaussian"
_TWO_COLUMN_CHECKS = (
    "check_estimators_overwrite_params", "check_estimators_fit_returns_self", "check_readonly_memmap_input",
    "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in", "check_fit2d_1feature",
)
_TWO_COLUMN_CLASSIFIER_CHECKS = ("check_classifier_data_not_an_array", "check_classifiers_classes", "check_classifiers_train")


def fused_expected_failed_checks(estimator):
    names = _TWO_COLUMN_CHECKS + (_TWO_COLUMN_CLASSIFIER_CHECKS if isinstance(estimator, FusionSVMClassifier) else ())
    return dict.fromkeys(names, _NO_TABLE)


@applicable_checks([
    FusionSVMClassifier(gaussian_columns=2),
    FusionSVMClassifier(gaussian_columns=2, gaussian_kernel="log-euclidean"),
    CombinedVectorizer(gaussian_columns=2),
])
def test_sklearn_compatible_estimator(estimator, check):
    run_check(estimator, check, fused_expected_failed_checks)


def test_a_refit_with_the_other_kernel_keeps_nothing_of_the_first():
    X, y, *_ = data()
    clf = FusionSVMClassifier(gaussian_columns=9, gaussian_kernel="log-euclidean").fit(X, y)
    clf.set_params(gaussian_kernel="kl").fit(X, y)
    assert clf.vectorizer_ is None and clf.gaussian_scaler_ is None and clf.origin_ is not None
    np.testing.assert_array_equal(clf.predict(X), FusionSVMClassifier(gaussian_columns=9).fit(X, y).predict(X))
    clf.set_params(gaussian_kernel="log-euclidean").fit(X, y)
    assert clf.origin_ is None and clf.vectorizer_ is not None
