"""Evaluation protocols: seeded folds, random splits, split files.

Every model of an evaluation is scored on the *same* splits, computed once
from the labels and a seed, so differences between models are not
differences between folds. When rows are segments of tracks, every split
keeps all rows of a track on one side, so no test track has been heard in
training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedGroupKFold, StratifiedKFold, train_test_split

from ..errors import ParameterError, check_integer

__all__ = ["Protocol", "cross_validation_splits", "random_split", "split_from_lists", "smallest_training_size"]


@dataclass
class Protocol:
    """How the data was split: enough to repeat the experiment."""

    kind: str  # "cross-validation", "random-split" or "split-files"
    seed: int | None
    n_tracks: int
    n_genres: int
    folds: int = 1
    train_fraction: float | None = None
    notes: list = field(default_factory=list)
    repeats: int = 1

    def describe(self) -> str:
        """One line for the report."""
        if self.kind == "cross-validation" and self.repeats > 1:
            head = (
                f"stratified {self.folds}-fold cross-validation repeated {self.repeats} times "
                f"({self.folds * self.repeats} splits), seed {self.seed}"
            )
        elif self.kind == "cross-validation":
            head = f"stratified {self.folds}-fold cross-validation, seed {self.seed}"
        elif self.kind == "random-split":
            head = f"one stratified random split, {self.train_fraction:.0%} train, seed {self.seed}"
        else:
            head = "predefined train/test split from files"
        return f"{head}; {self.n_tracks} tracks, {self.n_genres} genres"


def cross_validation_splits(y, *, folds: int = 10, seed: int = 0, repeats: int = 1, groups=None):
    """Seeded stratified k-fold splits, with fewer folds when a genre is small.

    Parameters
    ----------
    y : array-like of shape (n,)
        Genre labels.
    folds : int, default=10
    seed : int, default=0
        Shuffling seed; the same seed gives the same folds.
    repeats : int, default=1
        Repetitions of the k-fold partition, each shuffled differently
        (``RepeatedStratifiedKFold``): every track is tested ``repeats``
        times, and the spread over ``folds * repeats`` splits is less
        dependent on one lucky partition, which matters when folds are few.
    groups : array-like of shape (n,), optional
        Track of each row, when rows are segments of tracks: all rows of a
        track then fall in the same fold (``StratifiedGroupKFold``), so no
        test track has been heard in training. Folds are counted in tracks.

    Returns
    -------
    splits : list of (train_indices, test_indices)
        ``folds * repeats`` of them, repetition by repetition.
    protocol : Protocol
        ``folds`` is the number used; ``notes`` says why if it was reduced.
    """
    y = np.asarray(y)
    check_integer("folds", folds, 2)
    check_integer("repeats", repeats)
    grouped = groups is not None and len(np.unique(np.asarray(groups))) < len(y)
    if grouped:
        groups = np.asarray(groups)
        units, first, unit_index = np.unique(groups, return_index=True, return_inverse=True)
        mixed = np.flatnonzero(y != y[first][unit_index])
        if len(mixed):
            raise ParameterError(f"track {str(groups[mixed[0]])!r} has rows of more than one genre")
        genres, counts = np.unique(y[first], return_counts=True)
    else:
        genres, counts = np.unique(y, return_counts=True)
    if len(genres) < 2:
        raise ParameterError(f"cross-validation needs at least 2 genres, the data has {len(genres)}")
    smallest = int(counts.min())
    notes = []
    used = folds
    if smallest < folds:
        if smallest < 2:
            raise ParameterError(
                f"genre {str(genres[counts.argmin()])!r} has 1 track; every genre needs at least 2 for cross-validation"
            )
        used = smallest
        notes.append(
            f"{folds} folds requested, {used} used: genre {str(genres[counts.argmin()])!r} has only {smallest} tracks"
        )
    if grouped:
        notes.append(f"{len(y)} rows from {len(units)} tracks: all rows of a track are in the same fold")
        splits = []
        for r in range(repeats):
            cv = StratifiedGroupKFold(n_splits=used, shuffle=True, random_state=seed + r)
            splits += list(cv.split(np.zeros(len(y)), y, groups))
    else:
        if repeats == 1:
            cv = StratifiedKFold(n_splits=used, shuffle=True, random_state=seed)
        else:
            cv = RepeatedStratifiedKFold(n_splits=used, n_repeats=repeats, random_state=seed)
        splits = list(cv.split(np.zeros(len(y)), y))
    n_tracks = len(units) if grouped else len(y)
    protocol = Protocol("cross-validation", seed, n_tracks, len(genres), folds=used, notes=notes, repeats=repeats)
    return splits, protocol


def random_split(y, *, train_fraction: float = 0.66, seed: int = 0, groups=None):
    """One seeded stratified train/test split (the tutorial's 66/34, made repeatable).

    Stratified so that every genre is on both sides; the tutorial drew each
    track independently, which can leave a genre out of the training set.
    With ``groups`` (the track of each row, see :func:`cross_validation_splits`)
    whole tracks are split, and ``train_fraction`` counts tracks.
    """
    y = np.asarray(y)
    if not (0.0 < train_fraction < 1.0):
        raise ParameterError(f"split={train_fraction!r} must be a fraction strictly between 0 and 1")
    grouped = groups is not None and len(np.unique(np.asarray(groups))) < len(y)
    if grouped:
        _, first, unit_index = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
        unit_y = y[first]
    else:
        unit_y = y
    idx = np.arange(len(unit_y))
    try:
        train, test = train_test_split(idx, train_size=train_fraction, random_state=seed, stratify=unit_y)
    except ValueError as exc:
        raise ParameterError(
            f"cannot split {len(unit_y)} tracks {train_fraction:.0%}/{1 - train_fraction:.0%}: {exc}"
        ) from None
    notes = []
    if grouped:
        train = np.flatnonzero(np.isin(unit_index, train))
        test = np.flatnonzero(np.isin(unit_index, test))
        notes.append(f"{len(y)} rows from {len(unit_y)} tracks: all rows of a track are on the same side")
    protocol = Protocol(
        "random-split", seed, len(unit_y), len(np.unique(y)), folds=1, train_fraction=train_fraction, notes=notes
    )
    return [(np.sort(train), np.sort(test))], protocol


def _match_keys(path: str) -> list[str]:
    """Names a listed track may go by: the relative path, or the file name."""
    p = PurePosixPath(path.replace("\\", "/"))
    return [p.as_posix(), p.name]


def _without_suffix(name: str) -> str:
    """A track name without its file suffix: ``"blues/blues.00000.au"`` -> ``"blues/blues.00000"``."""
    p = PurePosixPath(name)
    return p.with_suffix("").as_posix() if p.suffix else name


def split_from_lists(paths, y, train_names, test_names):
    """A predefined split given as lists of track names or paths.

    Each listed entry matches a track whose relative path or file name equals
    it (``blues/blues.00000.wav`` or ``blues.00000.wav``; a leading folder
    such as ``genres_original/`` is tolerated), or, failing that, equals it
    but for the suffix (a list of ``.wav`` names matches a collection of
    GTZAN's original ``.au`` files, or of FLAC copies). Rows that share a path are
    segments of one track and go together. Entries that match no track are
    reported in ``Protocol.notes``; a track listed on both sides is an
    error.

    Returns
    -------
    splits : list with one (train_indices, test_indices)
    protocol : Protocol
    """
    index, stems = {}, {}
    for i, path in enumerate(paths):
        for key in dict.fromkeys(_match_keys(str(path))):  # a bare file name is both keys
            index.setdefault(key, []).append(i)
            stems.setdefault(_without_suffix(key), []).append(i)

    def resolve(names, side):
        found, missing = set(), []
        for name in names:
            name = name.strip()
            if not name or name.startswith("#"):
                continue
            parts = PurePosixPath(name.replace("\\", "/")).parts
            # Try the full entry, then shorter suffixes of it, then the file name.
            candidates = ["/".join(parts[i:]) for i in range(len(parts))]
            hit = next((index[c] for c in candidates if c in index), None)
            if hit is None:
                # The same track in another format: blues.00000.wav listed, blues.00000.au built.
                hit = next((stems[c] for c in map(_without_suffix, candidates) if c in stems), None)
            if hit is None:
                missing.append(name)
            elif len({str(paths[i]) for i in hit}) > 1:
                tracks = len({str(paths[i]) for i in hit})
                raise ParameterError(f"{side} entry {name!r} matches {tracks} tracks; list relative paths instead")
            else:
                found.update(hit)
        return np.array(sorted(found), dtype=int), missing

    train, miss_train = resolve(train_names, "train")
    test, miss_test = resolve(test_names, "test")
    both = np.intersect1d(train, test)
    if len(both):
        raise ParameterError(f"{len(both)} track(s) are listed for both training and testing, e.g. {paths[both[0]]}")
    if len(train) == 0 or len(test) == 0:
        raise ParameterError(
            f"the split lists match {len(train)} training and {len(test)} test tracks of the feature file; "
            "entries must be track paths relative to DATA_DIR or file names"
        )
    y = np.asarray(y)
    notes = []
    for side, miss in (("train", miss_train), ("test", miss_test)):
        if miss:
            notes.append(f"{len(miss)} {side} entries not in the feature file (e.g. {miss[0]})")
    used = np.concatenate([train, test])
    n_tracks = len({str(paths[i]) for i in used})
    protocol = Protocol("split-files", None, n_tracks, len(np.unique(y[used])), folds=1, notes=notes)
    return [(train, test)], protocol


def smallest_training_size(splits) -> int:
    """Fewest training tracks in any split: the largest usable ``k``."""
    return min(len(train) for train, _ in splits)
