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
]

#: Relative eigenvalue floor: eigenvalues below ``DEFAULT_RIDGE`` times the
#: mean absolute eigenvalue are raised to it, bounding the condition number
#: of a regularised covariance by about ``d / DEFAULT_RIDGE``.
DEFAULT_RIDGE = 1e-8

#: Absolute eigenvalue floor in squared feature units, for covariances with
#: no scale of their own (all zero). MFCC variances are O(1-100).
DEFAULT_FLOOR = 1e-12

# Covariances factorised per batched Cholesky call in the fast path.
_CHOLESKY_CHUNK = 1024

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


def packed_dim(width: int) -> int:
    """:func:`dim_from_width` for an estimator's ``X``: a ParameterError naming the columns."""
    try:
        return dim_from_width(width)
    except ValueError as err:
        raise ParameterError(f"X has n_features={width} columns, which must hold packed Gaussians: {err}") from None


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
    check_number("ridge", ridge, minimum=0)
    check_number("floor", floor, minimum=0, strict=True)
    covs = np.asarray(covs, dtype=np.float64)
    if covs.ndim != 3 or covs.shape[1] != covs.shape[2]:
        raise ParameterError(f"covariances of shape (n, d, d) expected, got {covs.shape}")
    covs = 0.5 * (covs + covs.swapaxes(1, 2))
    n, d, _ = covs.shape
    precisions = np.empty_like(covs)
    healthy = _invert_healthy(covs, ridge, floor, precisions)
    regularized = np.zeros(n, dtype=bool)
    rest = np.flatnonzero(~healthy)
    if len(rest):
        covs[rest], precisions[rest], regularized[rest] = _clip_eigenvalues(covs[rest], ridge, floor)
    return covs, precisions, regularized


def _invert_healthy(covs, ridge, floor, out) -> np.ndarray:
    """Invert, into ``out``, the covariances that provably need no clipping.

    A shortcut for the common case (a Cholesky factorisation and a
    triangular inverse cost a fraction of an eigen-decomposition); the
    decision is the same as :func:`_clip_eigenvalues` would make. For a
    positive-definite matrix ``mean(|lam|) = trace / d`` and
    ``lam_min >= 1 / tr(S^-1)``, so a matrix whose Cholesky factorisation
    succeeds and whose ``1 / tr(S^-1)`` reaches the floor keeps all its
    eigenvalues. Returns the mask of matrices inverted; the others are left
    to the eigen-decomposition.
    """
    diag = covs.diagonal(axis1=1, axis2=2)
    lo = np.maximum(ridge * diag.sum(axis=1) / covs.shape[1], floor)
    # lam_min <= min(diag): a diagonal entry below the floor means clipping.
    healthy = diag.min(axis=1, initial=np.inf) >= lo
    candidates = np.flatnonzero(healthy)
    # Chunks, so that one matrix that is not positive definite (the batched
    # Cholesky raises for the whole batch) sends only its chunk the slow way.
    for start in range(0, len(candidates), _CHOLESKY_CHUNK):
        idx = candidates[start : start + _CHOLESKY_CHUNK]
        # A slice when the chunk is contiguous (the common case) avoids copies.
        rows = slice(idx[0], idx[-1] + 1) if idx[-1] - idx[0] + 1 == len(idx) else idx
        try:
            chol = np.linalg.cholesky(covs[rows])
        except np.linalg.LinAlgError:
            healthy[idx] = False
            continue
        inv = _inverse_from_cholesky(chol)
        safe = 1.0 / np.trace(inv, axis1=1, axis2=2) >= lo[idx]
        if np.all(safe):
            out[rows] = inv
        else:
            out[idx[safe]] = inv[safe]
            healthy[idx[~safe]] = False
    return healthy


def _inverse_from_cholesky(chol: np.ndarray) -> np.ndarray:
    """``S^-1 = L^-T L^-1`` for a stack of lower Cholesky factors ``L`` of ``S``, symmetric.

    What LAPACK's ``potri`` does, vectorised over the stack: ``L^-1`` by
    forward substitution, one row at a time for all matrices at once, with
    the stack on the last (contiguous) axis so that each step is a few
    long vector operations. For d = 13 this is several times faster than
    ``np.linalg.inv``, which runs an LU solve per matrix, and is at least as
    accurate for positive-definite matrices.
    """
    n, d, _ = chol.shape
    lower = np.ascontiguousarray(chol.transpose(1, 2, 0))  # (d, d, n)
    inv_diag = 1.0 / lower[np.arange(d), np.arange(d)]  # (d, n)
    x = np.zeros_like(lower)  # rows of L^-1
    for i in range(d):
        row = x[i]
        if i:
            np.einsum("jn,jkn->kn", lower[i, :i], x[:i], out=row)
            np.negative(row, out=row)
        row[i] += 1.0
        row *= inv_diag[i]
    x = np.ascontiguousarray(x.transpose(2, 0, 1))  # (n, d, d), for a fast matmul
    inv = x.swapaxes(1, 2) @ x
    return 0.5 * (inv + inv.swapaxes(1, 2))


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


