"""Hubness: measuring it, and mutual proximity to reduce it.

In high-dimensional spaces some points, *hubs*, are among the nearest
neighbours of very many others, and *anti-hubs* of almost none; in the
symmetric-KL space of track Gaussians, a few tracks are everybody's
neighbour and pull the KNN vote towards their genre. Hubness is measured
by the skewness of the k-occurrence ``N_k(x)``, the number of points that
have ``x`` among their ``k`` nearest neighbours (Radovanović et al., 2010):
0 for a symmetric distribution, large and positive with hubs.

Mutual proximity (Schnitzer, Flexer, Schedl & Widmer, "Local and global
scaling reduce hubs in space", JMLR 13, 2012) rescales a distance ``d(x, y)``
by how unusual it is *for both* ``x`` and ``y``: with ``F_x`` the
distribution of the distances from ``x`` to all other points,
``MP(x, y) = P(D_x > d(x, y)) * P(D_y > d(x, y))``, and the new distance is
``1 - MP``. Here ``F_x`` is approximated by a Gaussian whose mean and
standard deviation are estimated per point (their "MP Gaussian, independent"
variant), which needs only two numbers per track and can be computed tile
by tile (:func:`knn_genre.classifiers.divergence.symmetric_kl_moments`), so memory stays
bounded. The Gaussian is fitted to ``log1p`` of the divergences, whose
distribution is far closer to normal than the long-tailed divergences
themselves and is not dominated by the huge divergences of a silent or
degenerate track.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr
from scipy.stats import skew

__all__ = ["MP_TRANSFORM", "mutual_proximity_gaussian", "k_occurrence", "hubness_skewness"]

#: Elementwise map applied to divergences before the Gaussian of mutual
#: proximity is fitted (and before it is evaluated).
MP_TRANSFORM = np.log1p

# Smallest standard deviation used, relative to the mean's magnitude: a
# track at the same divergence from every other has a step-function CDF.
_MIN_REL_STD = 1e-12


def mutual_proximity_gaussian(dist, query_mean, query_std, ref_mean, ref_std) -> np.ndarray:
    """Mutual-proximity distance ``1 - P(D_q > d) P(D_r > d)`` under Gaussian models.

    Parameters
    ----------
    dist : ndarray of shape (nq, nr)
        Distances (already mapped by :data:`MP_TRANSFORM` if the moments
        were) between ``nq`` queries and ``nr`` references.
    query_mean, query_std : ndarray of shape (nq,)
        Mean and standard deviation of each query's distances to all
        references.
    ref_mean, ref_std : ndarray of shape (nr,)
        The same for each reference, over the other references.

    Returns
    -------
    ndarray of shape (nq, nr)
        Distances in [0, 1]; 0 when ``d`` is far below both typical
        distances, 1 when it is far above either. Written as
        ``F_q + F_r - F_q F_r`` (``F`` the Gaussian CDFs) rather than
        ``1 - (1 - F_q)(1 - F_r)``, so that the small distances that decide
        the nearest neighbours keep their relative precision.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.hubness import mutual_proximity_gaussian
    >>> d = np.array([[1.0, 3.0]])
    >>> mutual_proximity_gaussian(d, np.array([3.0]), np.array([1.0]),
    ...                           np.array([3.0, 3.0]), np.array([1.0, 1.0])).round(4).tolist()
    [[0.045, 0.75]]
    """
    dist = np.asarray(dist, dtype=np.float64)
    f_q = _cdf(dist, np.asarray(query_mean)[:, None], np.asarray(query_std)[:, None])
    f_r = _cdf(dist, np.asarray(ref_mean)[None, :], np.asarray(ref_std)[None, :])
    return f_q + f_r - f_q * f_r


def _cdf(x, mean, std):
    std = np.maximum(std, _MIN_REL_STD * np.maximum(np.abs(mean), 1.0))
    return ndtr((x - mean) / std)


def k_occurrence(indices, n_ref: int) -> np.ndarray:
    """How often each reference occurs among the queries' nearest neighbours.

    Parameters
    ----------
    indices : array-like of shape (nq, k), int
        Neighbour indices, e.g. from ``KLKNNClassifier.kneighbors()``.
    n_ref : int
        Number of references.

    Returns
    -------
    ndarray of shape (n_ref,), int
        ``N_k`` of each reference; sums to ``nq * k``.
    """
    return np.bincount(np.asarray(indices).ravel(), minlength=n_ref)


def hubness_skewness(indices, n_ref: int) -> float:
    """Skewness of the k-occurrence: the usual single number for hubness.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.hubness import hubness_skewness
    >>> round(hubness_skewness(np.array([[0], [0], [0], [1]]), 4), 3)
    0.816
    >>> hubness_skewness(np.array([[1], [2], [3], [0]]), 4)
    0.0
    """
    counts = k_occurrence(indices, n_ref).astype(np.float64)
    # Every point equally often a neighbour: no hubs, and scipy's skew is 0/0.
    if np.ptp(counts) == 0:
        return 0.0
    return float(skew(counts))
