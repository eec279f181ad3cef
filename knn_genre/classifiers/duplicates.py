"""Tracks that are copies of each other: identical or nearly identical features.

GTZAN holds exact repeats, and the same song under two names (Sturm, "The
GTZAN dataset: its contents, its faults, their effects on evaluation, and
its future use", 2013). A copy on each side of a split is a test track that
has been heard in training, which inflates accuracy; a collection's copies
are worth knowing before any evaluation.

Two tracks are reported as copies when their features are closer than a
threshold, and the copies of a collection are the connected groups of such
pairs:

* Gaussians (:func:`gaussian_duplicates`): the symmetric KL between the
  track Gaussians *without the first cepstral coefficient*, below
  :data:`GAUSSIAN_THRESHOLD` nats. ``c0`` carries the loudness: a copy at
  another gain has the same Gaussian in every other coefficient (a gain
  multiplies every mel band's energy, which shifts only ``c0``), so leaving
  it out finds re-levelled copies that the full divergence puts tens of
  nats apart. The threshold comes from real clips (112 GTZAN clips, 6216
  pairs of distinct tracks, many by the same artist): the closest distinct
  pair is at 1.59 nats (0.1 % of pairs below 2.4, median 31.8), while
  copies of those clips are below 1 nat when re-levelled by -6 dB (all,
  largest 0.15), resampled to 44.1 kHz and back (all, largest 0.95) or
  round-tripped through 128 kbit/s MP3 (90 %; quiet, sparse recordings
  move further, up to 3.2).
* Feature vectors (:func:`vector_duplicates`, for published tables): the
  root-mean-square difference between rows standardised over the table
  (the Euclidean distance over the square root of the number of columns,
  so that it does not grow with them), below :data:`VECTOR_THRESHOLD`. In
  GTZAN's ``features_30_sec.csv`` (1000 clips, 57 columns, 499500 pairs) 14
  pairs are at 0 (identical audio gives identical rows), 10 more are below
  0.12 (the same recording under two names, e.g. pop.00015 and pop.00022,
  jazz.00033 and jazz.00051), the next ones are at 0.15 and the bulk is far
  above (0.01 % of pairs below 0.29).

Rows that are segments of one track are pooled into one Gaussian (or mean
vector) per track first (:func:`track_gaussians`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError, check_number
from ..features.gaussian import unpack
from .divergence import gaussian_terms, symmetric_kl_from_terms

__all__ = [
    "GAUSSIAN_THRESHOLD",
    "VECTOR_THRESHOLD",
    "Duplicates",
    "track_gaussians",
    "gaussian_duplicates",
    "vector_duplicates",
    "keep_one_of_each",
    "find_duplicates",
]

#: Symmetric KL in nats (without ``c0``) below which two tracks are copies.
GAUSSIAN_THRESHOLD = 1.0
#: Root-mean-square difference between standardised rows below which two tracks are copies.
VECTOR_THRESHOLD = 0.13

# Rows of the divergence matrix computed at once (block x n doubles).
_BLOCK = 512


@dataclass(frozen=True)
class Duplicates:
    """The copies found in a collection.

    Attributes
    ----------
    pairs : list of (str, str, float)
        Every pair of tracks closer than ``threshold``, with its distance,
        each pair in sorted order, the list sorted.
    groups : list of list of str
        Connected groups of such pairs (copies of copies), each sorted,
        largest first.
    threshold : float
    measure : str
        What the distances are, for reports.
    """

    pairs: list
    groups: list
    threshold: float
    measure: str

    @property
    def n_copies(self) -> int:
        """Tracks that ``keep_one_of_each`` would drop: all but one of each group."""
        return sum(len(group) - 1 for group in self.groups)

    def to_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "measure": self.measure,
            "groups": [list(g) for g in self.groups],
            "pairs": [{"a": a, "b": b, "distance": d} for a, b, d in self.pairs],
        }


def track_gaussians(means, covs, groups, weights=None):
    """One Gaussian per track from the Gaussians of its segments (moment matching).

    The track's mean is the weighted mean of the segment means and its
    covariance that of the mixture: ``sum_i w_i (S_i + m_i m_i^T) - m m^T``.

    Parameters
    ----------
    means : ndarray of shape (n, d)
    covs : ndarray of shape (n, d, d)
    groups : array-like of shape (n,)
        Track of each row.
    weights : array-like of shape (n,), optional
        Length of each segment (default: equal).

    Returns
    -------
    tracks : ndarray of shape (t,)
        The distinct tracks, sorted.
    means : ndarray of shape (t, d)
    covs : ndarray of shape (t, d, d)
    """
    means, covs = np.asarray(means, dtype=np.float64), np.asarray(covs, dtype=np.float64)
    tracks, index = np.unique(np.asarray(groups), return_inverse=True)
    w = np.ones(len(means)) if weights is None else np.asarray(weights, dtype=np.float64)
    total = np.bincount(index, weights=w, minlength=len(tracks))
    w = w / total[index]
    mean = np.zeros((len(tracks), means.shape[1]))
    np.add.at(mean, index, w[:, None] * means)
    second = np.zeros((len(tracks), *covs.shape[1:]))
    np.add.at(second, index, w[:, None, None] * (covs + means[:, :, None] * means[:, None, :]))
    cov = second - mean[:, :, None] * mean[:, None, :]
    return tracks, mean, 0.5 * (cov + cov.swapaxes(1, 2))


def _groups(pairs, names) -> list:
    """Connected components of the pairs (union-find), as sorted lists of names."""
    parent = {name: name for pair in pairs for name in pair[:2]}

    def root(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, _ in pairs:
        parent[root(a)] = root(b)
    groups = {}
    for name in parent:
        groups.setdefault(root(name), []).append(name)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g))


def _close_pairs(blocks, names, threshold) -> list:
    pairs = []
    for r0, block in blocks:
        rows, cols = np.nonzero(block < threshold)
        for i, j in zip(rows + r0, cols):
            if i < j:
                a, b = sorted((str(names[i]), str(names[j])))
                pairs.append((a, b, float(max(block[i - r0, j], 0.0))))
    return sorted(pairs)


def gaussian_duplicates(means, covs, names, *, threshold: float = GAUSSIAN_THRESHOLD) -> Duplicates:
    """Tracks whose Gaussians (without ``c0``) are within ``threshold`` nats of each other.

    Parameters
    ----------
    means : ndarray of shape (n, d), d >= 2
    covs : ndarray of shape (n, d, d)
        One Gaussian per track (see :func:`track_gaussians` for segments).
    names : array-like of shape (n,)
        Track names.
    threshold : float >= 0, default=GAUSSIAN_THRESHOLD

    Returns
    -------
    Duplicates

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.duplicates import gaussian_duplicates
    >>> means = np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    >>> covs = np.tile(np.eye(3), (3, 1, 1))
    >>> gaussian_duplicates(means, covs, ["a", "a-louder", "b"]).groups
    [['a', 'a-louder']]
    """
    check_number("threshold", threshold, minimum=0)
    means, covs = np.asarray(means, dtype=np.float64), np.asarray(covs, dtype=np.float64)
    if means.ndim != 2 or means.shape[1] < 2:
        raise ParameterError(f"duplicate detection needs Gaussians of dimension >= 2, got shape {means.shape}")
    # Without c0, the loudness (see the module docstring).
    m, c = means[:, 1:], covs[:, 1:, 1:]
    terms = gaussian_terms(m - m.mean(axis=0), c)

    def blocks():
        for r0 in range(0, len(m), _BLOCK):
            yield r0, symmetric_kl_from_terms(terms, terms, slice(r0, min(r0 + _BLOCK, len(m))))

    pairs = _close_pairs(blocks(), np.asarray(names), threshold)
    measure = f"symmetric KL between track Gaussians without c0, below {threshold:g} nat{'' if threshold == 1 else 's'}"
    return Duplicates(pairs, _groups(pairs, names), float(threshold), measure)


def vector_duplicates(X, names, *, threshold: float = VECTOR_THRESHOLD) -> Duplicates:
    """Tracks whose feature vectors, standardised over the collection, differ by less than ``threshold`` (RMS).

    Parameters
    ----------
    X : ndarray of shape (n, n_features)
        One row per track.
    names : array-like of shape (n,)
    threshold : float >= 0, default=VECTOR_THRESHOLD

    Returns
    -------
    Duplicates
    """
    check_number("threshold", threshold, minimum=0)
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    Z = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    norms = np.einsum("ij,ij->i", Z, Z)

    def blocks():
        for r0 in range(0, len(Z), _BLOCK):
            rows = Z[r0 : r0 + _BLOCK]
            squared = norms[r0 : r0 + _BLOCK, None] + norms[None, :] - 2.0 * rows @ Z.T
            yield r0, np.sqrt(np.maximum(squared, 0.0) / Z.shape[1])

    pairs = _close_pairs(blocks(), np.asarray(names), threshold)
    measure = f"root-mean-square difference between standardised feature rows, below {threshold:g}"
    return Duplicates(pairs, _groups(pairs, names), float(threshold), measure)


def keep_one_of_each(duplicates: Duplicates) -> set:
    """The tracks to drop so that one of each group is left: all but the first (sorted) of each group."""
    return {name for group in duplicates.groups for name in group[1:]}


def find_duplicates(X: dict, groups, *, threshold=None, weights=None) -> Duplicates:
    """Copies among the tracks: by divergence between their Gaussians if the data has them, else by
    the difference between their table rows.

    ``X`` maps a feature family (``gaussian``: packed Gaussians, or
    ``table``) to its rows; ``groups`` names each row's track (segments of a
    track are first merged into one Gaussian, weighted by ``weights`` (their
    lengths; default equal), or into one mean row).
    """
    if "gaussian" in X:
        tracks, means, covs = track_gaussians(*unpack(X["gaussian"]), groups, weights)
        return gaussian_duplicates(means, covs, tracks, threshold=GAUSSIAN_THRESHOLD if threshold is None else threshold)
    rows = X["table"]
    tracks, index = np.unique(np.asarray(groups), return_inverse=True)
    sums = np.zeros((len(tracks), rows.shape[1]))
    np.add.at(sums, index, rows)
    vectors = sums / np.bincount(index)[:, None]  # segments of a track: their mean row
    return vector_duplicates(vectors, tracks, threshold=VECTOR_THRESHOLD if threshold is None else threshold)
