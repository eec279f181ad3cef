"""Model files: what a trained model needs to rebuild itself, as plain data.

A model file is an ``.npz`` read through the hardened reader
(:mod:`knn_genre.store.npz`), so nothing in it is ever executed: the
training rows, their genres and track paths as arrays, and a JSON ``meta``
with the registry name of the model, its feature family, the parameters it
was fitted with (its search's choices included), the seed, the feature
parameters and, when ``train`` measured it, how the model was evaluated.
Loading refits the registry's estimator with exactly those parameters on
exactly those rows (see :mod:`knn_genre.classifiers.model`): no pickled
scikit-learn object, no dependence on its private attributes.

==========  ==================  =============================================
key         shape / dtype       meaning
==========  ==================  =============================================
``meta``    () str              JSON, see :class:`ModelFile`
``X``       (n, w) float64      training rows (packed Gaussians, table columns, or both side by side)
``labels``  (n,) str            genre of each row
``paths``   (n,) str            track of each row (segments share their track's)
==========  ==================  =============================================

Format version 1 (knn_genre 0.1) stored ``means`` and ``covs`` instead of
``X`` and ``kind`` instead of ``model``; such files still load.

The family ``gaussian+table`` has rows ``[packed Gaussian, table columns]``;
the width of the Gaussian block follows from ``mfcc.numcep`` and is also one
of the ``settings`` the estimator is rebuilt with (see
:mod:`knn_genre.classifiers.registry`). ``table`` in ``meta`` holds the
table family's parameters when the model's columns are that family's (so
``predict`` can compute them from audio), null otherwise (a model trained on
some other CSV table).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from .. import __version__
from ..errors import FeatureFileError, ParameterError
from ..features.gaussian import dim_from_width, gaussian_problems, pack, packed_width, unpack
from ..features.params import MFCCParams, TableParams
from .npz import atomic_write, first_line, read_meta, read_npz

__all__ = ["MODEL_FORMAT", "MODEL_VERSION", "MODEL_FAMILIES", "ModelFile", "save_model_file", "load_model_file"]

#: Feature families of model rows.
MODEL_FAMILIES = ("gaussian", "table", "gaussian+table")

MODEL_FORMAT = "knn_genre-model"
MODEL_VERSION = 2


@dataclass(frozen=True, eq=False)
class ModelFile:
    """The contents of a model file.

    Attributes
    ----------
    model : str
        Registry name (``knn``, ``svm``, ...).
    family : str
        Feature family of ``X``: ``gaussian``, ``table`` or ``gaussian+table``.
    settings : dict
        JSON-able ``set_params`` values the estimator was fitted with.
    seed : int
    params : MFCCParams
        How Gaussian features must be computed for this model.
    X : ndarray of shape (n, w)
    labels, paths : ndarray of shape (n,), str
    segment_seconds : float or None
        Length of the training segments, None for whole tracks.
    columns : tuple of str
        Column names of the table part of ``X`` (empty for ``gaussian``).
    table_params : TableParams or None
        How the table columns are computed from audio, when they are the
        table family's (``table_params.columns()``, in any order); None for
        columns of some other table, or no table part.
    evaluation : dict or None
        How the model was evaluated, if recorded (protocol, accuracy).
    package_version : str
    """

    model: str
    family: str
    settings: dict
    seed: int
    params: MFCCParams
    X: np.ndarray
    labels: np.ndarray
    paths: np.ndarray
    segment_seconds: float | None = None
    columns: tuple = ()
    evaluation: dict | None = None
    package_version: str = __version__
    table_params: TableParams | None = None

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "X", np.asarray(self.X, dtype=np.float64))
        set_(self, "labels", np.asarray(self.labels, dtype=str).reshape(-1))
        set_(self, "paths", np.asarray(self.paths, dtype=str).reshape(-1))
        set_(self, "columns", tuple(str(c) for c in self.columns))
        _validate(self)

    @property
    def genres(self) -> tuple:
        return tuple(sorted(set(self.labels.tolist())))

    @property
    def n_tracks(self) -> int:
        return len(set(self.paths.tolist()))

    def meta(self) -> dict:
        return {
            "format": MODEL_FORMAT,
            "format_version": MODEL_VERSION,
            "package_version": self.package_version,
            "model": self.model,
            "family": self.family,
            "settings": self.settings,
            "seed": self.seed,
            "mfcc": self.params.to_dict(),
            "segment_seconds": self.segment_seconds,
            "columns": list(self.columns),
            "evaluation": self.evaluation,
            "table": None if self.table_params is None else self.table_params.to_dict(),
        }


def _validate(mf: ModelFile) -> None:
    """Shapes and values of a model's data; a ParameterError says what is wrong."""
    if mf.X.ndim != 2 or len(mf.X) == 0:
        raise ParameterError(f"training rows must be a non-empty 2-d array, got shape {mf.X.shape}")
    n = len(mf.X)
    for name in ("labels", "paths"):
        if len(getattr(mf, name)) != n:
            raise ParameterError(f"{name} has {len(getattr(mf, name))} entries for {n} training rows")
    if not np.all(np.isfinite(mf.X)):
        raise ParameterError("training rows hold NaN or infinity")
    if not isinstance(mf.settings, dict) or not isinstance(mf.seed, int) or isinstance(mf.seed, bool):
        raise ParameterError(f"settings must be a dict and seed an integer, got {mf.settings!r} and {mf.seed!r}")
    if mf.family not in MODEL_FAMILIES:
        raise ParameterError(f"unknown feature family {mf.family!r}; expected one of {', '.join(MODEL_FAMILIES)}")
    width = mf.X.shape[1]
    gaussian_width = 0
    if mf.family == "gaussian":
        gaussian_width = width
        if dim_from_width(width) != mf.params.numcep:
            raise ParameterError(f"training Gaussians have dimension {dim_from_width(width)} but the MFCC parameters say numcep={mf.params.numcep}")
    elif mf.family == "gaussian+table":
        gaussian_width = packed_width(mf.params.numcep)
        if width != gaussian_width + len(mf.columns):
            raise ParameterError(
                f"training rows have {width} columns; numcep={mf.params.numcep} Gaussians ({gaussian_width}) "
                f"and {len(mf.columns)} table columns make {gaussian_width + len(mf.columns)}"
            )
    elif len(mf.columns) != width:
        raise ParameterError(f"{len(mf.columns)} column names for {width} feature columns")
    if gaussian_width:
        problems = [p for p in gaussian_problems(*unpack(mf.X[:, :gaussian_width])) if p]
        if problems:
            raise ParameterError(f"{len(problems)} training Gaussian(s) are unusable: {problems[0]}")
    if mf.table_params is not None and sorted(mf.columns) != sorted(mf.table_params.columns()):
        raise ParameterError("the table columns are not those of the table parameters")


def save_model_file(mf: ModelFile, path: str | os.PathLike) -> None:
    """Write ``mf`` to ``path`` (``.npz``) atomically."""
    arrays = {"meta": np.array(json.dumps(mf.meta(), ensure_ascii=False)), "X": mf.X, "labels": mf.labels, "paths": mf.paths}
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load_model_file(path: str | os.PathLike) -> ModelFile:
    """Read and check a model file (format version 1 or 2).

    Raises
    ------
    FeatureFileError
        If the file is missing, not a model file, malformed, or from a newer
        format version; the message names the file and the problem.
    """
    source = os.fspath(path)
    arrays = read_npz(source, ("meta", "labels", "paths"), ("X", "means", "covs"), what="model file")
    meta = _parse_meta(arrays["meta"], source)
    try:
        if meta["format_version"] == 1:
            if "means" not in arrays or "covs" not in arrays:
                raise ParameterError("a version 1 model file needs the arrays means and covs")
            X, model, family = pack(arrays["means"], arrays["covs"]), meta.get("kind"), "gaussian"
        else:
            if "X" not in arrays:
                raise ParameterError("the array X (training rows) is missing")
            X, model, family = arrays["X"], meta.get("model"), meta.get("family")
        if not isinstance(model, str):
            raise ParameterError(f"invalid model name {model!r}")
        if X.dtype.kind not in "fiu":
            raise ParameterError(f"training rows must be numeric, got {X.dtype}")
        for key in ("labels", "paths"):
            if arrays[key].dtype.kind != "U":
                raise ParameterError(f"{key} must be strings, got {arrays[key].dtype}")
        return ModelFile(
            model=model,
            family=family,
            settings=meta.get("settings"),
            seed=meta.get("seed", 0),
            params=MFCCParams.from_dict(meta.get("mfcc", {})),
            X=X,
            labels=arrays["labels"],
            paths=arrays["paths"],
            segment_seconds=meta.get("segment_seconds"),
            columns=tuple(meta.get("columns") or ()),
            evaluation=meta.get("evaluation"),
            package_version=str(meta.get("package_version", "?")),
            table_params=None if meta.get("table") is None else TableParams.from_dict(meta["table"]),
        )
    except (ParameterError, TypeError, ValueError) as exc:
        raise FeatureFileError(source, f"invalid model: {first_line(exc)}") from None


def _parse_meta(raw: np.ndarray, source: str) -> dict:
    meta = read_meta(raw, source, format_name=MODEL_FORMAT, max_version=MODEL_VERSION, what="model file")
    if meta.get("table") is not None and not isinstance(meta["table"], dict):
        raise FeatureFileError(source, "metadata 'table' must be an object or null")
    for key in ("mfcc", "settings"):
        if not isinstance(meta.get(key, {}), dict):
            raise FeatureFileError(source, f"metadata {key!r} must be an object")
    return meta
