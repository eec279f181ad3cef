"""The inner folds of the classifiers' own searches and calibrations.

A model that tunes itself (a grid search) or calibrates its probabilities
does so on folds of the tracks it is given: in an evaluation, those are the
outer training fold's tracks only, which makes the evaluation nested.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from ..errors import ParameterError, check_integer

__all__ = ["InnerStratifiedKFold", "check_groups", "track_units"]


def check_groups(groups, n_rows: int) -> np.ndarray:
    """``groups`` as an array giving the track of each of ``n_rows`` rows, or a ParameterError.

    A shorter array would leave rows in no fold (and their scores unset).
    """
    groups = np.asarray(groups)
    if groups.shape != (n_rows,):
        raise ParameterError(f"groups must give the track of each of the {n_rows} rows; got shape {groups.shape}")
    return groups


def track_units(y, groups) -> tuple[np.ndarray, np.ndarray | None]:
    """Genre of each track and the track of each row; ``(y, None)`` when every row is its own track.

    A track's genre is that of its first row (its segments share it).
    """
    y = np.asarray(y)
    if groups is None:
        return y, None
    groups = check_groups(groups, len(y))
    _, first, index = np.unique(groups, return_index=True, return_inverse=True)
    if len(first) == len(y):
        return y, None  # one row per track: the split is the one without groups
    return y[first], index


class InnerStratifiedKFold:
    """Seeded stratified k-fold for the inner loop of a nested cross-validation.

    A hyper-parameter search sees only the outer training fold, whose
    smallest genre may hold fewer tracks than ``n_splits``. As the outer
    folds of an evaluation do, the number of folds then shrinks to the size of the smallest genre, but never below 2:
    a genre with a single training track lands in one inner test fold and is
    missing from that fold's training part, which costs the search a little
    accuracy on that track but lets it run (scikit-learn's warning about it
    is silenced, since this is deliberate). When every genre has a single
    track there is nothing to stratify, and the folds are plain shuffled
    ``KFold``.

    Parameters
    ----------
    n_splits : int, default=5
        Folds wanted, >= 2.
    random_state : int, default=0
        Shuffling seed; the same seed and labels give the same folds.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.cv import InnerStratifiedKFold
    >>> cv = InnerStratifiedKFold(5, random_state=0)
    >>> y = np.array(["a"] * 10 + ["b"] * 3)
    >>> cv.get_n_splits(None, y)
    3
    >>> [len(test) for _, test in cv.split(np.zeros((13, 1)), y)]
    [5, 4, 4]
    """

    def __init__(self, n_splits=5, *, random_state=0):
        self.n_splits = check_integer("n_splits", n_splits, 2)
        self.random_state = random_state

    def __repr__(self) -> str:
        return f"InnerStratifiedKFold(n_splits={self.n_splits}, random_state={self.random_state!r})"

    def units(self, y, groups):
        """Labels of the units folds are made of: tracks when rows are their segments (see :func:`track_units`)."""
        return track_units(y, groups)

    def _folds(self, y, groups=None) -> int:
        if y is None:
            raise ParameterError("InnerStratifiedKFold needs the labels y to choose its folds")
        units, _ = self.units(y, groups)
        _, counts = np.unique(units, return_counts=True)
        return int(max(2, min(self.n_splits, counts.min())))

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Folds that :meth:`split` yields for these labels (and groups)."""
        return self._folds(y, groups)

    def split(self, X, y, groups=None):
        """Yield ``(train_indices, test_indices)``, stratified by ``y``.

        With ``groups`` (the track of each row, when rows are segments) the
        folds are made of whole tracks, so no track is on both sides.
        """
        units, index = self.units(y, groups)
        folds = self._folds(y, groups)
        _, counts = np.unique(units, return_counts=True)
        if counts.max() < folds:
            cv = KFold(n_splits=folds, shuffle=True, random_state=self.random_state)
        else:
            cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            splits = list(cv.split(np.zeros((len(units), 1)), units))
        if index is not None:
            # Folds of tracks, mapped back to their rows.
            splits = [(np.flatnonzero(np.isin(index, train)), np.flatnonzero(np.isin(index, test))) for train, test in splits]
        yield from splits
