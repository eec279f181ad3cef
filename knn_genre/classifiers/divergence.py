"""Symmetric Kullback-Leibler divergence between sets of Gaussians.

For two Gaussians ``p = N(mu_p, S_p)`` and ``q = N(mu_q, S_q)`` of dimension
``d`` the symmetric divergence is::

    skl(p, q) = KL(p||q) + KL(q||p)
              = 1/2 [tr(S_q^-1 S_p) + tr(S_p^-1 S_q) + D^T (S_p^-1 + S_q^-1) D] - d

with ``D = mu_p - mu_q``; the log-determinants of the two KL terms cancel.
It is in nats, zero for identical Gaussians, symmetric, but not a metric
(no triangle inequality).

Every Gaussian is inverted once. Writing ``A = S + mu mu^T`` (the second
moment), ``P = S^-1``, ``h = P mu`` and ``c = mu^T P mu``, each term of a pair
is a dot product of per-Gaussian vectors::

    tr(P_q S_p) + mu_p^T P_q mu_p = vec(A_p) . vec(P_q)
    2 skl(p, q) = vec(A_p).vec(P_q) + vec(A_q).vec(P_p)
                  - 2 h_p.mu_q - 2 mu_p.h_q + c_p + c_q - 2d

so a block of divergences is a single matrix product of a left operand
``[vec A, vec P, h, mu, c, 1]`` with a right operand
``[vec P, vec A, -2 mu, -2 h, 1, c - 2d] / 2``. The symmetric matrices are stored as
their upper triangles with off-diagonal entries of ``vec A`` doubled, which
halves the width of the product (210 columns for d=13).

Covariances that are not positive definite (digital silence gives an all-zero
covariance, constant or too few frames give a rank-deficient one, arbitrary
numbers need not be PSD at all) are projected onto the positive-definite cone
by :func:`knn_genre.features.gaussian.regularize_covariances`, so divergences are always finite.
Divergences within the rounding error of their dot product are returned as
exactly 0, so identical Gaussians are at divergence 0 (see
:func:`_divergence_block`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError, check_integer
from ..features.gaussian import DEFAULT_FLOOR, DEFAULT_RIDGE, regularize_covariances

__all__ = [
    "DEFAULT_RIDGE",
    "DEFAULT_FLOOR",
    "DEFAULT_BLOCK_SIZE",
    "GaussianTerms",
    "gaussian_terms",
    "symmetric_kl_from_terms",
    "pairwise_symmetric_kl",
    "kneighbors_symmetric_kl",
    "symmetric_kl_moments",
]

#: Side of the square tiles of the (query x reference) divergence matrix that
#: are held in memory at once: 1024**2 float64 values are 8 MiB per tile.
DEFAULT_BLOCK_SIZE = 1024

# Up to this many neighbours per tile, repeated argmin beats argpartition
# (0.2 ms against 1.1 ms for k = 5 on a 340 x 660 tile).
_ARGMIN_MAX_K = 16


@dataclass(frozen=True, eq=False)
class GaussianTerms:
    """Per-Gaussian terms of the expanded symmetric KL for one set of Gaussians.

    Built by :func:`gaussian_terms`; the arrays are read-only. With
    ``p = d * (d + 1) / 2``:

    Attributes
    ----------
    means : ndarray of shape (n, d)
        ``mu``, in feature units.
    second_moments : ndarray of shape (n, p)
        Upper triangle of ``S + mu mu^T`` (regularised ``S``), off-diagonal
        entries doubled so that a dot product with :attr:`precisions` is the
        full Frobenius product ``vec(A) . vec(P)``.
    precisions : ndarray of shape (n, p)
        Upper triangle of ``P = S^-1``, in inverse squared units.
    precision_means : ndarray of shape (n, d)
        ``P mu``.
    mahalanobis : ndarray of shape (n,)
        ``mu^T P mu``, dimensionless.
    regularized : ndarray of shape (n,), bool
        Whether an eigenvalue of that covariance was raised to the floor.
    """

    means: np.ndarray
    second_moments: np.ndarray
    precisions: np.ndarray
    precision_means: np.ndarray
    mahalanobis: np.ndarray
    regularized: np.ndarray

    def __post_init__(self):
        for value in vars(self).values():
            value.setflags(write=False)

    @property
    def n(self) -> int:
        """Number of Gaussians."""
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        """Dimension ``d`` of the Gaussians."""
        return self.means.shape[1]

    def left_operand(self, rows: slice = slice(None)) -> np.ndarray:
        """``[vec A, vec P, h, mu, c, 1]`` for ``rows``, shape (m, 2p + 2d + 2)."""
        m = self.means[rows].shape[0]
        return np.hstack(
            [
                self.second_moments[rows],
                self.precisions[rows],
                self.precision_means[rows],
                self.means[rows],
                self.mahalanobis[rows, None],
                np.ones((m, 1)),
            ]
        )

    def right_operand(self, rows: slice = slice(None)) -> np.ndarray:
        """``[vec P, vec A, -2 mu, -2 h, 1, c - 2d] / 2`` for ``rows``, shape (m, 2p + 2d + 2).

        The halving and the ``- d`` are folded in so that
        ``left_operand() @ right_operand().T`` is the divergence itself.
        """
        m = self.means[rows].shape[0]
        return np.hstack(
            [
                0.5 * self.precisions[rows],
                0.5 * self.second_moments[rows],
                -self.means[rows],
                -self.precision_means[rows],
                np.full((m, 1), 0.5),
                0.5 * self.mahalanobis[rows, None] - self.dim,
            ]
        )


def _check_gaussians(means, covs, name="") -> tuple[np.ndarray, np.ndarray]:
    """Float64 ``means (n, d)`` (a copy) and ``covs (n, d, d)``, shapes and finiteness checked."""
    # A copy of the means: the terms keep them and make them read-only. The
    # covariances are only read (regularisation symmetrises into a new array).
    means = np.array(means, dtype=np.float64)
    covs = np.asarray(covs, dtype=np.float64)
    label = f"{name}: " if name else ""
    if means.ndim != 2 or means.shape[1] < 1 or covs.shape != means.shape + means.shape[1:]:
        raise ParameterError(
            f"{label}means of shape (n, d) and covariances of shape (n, d, d) with d >= 1 "
            f"expected, got {means.shape} and {covs.shape}"
        )
    if not (np.all(np.isfinite(means)) and np.all(np.isfinite(covs))):
        raise ParameterError(f"{label}means and covariances must be finite (no NaN or inf)")
    return means, covs


def gaussian_terms(means, covs, *, ridge=DEFAULT_RIDGE, floor=DEFAULT_FLOOR) -> GaussianTerms:
    """Precompute the per-Gaussian terms of the symmetric KL, one inverse each.

    Divergences are invariant to translating both sets of means by the same
    vector. The expanded form adds large terms that cancel when the means are
    far from the origin compared with their spread, so subtract a common
    origin (say, the mean of the reference means) from both sets first;
    :func:`pairwise_symmetric_kl` and ``KLKNNClassifier`` do.

    Parameters
    ----------
    means : array-like of shape (n, d)
    covs : array-like of shape (n, d, d)
        Regularised by :func:`knn_genre.features.gaussian.regularize_covariances`.
    ridge, floor : float
        See :func:`~knn_genre.features.gaussian.regularize_covariances`.

    Returns
    -------
    GaussianTerms

    Raises
    ------
    ValueError
        On wrong shapes, non-finite input, or values so large that the terms
        overflow float64.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.divergence import gaussian_terms
    >>> terms = gaussian_terms(np.zeros((3, 13)), np.tile(np.eye(13), (3, 1, 1)))
    >>> terms.n, terms.dim, terms.precisions.shape
    (3, 13, (3, 91))
    """
    means, covs = _check_gaussians(means, covs)
    covs, precisions, regularized = regularize_covariances(covs, ridge=ridge, floor=floor)
    d = means.shape[1]
    iu = np.triu_indices(d)
    # Doubling the off-diagonal of one factor makes the triangle dot product
    # equal to the full Frobenius product of two symmetric matrices.
    weight = np.where(iu[0] == iu[1], 1.0, 2.0)
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, with the cause
        second = covs[:, iu[0], iu[1]] + means[:, iu[0]] * means[:, iu[1]]
        second *= weight
        precision_means = np.einsum("nij,nj->ni", precisions, means)
        terms = GaussianTerms(
            means=means,
            second_moments=second,
            precisions=precisions[:, iu[0], iu[1]],
            precision_means=precision_means,
            mahalanobis=np.einsum("ni,ni->n", means, precision_means),
            regularized=regularized,
        )
    if not all(np.all(np.isfinite(v)) for v in vars(terms).values() if v.dtype.kind == "f"):
        raise ParameterError(
            "divergence terms overflow float64: means or covariances are too large "
            f"(largest |mean| {np.abs(means).max():.3g}, largest |cov| {np.abs(covs).max():.3g})"
        )
    return terms


def _check_same_dim(a: GaussianTerms, b: GaussianTerms):
    if a.dim != b.dim:
        raise ParameterError(f"Gaussians of dimension {a.dim} and {b.dim} cannot be compared")


def _row_norms(operand: np.ndarray) -> np.ndarray:
    """Euclidean norm of each row of an operand, for :func:`_divergence_block`."""
    return np.sqrt(np.einsum("ij,ij->i", operand, operand))


def _divergence_block(left, right, left_norms=None, right_norms=None) -> np.ndarray:
    """Symmetric KL of every left row against every right row, shape (m, r), >= 0.

    Each divergence is a dot product of width ``w`` whose rounding error is
    at most about ``w * eps * |left row| * |right row|`` (Cauchy-Schwarz on
    the standard bound). Values within that bound of zero, negatives
    included, are indistinguishable from zero and returned as exactly 0,
    so identical Gaussians are at divergence 0 and tie with each other. On
    MFCC Gaussians the bound is 1e-9 to 1e-7 nats, against 5 nats and more
    between distinct tracks.
    """
    if left_norms is None:
        left_norms = _row_norms(left)
    if right_norms is None:
        right_norms = _row_norms(right)
    out = left @ right.T
    np.maximum(out, 0.0, out=out)
    if out.size == 0:
        return out
    bound = left.shape[1] * np.finfo(np.float64).eps * left_norms
    # Only rows with some value that small need the elementwise test: rare.
    near = np.flatnonzero(out.min(axis=1) <= bound * right_norms.max())
    if len(near):
        sub = out[near]
        sub[sub <= bound[near, None] * right_norms] = 0.0
        out[near] = sub
    return out


def symmetric_kl_from_terms(terms_a: GaussianTerms, terms_b: GaussianTerms, rows: slice = slice(None)) -> np.ndarray:
    """Matrix of symmetric KL divergences from precomputed terms.

    Parameters
    ----------
    terms_a, terms_b : GaussianTerms
        Sets of ``na`` and ``nb`` Gaussians of the same dimension, built with
        the same origin.
    rows : slice, default=all
        Only these Gaussians of ``terms_a``, to build a large matrix block
        by block.

    Returns
    -------
    ndarray of shape (na, nb), or (len(rows), nb)
        Divergences in nats, >= 0. Needs ``na * nb * 8`` bytes; use
        :func:`kneighbors_symmetric_kl` when only the nearest are wanted.
    """
    _check_same_dim(terms_a, terms_b)
    return _divergence_block(terms_a.left_operand(rows), terms_b.right_operand())


def pairwise_symmetric_kl(
    means_a, covs_a, means_b, covs_b, *, ridge=DEFAULT_RIDGE, floor=DEFAULT_FLOOR
) -> np.ndarray:
    """Symmetric KL divergence between every pair of two sets of Gaussians.

    ``skl(p, q) = KL(p||q) + KL(q||p)
    = 1/2 [tr(S_q^-1 S_p) + tr(S_p^-1 S_q) + D^T (S_p^-1 + S_q^-1) D] - d``,
    computed with one inverse per Gaussian and one matrix product.

    Parameters
    ----------
    means_a : array-like of shape (na, d)
    covs_a : array-like of shape (na, d, d)
    means_b : array-like of shape (nb, d)
    covs_b : array-like of shape (nb, d, d)
        Means in feature units and covariances in squared feature units.
        Covariances are symmetrised and, where not safely positive definite,
        regularised as described in :func:`~knn_genre.features.gaussian.regularize_covariances`.
    ridge, floor : float
        See :func:`~knn_genre.features.gaussian.regularize_covariances`.

    Returns
    -------
    ndarray of shape (na, nb)
        Divergences in nats, finite and >= 0; ``[i, j]`` compares ``a[i]``
        with ``b[j]``.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.divergence import pairwise_symmetric_kl
    >>> means = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> covs = np.stack([np.eye(2), 2 * np.eye(2)])
    >>> pairwise_symmetric_kl(means, covs, means, covs).round(4).tolist()
    [[0.0, 1.25], [1.25, 0.0]]
    >>> silent = pairwise_symmetric_kl(means, np.zeros((2, 2, 2)), means, covs)
    >>> bool(np.all(np.isfinite(silent)))
    True
    """
    means_a, covs_a = _check_gaussians(means_a, covs_a, "set a")
    means_b, covs_b = _check_gaussians(means_b, covs_b, "set b")
    if means_a.shape[1] != means_b.shape[1]:
        raise ParameterError(
            f"Gaussians of dimension {means_a.shape[1]} and {means_b.shape[1]} cannot be compared"
        )
    both = np.concatenate([means_a, means_b])
    origin = both.mean(axis=0) if len(both) else 0.0
    terms_a = gaussian_terms(means_a - origin, covs_a, ridge=ridge, floor=floor)
    terms_b = gaussian_terms(means_b - origin, covs_b, ridge=ridge, floor=floor)
    return symmetric_kl_from_terms(terms_a, terms_b)


def _sort_lex(dist: np.ndarray, ind: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """First ``k`` of each row ordered by (distance, index), nearest first."""
    order = np.lexsort((ind, dist), axis=1)[:, :k]
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(ind, order, axis=1)


def _smallest(block: np.ndarray, k: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest of each row of ``block`` by (distance, column + offset).

    Rows come out sorted that way, nearest first, so the result does not
    depend on the tiling. Small ``k`` uses repeated ``argmin``, which is
    several times cheaper than one ``argpartition`` for ``k`` up to
    ``_ARGMIN_MAX_K``.
    """
    found = _smallest_by_argmin(block, k) if k <= _ARGMIN_MAX_K else None
    if found is None:
        found = _smallest_by_partition(block, k)
    return found[0], found[1] + offset


def _smallest_by_partition(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(distances, columns)`` of the ``k`` smallest per row, by ``argpartition``.

    ``np.argpartition`` picks an arbitrary member of a tie at the k-th
    value; the few rows with such a tie are redone so that the lowest
    columns win.
    """
    m, r = block.shape
    if k < r:
        part = np.argpartition(block, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(r), (m, r)).copy()
    dist = np.take_along_axis(block, part, axis=1)
    kth = dist.max(axis=1)
    tied_rows = np.flatnonzero(np.count_nonzero(block <= kth[:, None], axis=1) > k)
    for row in tied_rows:
        cand = np.flatnonzero(block[row] <= kth[row])  # ascending column index
        keep = cand[np.argsort(block[row, cand], kind="stable")[:k]]
        part[row] = keep
        dist[row] = block[row, keep]
    return _sort_lex(dist, part, k)


def _smallest_by_argmin(block: np.ndarray, k: int):
    """``(distances, columns)`` of the ``k`` smallest per row, or None.

    Each pass takes every row's ``argmin`` and masks it with ``inf``.
    ``argmin`` returns the first of equal values, so ties go to the lowest
    column and rows come out sorted. A row whose finite values run out would
    pick a masked entry again; then None is returned, and the caller uses
    :func:`_smallest_by_partition`. ``block`` is restored before returning.
    """
    m = block.shape[0]
    rows = np.arange(m)
    dist = np.empty((m, k))
    cols = np.empty((m, k), dtype=np.intp)
    for j in range(k):
        pick = block.argmin(axis=1)
        cols[:, j] = pick
        dist[:, j] = block[rows, pick]
        block[rows, pick] = np.inf
    # In reverse: a masked entry picked again must get back its first value.
    for j in reversed(range(k)):
        block[rows, cols[:, j]] = dist[:, j]
    if not np.all(np.isfinite(dist)):
        return None
    return dist, cols


def _check_pairing(query_terms: GaussianTerms, ref_terms: GaussianTerms, block_size, exclude_self) -> int:
    """Validate a query/reference pairing; return the references available per query."""
    _check_same_dim(query_terms, ref_terms)
    check_integer("block_size", block_size)
    nq, nr = query_terms.n, ref_terms.n
    if exclude_self and nq != nr:
        raise ParameterError(
            f"exclude_self needs the queries to be the references; got {nq} queries and {nr} references"
        )
    return nr - 1 if exclude_self else nr


def _tiles(query_terms: GaussianTerms, ref_terms: GaussianTerms, block_size: int):
    """Yield ``(rows, cols, block)``: divergence tiles, row block by row block.

    ``rows`` and ``cols`` are slices of the queries and references; all the
    tiles of one row block come before the next row block starts (``cols``
    starts at 0 again).
    """
    right = ref_terms.right_operand()
    right_norms = _row_norms(right)
    nq, nr = query_terms.n, ref_terms.n
    for r0 in range(0, nq, block_size):
        rows = slice(r0, min(r0 + block_size, nq))
        left = query_terms.left_operand(rows)
        left_norms = _row_norms(left)
        for c0 in range(0, nr, block_size):
            cols = slice(c0, min(c0 + block_size, nr))
            yield rows, cols, _divergence_block(left, right[cols], left_norms, right_norms[cols])


def _self_pairs(rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    """Tile coordinates of the global diagonal entries (i, i) inside a tile."""
    diag = np.arange(max(rows.start, cols.start), min(rows.stop, cols.stop))
    return diag - rows.start, diag - cols.start


def kneighbors_symmetric_kl(
    query_terms: GaussianTerms,
    ref_terms: GaussianTerms,
    k: int,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    exclude_self: bool = False,
    transform=None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` reference Gaussians nearest to each query in symmetric KL.

    The divergence matrix is computed in tiles of at most
    ``block_size x block_size`` and reduced to a running top-``k`` per query,
    so memory is ``O(block_size**2 + (nq + nr) * width)`` rather than
    ``O(nq * nr)``.

    Parameters
    ----------
    query_terms : GaussianTerms
        ``nq`` query Gaussians.
    ref_terms : GaussianTerms
        ``nr`` reference Gaussians, same dimension and origin as the queries.
    k : int
        Neighbours per query, ``1 <= k <= nr`` (``nr - 1`` with
        ``exclude_self``).
    block_size : int, default=DEFAULT_BLOCK_SIZE (1024)
        Side of a tile; a tile takes ``block_size**2 * 8`` bytes. Results do
        not depend on it.
    exclude_self : bool, default=False
        The queries are the references themselves (``query_terms`` is
        ``ref_terms``): query ``i`` never gets reference ``i`` as neighbour,
        even if other references are identical to it.
    transform : callable, optional
        ``transform(block, query_rows, ref_rows) -> block``, applied to every
        tile of divergences (rows ``query_rows``, columns ``ref_rows``, both
        slices) before the nearest are picked, to rank by a function of the
        divergence that depends on the pair, such as mutual proximity
        (:mod:`knn_genre.classifiers.hubness`). It may work in place.

    Returns
    -------
    distances : ndarray of shape (nq, k)
        Symmetric KL in nats (or its ``transform``), ascending along each row.
    indices : ndarray of shape (nq, k), intp
        Reference indices. Equal distances are ordered by index, lowest first.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.divergence import gaussian_terms, kneighbors_symmetric_kl
    >>> covs = np.tile(np.eye(2), (4, 1, 1))
    >>> ref = gaussian_terms(np.array([[0.0, 0], [3, 0], [1, 0], [-1, 0]]), covs)
    >>> query = gaussian_terms(np.array([[0.0, 0]]), covs[:1])
    >>> dist, ind = kneighbors_symmetric_kl(query, ref, 3)
    >>> ind.tolist(), dist.tolist()
    ([[0, 2, 3]], [[0.0, 1.0, 1.0]])
    """
    check_integer("k", k)
    available = _check_pairing(query_terms, ref_terms, block_size, exclude_self)
    nq = query_terms.n
    if k > available:
        raise ParameterError(f"k={k} must be <= {available}, the number of references available")
    distances = np.empty((nq, k))
    indices = np.empty((nq, k), dtype=np.intp)
    best = None
    for rows, cols, block in _tiles(query_terms, ref_terms, block_size):
        if cols.start == 0:
            best = None  # a new block of queries
        if transform is not None:
            block = transform(block, rows, cols)
        if exclude_self:
            block[_self_pairs(rows, cols)] = np.inf
        found = _smallest(block, min(k, cols.stop - cols.start), cols.start)
        if best is not None:
            found = _sort_lex(np.hstack([best[0], found[0]]), np.hstack([best[1], found[1]]), k)
        best = found
        if cols.stop == ref_terms.n:  # the last tile of this block of queries
            distances[rows], indices[rows] = best
    return distances, indices


def symmetric_kl_moments(
    query_terms: GaussianTerms,
    ref_terms: GaussianTerms,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    exclude_self: bool = False,
    transform=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each query's divergences to all references.

    Computed tile by tile like :func:`kneighbors_symmetric_kl`, so memory is
    ``O(block_size**2)``; the per-tile moments are merged with Chan et al.'s
    pairwise update, which stays accurate when the divergences span many
    orders of magnitude.

    Parameters
    ----------
    query_terms, ref_terms : GaussianTerms
        Same dimension and origin.
    block_size : int, default=DEFAULT_BLOCK_SIZE (1024)
    exclude_self : bool, default=False
        The queries are the references; query ``i`` skips reference ``i``.
    transform : callable, optional
        Elementwise function of the divergences (e.g. ``np.log1p``) whose
        moments are wanted instead.

    Returns
    -------
    mean : ndarray of shape (nq,)
    std : ndarray of shape (nq,)
        Population standard deviation (``ddof=0``), over ``nr`` references
        (``nr - 1`` with ``exclude_self``).

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.divergence import gaussian_terms, symmetric_kl_moments
    >>> covs = np.tile(np.eye(1), (3, 1, 1))
    >>> terms = gaussian_terms(np.array([[0.0], [1.0], [3.0]]), covs)
    >>> mean, std = symmetric_kl_moments(terms, terms, exclude_self=True)
    >>> mean.tolist(), std.tolist()
    ([5.0, 2.5, 6.5], [4.0, 1.5, 2.5])
    """
    available = _check_pairing(query_terms, ref_terms, block_size, exclude_self)
    nq = query_terms.n
    if available < 1:
        raise ParameterError(f"moments need at least one reference per query, there are {available}")
    mean = np.zeros(nq)
    m2 = np.zeros(nq)
    count = np.zeros(nq)
    for rows, cols, block in _tiles(query_terms, ref_terms, block_size):
        if transform is not None:
            block = transform(block)
        valid = np.ones(block.shape, dtype=bool)
        if exclude_self:
            valid[_self_pairs(rows, cols)] = False
        n_b = valid.sum(axis=1)
        block = np.where(valid, block, 0.0)
        mean_b = block.sum(axis=1) / np.maximum(n_b, 1)
        m2_b = (np.where(valid, block - mean_b[:, None], 0.0) ** 2).sum(axis=1)
        n_a = count[rows]
        total = n_a + n_b
        delta = mean_b - mean[rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, n_b / total, 0.0)
        mean[rows] += delta * share
        m2[rows] += m2_b + delta**2 * n_a * share
        count[rows] = total
    return mean, np.sqrt(m2 / count)
