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

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError, check_integer
from ..features.gaussian import (
    DEFAULT_FLOOR,
    DEFAULT_RIDGE,
    packed_dim,
    regularize_covariances,
    regularize_stacked,
    triangle_rows,
)

__all__ = [
    "DEFAULT_RIDGE",
    "DEFAULT_FLOOR",
    "DEFAULT_BLOCK_SIZE",
    "GaussianTerms",
    "gaussian_terms",
    "packed_gaussian_terms",
    "symmetric_kl_from_terms",
    "pairwise_symmetric_kl",
    "kneighbors_symmetric_kl",
    "kneighbors_sharded",
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

    Built by :func:`gaussian_terms` or :func:`packed_gaussian_terms`. The
    terms are stored side by side as the rows of the left operand
    ``[vec A, vec P, h, mu, c, 1]`` of the divergence product, so that no
    copy is needed to compute divergences; the attributes below are
    read-only views of it. With ``p = d * (d + 1) / 2``:

    Attributes
    ----------
    left : ndarray of shape (n, 2p + 2d + 2)
        The left operand, see :meth:`left_operand`; Fortran-ordered (each
        term is a contiguous column).
    regularized : ndarray of shape (n,), bool
        Whether an eigenvalue of that covariance was raised to the floor.
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
    """

    left: np.ndarray
    regularized: np.ndarray

    def __post_init__(self):
        self.left.setflags(write=False)
        self.regularized.setflags(write=False)

    @property
    def n(self) -> int:
        """Number of Gaussians."""
        return self.left.shape[0]

    @property
    def dim(self) -> int:
        """Dimension ``d`` of the Gaussians: the operand has ``(d + 1)(d + 2)`` columns."""
        return _operand_dim(self.left.shape[1])

    def _column(self, name: str):
        p, d = _triangle(self.dim), self.dim
        start = {"second_moments": 0, "precisions": p, "precision_means": 2 * p, "means": 2 * p + d}[name]
        return slice(start, start + (p if start < 2 * p else d))

    @property
    def second_moments(self) -> np.ndarray:
        return self.left[:, self._column("second_moments")]

    @property
    def precisions(self) -> np.ndarray:
        return self.left[:, self._column("precisions")]

    @property
    def precision_means(self) -> np.ndarray:
        return self.left[:, self._column("precision_means")]

    @property
    def means(self) -> np.ndarray:
        return self.left[:, self._column("means")]

    @property
    def mahalanobis(self) -> np.ndarray:
        return self.left[:, -2]

    def left_operand(self, rows: slice = slice(None)) -> np.ndarray:
        """``[vec A, vec P, h, mu, c, 1]`` for ``rows``, shape (m, 2p + 2d + 2), read-only."""
        return self.left[rows]

    def right_operand(self, rows: slice = slice(None)) -> np.ndarray:
        """``[vec P, vec A, -2 mu, -2 h, 1, c - 2d] / 2`` for ``rows``, shape (m, 2p + 2d + 2).

        The halving and the ``- d`` are folded in so that
        ``left_operand() @ right_operand().T`` is the divergence itself.
        """
        d = self.dim
        p = _triangle(d)
        left = self.left[rows]
        right = np.empty_like(left)
        np.multiply(left[:, p : 2 * p], 0.5, out=right[:, :p])
        np.multiply(left[:, :p], 0.5, out=right[:, p : 2 * p])
        np.negative(left[:, 2 * p + d : 2 * p + 2 * d], out=right[:, 2 * p : 2 * p + d])
        np.negative(left[:, 2 * p : 2 * p + d], out=right[:, 2 * p + d : 2 * p + 2 * d])
        right[:, -2] = 0.5
        np.multiply(left[:, -2], 0.5, out=right[:, -1])
        right[:, -1] -= d
        return right


def _triangle(d: int) -> int:
    return d * (d + 1) // 2


def _operand_dim(width: int) -> int:
    d = int(round((math.sqrt(4 * width + 1) - 3) / 2))
    if d < 1 or (d + 1) * (d + 2) != width:
        raise ParameterError(f"{width} columns is not the width (d + 1)(d + 2) of a divergence operand")
    return d


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
        Symmetrised, then regularised by
        :func:`knn_genre.features.gaussian.regularize_covariances`.
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

    See Also
    --------
    packed_gaussian_terms : the same from packed rows, without unpacking them.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.divergence import gaussian_terms
    >>> terms = gaussian_terms(np.zeros((3, 13)), np.tile(np.eye(13), (3, 1, 1)))
    >>> terms.n, terms.dim, terms.precisions.shape
    (3, 13, (3, 91))
    """
    means, covs = _check_gaussians(means, covs)
    iu = np.triu_indices(means.shape[1])
    # The symmetrised upper triangles: what a packed row holds.
    triangles = 0.5 * (covs[:, iu[0], iu[1]] + covs[:, iu[1], iu[0]])
    return _terms_from_triangles(means, triangles, ridge, floor)


def packed_gaussian_terms(X, *, origin=None, ridge=DEFAULT_RIDGE, floor=DEFAULT_FLOOR) -> GaussianTerms:
    """:func:`gaussian_terms` of packed rows ``[mean, cov[triu]]``, means moved to ``origin``.

    The estimators' path: a packed covariance is symmetric by construction
    and its triangle is already in the layout the terms are computed in.

    Parameters
    ----------
    X : ndarray of shape (n, d + d * (d + 1) / 2)
        Packed Gaussians (:func:`knn_genre.features.gaussian.pack`), float64, finite.
    origin : ndarray of shape (d,), optional
        Subtracted from every mean (see :func:`gaussian_terms`); default 0.
    ridge, floor : float
        See :func:`~knn_genre.features.gaussian.regularize_covariances`.

    Returns
    -------
    GaussianTerms

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.features.gaussian import pack
    >>> from knn_genre.classifiers.divergence import packed_gaussian_terms, symmetric_kl_from_terms
    >>> X = pack(np.array([[0.0, 0.0], [1.0, 0.0]]), np.stack([np.eye(2), 2 * np.eye(2)]))
    >>> terms = packed_gaussian_terms(X, origin=X[:, :2].mean(axis=0))
    >>> symmetric_kl_from_terms(terms, terms).round(4).tolist()
    [[0.0, 1.25], [1.25, 0.0]]
    """
    X = np.asarray(X, dtype=np.float64)
    d = packed_dim(X.shape[1]) if X.ndim == 2 else 0
    if d == 0 or not np.all(np.isfinite(X)):
        raise ParameterError(f"finite packed Gaussians of shape (n, d + d(d+1)/2) expected, got shape {X.shape}")
    means = X[:, :d] - (0.0 if origin is None else np.asarray(origin, dtype=np.float64))
    return _terms_from_triangles(means, X[:, d:], ridge, floor)


# Gaussians whose terms are computed at once: enough that the fixed cost of
# the factorisation's 2d vector steps is shared, few enough that its work
# arrays (two of d x d per Gaussian) stay in the processor's caches.
_TERMS_CHUNK = 2048


@functools.lru_cache(maxsize=None)
def _triangle_layout(d: int):
    """``triu_indices(d)``, the weights of :attr:`GaussianTerms.second_moments`, flat indices of the triangle."""
    iu = np.triu_indices(d)
    # Doubling the off-diagonal of one factor makes the triangle dot product
    # equal to the full Frobenius product of two symmetric matrices.
    weight = np.where(iu[0] == iu[1], 1.0, 2.0)
    flat_upper = iu[0] * d + iu[1]
    for array in (*iu, weight, flat_upper):
        array.setflags(write=False)
    return iu, weight, flat_upper


def _terms_from_triangles(means: np.ndarray, triangles: np.ndarray, ridge, floor) -> GaussianTerms:
    """The terms of Gaussians ``means (n, d)`` with symmetric covariances ``triangles (n, p)``."""
    n, d = means.shape
    p = _triangle(d)
    _, weight, flat_upper = _triangle_layout(d)
    starts = triangle_rows(d)
    # Built transposed, one row per term: the factorisation works on stacked
    # columns, so every term is written contiguously, and the product takes
    # the transpose (a Fortran-ordered left operand) without a copy.
    columns = np.empty((2 * p + 2 * d + 2, n))
    regularized = np.empty(n, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, with the cause
        for start in range(0, n, _TERMS_CHUNK):
            rows = slice(start, min(start + _TERMS_CHUNK, n))
            tri, prec, regularized[rows] = regularize_stacked(
                np.ascontiguousarray(triangles[rows].T), ridge=ridge, floor=floor
            )
            out = columns[:, rows]
            mu = out[2 * p + d : 2 * p + 2 * d]
            mu[...] = means[rows].T
            h = out[2 * p : 2 * p + d]
            np.einsum("ijn,jn->in", prec, mu, out=h)
            moments = out[:p]
            for j in range(d):  # row j of the triangle of mu mu^T, without temporaries
                np.multiply(mu[j], mu[j:], out=moments[starts[j] : starts[j + 1]])
            moments += tri
            moments *= weight[:, None]
            np.take(prec.reshape(d * d, -1), flat_upper, axis=0, out=out[p : 2 * p])
            np.einsum("in,in->n", mu, h, out=out[-2])
    columns[-1] = 1.0
    # The sum is one cheap pass; only when it is not finite (a NaN, an inf, or
    # finite terms whose sum overflows) is each term looked at.
    if not math.isfinite(columns.sum()) and not np.all(np.isfinite(columns)):
        raise ParameterError(
            "divergence terms overflow float64: means or covariances are too large "
            f"(largest |mean| {np.abs(means).max():.3g}, largest |cov| {np.abs(triangles).max():.3g})"
        )
    return GaussianTerms(columns.T, regularized)


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
    if out.size == 0:
        return out
    bound = left.shape[1] * np.finfo(np.float64).eps * left_norms
    # Only rows with some value that small need the elementwise test: rare.
    # Negative values (rounding) are among them, as the bound is >= 0.
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
    m, r = block.shape
    # Flat indices into the block: cheaper than pairs of row and column indices.
    flat = block.reshape(-1) if block.flags.c_contiguous else None
    if flat is None:
        block = np.ascontiguousarray(block)
        flat = block.reshape(-1)
    row_starts = np.arange(0, m * r, r)
    dist = np.empty((k, m))
    cols = np.empty((k, m), dtype=np.intp)
    at = np.empty((k, m), dtype=np.intp)
    for j in range(k):
        block.argmin(axis=1, out=cols[j])
        np.add(row_starts, cols[j], out=at[j])
        np.take(flat, at[j], out=dist[j])
        flat[at[j]] = np.inf
    # In reverse: a masked entry picked again must get back its first value.
    for j in reversed(range(k)):
        flat[at[j]] = dist[j]
    if not np.all(np.isfinite(dist)):
        return None
    return dist.T, cols.T


def _pairing(query_terms, ref_terms, block_size, exclude_self, divergences):
    """Validate a query/reference pairing; ``(nq, nr, tiles)`` with the tiles to reduce."""
    check_integer("block_size", block_size)
    if divergences is None:
        _check_same_dim(query_terms, ref_terms)
        nq, nr = query_terms.n, ref_terms.n
        tiles = _tiles(query_terms, ref_terms, block_size)
    else:
        divergences = np.asarray(divergences, dtype=np.float64)
        if divergences.ndim != 2:
            raise ParameterError(f"divergences of shape (n_queries, n_references) expected, got {divergences.shape}")
        nq, nr = divergences.shape
        tiles = _precomputed_tiles(divergences, block_size)
    if exclude_self and nq != nr:
        raise ParameterError(
            f"exclude_self needs the queries to be the references; got {nq} queries and {nr} references"
        )
    return nq, nr, tiles


def _precomputed_tiles(divergences: np.ndarray, block_size: int):
    """:func:`_tiles` of a matrix already computed: copies, which the reductions may modify."""
    nq, nr = divergences.shape
    for r0 in range(0, nq, block_size):
        rows = slice(r0, min(r0 + block_size, nq))
        for c0 in range(0, nr, block_size):
            cols = slice(c0, min(c0 + block_size, nr))
            yield rows, cols, np.array(divergences[rows, cols], order="C")


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
    divergences: np.ndarray | None = None,
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
    divergences : ndarray of shape (nq, nr), optional
        The divergences already computed (sliced from a
        :class:`~knn_genre.classifiers.cache.DivergenceCache`): the
        neighbours are picked from them, tile by tile, and the terms
        (which may then be None) are not used. It is not modified.

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
    nq, nr, tiles = _pairing(query_terms, ref_terms, block_size, exclude_self, divergences)
    available = nr - 1 if exclude_self else nr
    if k > available:
        raise ParameterError(f"k={k} must be <= {available}, the number of references available")
    distances = np.empty((nq, k))
    indices = np.empty((nq, k), dtype=np.intp)
    best = None
    for rows, cols, block in tiles:
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
        if cols.stop == nr:  # the last tile of this block of queries
            distances[rows], indices[rows] = best
    return distances, indices


def kneighbors_sharded(query_terms: GaussianTerms, shards, k: int, *, block_size: int = DEFAULT_BLOCK_SIZE):
    """:func:`kneighbors_symmetric_kl` against references that come shard by shard.

    For a reference library too large to hold at once (or spread over
    machines): each shard is searched on its own and its ``k`` nearest are
    merged into the running ``k`` nearest, so only one shard's terms are in
    memory at a time, and the result is the same as one search over all of
    them (ties included: equal divergences go to the lowest global index).

    Parameters
    ----------
    query_terms : GaussianTerms
    shards : iterable of (int, GaussianTerms)
        ``(offset, terms)``: the global index of the shard's first
        reference, and the shard's terms, built with the queries' origin.
        Shards may come in any order; their references must not overlap.
    k : int
        Neighbours per query, at most the number of references over all shards.

    Returns
    -------
    distances, indices : ndarray of shape (nq, k)
        As :func:`kneighbors_symmetric_kl`, indices global.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.divergence import gaussian_terms, kneighbors_sharded
    >>> covs = np.tile(np.eye(2), (4, 1, 1))
    >>> refs = np.array([[0.0, 0], [3, 0], [1, 0], [-1, 0]])
    >>> shards = [(0, gaussian_terms(refs[:2], covs[:2])), (2, gaussian_terms(refs[2:], covs[2:]))]
    >>> dist, ind = kneighbors_sharded(gaussian_terms(np.zeros((1, 2)), covs[:1]), shards, 3)
    >>> ind.tolist(), dist.tolist()
    ([[0, 2, 3]], [[0.0, 1.0, 1.0]])
    """
    check_integer("k", k)
    best, seen = None, 0
    for offset, terms in shards:
        if terms.n == 0:
            continue
        dist, ind = kneighbors_symmetric_kl(query_terms, terms, min(k, terms.n), block_size=block_size)
        ind += int(offset)
        seen += terms.n
        if best is not None:
            dist, ind = _sort_lex(np.hstack([best[0], dist]), np.hstack([best[1], ind]), k)
        best = (dist, ind)
    if best is None or seen < k:
        raise ParameterError(f"k={k} must be <= {seen}, the number of references in the shards")
    return best


def symmetric_kl_moments(
    query_terms: GaussianTerms,
    ref_terms: GaussianTerms,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    exclude_self: bool = False,
    transform=None,
    divergences: np.ndarray | None = None,
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
    divergences : ndarray of shape (nq, nr), optional
        The divergences already computed, as in :func:`kneighbors_symmetric_kl`.

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
    nq, nr, tiles = _pairing(query_terms, ref_terms, block_size, exclude_self, divergences)
    available = nr - 1 if exclude_self else nr
    if available < 1:
        raise ParameterError(f"moments need at least one reference per query, there are {available}")
    mean = np.zeros(nq)
    m2 = np.zeros(nq)
    count = np.zeros(nq)
    for rows, cols, block in tiles:
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
