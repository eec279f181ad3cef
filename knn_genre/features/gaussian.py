"""Gaussians as data: the packed-row layout, validity and regularisation.

A track (or a segment, or a window) is summarised by one Gaussian over its
MFCC frames: a mean vector of length ``d`` (``d = numcep``) and a full
``d x d`` covariance. Estimators take Gaussians as *packed rows*, so that
they fit scikit-learn's ``X`` contract::

    row = [mean (d values), cov[np.triu_indices(d)] (d * (d + 1) / 2 values)]

``d = 13`` gives 104 columns; ``d`` is recovered from the width alone.

Pure numpy: the classifiers and the feature store import this module
without loading any DSP library.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import ParameterError, check_number

__all__ = [
    "DEFAULT_RIDGE",
    "DEFAULT_FLOOR",
    "gaussian",
    "pack",
    "unpack",
    "packed_width",
    "dim_from_width",
    "packed_dim",
    "gaussian_problems",
    "regularize_covariances",
    "regularize_stacked",
    "stacked_to_full",
    "triangle_rows",
]

#: Relative eigenvalue floor: eigenvalues below ``DEFAULT_RIDGE`` times the
#: mean absolute eigenvalue are raised to it, bounding the condition number
#: of a regularised covariance by about ``d / DEFAULT_RIDGE``.
DEFAULT_RIDGE = 1e-8

#: Absolute eigenvalue floor in squared feature units, for covariances with
#: no scale of their own (all zero). MFCC variances are O(1-100).
DEFAULT_FLOOR = 1e-12

# Relative tolerance for symmetry and positive semi-definiteness: loose
# enough for float rounding, tight enough to catch edited files.
_SYM_RTOL = 1e-9
_PSD_RTOL = 1e-9


def gaussian(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased full covariance of a set of frames.

    Parameters
    ----------
    frames : ndarray of shape (n_frames, d)
        Needs ``n_frames >= d + 1`` for a covariance that can be full rank.

    Returns
    -------
    mean : ndarray of shape (d,)
    cov : ndarray of shape (d, d), symmetric

    Raises
    ------
    ParameterError
        If there are fewer than ``d + 1`` frames.
    """
    frames = np.asarray(frames, dtype=np.float64)
    n, d = frames.shape
    if n < d + 1:
        raise ParameterError(f"{n} frame(s) of dimension {d}; a covariance needs at least {d + 1}")
    mean = frames.mean(axis=0)
    cov = np.cov(frames.T)
    # np.cov is symmetric up to rounding; make it exactly so for storage checks.
    cov = 0.5 * (cov + cov.T)
    return mean, cov


def packed_width(d: int) -> int:
    """Columns of a packed row for dimension ``d``: ``d + d * (d + 1) / 2``."""
    return d + d * (d + 1) // 2


def dim_from_width(width: int) -> int:
    """Dimension ``d`` of the Gaussians packed in rows of ``width`` columns.

    Raises
    ------
    ParameterError
        If no ``d`` gives that width (3, 4 and 5 are not widths of anything).
    """
    # width = d(d + 3) / 2  =>  d = (-3 + sqrt(9 + 8 width)) / 2
    d = int(round((-3 + math.sqrt(9 + 8 * width)) / 2)) if width > 0 else 0
    if d < 1 or packed_width(d) != width:
        raise ParameterError(
            f"{width} columns is not a packed Gaussian width; "
            "valid widths are d + d*(d+1)/2: 2, 5, 9, 14, ..., 104 for d=13"
        )
    return d


def packed_dim(width: int, what: str | None = None) -> int:
    """:func:`dim_from_width` for an estimator's ``X``: a ParameterError naming the columns (or ``what`` gave them)."""
    try:
        return dim_from_width(width)
    except ValueError as err:
        what = what or f"X has n_features={width} columns, which must hold packed Gaussians"
        raise ParameterError(f"{what}: {err}") from None


def pack(means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """Pack Gaussians into rows ``[mean, cov[triu]]``.

    Parameters
    ----------
    means : ndarray of shape (n, d)
    covs : ndarray of shape (n, d, d)

    Returns
    -------
    X : ndarray of shape (n, d + d * (d + 1) / 2)
    """
    means = np.asarray(means, dtype=np.float64)
    covs = np.asarray(covs, dtype=np.float64)
    if means.ndim != 2 or covs.shape != means.shape + (means.shape[1],):
        raise ParameterError(f"means (n, d) and covs (n, d, d) expected, got {means.shape} and {covs.shape}")
    iu = np.triu_indices(means.shape[1])
    return np.hstack([means, covs[:, iu[0], iu[1]]])


def unpack(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`pack`: rows to ``(means (n, d), covs (n, d, d))``."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ParameterError(f"packed Gaussians must be a 2-d array, got shape {X.shape}")
    d = dim_from_width(X.shape[1])
    # Column of X that holds each entry of a d x d covariance: one gather
    # fills both triangles.
    iu = np.triu_indices(d)
    column = np.empty((d, d), dtype=np.intp)
    column[iu] = column.T[iu] = d + np.arange(len(iu[0]))
    covs = np.take(X, column.ravel(), axis=1).reshape(X.shape[0], d, d)
    return X[:, :d].copy(), covs


def gaussian_problems(means: np.ndarray, covs: np.ndarray) -> list:
    """What is wrong with each Gaussian, if anything.

    Parameters
    ----------
    means : ndarray of shape (n, d)
    covs : ndarray of shape (n, d, d)

    Returns
    -------
    list of str or None, length n
        ``None`` for a usable Gaussian, else one of ``"non-finite values (NaN
        or inf)"``, ``"covariance is not symmetric"``, ``"covariance is not
        positive semi-definite"``.
    """
    means = np.asarray(means, dtype=np.float64)
    covs = np.asarray(covs, dtype=np.float64)
    n = len(means)
    problems = [None] * n
    finite = np.isfinite(means).all(axis=1) & np.isfinite(covs).all(axis=(1, 2))
    for i in np.flatnonzero(~finite):
        problems[i] = "non-finite values (NaN or inf)"
    rows = np.flatnonzero(finite)
    if len(rows) == 0:
        return problems
    # Scaled to a maximum of 1 so that eigenvalues of huge entries cannot overflow.
    scale = np.maximum(np.abs(covs[rows]).max(axis=(1, 2)), np.finfo(float).tiny)
    unit = covs[rows] / scale[:, None, None]
    asym = np.abs(unit - unit.transpose(0, 2, 1)).max(axis=(1, 2))
    min_eig = np.linalg.eigvalsh(0.5 * (unit + unit.transpose(0, 2, 1)))[:, 0]
    asymmetric = asym > _SYM_RTOL
    for i in rows[asymmetric]:
        problems[i] = "covariance is not symmetric"
    for i in rows[~asymmetric & (min_eig < -_PSD_RTOL * means.shape[1])]:
        problems[i] = "covariance is not positive semi-definite"
    return problems


def regularize_covariances(covs, *, ridge=DEFAULT_RIDGE, floor=DEFAULT_FLOOR):
    """Project covariances onto the positive-definite cone, and invert them.

    Each matrix is symmetrised, ``S = (S + S^T) / 2``, and diagonalised,
    ``S = V diag(lam) V^T``. Eigenvalues below
    ``lo = max(ridge * mean(|lam|), floor)`` are raised to ``lo``.

    Why this rule: clipping eigenvalues is the nearest positive-semidefinite
    matrix in the Frobenius norm (Higham, 1988), and it changes a covariance
    only along the directions in which it carries (almost) no variance, so
    every healthy covariance is used exactly as given. A constant ridge
    ``S + eps I`` would instead bias every divergence. The relative part
    ``ridge * mean(|lam|)`` (``trace / d`` for a PSD matrix) is scale-aware
    and bounds the condition number by about ``d / ridge``; the absolute
    ``floor`` covers matrices with no scale at all, such as the all-zero
    covariance of digital silence. Divergences involving a regularised
    Gaussian are then finite but large (up to about ``1 / floor``), which
    keeps such tracks far from everything except each other.

    The work is done by :func:`regularize_stacked`.

    Parameters
    ----------
    covs : array-like of shape (n, d, d)
        Covariances in squared feature units; need not be PSD or symmetric.
    ridge : float, default=DEFAULT_RIDGE (1e-8)
        Relative eigenvalue floor, >= 0.
    floor : float, default=DEFAULT_FLOOR (1e-12)
        Absolute eigenvalue floor in squared feature units, > 0.

    Returns
    -------
    covs : ndarray of shape (n, d, d)
        Symmetric positive-definite covariances. Matrices that needed no
        clipping are the symmetrised input, bit for bit.
    precisions : ndarray of shape (n, d, d)
        Their inverses, symmetric.
    regularized : ndarray of shape (n,), bool
        Which matrices had an eigenvalue raised.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.features.gaussian import regularize_covariances
    >>> covs = np.stack([np.diag([4.0, 1.0]), np.zeros((2, 2)), [[1.0, 2.0], [2.0, 1.0]]])
    >>> fixed, precisions, regularized = regularize_covariances(covs)
    >>> regularized.tolist()
    [False, True, True]
    >>> precisions[0].diagonal().tolist()
    [0.25, 1.0]
    >>> bool(np.all(np.linalg.eigvalsh(fixed) > 0))
    True
    """
    covs = np.asarray(covs, dtype=np.float64)
    if covs.ndim != 3 or covs.shape[1] != covs.shape[2]:
        raise ParameterError(f"covariances of shape (n, d, d) expected, got {covs.shape}")
    covs = 0.5 * (covs + covs.swapaxes(1, 2))
    iu = np.triu_indices(covs.shape[1])
    triangles, precisions, regularized = regularize_stacked(
        np.ascontiguousarray(covs[:, iu[0], iu[1]].T), ridge=ridge, floor=floor
    )
    if regularized.any():
        covs[regularized] = stacked_to_full(triangles[:, regularized]).transpose(2, 0, 1)
    return covs, np.ascontiguousarray(precisions.transpose(2, 0, 1)), regularized


@functools.lru_cache(maxsize=None)
def triangle_rows(d: int) -> np.ndarray:
    """Where row ``j`` of the upper triangle starts in ``np.triu_indices(d)`` order, shape (d + 1,).

    Row ``j`` holds ``S[j, j:]``, which for a symmetric matrix is also its
    column ``S[j:, j]``: entries ``rows[j]:rows[j + 1]`` of a packed triangle.
    Read-only.
    """
    rows = np.concatenate([[0], np.cumsum(np.arange(d, 0, -1))])
    rows.setflags(write=False)
    return rows


def stacked_to_full(triangles: np.ndarray) -> np.ndarray:
    """Symmetric matrices ``(d, d, m)`` from upper triangles stacked on the last axis ``(p, m)``."""
    d = _triangle_dim(triangles.shape[0])
    iu = np.triu_indices(d)
    entry = np.empty((d, d), dtype=np.intp)
    entry[iu] = entry.T[iu] = np.arange(len(iu[0]))
    return triangles[entry.ravel()].reshape(d, d, -1)


def _triangle_dim(p: int) -> int:
    d = int(round((math.sqrt(8 * p + 1) - 1) / 2))
    if d < 1 or d * (d + 1) // 2 != p:
        raise ParameterError(f"{p} rows is not the size of an upper triangle d(d+1)/2")
    return d


def regularize_stacked(triangles, *, ridge=DEFAULT_RIDGE, floor=DEFAULT_FLOOR):
    """:func:`regularize_covariances` for symmetric matrices stored as stacked upper triangles.

    The layout the divergence terms are computed in: column ``i`` of
    ``triangles`` is ``S_i[np.triu_indices(d)]`` (the covariance part of a
    packed row), so every step of the factorisation below is one vector
    operation over all the matrices at once rather than a small LAPACK call
    per matrix, and the matrices never need to be unpacked.

    A matrix whose diagonal reaches the floor ``lo``, whose Cholesky
    factorisation succeeds and whose ``1 / tr(S^-1)`` reaches ``lo`` keeps
    all its eigenvalues (for a positive-definite matrix
    ``lam_min >= 1 / tr(S^-1)``): its inverse comes from the factorisation.
    The others, rare, are clipped by an eigen-decomposition; the decision
    is the one the eigenvalues would make, bar matrices whose smallest
    eigenvalue is within rounding of ``lo``.

    Parameters
    ----------
    triangles : ndarray of shape (d * (d + 1) / 2, m)
        Upper triangles, finite, in ``np.triu_indices(d)`` order.
    ridge, floor : float
        See :func:`regularize_covariances`.

    Returns
    -------
    triangles : ndarray of shape (d * (d + 1) / 2, m)
        The regularised matrices (the input array itself when none was clipped).
    precisions : ndarray of shape (d, d, m)
        Their inverses, exactly symmetric.
    regularized : ndarray of shape (m,), bool
        Which matrices had an eigenvalue raised.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.features.gaussian import regularize_stacked
    >>> triangles = np.array([[4.0, 0.0], [0.0, 0.0], [1.0, 0.0]])  # diag(4, 1) and silence
    >>> fixed, precisions, regularized = regularize_stacked(triangles)
    >>> precisions[:, :, 0].diagonal().tolist(), regularized.tolist()
    ([0.25, 1.0], [False, True])
    """
    check_number("ridge", ridge, minimum=0)
    check_number("floor", floor, minimum=0, strict=True)
    triangles = np.asarray(triangles, dtype=np.float64)
    if triangles.ndim != 2:
        raise ParameterError(f"stacked triangles of shape (d(d+1)/2, m) expected, got {triangles.shape}")
    d = _triangle_dim(triangles.shape[0])
    rows = triangle_rows(d)
    diag = triangles[rows[:-1]]
    lo = np.maximum(ridge * diag.sum(axis=0) / d, floor)
    with np.errstate(all="ignore"):  # failed factorisations are found below, not warned about
        precisions, trace = _cholesky_inverse(triangles, rows)
        # lam_min <= min(diag): a diagonal entry below the floor means
        # clipping. A failed factorisation has a NaN or infinite trace.
        healthy = (diag.min(axis=0, initial=np.inf) >= lo) & (1.0 / trace >= lo)
    rest = np.flatnonzero(~healthy)
    regularized = np.zeros(triangles.shape[1], dtype=bool)
    if len(rest):
        full = stacked_to_full(triangles[:, rest]).transpose(2, 0, 1)
        fixed, inverse, clipped = _clip_eigenvalues(full, ridge, floor)
        precisions[:, :, rest] = inverse.transpose(1, 2, 0)
        regularized[rest] = clipped
        if clipped.any():
            iu = np.triu_indices(d)
            triangles = triangles.copy()
            triangles[:, rest[clipped]] = fixed[clipped][:, iu[0], iu[1]].T
    return triangles, precisions, regularized


def _cholesky_inverse(triangles: np.ndarray, rows: np.ndarray):
    """Inverses of stacked symmetric matrices by Cholesky factorisation, vectorised over the stack.

    ``S = U^T U`` row by row (``U[j, j:] = (S[j, j:] - U[:j, j] . U[:j, j:]) /
    sqrt(pivot)``), then ``P = S^-1`` from ``U^T P = U^-T`` column by column
    from the last (the recurrence of Takahashi et al., 1973): with ``r_j = 1 /
    U[j, j]`` and ``v_j = -r_j U[j, j+1:]``, ``P[j+1:, j] = P[j+1:, j+1:] v_j``
    and ``P[j, j] = r_j^2 + v_j . P[j+1:, j]``. About ``d^3 / 2`` multiply-adds
    per matrix in ``2d`` vectorised steps over all of them; each step is a
    few NumPy calls, whose fixed cost is what a small stack pays.

    Returns ``(precisions (d, d, m), trace of each (m,))``. A matrix that is
    not positive definite has a pivot <= 0, whose square root (NaN) or
    reciprocal (inf) makes its trace NaN or inf; its precisions are then
    meaningless. Call with floating-point errors ignored.
    """
    d = len(rows) - 1
    m = triangles.shape[1]
    upper = np.zeros((d, d, m))
    np.divide(triangles[:d], np.sqrt(triangles[0]), out=upper[0])
    for j in range(1, d):
        row = upper[j, j:]
        np.einsum("kn,kin->in", upper[:j, j], upper[:j, j:], out=row)
        np.subtract(triangles[rows[j] : rows[j + 1]], row, out=row)
        row /= np.sqrt(row[0])
    inv_diag = 1.0 / upper.reshape(d * d, m)[:: d + 1]
    # v_j for every j at once (the diagonal and below are not used).
    upper *= -inv_diag[:, None]
    precisions = np.empty_like(upper)
    diagonal = precisions.reshape(d * d, m)[:: d + 1]
    np.square(inv_diag, out=diagonal)
    for j in reversed(range(d - 1)):
        col = precisions[j, j + 1 :]
        v = upper[j, j + 1 :]
        np.einsum("ikn,kn->in", precisions[j + 1 :, j + 1 :], v, out=col)
        precisions[j + 1 :, j] = col
        diagonal[j] += np.einsum("in,in->n", v, col)
    trace = diagonal.sum(axis=0)
    return precisions, trace


def _clip_eigenvalues(covs, ridge, floor):
    """Eigenvalue clipping of symmetric ``covs``: (covs, precisions, clipped mask)."""
    lam, vecs = np.linalg.eigh(covs)
    lo = np.maximum(ridge * np.abs(lam).mean(axis=1), floor)[:, None]
    clipped = np.any(lam < lo, axis=1)
    lam = np.maximum(lam, lo)
    vecs_t = vecs.swapaxes(1, 2)
    precisions = (vecs / lam[:, None, :]) @ vecs_t
    precisions = 0.5 * (precisions + precisions.swapaxes(1, 2))
    covs = covs.copy()
    if np.any(clipped):
        fixed = (vecs[clipped] * lam[clipped, None, :]) @ vecs_t[clipped]
        covs[clipped] = 0.5 * (fixed + fixed.swapaxes(1, 2))
    return covs, precisions, clipped
