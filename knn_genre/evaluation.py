"""Evaluation protocols, metrics and result tables.

Every model is evaluated on the *same* splits, computed once from the labels
and a seed, so differences between models are not differences between
folds. Accuracy is reported per fold and as mean and standard deviation;
confusion matrices, macro-F1 and per-genre precision and recall are computed
on the out-of-fold predictions pooled over all folds.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field
from numbers import Integral
from pathlib import PurePosixPath

import numpy as np
from sklearn.base import clone
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import (
    KFold,
    RepeatedStratifiedKFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

from .errors import ParameterError

__all__ = [
    "Protocol",
    "ModelResult",
    "InnerStratifiedKFold",
    "cross_validation_splits",
    "random_split",
    "split_from_lists",
    "smallest_training_size",
    "evaluate_models",
    "format_report",
    "results_to_json",
]


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


@dataclass
class ModelResult:
    """One model's scores on a protocol."""

    name: str
    accuracy_per_fold: list
    macro_f1: float
    confusion: list
    genres: list
    precision: list
    recall: list
    fit_seconds: float
    predict_seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def accuracy_mean(self) -> float:
        return float(np.mean(self.accuracy_per_fold))

    @property
    def accuracy_std(self) -> float:
        return float(np.std(self.accuracy_per_fold))


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
    if not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ParameterError(f"folds={folds!r} must be an integer >= 2")
    if isinstance(repeats, bool) or not isinstance(repeats, Integral) or repeats < 1:
        raise ParameterError(f"repeats={repeats!r} must be a positive integer")
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


class InnerStratifiedKFold:
    """Seeded stratified k-fold for the inner loop of a nested cross-validation.

    A hyper-parameter search sees only the outer training fold, whose
    smallest genre may hold fewer tracks than ``n_splits``. As
    :func:`cross_validation_splits` does for the outer loop, the number of
    folds then shrinks to the size of the smallest genre, but never below 2:
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
    >>> from knn_genre.evaluation import InnerStratifiedKFold
    >>> cv = InnerStratifiedKFold(5, random_state=0)
    >>> y = np.array(["a"] * 10 + ["b"] * 3)
    >>> cv.get_n_splits(None, y)
    3
    >>> [len(test) for _, test in cv.split(np.zeros((13, 1)), y)]
    [5, 4, 4]
    """

    def __init__(self, n_splits=5, *, random_state=0):
        if isinstance(n_splits, bool) or not isinstance(n_splits, Integral) or n_splits < 2:
            raise ParameterError(f"n_splits={n_splits!r} must be an integer >= 2")
        self.n_splits = n_splits
        self.random_state = random_state

    def __repr__(self) -> str:
        return f"InnerStratifiedKFold(n_splits={self.n_splits}, random_state={self.random_state!r})"

    def _folds(self, y) -> int:
        if y is None:
            raise ParameterError("InnerStratifiedKFold needs the labels y to choose its folds")
        _, counts = np.unique(np.asarray(y), return_counts=True)
        return int(max(2, min(self.n_splits, counts.min())))

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Folds that :meth:`split` yields for these labels."""
        return self._folds(y)

    def split(self, X, y, groups=None):
        """Yield ``(train_indices, test_indices)``, stratified by ``y``."""
        folds = self._folds(y)
        _, counts = np.unique(np.asarray(y), return_counts=True)
        if counts.max() < folds:
            cv = KFold(n_splits=folds, shuffle=True, random_state=self.random_state)
        else:
            cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            splits = list(cv.split(np.zeros((len(y), 1)), y))
        yield from splits


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


def split_from_lists(paths, y, train_names, test_names):
    """A predefined split given as lists of track names or paths.

    Each listed entry matches a track whose relative path or file name equals
    it (``blues/blues.00000.wav`` or ``blues.00000.wav``; a leading folder
    such as ``genres_original/`` is tolerated). Rows that share a path are
    segments of one track and go together. Entries that match no track are
    reported in ``Protocol.notes``; a track listed on both sides is an
    error.

    Returns
    -------
    splits : list with one (train_indices, test_indices)
    protocol : Protocol
    """
    index = {}
    for i, path in enumerate(paths):
        for key in dict.fromkeys(_match_keys(str(path))):  # a bare file name is both keys
            index.setdefault(key, []).append(i)

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


def track_predictions(estimator, X, groups):
    """One genre per track from the predictions of its rows (segments).

    The mean of the rows' probabilities decides when the estimator has
    ``predict_proba``; otherwise the majority of the rows' predicted genres,
    a tie going to the genre of the earliest tied row.

    Parameters
    ----------
    estimator : fitted classifier
    X : ndarray of shape (n, n_features)
    groups : ndarray of shape (n,)
        Track of each row.

    Returns
    -------
    tracks : ndarray
        The distinct tracks, sorted.
    predicted : ndarray
        The genre predicted for each of them.
    """
    tracks, index = np.unique(np.asarray(groups), return_inverse=True)
    if hasattr(estimator, "predict_proba"):
        proba = estimator.predict_proba(X)
        sums = np.zeros((len(tracks), proba.shape[1]))
        np.add.at(sums, index, proba)
        return tracks, np.asarray(estimator.classes_)[sums.argmax(axis=1)]
    pred = estimator.predict(X)
    out = []
    for t in range(len(tracks)):
        rows = pred[index == t]
        labels, first, counts = np.unique(rows, return_index=True, return_counts=True)
        tied = np.flatnonzero(counts == counts.max())
        out.append(labels[tied[np.argmin(first[tied])]])
    return tracks, np.array(out)


def evaluate_models(models: dict, X, y, splits, *, on_fold=None, groups=None) -> list[ModelResult]:
    """Fit and score every model on the same splits.

    Parameters
    ----------
    models : dict of name -> estimator
        Each is cloned for every split, so nothing leaks between folds.
    X : array-like of shape (n, n_features)
    y : array-like of shape (n,)
    splits : list of (train_indices, test_indices)
    on_fold : callable(name, fold_index, fitted_estimator), optional
        Called after each fit, e.g. to record chosen hyper-parameters.
    groups : array-like of shape (n,), optional
        Track of each row when rows are segments of tracks. Accuracy is
        then also measured per track (see :func:`track_predictions`) and
        stored in ``extra`` as ``track_accuracy_per_fold``,
        ``track_accuracy_mean`` and ``track_accuracy_std``; the other
        scores stay per row (segment).

    Returns
    -------
    list of ModelResult, in the order of ``models``
    """
    y = np.asarray(y)
    genres = np.unique(y)
    if groups is not None:
        groups = np.asarray(groups)
        if len(np.unique(groups)) == len(groups):
            groups = None  # one row per track: nothing to aggregate
    results = []
    for name, model in models.items():
        accs, fit_s, pred_s = [], [], []
        track_accs = []
        true_all, pred_all = [], []
        for fold, (train, test) in enumerate(splits):
            est = clone(model)
            t0 = time.perf_counter()
            est.fit(X[train], y[train])
            t1 = time.perf_counter()
            pred = est.predict(X[test])
            t2 = time.perf_counter()
            fit_s.append(t1 - t0)
            pred_s.append(t2 - t1)
            accs.append(float(accuracy_score(y[test], pred)))
            true_all.append(y[test])
            pred_all.append(pred)
            if groups is not None:
                tracks, track_pred = track_predictions(est, X[test], groups[test])
                truth = dict(zip(groups[test].tolist(), y[test].tolist()))
                track_accs.append(float(np.mean([truth[t] == p for t, p in zip(tracks.tolist(), track_pred.tolist())])))
            if on_fold:
                on_fold(name, fold, est)
        yt, yp = np.concatenate(true_all), np.concatenate(pred_all)
        precision, recall, _, _ = precision_recall_fscore_support(yt, yp, labels=genres, zero_division=0)
        results.append(
            ModelResult(
                name=name,
                accuracy_per_fold=accs,
                macro_f1=float(f1_score(yt, yp, labels=genres, average="macro", zero_division=0)),
                confusion=confusion_matrix(yt, yp, labels=genres).tolist(),
                genres=[str(g) for g in genres],
                precision=[float(v) for v in precision],
                recall=[float(v) for v in recall],
                fit_seconds=float(np.mean(fit_s)),
                predict_seconds=float(np.mean(pred_s)),
                extra=(
                    {
                        "track_accuracy_per_fold": track_accs,
                        "track_accuracy_mean": float(np.mean(track_accs)),
                        "track_accuracy_std": float(np.std(track_accs)),
                    }
                    if groups is not None
                    else {}
                ),
            )
        )
    return results


def results_to_json(protocol: Protocol, results: list[ModelResult]) -> dict:
    """The report as a JSON-able dict with stable keys."""
    return {
        "protocol": asdict(protocol),
        "models": {
            r.name: {
                "accuracy_mean": r.accuracy_mean,
                "accuracy_std": r.accuracy_std,
                "accuracy_per_fold": r.accuracy_per_fold,
                "macro_f1": r.macro_f1,
                "confusion": r.confusion,
                "genres": r.genres,
                "precision": r.precision,
                "recall": r.recall,
                "fit_seconds": r.fit_seconds,
                "predict_seconds": r.predict_seconds,
                **r.extra,
            }
            for r in results
        },
    }


def _table(header, rows, align=None) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    align = align or ["<"] + [">"] * (len(header) - 1)
    fmt = "  ".join(f"{{:{a}{w}}}" for a, w in zip(align, widths))
    lines = [fmt.format(*header), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*map(str, row)) for row in rows]
    return lines


def _short_params(params) -> str:
    """``{"svc__C": 10.0}`` as ``C=10``: the step prefix is noise in a report."""
    if not isinstance(params, dict):
        return str(params)
    parts = []
    for key, value in sorted(params.items()):
        text = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{key.rsplit('__', 1)[-1]}={text}")
    return ", ".join(parts)


def _group_folds(chosen) -> list[tuple[str, str]]:
    """Distinct settings, most frequent first, each with the folds that chose it."""
    folds = {}
    for i, params in enumerate(chosen, start=1):
        folds.setdefault(_short_params(params), []).append(i)
    ordered = sorted(folds.items(), key=lambda item: (-len(item[1]), item[1][0]))
    return [(setting, ("fold " if len(which) == 1 else "folds ") + ", ".join(map(str, which))) for setting, which in ordered]


def format_report(protocol: Protocol, results: list[ModelResult], *, confusion_for=None) -> str:
    """Plain-text report: protocol, model table, per-genre scores, confusion matrices.

    Parameters
    ----------
    confusion_for : list of str, optional
        Models whose per-genre table and confusion matrix are printed
        (default: all that are not dummies).
    """
    lines = [f"Protocol: {protocol.describe()}"]
    lines += [f"  note: {n}" for n in protocol.notes]
    spread = "std over folds" if protocol.folds > 1 else "single split, no spread"
    lines += ["", f"Accuracy (mean ± {spread}), macro-F1 on pooled out-of-fold predictions, seconds per fold:"]
    rows = [
        (r.name, f"{r.accuracy_mean:.3f} ± {r.accuracy_std:.3f}", f"{r.macro_f1:.3f}", f"{r.fit_seconds:.3f}", f"{r.predict_seconds:.3f}")
        for r in results
    ]
    header = ("model", "accuracy", "macro-F1", "fit s", "predict s")
    if results and "track_accuracy_mean" in results[0].extra:
        lines[-1] = (
            f"Rows are segments. Segment accuracy (mean ± {spread}), track accuracy (each test track's "
            "segments pooled: mean probabilities, or votes), segment macro-F1, seconds per fold:"
        )
        header = ("model", "segment accuracy", "track accuracy", "macro-F1", "fit s", "predict s")
        rows = [
            (row[0], row[1], f"{r.extra['track_accuracy_mean']:.3f} ± {r.extra['track_accuracy_std']:.3f}", *row[2:])
            for row, r in zip(rows, results)
        ]
    lines += _table(header, rows)
    for r in results:
        if r.extra.get("chosen_params"):
            lines.append(f"  {r.name}: parameters chosen by the inner search, per outer fold (folds numbered from 1):")
            lines += [f"    {setting}: {which}" for setting, which in _group_folds(r.extra["chosen_params"])]
    show = confusion_for if confusion_for is not None else [r.name for r in results if not r.name.startswith("dummy")]
    for r in results:
        if r.name not in show:
            continue
        lines += ["", f"{r.name}: per-genre precision and recall"]
        lines += _table(("genre", "precision", "recall"), [(g, f"{p:.2f}", f"{q:.2f}") for g, p, q in zip(r.genres, r.precision, r.recall)])
        lines += ["", f"{r.name}: confusion matrix (rows: true genre, columns: predicted)"]
        short = [g[:6] for g in r.genres]
        lines += _table(["true \\ pred"] + short, [[g] + row for g, row in zip(r.genres, r.confusion)])
    return "\n".join(lines)
