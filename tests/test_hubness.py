"""Hubness measures and mutual proximity in the KL-KNN."""

import numpy as np
import pytest
from scipy.stats import norm

from knn_genre.classifiers.divergence import gaussian_terms, pairwise_symmetric_kl, symmetric_kl_moments
from knn_genre.errors import ParameterError
from knn_genre.features.gaussian import pack, unpack
from knn_genre.classifiers.hubness import hubness_skewness, k_occurrence, mutual_proximity_gaussian
from knn_genre.classifiers.knn import KLKNNClassifier

from test_knn import isotropic, make_tracks


@pytest.fixture(scope="module")
def tracks():
    return make_tracks(np.random.default_rng(0), 12, d=5, spread=2.5)


def test_moments_match_the_full_matrix(tracks):
    X, _ = tracks
    means, covs = unpack(X)
    terms = gaussian_terms(means - means.mean(0), covs)
    div = pairwise_symmetric_kl(means, covs, means, covs)
    off = ~np.eye(len(X), dtype=bool)
    for block_size in (1, 5, 1000):
        mean, std = symmetric_kl_moments(terms, terms, block_size=block_size, exclude_self=True, transform=np.log1p)
        logs = np.where(off, np.log1p(div), np.nan)
        np.testing.assert_allclose(mean, np.nanmean(logs, axis=1), rtol=1e-10)
        np.testing.assert_allclose(std, np.nanstd(logs, axis=1), rtol=1e-8)
    mean, _ = symmetric_kl_moments(terms, terms)
    np.testing.assert_allclose(mean, div.mean(axis=1), rtol=1e-9)
    one = gaussian_terms(means[:1], covs[:1])
    with pytest.raises(ValueError, match="at least one reference"):
        symmetric_kl_moments(one, one, exclude_self=True)


def test_mutual_proximity_formula():
    d = np.array([[2.0, 5.0]])
    got = mutual_proximity_gaussian(d, np.array([4.0]), np.array([2.0]), np.array([3.0, 6.0]), np.array([1.0, 3.0]))
    want = 1 - norm.sf(d, 4.0, 2.0) * norm.sf(d, [3.0, 6.0], [1.0, 3.0])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # Precise far below both typical distances, where 1 - sf * sf would round to 0.
    tiny = mutual_proximity_gaussian(np.array([[0.0]]), np.array([10.0]), np.array([1.0]), np.array([10.0]), np.array([1.0]))
    assert 0 < tiny[0, 0] < 1e-20


def test_k_occurrence_and_skewness():
    indices = np.array([[0, 1], [0, 2], [0, 1], [1, 0]])
    assert k_occurrence(indices, 4).tolist() == [4, 3, 1, 0]
    assert hubness_skewness(np.array([[0], [1], [2], [3]]), 4) == 0.0


def hub_collection():
    """Random 10-d Gaussians with Wishart covariances: a few are near everything (hubs)."""
    rng = np.random.default_rng(0)
    n, d = 100, 10
    means = rng.normal(size=(n, d))
    a = rng.normal(size=(n, d, 2 * d))
    return pack(means, a @ a.transpose(0, 2, 1) / (2 * d)), np.arange(n) % 2


def test_mutual_proximity_reduces_hubness():
    X, y = hub_collection()
    plain = KLKNNClassifier(5).fit(X, y).kneighbors(return_distance=False)
    mp = KLKNNClassifier(5, hubness="mutual_proximity").fit(X, y).kneighbors(return_distance=False)
    assert hubness_skewness(plain, len(X)) > 2.0
    assert hubness_skewness(mp, len(X)) < 0.5
    assert k_occurrence(mp, len(X)).max() < k_occurrence(plain, len(X)).max() / 2


def test_mutual_proximity_distances_and_block_size(tracks):
    X, y = tracks
    want = KLKNNClassifier(4, hubness="mutual_proximity").fit(X, y).kneighbors(X[:9])
    assert np.all((want[0] >= 0) & (want[0] <= 1))
    assert np.all(np.diff(want[0], axis=1) >= 0)
    for block_size in (1, 4):
        got = KLKNNClassifier(4, hubness="mutual_proximity", block_size=block_size).fit(X, y).kneighbors(X[:9])
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_allclose(got[0], want[0], rtol=1e-9, atol=1e-15)


def test_mutual_proximity_uses_the_training_distribution_only(tracks):
    X, y = tracks
    clf = KLKNNClassifier(3, hubness="mutual_proximity").fit(X[:30], y[:30])
    means, covs = unpack(X[:30])
    div = np.log1p(pairwise_symmetric_kl(means, covs, means, covs))
    div[np.eye(30, dtype=bool)] = np.nan
    np.testing.assert_allclose(clf.reference_moments_[0], np.nanmean(div, axis=1), rtol=1e-10)
    alone = clf.predict(X[30:31])
    np.testing.assert_array_equal(clf.predict(X[30:])[:1], alone)


def test_mutual_proximity_classifies(tracks):
    X, y = tracks
    clf = KLKNNClassifier(3, hubness="mutual_proximity").fit(X, y)
    assert clf.score(X, y) > 0.9
    assert clf.kneighbors(return_distance=False).shape == (len(X), 3)


def test_mutual_proximity_needs_two_tracks():
    with pytest.raises(ParameterError, match="hubness='mutual_proximity' needs at least 2 training tracks"):
        KLKNNClassifier(1, hubness="mutual_proximity").fit(isotropic([[0.0, 0.0]]), ["a"])
