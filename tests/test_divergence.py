"""Symmetric KL between sets of Gaussians: exactness, regularisation, blockwise k-NN."""

import doctest
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knn_genre.classifiers import divergence
from knn_genre.classifiers.divergence import (
    DEFAULT_FLOOR,
    gaussian_terms,
    kneighbors_symmetric_kl,
    pairwise_symmetric_kl,
    regularize_covariances,
    symmetric_kl_from_terms,
)


def random_gaussians(rng, n, d, *, offset=0.0):
    """Well-conditioned Gaussians at MFCC-like scale: variances from ~0.5 to ~50."""
    means = offset + rng.normal(0.0, 4.0, (n, d))
    scales = np.geomspace(7.0, 0.7, d)
    a = rng.normal(size=(n, d, 3 * d)) * scales[:, None]
    covs = a @ a.transpose(0, 2, 1) / (3 * d)
    return means, covs


def textbook_kl(mp, cp, mq, cq):
    """KL(p||q) with explicit inverses and log-determinants."""
    d = len(mp)
    inv_q = np.linalg.inv(cq)
    diff = mq - mp
    _, logdet_p = np.linalg.slogdet(cp)
    _, logdet_q = np.linalg.slogdet(cq)
    return 0.5 * (np.trace(inv_q @ cp) + diff @ inv_q @ diff - d + logdet_q - logdet_p)


def textbook_pairwise(ma, ca, mb, cb):
    out = np.empty((len(ma), len(mb)))
    for i in range(len(ma)):
        for j in range(len(mb)):
            out[i, j] = textbook_kl(ma[i], ca[i], mb[j], cb[j]) + textbook_kl(mb[j], cb[j], ma[i], ca[i])
    return out


def brute_kneighbors(full, k):
    """Reference k-NN: full row sort by (distance, index)."""
    order = np.lexsort((np.broadcast_to(np.arange(full.shape[1]), full.shape), full), axis=1)[:, :k]
    return np.take_along_axis(full, order, axis=1), order


# -- the divergence itself -----------------------------------------------------


@pytest.mark.parametrize("d", [2, 13])
@pytest.mark.parametrize("offset", [0.0, 40.0])
def test_matches_textbook_formula(d, offset):
    rng = np.random.default_rng(d)
    ma, ca = random_gaussians(rng, 9, d, offset=offset)
    mb, cb = random_gaussians(rng, 7, d, offset=offset)
    got = pairwise_symmetric_kl(ma, ca, mb, cb)
    want = textbook_pairwise(ma, ca, mb, cb)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=0)


@pytest.mark.parametrize("d", [2, 13])
def test_same_set_is_symmetric_with_zero_diagonal(d):
    rng = np.random.default_rng(1)
    means, covs = random_gaussians(rng, 12, d)
    got = pairwise_symmetric_kl(means, covs, means, covs)
    np.testing.assert_allclose(got, got.T, rtol=1e-10)
    assert np.all(np.abs(np.diag(got)) < 1e-10)
    off = got[~np.eye(len(got), dtype=bool)]
    assert np.all(off > 0)
    want = textbook_pairwise(means, covs, means, covs)[~np.eye(12, dtype=bool)]
    np.testing.assert_allclose(off, want, rtol=1e-8)


def test_known_value_for_isotropic_gaussians():
    # skl of N(0, I) and N(D, s I) in d dims: 1/2 [d/s + d s + |D|^2 (1 + 1/s)] - d.
    d, s = 3, 4.0
    delta = np.array([1.0, 2.0, 2.0])
    got = pairwise_symmetric_kl(np.zeros((1, d)), np.eye(d)[None], delta[None], s * np.eye(d)[None])
    want = 0.5 * (d / s + d * s + 9.0 * (1 + 1 / s)) - d
    assert got[0, 0] == pytest.approx(want, rel=1e-13)


def test_translation_invariant():
    rng = np.random.default_rng(2)
    ma, ca = random_gaussians(rng, 5, 13)
    mb, cb = random_gaussians(rng, 6, 13)
    shift = rng.normal(0, 100, 13)
    moved = pairwise_symmetric_kl(ma + shift, ca, mb + shift, cb)
    np.testing.assert_allclose(moved, pairwise_symmetric_kl(ma, ca, mb, cb), rtol=1e-9)


def test_asymmetric_input_is_symmetrised():
    rng = np.random.default_rng(3)
    means, covs = random_gaussians(rng, 4, 5)
    skew = rng.normal(0, 0.1, covs.shape)
    skew = skew - skew.transpose(0, 2, 1)
    skewed = pairwise_symmetric_kl(means, covs + skew, means, covs)
    np.testing.assert_allclose(skewed, pairwise_symmetric_kl(means, covs, means, covs), atol=1e-12)


# -- singular and invalid covariances ---------------------------------------------


def degenerate_covariances(rng, d=13):
    """Silence (all zero), constant frames in some coefficients, too few frames, indefinite."""
    zero = np.zeros((d, d))
    frames = rng.normal(size=(200, d))
    frames[:, 3:] = 1.5  # constant coefficients: rank 3
    partly_constant = np.cov(frames.T)
    few = np.cov(rng.normal(size=(5, d)).T)  # 5 frames: rank 4
    indefinite = np.diag(np.r_[-1.0, np.ones(d - 1)])
    return np.stack([zero, partly_constant, few, indefinite])


def test_singular_covariances_give_finite_divergences():
    rng = np.random.default_rng(4)
    bad = degenerate_covariances(rng)
    means = rng.normal(size=(len(bad), 13))
    good_means, good_covs = random_gaussians(rng, 6, 13)
    all_means = np.concatenate([means, good_means])
    all_covs = np.concatenate([bad, good_covs])
    got = pairwise_symmetric_kl(all_means, all_covs, all_means, all_covs)
    assert np.all(np.isfinite(got)) and np.all(got >= 0)
    assert np.all(np.diag(got) < 1e-6 * got.max())
    # A degenerate track is much farther from healthy tracks than they are from each other.
    assert got[: len(bad), len(bad) :].min() > got[len(bad) :, len(bad) :].max()


def test_two_silent_tracks_are_identical():
    means = np.full((2, 13), -36.0)
    silence = np.zeros((2, 13, 13))
    got = pairwise_symmetric_kl(means, silence, means, silence)
    moved = pairwise_symmetric_kl(means[:1], silence[:1], means[:1] + 1, silence[:1])
    assert np.all(np.isfinite(got)) and np.isfinite(moved).all()
    assert np.all(got <= 1e-6 * moved)


def test_regularize_leaves_healthy_covariances_untouched():
    rng = np.random.default_rng(5)
    _, covs = random_gaussians(rng, 8, 13)
    fixed, precisions, regularized = regularize_covariances(covs)
    assert not regularized.any()
    np.testing.assert_array_equal(fixed, 0.5 * (covs + covs.transpose(0, 2, 1)))
    np.testing.assert_allclose(precisions @ covs, np.broadcast_to(np.eye(13), covs.shape), atol=1e-10)
    np.testing.assert_allclose(precisions, np.linalg.inv(covs), rtol=1e-9, atol=1e-12)


def test_regularize_clips_eigenvalues_at_the_documented_floor():
    rng = np.random.default_rng(6)
    bad = degenerate_covariances(rng)
    fixed, precisions, regularized = regularize_covariances(bad, ridge=1e-6)
    assert regularized.all()
    lam_in = np.linalg.eigvalsh(bad)
    lam_out = np.linalg.eigvalsh(fixed)
    floor = np.maximum(1e-6 * np.abs(lam_in).mean(axis=1), DEFAULT_FLOOR)
    np.testing.assert_allclose(lam_out.min(axis=1), floor, rtol=1e-6)
    # Eigenvalues above the floor are kept.
    keep = lam_in > floor[:, None] * 1.01
    np.testing.assert_allclose(np.sort(lam_out)[keep], np.sort(lam_in)[keep], rtol=1e-9)
    assert np.all(np.isfinite(precisions))
    # The all-zero covariance becomes floor * I.
    np.testing.assert_allclose(fixed[0], DEFAULT_FLOOR * np.eye(13), rtol=1e-12)


def test_small_eigenvalues_above_the_floor_are_kept():
    # Five eigenvalues just above ridge * mean: the quick Cholesky test cannot
    # prove them safe, the eigen-decomposition then keeps the matrix as is.
    cov = np.diag(np.r_[np.ones(8), np.full(5, 1.2e-8)])
    q, _ = np.linalg.qr(np.random.default_rng(9).normal(size=(13, 13)))
    cov = q @ cov @ q.T
    cov = 0.5 * (cov + cov.T)
    fixed, precisions, regularized = regularize_covariances(cov[None])
    assert not regularized[0]
    np.testing.assert_array_equal(fixed[0], cov)
    np.testing.assert_allclose(precisions[0] @ cov, np.eye(13), atol=1e-6)


def test_one_bad_matrix_does_not_change_the_others():
    rng = np.random.default_rng(10)
    _, covs = random_gaussians(rng, 5, 13)
    indefinite = np.eye(13) + np.diag(np.full(12, 0.9), 1) + np.diag(np.full(12, 0.9), -1)
    assert np.linalg.eigvalsh(indefinite).min() < 0 < np.diag(indefinite).min()
    mixed = regularize_covariances(np.concatenate([covs, indefinite[None]]))
    alone = regularize_covariances(covs)
    assert mixed[2].tolist() == [False] * 5 + [True]
    np.testing.assert_array_equal(mixed[0][:5], alone[0])
    np.testing.assert_allclose(mixed[1][:5], alone[1], rtol=1e-9, atol=1e-12)


def test_regularize_rejects_bad_settings():
    covs = np.eye(2)[None]
    with pytest.raises(ValueError, match="ridge=-1 must be a finite number >= 0"):
        regularize_covariances(covs, ridge=-1)
    with pytest.raises(ValueError, match="floor=0 must be a finite number > 0"):
        regularize_covariances(covs, floor=0)
    with pytest.raises(ValueError, match=r"shape \(n, d, d\)"):
        regularize_covariances(np.eye(2))


@pytest.mark.parametrize(
    "means, covs, match",
    [
        (np.zeros((2, 3)), np.zeros((2, 3, 2)), r"\(n, d\).*\(n, d, d\)"),
        (np.zeros(3), np.zeros((3, 3)), r"\(n, d\)"),
        (np.full((1, 2), np.nan), np.eye(2)[None], "finite"),
        (np.zeros((1, 2)), np.full((1, 2, 2), np.inf), "finite"),
    ],
)
def test_invalid_gaussians_are_rejected(means, covs, match):
    with pytest.raises(ValueError, match=match):
        pairwise_symmetric_kl(means, covs, np.zeros((1, 2)), np.eye(2)[None])


def test_overflowing_terms_are_rejected():
    with pytest.raises(ValueError, match="overflow"):
        gaussian_terms(np.full((1, 2), 1e200), np.eye(2)[None])


def test_dimension_mismatch_is_rejected():
    with pytest.raises(ValueError, match="dimension 2 and 3"):
        pairwise_symmetric_kl(np.zeros((1, 2)), np.eye(2)[None], np.zeros((1, 3)), np.eye(3)[None])


def test_terms_are_read_only_and_inputs_are_not():
    means = np.zeros((2, 2))
    terms = gaussian_terms(means, np.tile(np.eye(2), (2, 1, 1)))
    with pytest.raises(ValueError):
        terms.precisions[0, 0] = 1.0
    means[0, 0] = 1.0  # the caller's array is untouched and still writeable
    assert terms.means[0, 0] == 0.0


# -- blockwise k nearest ------------------------------------------------------------


@pytest.fixture(scope="module")
def query_and_reference():
    rng = np.random.default_rng(7)
    q = gaussian_terms(*random_gaussians(rng, 23, 13))
    r = gaussian_terms(*random_gaussians(rng, 31, 13))
    return q, r


@pytest.mark.parametrize("block_size", [1, 2, 7, 23, 31, 64, 1024])
@pytest.mark.parametrize("k", [1, 5, 31])
def test_blockwise_equals_one_shot(query_and_reference, block_size, k):
    q, r = query_and_reference
    full = symmetric_kl_from_terms(q, r)
    want_d, want_i = brute_kneighbors(full, k)
    got_d, got_i = kneighbors_symmetric_kl(q, r, k, block_size=block_size)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_d, want_d, rtol=1e-12)
    assert np.all(np.diff(got_d, axis=1) >= 0)


@pytest.mark.parametrize("block_size", [1, 3, 31, 100])
def test_exclude_self(query_and_reference, block_size):
    _, r = query_and_reference
    full = symmetric_kl_from_terms(r, r)
    np.fill_diagonal(full, np.inf)
    want_d, want_i = brute_kneighbors(full, 4)
    got_d, got_i = kneighbors_symmetric_kl(r, r, 4, block_size=block_size, exclude_self=True)
    np.testing.assert_array_equal(got_i, want_i)
    assert not np.any(got_i == np.arange(r.n)[:, None])
    np.testing.assert_allclose(got_d, want_d, rtol=1e-12)


def test_identical_gaussians_are_at_exactly_zero():
    # The expanded form leaves rounding residue (~1e-13) for identical
    # Gaussians; it must come out as 0, while distinct tracks stay apart.
    rng = np.random.default_rng(12)
    means, covs = random_gaussians(rng, 40, 13, offset=-20.0)
    full = pairwise_symmetric_kl(means, covs, means, covs)
    assert np.all(np.diagonal(full) == 0.0)
    assert np.all(full[~np.eye(40, dtype=bool)] > 1.0)
    twice = np.concatenate([means, means]), np.concatenate([covs, covs])
    terms = gaussian_terms(*twice)
    dist, ind = kneighbors_symmetric_kl(terms, terms, 2)
    assert np.all(dist == 0.0)
    # Each track and its copy, lowest index first.
    assert ind.tolist() == [[i % 40, i % 40 + 40] for i in range(80)]


def test_exclude_self_keeps_identical_duplicates():
    means = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0]])
    terms = gaussian_terms(means, np.tile(np.eye(2), (3, 1, 1)))
    dist, ind = kneighbors_symmetric_kl(terms, terms, 1, exclude_self=True)
    assert ind[:, 0].tolist() == [1, 0, 0]
    assert dist[:2, 0].tolist() == [0.0, 0.0]


def test_equal_distances_go_to_the_lowest_index():
    # Integer means and identity covariances: every divergence is exact, so
    # references at the same distance are exactly tied.
    means = np.array([[3.0, 0], [1, 0], [-1, 0], [0, 1], [0, -1], [2, 0]])
    ref = gaussian_terms(means, np.tile(np.eye(2), (6, 1, 1)))
    query = gaussian_terms(np.zeros((1, 2)), np.eye(2)[None])
    for block_size in (1, 2, 4, 6):
        dist, ind = kneighbors_symmetric_kl(query, ref, 3, block_size=block_size)
        assert ind.tolist() == [[1, 2, 3]]
        assert dist.tolist() == [[1.0, 1.0, 1.0]]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 12),
    k=st.integers(1, 12),
    block_size=st.integers(1, 13),
    exclude_self=st.booleans(),
)
def test_ties_do_not_depend_on_tiling(seed, n, k, block_size, exclude_self):
    # Few distinct integer positions: many exact ties, at the k-th place too.
    rng = np.random.default_rng(seed)
    means = rng.integers(-2, 3, (n, 2)).astype(float)
    terms = gaussian_terms(means, np.tile(np.eye(2), (n, 1, 1)))
    k = min(k, n - 1 if exclude_self else n)
    if k < 1:
        return
    full = symmetric_kl_from_terms(terms, terms)
    if exclude_self:
        np.fill_diagonal(full, np.inf)
    want_d, want_i = brute_kneighbors(full, k)
    got_d, got_i = kneighbors_symmetric_kl(terms, terms, k, block_size=block_size, exclude_self=exclude_self)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_d, want_d)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    m=st.integers(1, 6),
    r=st.integers(1, 25),
    k=st.integers(1, 25),
    n_inf=st.integers(0, 30),
)
def test_argmin_and_partition_selections_agree(seed, m, r, k, n_inf):
    # Small integers give many ties; infs (excluded self pairs) can outnumber
    # the finite values of a row, where repeated argmin must hand over.
    rng = np.random.default_rng(seed)
    k = min(k, r)
    block = rng.integers(0, 4, (m, r)).astype(float)
    block[rng.integers(0, m, n_inf), rng.integers(0, r, n_inf)] = np.inf
    before = block.copy()
    want_d, want_i = divergence._smallest_by_partition(block.copy(), k)
    found = divergence._smallest_by_argmin(block, k)
    np.testing.assert_array_equal(block, before)
    finite_per_row = np.isfinite(before).sum(axis=1)
    if np.all(finite_per_row >= k):
        got_d, got_i = found
        np.testing.assert_array_equal(got_i, want_i)
        np.testing.assert_array_equal(got_d, want_d)
    else:
        assert found is None
    got_d, got_i = divergence._smallest(block, k, offset=100)
    np.testing.assert_array_equal(got_i, want_i + 100)
    np.testing.assert_array_equal(got_d, want_d)


def test_memory_is_bounded_by_the_tile():
    rng = np.random.default_rng(8)
    terms = gaussian_terms(*random_gaussians(rng, 1500, 2))
    tracemalloc.start()
    try:
        kneighbors_symmetric_kl(terms, terms, 5, block_size=100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full_matrix = 1500 * 1500 * 8
    assert peak < full_matrix / 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(k=0), "k=0 must be a positive integer"),
        (dict(k=2.0), "k=2.0 must be a positive integer"),
        (dict(k=5), "k=5 must be <= 4"),
        (dict(k=4, exclude_self=True), "k=4 must be <= 3"),
        (dict(k=1, block_size=0), "block_size=0 must be a positive integer"),
    ],
)
def test_kneighbors_argument_errors(kwargs, match):
    terms = gaussian_terms(np.zeros((4, 2)), np.tile(np.eye(2), (4, 1, 1)))
    with pytest.raises(ValueError, match=match):
        kneighbors_symmetric_kl(terms, terms, **kwargs)


def test_kneighbors_set_errors():
    a = gaussian_terms(np.zeros((4, 2)), np.tile(np.eye(2), (4, 1, 1)))
    b = gaussian_terms(np.zeros((3, 2)), np.tile(np.eye(2), (3, 1, 1)))
    c = gaussian_terms(np.zeros((3, 3)), np.tile(np.eye(3), (3, 1, 1)))
    with pytest.raises(ValueError, match="4 queries and 3 references"):
        kneighbors_symmetric_kl(a, b, 1, exclude_self=True)
    with pytest.raises(ValueError, match="dimension 2 and 3"):
        kneighbors_symmetric_kl(a, c, 1)


def test_docstring_examples_run():
    result = doctest.testmod(divergence, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("sizes", [(31,), (10, 21), (1, 1, 29), (16, 0, 15)])
@pytest.mark.parametrize("k", [1, 5, 12])
def test_sharded_search_equals_one_search(sizes, k):
    rng = np.random.default_rng(11)
    means, covs = random_gaussians(rng, 31, 13)
    means[7], covs[7] = means[3], covs[3]  # an exact tie across shards
    qm, qc = random_gaussians(rng, 9, 13)
    qm[0], qc[0] = means[3], covs[3]
    origin = means.mean(axis=0)
    query = gaussian_terms(qm - origin, qc)
    want = kneighbors_symmetric_kl(query, gaussian_terms(means - origin, covs), k)
    starts = np.cumsum((0,) + sizes)
    shards = [(a, gaussian_terms(means[a:b] - origin, covs[a:b])) for a, b in zip(starts[:-1], starts[1:])]
    got = divergence.kneighbors_sharded(query, reversed(shards), k, block_size=4)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    with pytest.raises(ValueError, match="k=40 must be <= 31"):
        divergence.kneighbors_sharded(query, shards, 40)
