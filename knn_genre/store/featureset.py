"""The feature file: a versioned ``.npz`` of per-track Gaussians.

Layout (format version 1), every array plain data so the file loads with
``allow_pickle=False``:

==================  ==================  ==========================================
key                 shape / dtype       meaning
==================  ==================  ==========================================
``meta``            () str              JSON: format, format_version,
                                        package_version, mfcc parameters,
                                        data_dir, skipped files and reasons
``means``           (n, d) float64      MFCC mean per track
``covs``            (n, d, d) float64   MFCC covariance per track
``labels``          (n,) str            genre of each track
``genres``          (g,) str            sorted genre names
``paths``           (n,) str            track path relative to the data folder
``file_sizes``      (n,) int64          bytes of the source file when built
``file_mtimes_ns``  (n,) int64          its modification time, for reuse
==================  ==================  ==========================================

Format version 2 adds ``segments`` ((n, 2) float64, ``[start, end]`` seconds
of each row's part of its track) for files of segmented tracks.

Format version 3 adds feature families besides the Gaussians: ``meta``
lists them (``families``) and the table family's parameters (``table``);

==================  ==================  ==========================================
``table``           (n, c) float64      the table family's columns per row
                                        (:meth:`knn_genre.features.params.TableParams.columns`)
``table_lengths``   (n,) int64          samples of each row's stretch at the
                                        table's rate (the published ``length``)
==================  ==================  ==========================================

and ``means`` and ``covs`` are present only when the file holds the
Gaussian family. Files with Gaussians alone are still written as version 1
or 2, which every earlier reader reads; files of version 1 and 2 load as
Gaussian-only feature sets.

Writes are atomic and loading treats the file as untrusted
(:mod:`knn_genre.store.npz`); after the container checks, shapes, dtypes,
finiteness, symmetry and positive semi-definiteness are validated here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ..errors import FeatureFileError, ParameterError
from ..features.gaussian import gaussian_problems, pack
from ..features.params import MFCCParams, TableParams
from .npz import atomic_write, first_line, read_meta, read_npz

__all__ = ["FeatureSet", "save", "load", "FORMAT_NAME", "FORMAT_VERSION", "FAMILY_ORDER"]

FORMAT_NAME = "knn_genre-features"
FORMAT_VERSION = 3  # 2 adds per-segment rows, 3 the table family; files are written with the lowest that holds them
_ARRAY_KEYS = ("labels", "genres", "paths", "file_sizes", "file_mtimes_ns")
_OPTIONAL_KEYS = ("means", "covs", "segments", "table", "table_lengths")

#: The feature families a file can hold, in the order of their columns in
#: the combined ``gaussian+table`` rows.
FAMILY_ORDER = ("gaussian", "table")
@dataclass(frozen=True, eq=False)
class FeatureSet:
    """A collection of per-track features (Gaussians, table columns or both) with their provenance.

    Parameters
    ----------
    means : ndarray of shape (n, d), or None
        None when the set holds no Gaussians (then ``table`` is required).
    covs : ndarray of shape (n, d, d), or None
    labels : sequence of str, length n
        Genre of each track.
    paths : sequence of str, length n
        Track paths relative to the data folder.
    params : MFCCParams
        The settings the Gaussians were computed with.
    genres : tuple of str, optional
        Sorted genre names; defaults to the sorted distinct labels.
    file_sizes, file_mtimes_ns : sequence of int, optional
        Source-file size and modification time, used to reuse unchanged
        tracks on a rebuild. Zeros when unknown.
    skipped : tuple of (path, reason), optional
        Files that could not be built, with the reason.
    data_dir : str, optional
        The folder the paths are relative to.
    segments : ndarray of shape (n, 2), optional
        ``[start, end]`` in seconds of each row's part of its track, when
        tracks were cut into segments (rows of one track share its path,
        which is the track's id). None: one row per whole track.
    segment_seconds : float, optional
        The segment length the rows were cut with; None for whole tracks.
    table : ndarray of shape (n, c), optional
        The table family's columns (``table_params.columns()``) per row.
    table_lengths : ndarray of shape (n,), optional
        Samples of each row's stretch at ``table_params.sample_rate``; zeros when unknown.
    table_params : TableParams, optional
        How ``table`` was computed (default: the published definitions).
    """

    means: np.ndarray
    covs: np.ndarray
    labels: np.ndarray
    paths: np.ndarray
    params: MFCCParams = field(default_factory=MFCCParams)
    genres: tuple = None
    file_sizes: np.ndarray = None
    file_mtimes_ns: np.ndarray = None
    skipped: tuple = ()
    data_dir: str = ""
    segments: np.ndarray = None
    segment_seconds: float = None
    table: np.ndarray = None
    table_lengths: np.ndarray = None
    table_params: TableParams = None

    def __post_init__(self):
        n = len(self.labels)
        set_ = object.__setattr__  # frozen dataclass: normalise once, here
        if (self.means is None) != (self.covs is None):
            raise FeatureFileError("<FeatureSet>", "means and covs must be given together")
        if self.means is None and self.table is None:
            raise FeatureFileError("<FeatureSet>", "no features: give the Gaussians (means, covs), the table, or both")
        if self.means is not None:
            set_(self, "means", np.asarray(self.means, dtype=np.float64).reshape(n, -1))
            d = self.means.shape[1]
            set_(self, "covs", np.asarray(self.covs, dtype=np.float64).reshape(n, d, d))
        if self.table is not None:
            set_(self, "table", np.asarray(self.table, dtype=np.float64).reshape(n, -1))
            lengths = self.table_lengths
            set_(self, "table_lengths", np.zeros(n, np.int64) if lengths is None else np.asarray(lengths, np.int64).reshape(-1))
            set_(self, "table_params", self.table_params or TableParams())
        elif self.table_lengths is not None or self.table_params is not None:
            raise FeatureFileError("<FeatureSet>", "table_lengths and table_params need the table")
        set_(self, "labels", np.asarray(self.labels, dtype=str).reshape(n))
        set_(self, "paths", np.asarray(self.paths, dtype=str).reshape(-1))
        if self.genres is None:
            set_(self, "genres", tuple(sorted(set(self.labels.tolist()))))
        set_(self, "genres", tuple(str(g) for g in self.genres))
        for name in ("file_sizes", "file_mtimes_ns"):
            value = getattr(self, name)
            set_(self, name, np.zeros(n, np.int64) if value is None else np.asarray(value, np.int64).reshape(-1))
        set_(self, "skipped", tuple((str(p), str(r)) for p, r in self.skipped))
        set_(self, "data_dir", str(self.data_dir))
        if self.segments is not None:
            set_(self, "segments", np.asarray(self.segments, dtype=np.float64).reshape(-1, 2))
        if self.segment_seconds is not None:
            set_(self, "segment_seconds", float(self.segment_seconds))
        _validate(self, source="<FeatureSet>")

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        parts = f"n_rows={len(self)}, n_tracks={self.n_tracks}, " if self.segments is not None else f"n_tracks={len(self)}, "
        families = "+".join(self.families)
        dim = f"dim={self.dim}, " if self.has_gaussians else ""
        return (
            f"FeatureSet({parts}families={families}, {dim}genres={self.genres}, "
            f"skipped={len(self.skipped)}, params={self.params})"
        )

    @property
    def has_gaussians(self) -> bool:
        return self.means is not None

    @property
    def families(self) -> tuple:
        """The feature families held, in :data:`FAMILY_ORDER`: ``("gaussian",)``, ``("table",)`` or both."""
        held = {"gaussian": self.means is not None, "table": self.table is not None}
        return tuple(name for name in FAMILY_ORDER if held[name])

    def feature_families(self) -> tuple:
        """The registry families these rows can feed: each family held, and ``gaussian+table`` when both are."""
        names = self.families
        return names + (("+".join(names),) if len(names) > 1 else ())

    def layout(self) -> dict:
        """Columns of each family in the combined rows: ``{"gaussian": d + d(d+1)/2, "table": c}`` (those held)."""
        out = {}
        if self.has_gaussians:
            out["gaussian"] = self.dim + self.dim * (self.dim + 1) // 2
        if self.table is not None:
            out["table"] = self.table.shape[1]
        return out

    def features(self, family: str) -> np.ndarray:
        """The rows of a registry family: ``gaussian`` (packed Gaussians), ``table``, or
        ``gaussian+table`` (``np.hstack([packed, table])``, the packed Gaussian first).

        Raises
        ------
        ParameterError
            If the set does not hold the family.
        """
        parts = family.split("+")
        missing = [p for p in parts if p not in self.families]
        if missing or not parts or len(set(parts)) != len(parts) or parts != [p for p in FAMILY_ORDER if p in parts]:
            raise ParameterError(
                f"these features hold the famil{'ies' if len(self.families) > 1 else 'y'} {', '.join(self.families)}; "
                f"{family!r} is not among {', '.join(self.feature_families())}"
            )
        blocks = [self.packed() if p == "gaussian" else self.table for p in parts]
        return blocks[0] if len(blocks) == 1 else np.hstack(blocks)

    def default_family(self) -> str:
        """``gaussian`` when the set holds Gaussians, else ``table``."""
        return self.families[0]

    def subset(self, rows) -> "FeatureSet":
        """The rows selected by ``rows`` (a boolean mask or indices), every family kept."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)

        def take(a):
            return None if a is None else a[rows]

        return FeatureSet(
            means=take(self.means), covs=take(self.covs), labels=self.labels[rows], paths=self.paths[rows],
            params=self.params, file_sizes=self.file_sizes[rows], file_mtimes_ns=self.file_mtimes_ns[rows],
            data_dir=self.data_dir, segments=take(self.segments),
            segment_seconds=self.segment_seconds, table=take(self.table), table_lengths=take(self.table_lengths),
            table_params=self.table_params,
        )

    @property
    def groups(self) -> np.ndarray:
        """The track of each row (its path): the groups that a split must keep together."""
        return self.paths

    @property
    def n_tracks(self) -> int:
        """Number of distinct tracks (rows, unless the tracks were segmented)."""
        return len(set(self.paths.tolist()))

    @property
    def dim(self) -> int:
        """Dimension ``d`` of the Gaussians."""
        self._need_gaussians()
        return self.means.shape[1]

    def _need_gaussians(self):
        if self.means is None:
            raise ParameterError("these features hold no MFCC Gaussians (only the table family); build them with the gaussian family")

    def packed(self) -> np.ndarray:
        """Packed rows ``[mean, cov[triu]]`` of shape (n, d + d(d+1)/2): the estimators' ``X``."""
        self._need_gaussians()
        return pack(self.means, self.covs)

    def to_xy(self, family: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)`` for the estimators: the rows of ``family`` (default :meth:`default_family`) and genre names."""
        return self.features(family or self.default_family()), self.labels.copy()

    def to_frame(self):
        """A pandas DataFrame, one row per track: path, genre, then each family's columns (mean and covariance entries, table columns)."""
        import pandas as pd

        blocks, columns = [], []
        if self.has_gaussians:
            d = self.dim
            iu = np.triu_indices(d)
            columns += [f"mean_{i}" for i in range(d)] + [f"cov_{i}_{j}" for i, j in zip(*iu)]
            blocks.append(self.packed())
        if self.table is not None:
            columns += self.table_params.columns()
            blocks.append(self.table)
        frame = pd.DataFrame(np.hstack(blocks), columns=columns)
        frame.insert(0, "genre", self.labels)
        if self.segments is not None:
            frame.insert(0, "end", self.segments[:, 1])
            frame.insert(0, "start", self.segments[:, 0])
        frame.insert(0, "path", self.paths)
        return frame

    def meta(self) -> dict:
        """The JSON-able metadata stored beside the arrays."""
        # Readers that predate segments (or the table) must refuse such files, not misread them.
        version = 3 if self.table is not None else 2 if self.segments is not None else 1
        meta = {
            "format": FORMAT_NAME,
            "format_version": version,
            "package_version": __version__,
            "mfcc": self.params.to_dict(),
            "data_dir": self.data_dir,
            "skipped": [list(s) for s in self.skipped],
            "segment_seconds": self.segment_seconds,
        }
        if version >= 3:
            meta["families"] = list(self.families)
            meta["table"] = self.table_params.to_dict()
        return meta


def _validate(fs: FeatureSet, source: str) -> None:
    def bad(reason):
        raise FeatureFileError(source, reason)

    n = len(fs.labels)
    if fs.has_gaussians:
        d = fs.means.shape[1]
        if d != fs.params.numcep:
            bad(f"means have dimension {d} but the MFCC parameters say numcep={fs.params.numcep}")
    if fs.table is not None:
        width = len(fs.table_params.columns())
        if fs.table.shape != (n, width):
            bad(f"table must have shape ({n}, {width}) for the table parameters' {width} columns, got {fs.table.shape}")
        if len(fs.table_lengths) != n or np.any(fs.table_lengths < 0):
            bad(f"table_lengths must be {n} sample counts >= 0")
        if not np.all(np.isfinite(fs.table)):
            rows = np.flatnonzero(~np.all(np.isfinite(fs.table), axis=1))
            bad(f"non-finite table values (NaN or inf) in {len(rows)} row(s), first: {fs.paths[rows[0]]}")
    for name in ("paths", "file_sizes", "file_mtimes_ns"):
        if len(getattr(fs, name)) != n:
            bad(f"{name} has {len(getattr(fs, name))} entries for {n} tracks")
    if list(fs.genres) != sorted(set(fs.genres)):
        bad(f"genres {list(fs.genres)} must be sorted and distinct")
    unknown = set(fs.labels.tolist()) - set(fs.genres)
    if unknown:
        bad(f"labels {sorted(unknown)} are not among the genres {list(fs.genres)}")
    if (fs.segments is None) != (fs.segment_seconds is None):
        bad("segments and segment_seconds must be given together")
    if fs.segments is None:
        if len(set(fs.paths.tolist())) != n:
            bad("track paths are not unique")
    else:
        if not (np.isfinite(fs.segment_seconds) and fs.segment_seconds > 0):
            bad(f"segment_seconds={fs.segment_seconds!r} must be a positive number of seconds")
        if fs.segments.shape != (n, 2):
            bad(f"segments must have shape ({n}, 2), got {fs.segments.shape}")
        starts, ends = fs.segments[:, 0], fs.segments[:, 1]
        if not (np.all(np.isfinite(fs.segments)) and np.all(starts >= 0) and np.all(ends > starts)):
            bad("segments must be finite [start, end] seconds with 0 <= start < end")
        if len(set(zip(fs.paths.tolist(), starts.tolist()))) != n:
            bad("two segments of one track start at the same time")
    if n == 0 or not fs.has_gaussians:
        return
    problems = gaussian_problems(fs.means, fs.covs)
    bad_rows = [i for i, p in enumerate(problems) if p]
    if not bad_rows:
        return
    first = bad_rows[0]
    if problems[first].startswith("non-finite"):
        count = sum(1 for p in problems if p and p.startswith("non-finite"))
        bad(f"non-finite values (NaN or inf) in {count} track(s), first: {fs.paths[first]}")
    bad(f"covariance of {fs.paths[first]} {problems[first].removeprefix('covariance ')}")


def save(fs: FeatureSet, path: str | os.PathLike) -> None:
    """Write ``fs`` to ``path`` (``.npz``) atomically."""
    arrays = {
        "meta": np.array(json.dumps(fs.meta(), ensure_ascii=False)),
        "labels": fs.labels,
        "genres": np.array(fs.genres, dtype=str),
        "paths": fs.paths,
        "file_sizes": fs.file_sizes,
        "file_mtimes_ns": fs.file_mtimes_ns,
    }
    if fs.has_gaussians:
        arrays["means"], arrays["covs"] = fs.means, fs.covs
    if fs.table is not None:
        arrays["table"], arrays["table_lengths"] = fs.table, fs.table_lengths
    if fs.segments is not None:
        arrays["segments"] = fs.segments
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load(path: str | os.PathLike) -> FeatureSet:
    """Read and validate a feature file written by :func:`save`.

    Nothing in the file is executed: arrays are read with
    ``allow_pickle=False`` and the metadata is JSON. The file is treated as
    untrusted input; see the module docstring.

    Raises
    ------
    FeatureFileError
        If the file is missing, not an ``.npz``, holds object arrays, lacks a
        key, declares arrays larger than its data, has wrong shapes or
        dtypes, non-finite, asymmetric or indefinite covariances, or comes
        from a newer format version. The message names the file and the
        problem in one line.
    """
    source = os.fspath(path)
    arrays = read_npz(
        source, ("meta",) + _ARRAY_KEYS, _OPTIONAL_KEYS,
        what="feature file",
    )
    meta = _parse_meta(arrays.pop("meta"), source)
    families = meta.get("families", ["gaussian"])
    for family, keys in (("gaussian", ("means", "covs")), ("table", ("table", "table_lengths"))):
        for key in keys:
            if (family in families) != (key in arrays):
                why = f"lacks the array {key!r}" if family in families else f"holds the array {key!r} of a family it does not list"
                raise FeatureFileError(source, f"the file {why} (families: {', '.join(families)})")
    _check_arrays(arrays, source)
    try:
        params = MFCCParams.from_dict(meta["mfcc"])
    except (ParameterError, TypeError, ValueError, ArithmeticError) as exc:
        raise FeatureFileError(source, f"invalid MFCC parameters: {first_line(exc)}") from None
    table_params = None
    if "table" in families:
        try:
            table_params = TableParams.from_dict(meta["table"])
        except (ParameterError, TypeError, ValueError, ArithmeticError) as exc:
            raise FeatureFileError(source, f"invalid table parameters: {first_line(exc)}") from None
    try:
        return FeatureSet(
            means=arrays.get("means"),
            covs=arrays.get("covs"),
            labels=arrays["labels"],
            paths=arrays["paths"],
            params=params,
            genres=tuple(arrays["genres"].tolist()),
            file_sizes=arrays["file_sizes"],
            file_mtimes_ns=arrays["file_mtimes_ns"],
            skipped=tuple(tuple(s) for s in meta.get("skipped", [])),
            data_dir=meta.get("data_dir", ""),
            segments=arrays.get("segments"),
            segment_seconds=meta.get("segment_seconds"),
            table=arrays.get("table"),
            table_lengths=arrays.get("table_lengths"),
            table_params=table_params,
        )
    except FeatureFileError as exc:
        raise FeatureFileError(source, exc.reason) from None


def _parse_meta(raw: np.ndarray, source: str) -> dict:
    meta = read_meta(raw, source, format_name=FORMAT_NAME, max_version=FORMAT_VERSION, what="feature file")
    if not isinstance(meta.get("mfcc"), dict):
        raise FeatureFileError(source, "metadata lacks the MFCC parameters")
    skipped = meta.get("skipped", [])
    if not isinstance(skipped, list) or not all(isinstance(s, list) and len(s) == 2 for s in skipped):
        raise FeatureFileError(source, "metadata 'skipped' must be a list of [path, reason] pairs")
    seconds = meta.get("segment_seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))):
        raise FeatureFileError(source, f"metadata 'segment_seconds' must be a number or null, got {seconds!r}")
    version = meta["format_version"]
    if version >= 3:
        families = meta.get("families")
        if not isinstance(families, list) or not families or not all(f in FAMILY_ORDER for f in families) or len(set(families)) != len(families):
            raise FeatureFileError(source, f"metadata 'families' must list some of {', '.join(FAMILY_ORDER)}, got {families!r}")
        if "table" in families and not isinstance(meta.get("table"), dict):
            raise FeatureFileError(source, "metadata lacks the table parameters")
    elif "families" in meta:
        raise FeatureFileError(source, f"metadata 'families' needs format version 3, the file says {version}")
    return meta


def _check_arrays(arrays: dict, source: str) -> None:
    def bad(reason):
        raise FeatureFileError(source, reason)

    if arrays["labels"].ndim != 1:
        bad(f"labels must be a 1-d array of strings, got {arrays['labels'].dtype} {arrays['labels'].shape}")
    n = len(arrays["labels"])
    if "means" in arrays:
        means, covs = arrays["means"], arrays["covs"]
        if means.dtype.kind not in "fiu" or means.ndim != 2:
            bad(f"means must be a 2-d numeric array (n, d), got {means.dtype} {means.shape}")
        n, d = means.shape
        if covs.dtype.kind not in "fiu" or covs.shape != (n, d, d):
            bad(f"covs must be a numeric array of shape {(n, d, d)}, got {covs.dtype} {covs.shape}")
    if "table" in arrays:
        table, lengths = arrays["table"], arrays["table_lengths"]
        if table.dtype.kind not in "fiu" or table.ndim != 2 or len(table) != n:
            bad(f"table must be a 2-d numeric array with {n} rows, got {table.dtype} {table.shape}")
        if lengths.dtype.kind not in "iu" or lengths.shape != (n,):
            bad(f"table_lengths must be integers of shape ({n},), got {lengths.dtype} {lengths.shape}")
    for key in ("labels", "paths", "genres"):
        if arrays[key].dtype.kind != "U" or arrays[key].ndim != 1:
            bad(f"{key} must be a 1-d array of strings, got {arrays[key].dtype} {arrays[key].shape}")
    for key in ("labels", "paths", "file_sizes", "file_mtimes_ns"):
        if arrays[key].shape != (n,):
            bad(f"{key} must have shape ({n},) like the features, got {arrays[key].shape}")
    for key in ("file_sizes", "file_mtimes_ns"):
        if arrays[key].dtype.kind not in "iu":
            bad(f"{key} must be integers, got {arrays[key].dtype}")
    if "segments" in arrays and (arrays["segments"].dtype.kind != "f" or arrays["segments"].shape != (n, 2)):
        bad(f"segments must be a float array of shape ({n}, 2), got {arrays['segments'].dtype} {arrays['segments'].shape}")
