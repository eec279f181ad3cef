"""Published feature tables: one row per clip, numeric feature columns, a label.

Reads tables such as GTZAN's ``features_30_sec.csv`` (a ``filename``
column, a ``length`` column, 57 numeric features and a ``label`` column)
for the vector models (:func:`knn_genre.classifiers.svm.make_table_svm_search`, a
Euclidean KNN on standardised features, the dummy baselines). All file
reading and checking happens here, before any model runs.

GTZAN's ``features_3_sec.csv`` cuts every clip into ten segments named
``blues.00000.0.wav`` ... ``blues.00000.9.wav``. Segments of one track must
never be split between training and test folds, or the test tracks have
already been heard, so :attr:`FeatureTable.groups` names the track of each
row and the evaluation keeps groups together.

:func:`write_feature_table` writes the table family of a feature set in the
same layout (``filename``, ``length``, the columns, ``label``), so that a
table computed from audio can be compared with, or appended to, the
published one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from ..errors import FeatureFileError, ParameterError
from .npz import atomic_write

__all__ = ["FeatureTable", "read_feature_table", "write_feature_table", "table_filenames", "table_groups", "track_of"]

# "blues.00000.3.wav" is segment 3 of track "blues.00000".
_SEGMENT = re.compile(r"^(?P<track>.*\.\d+)\.\d+$")
# "dup.3.wav" may be segment 3 of "dup.wav", as build_features names the segments of any track; a
# segment number has no leading zeros, so a GTZAN track ("blues.00000") is never one.
_ANY_SEGMENT = re.compile(r"^(?P<track>.+)\.(?:0|[1-9]\d*)$")


def track_of(filename: str) -> str:
    """The track a row belongs to: its file name without the segment number.

    Examples
    --------
    >>> from knn_genre.store.tables import track_of
    >>> track_of("blues.00000.wav"), track_of("blues.00000.3.wav"), track_of("row7")
    ('blues.00000.wav', 'blues.00000.wav', 'row7')
    """
    stem, ext = os.path.splitext(str(filename))
    match = _SEGMENT.match(stem)
    return match.group("track") + ext if match else str(filename)


def table_groups(ids, labels) -> np.ndarray:
    """The track of each row of a table, from the rows' names.

    GTZAN's segment names (``blues.00000.3.wav``) always name segments
    (:func:`track_of`). Other names (``dup.0.wav``, ``dup.1.wav``) name
    segments only when every row of the table is named so and each track
    keeps one genre: a table of segments written by ``build_features
    --format csv`` names all its rows so, while one stray ``take.2.wav`` in a
    table of whole tracks is a track of its own.

    Examples
    --------
    >>> from knn_genre.store.tables import table_groups
    >>> table_groups(["a.0.wav", "a.1.wav", "b.0.wav"], ["x", "x", "y"]).tolist()
    ['a.wav', 'a.wav', 'b.wav']
    >>> table_groups(["a.0.wav", "a.1.wav", "b.wav"], ["x", "x", "y"]).tolist()
    ['a.0.wav', 'a.1.wav', 'b.wav']
    """
    ids = [str(i) for i in ids]
    gtzan = [track_of(i) for i in ids]
    if gtzan != ids:
        return np.array(gtzan)
    parts = [os.path.splitext(i) for i in ids]
    matches = [_ANY_SEGMENT.match(stem) for stem, _ in parts]
    if not all(matches):
        return np.array(ids)
    groups = [m.group("track") + ext for m, (_, ext) in zip(matches, parts)]
    genre_of = {}
    for group, label in zip(groups, labels):
        if genre_of.setdefault(group, label) != label:
            return np.array(ids)  # rows of one "track" in two genres: the names are not segment names
    return np.array(groups) if len(genre_of) < len(ids) else np.array(ids)


@dataclass(frozen=True, eq=False)
class FeatureTable:
    """A validated feature table.

    Attributes
    ----------
    X : ndarray of shape (n_rows, n_features), float64
        Finite feature values.
    y : ndarray of shape (n_rows,), str
        Genre of each row.
    ids : ndarray of shape (n_rows,), str
        Row names: the id column (e.g. ``blues.00000.wav``), or ``row<i>``.
    groups : ndarray of shape (n_rows,), str
        Track of each row (see :func:`table_groups`), e.g. ``blues.00000.wav``
        for every segment of that clip; equal to the ids when every row is a
        whole clip.
    columns : list of str
        Names of the feature columns, in the order of ``X``.
    path : str
    dropped : list of str
        Columns read but not used as features (the id and meta columns).
    lengths : ndarray of shape (n_rows,), int64, or None
        The ``length`` column (samples of each row's clip or segment), when
        the table has one with positive whole numbers.
    """

    X: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    groups: np.ndarray
    columns: list
    path: str
    dropped: list
    lengths: np.ndarray | None = None

    @property
    def n_tracks(self) -> int:
        """Distinct tracks (fewer than rows when clips are cut into segments)."""
        return len(np.unique(self.groups))


def _names(columns, limit=12) -> str:
    shown = ", ".join(map(str, columns[:limit]))
    return shown + (f", ... ({len(columns)} in all)" if len(columns) > limit else "")


def read_feature_table(
    path, *, label_column: str = "label", id_column: str = "filename", drop=("length",)
) -> FeatureTable:
    """Read and validate a CSV feature table.

    Parameters
    ----------
    path : str or os.PathLike
        A CSV file with a header row.
    label_column : str, default="label"
        Column holding the genre of each row; required.
    id_column : str, default="filename"
        Column naming each row; optional (rows are then ``row0``, ...).
    drop : sequence of str, default=("length",)
        Other columns that are not features, dropped if present. GTZAN's
        ``length`` is the clip length in samples, a property of the file
        rather than of the music.

    Returns
    -------
    FeatureTable

    Raises
    ------
    FeatureFileError
        If the file is missing or not CSV, has no label column (the message
        lists the columns found), no feature columns, non-numeric feature
        columns (named), missing or non-finite values (first one located),
        or missing labels.

    Examples
    --------
    >>> import io, tempfile, os
    >>> from knn_genre.store.tables import read_feature_table
    >>> text = "filename,length,tempo,label\\nblues.00000.wav,661794,120.0,blues\\njazz.00000.wav,661794,90.5,jazz\\n"
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "f.csv")
    ...     with open(path, "w") as fh:
    ...         _ = fh.write(text)
    ...     table = read_feature_table(path)
    >>> table.X.tolist(), table.y.tolist(), table.columns, table.dropped
    ([[120.0], [90.5]], ['blues', 'jazz'], ['tempo'], ['filename', 'length'])
    """
    import pandas as pd

    source = os.fspath(path)
    if not os.path.isfile(source):
        raise FeatureFileError(source, "no such feature table")
    try:
        frame = pd.read_csv(source)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise FeatureFileError(source, f"not a readable CSV table: {exc}") from None
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if label_column not in columns:
        raise FeatureFileError(
            source, f"no {label_column!r} column with the genre of each row; columns found: {_names(columns)}"
        )
    if len(frame) == 0:
        raise FeatureFileError(source, "the table has no rows")
    labels = frame[label_column]
    if labels.isna().any():
        row = int(np.flatnonzero(labels.isna().to_numpy())[0])
        raise FeatureFileError(source, f"row {row + 2} has no {label_column!r}")  # +2: header, 1-based
    dropped = [c for c in columns if c == id_column or (c in drop and c != label_column)]
    features = [c for c in columns if c != label_column and c not in dropped]
    if not features:
        raise FeatureFileError(source, f"no feature columns besides {_names([label_column] + dropped)}")
    non_numeric = [c for c in features if frame[c].dtype.kind not in "biuf"]
    if non_numeric:
        raise FeatureFileError(
            source,
            f"non-numeric feature column(s) {_names(non_numeric)}; every column except "
            f"{label_column!r} and {id_column!r} must hold numbers",
        )
    X = frame[features].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise FeatureFileError(
            source, f"{int(bad.sum())} missing or non-finite value(s), first in row {row + 2}, column {features[col]!r}"
        )
    if id_column in columns:
        ids = frame[id_column].astype(str).to_numpy()
    else:
        ids = np.array([f"row{i}" for i in range(len(frame))])
    groups = table_groups(ids, labels.astype(str).to_numpy())
    lengths = None
    if "length" in dropped and frame["length"].dtype.kind in "iu" and (frame["length"] > 0).all():
        lengths = frame["length"].to_numpy(dtype=np.int64)
    return FeatureTable(
        X=X,
        y=labels.astype(str).to_numpy(),
        ids=ids,
        groups=groups,
        columns=features,
        path=source,
        dropped=dropped,
        lengths=lengths,
    )


def table_filenames(paths, segments=None, segment_seconds=None) -> list[str]:
    """The ``filename`` column for rows of tracks: GTZAN's names.

    A whole track is its file name (``blues.00000.wav``); segment ``i`` of a
    track (the one starting at ``i * segment_seconds``) is
    ``blues.00000.<i>.wav``, as in GTZAN's 3-second table. When two tracks
    of a collection share a file name (in different genre folders), every
    row is named by its relative path instead, so that names stay unique.

    Examples
    --------
    >>> from knn_genre.store.tables import table_filenames
    >>> table_filenames(["blues/blues.00000.wav", "jazz/jazz.00001.wav"])
    ['blues.00000.wav', 'jazz.00001.wav']
    >>> table_filenames(["blues/b.00000.wav"] * 2, [[0.0, 3.0], [3.0, 6.0]], 3.0)
    ['b.00000.0.wav', 'b.00000.1.wav']
    """
    paths = [str(p) for p in paths]
    tracks = sorted(set(paths))
    base = {p: p.replace(os.sep, "/").rsplit("/", 1)[-1] for p in tracks}
    if len(set(base.values())) < len(tracks):
        base = {p: p.replace(os.sep, "/") for p in tracks}
    if segments is None:
        return [base[p] for p in paths]
    names = []
    for path, (start, _end) in zip(paths, np.asarray(segments, dtype=np.float64)):
        stem, ext = os.path.splitext(base[path])
        names.append(f"{stem}.{int(round(start / segment_seconds))}{ext}")
    return names


def write_feature_table(fs, path) -> None:
    """Write the table family of a feature set as CSV, in the published layout.

    Columns: ``filename`` (see :func:`table_filenames`), ``length`` (samples
    of the row's stretch at the table's rate), the table columns in
    :meth:`~knn_genre.features.params.TableParams.columns` order, ``label``
    (the genre). Values are written with 17 significant digits, so they
    read back exactly. The file is UTF-8 (the bytes of a file name that is
    not are escaped, ``\\xff`` as ``\\udcff``) and written atomically.

    Parameters
    ----------
    fs : knn_genre.store.featureset.FeatureSet
        Holding the table family.
    path : str or os.PathLike

    Raises
    ------
    ParameterError
        If ``fs`` holds no table.
    """
    import pandas as pd

    if fs.table is None:
        raise ParameterError("these features hold no table family to write as CSV; build them with the table family")
    columns = fs.table_params.columns()
    frame = pd.DataFrame(fs.table, columns=columns)
    frame.insert(0, "length", fs.table_lengths)
    frame.insert(0, "filename", table_filenames(fs.paths, fs.segments, fs.segment_seconds))
    frame["label"] = fs.labels
    text = frame.to_csv(index=False, float_format="%.17g", lineterminator="\n")
    # A file name that is not valid UTF-8 (its bytes kept as surrogates) is written escaped ("\\udcff"):
    # the table stays UTF-8, which every CSV reader expects.
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8", errors="backslashreplace")))
