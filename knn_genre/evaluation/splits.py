"""Evaluation protocols: seeded folds, random splits, split files, GTZAN's published splits.

Every model of an evaluation is scored on the *same* splits, computed once
from the labels and a seed, so differences between models are not
differences between folds. When rows are segments of tracks, every split
keeps all rows of a track on one side, so no test track has been heard in
training.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedGroupKFold, StratifiedKFold, train_test_split

from ..errors import ParameterError, check_integer

__all__ = [
    "Protocol",
    "cross_validation_splits",
    "random_split",
    "split_from_lists",
    "smallest_training_size",
    "GTZAN_SPLITS",
    "gtzan_key",
    "gtzan_split_lists",
    "gtzan_split",
    "pairs_across_splits",
]


@dataclass
class Protocol:
    """How the data was split: enough to repeat the experiment."""

    kind: str  # "cross-validation", "random-split", "split-files", or a name of GTZAN_SPLITS
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
        elif self.kind in GTZAN_SPLITS:
            head = GTZAN_SPLITS[self.kind]
            if self.kind == "gtzan-artist-3fold" and self.folds < 3:
                head += f" ({self.folds} of the 3 folds usable)"
        else:
            head = "predefined train/test split from files"
        if self.kind not in ("cross-validation", "random-split") and self.seed is not None:
            # The split is fixed, but inner searches, calibration and baselines still draw from the seed.
            head += f"; seed {self.seed} for inner folds and baselines"
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
        # One generator for all repeats, as RepeatedStratifiedKFold does: seed + r would give
        # --seed 0 and --seed 1 four repeats in common. The first repeat is still the seed's.
        rng = np.random.RandomState(seed)
        splits = []
        for _ in range(repeats):
            cv = StratifiedGroupKFold(n_splits=used, shuffle=True, random_state=rng)
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


def split_from_lists(paths, y, train_names, test_names, *, seed: int | None = None):
    """A predefined split given as lists of track names or paths.

    Each listed entry matches a track whose relative path or file name equals
    it (``blues/blues.00000.wav`` or ``blues.00000.wav``; a leading folder
    such as ``genres_original/`` or ``./`` is tolerated), or, failing that, equals it
    but for the suffix (a list of ``.wav`` names matches a collection of
    GTZAN's original ``.au`` files, or of FLAC copies), or, failing that,
    names the same GTZAN track (:func:`gtzan_key`: ``./blues_00000.wav``).
    A tab-separated second column (a label) is ignored. Rows that share a path are
    segments of one track and go together. Entries that match no track, and
    the data's tracks that neither list names, are reported in
    ``Protocol.notes``; a track listed on both sides is an error.

    ``seed`` does not change the split; it is recorded in the protocol, as
    the seed of the inner searches and baselines run on it.

    Returns
    -------
    splits : list with one (train_indices, test_indices)
    protocol : Protocol
    """
    index, stems, gtzan = {}, {}, {}
    for i, path in enumerate(paths):
        for key in dict.fromkeys(_match_keys(str(path))):  # a bare file name is both keys
            index.setdefault(key, []).append(i)
            stems.setdefault(_without_suffix(key), []).append(i)
        key = gtzan_key(path)
        if key is not None:
            gtzan.setdefault(key, []).append(i)

    def resolve(names, side):
        found, missing = set(), []
        for name in names:
            name = name.split("\t", 1)[0].strip()  # published lists may add the label as a second column
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
                # Another spelling of the same GTZAN track: ./blues_00000.wav listed, blues/blues.00000.wav built.
                hit = gtzan.get(gtzan_key(name))
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
            "entries must be track paths relative to DATA_DIR, file names or GTZAN names"
        )
    y = np.asarray(y)
    notes = []
    for side, miss in (("train", miss_train), ("test", miss_test)):
        if miss:
            notes.append(f"{len(miss)} {side} entries not in the feature file (e.g. {miss[0]})")
    used = np.concatenate([train, test])
    used_tracks = {str(paths[i]) for i in used}
    unlisted = sorted({str(p) for p in paths} - used_tracks)
    if unlisted:
        notes.append(f"{len(unlisted)} track(s) of the data are not in the split and are left out (e.g. {_examples(unlisted)})")
    protocol = Protocol("split-files", seed, len(used_tracks), len(np.unique(y[used])), folds=1, notes=notes)
    return [(train, test)], protocol


def smallest_training_size(splits) -> int:
    """Fewest training tracks in any split: the largest usable ``k``."""
    return min(len(train) for train, _ in splits)


# -- GTZAN's published splits ---------------------------------------------------------------

#: Named splits shipped with the package (``evaluate --split NAME``).
GTZAN_SPLITS = {
    "gtzan-fault-filtered": (
        "GTZAN fault-filtered split (Kereliuk, Sturm & Larsen 2015): trained on its train and valid lists, "
        "tested on its test list"
    ),
    "gtzan-artist-3fold": (
        "GTZAN artist-filtered stratified 3 folds (Foleiss & Tavares 2020): no artist on both sides of a fold"
    ),
}

# "blues.00012", "blues_00012": GTZAN's genre and five-digit number.
_GTZAN_STEM = re.compile(r"^(?P<genre>[A-Za-z]+)[._](?P<number>\d{5})$")


def gtzan_key(name: str) -> str | None:
    """The GTZAN track a file name or list entry names, as ``genre.NNNNN``, or None.

    Published lists and tables spell the same track differently; the folder,
    the extension and a tab-separated second column are ignored.

    Examples
    --------
    >>> from knn_genre.evaluation.splits import gtzan_key
    >>> [gtzan_key(n) for n in ("blues/blues.00012.wav", "./blues_00012.wav\\tblues", "Blues.00012.au", "my song.wav")]
    ['blues.00012', 'blues.00012', 'blues.00012', None]
    """
    entry = str(name).split("\t", 1)[0].strip().replace("\\", "/")
    stem = PurePosixPath(entry).name
    if "." in stem and not stem.rsplit(".", 1)[1].isdigit():
        stem = stem.rsplit(".", 1)[0]  # the extension, not the number
    match = _GTZAN_STEM.match(stem)
    return f"{match['genre'].lower()}.{match['number']}" if match else None


def _read_list(relative: str) -> list[str]:
    from importlib.resources import files

    text = files(__package__).joinpath("data", "gtzan", relative).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def gtzan_split_lists(name: str) -> list[tuple[list[str], list[str]]]:
    """The published lists of a named split: one (train keys, test keys) per fold, as :func:`gtzan_key` spells them."""
    if name not in GTZAN_SPLITS:
        raise ParameterError(f"unknown split {name!r}; the named splits are {', '.join(GTZAN_SPLITS)}")
    if name == "gtzan-fault-filtered":
        train = _read_list("fault-filtered/train_filtered.txt") + _read_list("fault-filtered/valid_filtered.txt")
        folds = [(train, _read_list("fault-filtered/test_filtered.txt"))]
    else:
        folds = [(_read_list(f"artist-3fold/f{i}_train.txt"), _read_list(f"artist-3fold/f{i}_test.txt")) for i in (1, 2, 3)]
    return [([gtzan_key(e) for e in train], [gtzan_key(e) for e in test]) for train, test in folds]


def _examples(items, limit=3) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (", ..." if len(items) > limit else "")


def gtzan_split(name: str, paths, y, *, seed: int | None = None):
    """The splits of GTZAN's published split ``name`` over the tracks of a feature file or table.

    Tracks are matched by their GTZAN name (:func:`gtzan_key`), whatever the
    folder, extension or spelling (``blues/blues.00012.wav``,
    ``./blues_00012.wav``, ``blues.00012.wav``); all rows of a track (its
    segments) go together. Listed tracks that the data lacks are reported in
    the protocol's notes (how many, and the first few), as are the data's
    tracks that the split leaves out (GTZAN's repeats and distorted clips)
    and test tracks of genres that no training track has. A fold left with
    no test track, or training tracks of fewer than 2 genres, is dropped,
    with a note.

    Parameters
    ----------
    name : str
        A key of :data:`GTZAN_SPLITS`.
    paths : sequence of str, length n
        Track of each row.
    y : sequence of str, length n
        Genre of each row.
    seed : int, optional
        Recorded in the protocol: the split is fixed, but the inner searches
        and baselines run on it draw from this seed.

    Returns
    -------
    splits : list of (train_indices, test_indices)
    protocol : Protocol

    Raises
    ------
    ParameterError
        If no fold has both training and test tracks in the data, or two
        different tracks of the data have the same GTZAN name.
    """
    paths = np.asarray([str(p) for p in paths])
    y = np.asarray(y)
    rows, owner = {}, {}
    for i, path in enumerate(paths):
        key = gtzan_key(path)
        if key is None:
            continue
        if owner.setdefault(key, path) != path:
            raise ParameterError(f"two tracks are GTZAN's {key}: {owner[key]} and {path}; keep one of them")
        rows.setdefault(key, []).append(i)
    lists = gtzan_split_lists(name)
    listed = {key for train, test in lists for key in train + test}
    notes = []
    absent = sorted(listed - set(rows))
    if absent:
        notes.append(f"{len(absent)} of the {len(listed)} tracks the split lists are not in the data (e.g. {_examples(absent)})")
    unlisted = sorted({str(p) for p in paths} - {owner[k] for k in listed & set(rows)})
    if unlisted:
        notes.append(f"{len(unlisted)} track(s) of the data are not in the split and are left out (e.g. {_examples(unlisted)})")
    splits = []
    for fold, (train_keys, test_keys) in enumerate(lists, start=1):
        train = np.array(sorted(i for k in train_keys if k in rows for i in rows[k]), dtype=int)
        test = np.array(sorted(i for k in test_keys if k in rows for i in rows[k]), dtype=int)
        label = "the split" if len(lists) == 1 else f"fold {fold}"
        if len(train) == 0 or len(test) == 0:
            notes.append(f"{label} dropped: the data has {len(train)} of its training and {len(test)} of its test rows")
            continue
        if len(np.unique(y[train])) < 2:
            notes.append(f"{label} dropped: its training tracks in the data are all of one genre ({y[train][0]})")
            continue
        unseen = sorted(set(y[test]) - set(y[train]))
        if unseen:
            count = int(np.isin(y[test], unseen).sum())
            notes.append(
                f"{label}: {count} test row(s) are of genres with no training track ({', '.join(map(str, unseen))}); "
                "no model can get them right"
            )
        splits.append((train, test))
    if not splits:
        raise ParameterError(
            f"the data holds no training and test tracks of the split {name}: it matched {len(listed & set(rows))} of its "
            f"{len(listed)} tracks; tracks must have GTZAN's names (blues/blues.00012.wav, blues.00012.au, ./blues_00012.wav)"
        )
    used = np.unique(np.concatenate([np.concatenate(s) for s in splits]))
    protocol = Protocol(
        name, seed, len(set(paths[used].tolist())), len(np.unique(y[used])), folds=len(splits), notes=notes
    )
    return splits, protocol


def pairs_across_splits(pairs, splits, groups) -> list[tuple[str, str, tuple]]:
    """Pairs of tracks with one track on the training side and the other on the test side of a split.

    Parameters
    ----------
    pairs : list of (str, str)
        Track names (e.g. copies of each other).
    splits : list of (train_indices, test_indices)
    groups : array-like of shape (n,)
        Track of each row.

    Returns
    -------
    list of (a, b, folds)
        ``folds`` the indices of the splits that separate ``a`` and ``b``.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.evaluation.splits import pairs_across_splits
    >>> splits = [(np.array([0, 1]), np.array([2])), (np.array([0, 2]), np.array([1]))]
    >>> pairs_across_splits([("a", "c"), ("b", "c")], splits, ["a", "b", "c"])
    [('a', 'c', (0,)), ('b', 'c', (0, 1))]
    """
    groups = np.asarray([str(g) for g in groups])
    sides = [(set(groups[train].tolist()), set(groups[test].tolist())) for train, test in splits]
    out = []
    for a, b in pairs:
        folds = tuple(i for i, (train, test) in enumerate(sides) if (a in train and b in test) or (b in train and a in test))
        if folds:
            out.append((a, b, folds))
    return out
