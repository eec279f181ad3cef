"""Trained genre models: train, save, load, and the decision they apply.

A :class:`GenreModel` is a fitted :class:`~knn_genre.classifiers.registry.RegisteredModel`
with the data that rebuilds it (:class:`~knn_genre.store.models.ModelFile`):
the training rows, the registry name, the parameters its search chose, the
seed and the feature parameters. :func:`load_model` refits the registry's
estimator with those parameters on those rows; every fit involved
(SVC, the sigmoid calibration on seeded folds, the KNN's precomputation) is
deterministic, so the loaded model predicts exactly as the trained one.

The genre of a file is :meth:`GenreModel.decide` of its rows (windows or
segments): the same :func:`~knn_genre.classifiers.registry.decide_groups`
that ``evaluate`` applies to the rows of each test track.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from ..errors import FeatureFileError, ParameterError, check_integer
from ..features.params import MFCCParams, TableParams
from ..store.featureset import FeatureSet
from ..store.models import ModelFile, load_model_file, save_model_file
from .registry import RegisteredModel, decide_groups, get_spec, make_model

__all__ = ["GenreModel", "train_model", "train_on_featureset", "train_on_table", "save_model", "load_model"]


@dataclass(frozen=True, eq=False)
class GenreModel:
    """A fitted classifier with what is needed to apply it to new audio.

    Attributes
    ----------
    data : ModelFile
        The training rows and the model's description (what is saved).
    estimator : RegisteredModel
        Fitted on ``data``.
    """

    data: ModelFile
    estimator: RegisteredModel

    @property
    def name(self) -> str:
        return self.data.model

    @property
    def family(self) -> str:
        return self.data.family

    @property
    def params(self):
        """The MFCC parameters features must be computed with."""
        return self.data.params

    @property
    def settings(self) -> dict:
        return self.data.settings

    @property
    def segment_seconds(self) -> float | None:
        return self.data.segment_seconds

    @property
    def table_params(self) -> TableParams | None:
        """How the table part of the rows is computed from audio (None: it cannot be)."""
        return self.data.table_params

    @property
    def columns(self) -> tuple:
        """Names of the table columns of the rows (empty for Gaussians alone)."""
        return self.data.columns

    def check_analysable(self) -> None:
        """Raise a ParameterError if this model's rows cannot be computed from audio.

        A model trained on a CSV table whose columns are not the table
        family's (another table than GTZAN's) can be evaluated but not
        applied to songs.
        """
        if "table" in self.family and self.table_params is None:
            shown = ", ".join(self.columns[:4]) + (", ..." if len(self.columns) > 4 else "")
            raise ParameterError(
                f"this {self.name} model was trained on table columns ({shown}) that are not the table "
                f"family's ({len(TableParams().columns())} columns of GTZAN's features_30_sec.csv): "
                "they cannot be computed from audio"
            )

    @property
    def genres(self) -> tuple:
        """Genre names in the column order of :meth:`predict_proba`."""
        return tuple(str(g) for g in self.estimator.classes_)

    @property
    def keeps_references(self) -> bool:
        return get_spec(self.name).keeps_references

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Genre probabilities of rows, shape (n, n_genres), columns as :attr:`genres`."""
        return self.estimator.predict_proba(np.atleast_2d(X))

    def decide(self, X: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
        """The genre of one file from its rows (windows or segments).

        Returns
        -------
        genre : str
            By :func:`~knn_genre.classifiers.registry.decide_groups`.
        probabilities : ndarray of shape (n_genres,)
            Mean over the rows.
        row_probabilities : ndarray of shape (n_rows, n_genres)
        """
        X = np.atleast_2d(X)
        proba = self.predict_proba(X)
        genre = decide_groups(proba, self.estimator.predict(X), np.zeros(len(X), dtype=int), 1, self.estimator.classes_)[0]
        return str(genre), proba.mean(axis=0), proba


def train_model(data: ModelFile, *, search: bool = True, n_jobs: int | None = None) -> GenreModel:
    """Fit the registry model ``data.model`` on ``data``'s rows.

    With ``search`` the entry's grid search runs first (seeded inner folds
    that keep each track's rows together) and the chosen parameters are
    recorded in the returned model's ``data.settings``.
    """
    estimator = make_model(data.model, family=data.family, params=data.settings, search=search, seed=data.seed, n_jobs=n_jobs)
    groups = data.paths if len(set(data.paths.tolist())) < len(data.paths) else None
    estimator.fit(data.X, data.labels, groups=groups)
    settings = {key: _jsonable(v) for key, v in estimator.best_params_.items()}
    return GenreModel(replace(data, settings=settings), estimator)


def _settings(name: str, family: str, k: int, n_rows: int, gaussian_columns: int | None = None) -> dict:
    """The fixed settings of a model to train: its ``k`` and, on ``gaussian+table``, the Gaussian block's width."""
    variant = get_spec(name).variant(family)
    settings = {}
    if variant.k_param is not None:
        check_integer("k", k)
        if k > n_rows:
            raise ParameterError(f"k={k} must be at most the number of training rows ({n_rows})")
        settings[variant.k_param] = k
    if variant.layout_param is not None:
        settings[variant.layout_param] = gaussian_columns
    return settings


def default_family(name: str, available) -> str:
    """The first of model ``name``'s families among ``available``.

    Raises
    ------
    ParameterError
        If the model accepts none of them.
    """
    spec = get_spec(name)
    for family in spec.families:
        if family in available:
            return family
    raise ParameterError(f"model {name!r} needs {' or '.join(spec.families)} features; these hold {', '.join(available)}")


def train_on_featureset(fs: FeatureSet, name: str = "knn", *, k: int = 5, seed: int = 0, n_jobs: int | None = None,
                        family: str | None = None) -> GenreModel:
    """Train the registry model ``name`` on every row of a feature file.

    Parameters
    ----------
    fs : FeatureSet
        The tracks (or segments) and their genres, as ``build_features`` wrote them.
    name : str, default="knn"
        A registry model (``knn``, ``svm``, ``klsvm``, ``fusion``, ``vote``, ...).
    k : int, default=5
        Neighbours of the KNN models (and of the vote's KNN candidates).
    seed : int, default=0
        Seed of the inner searches, calibrations and seeded models: the same
        seed gives the same model.
    n_jobs : int, optional
        Processes of the inner searches (None: one).
    family : str, optional
        ``gaussian``, ``table`` or ``gaussian+table``; default: the first of
        the model's families that ``fs`` holds.

    Returns
    -------
    GenreModel
        Ready for :func:`knn_genre.pipeline.apply.predict_file` and :func:`save_model`.

    Raises
    ------
    ParameterError
        For an unknown model, a family the file lacks or the model refuses,
        a ``k`` larger than the number of tracks, or too few tracks of a
        genre for the model's inner folds.
    """
    family = family or default_family(name, fs.feature_families())
    X = fs.features(family)
    has_table = "table" in family
    data = ModelFile(
        model=name, family=family, settings=_settings(name, family, k, len(fs), fs.layout().get("gaussian")), seed=seed,
        params=fs.params, X=X, labels=fs.labels, paths=fs.paths, segment_seconds=fs.segment_seconds,
        columns=tuple(fs.table_params.columns()) if has_table else (), table_params=fs.table_params if has_table else None,
    )
    return train_model(data, n_jobs=n_jobs)


def train_on_table(table, name: str = "svm", *, k: int = 5, seed: int = 0, n_jobs: int | None = None) -> GenreModel:
    """Train the registry model ``name`` on every row of a feature table (a CSV, e.g. GTZAN's published one).

    When the table's columns are the table family's (GTZAN's
    ``features_30_sec.csv`` and its 3-second sibling are), the model
    records the family's parameters, so that ``predict`` computes the same
    columns from songs. Rows that are segments of tracks (``track.3.wav``)
    keep their track together in the inner folds; the segment length,
    from the ``length`` column, becomes the model's window.

    Parameters
    ----------
    table : knn_genre.store.tables.FeatureTable
        From :func:`knn_genre.store.tables.read_feature_table`.
    name : str, default="svm"
        A registry model that takes the table family.
    k, seed, n_jobs
        As :func:`train_on_featureset`.

    Returns
    -------
    GenreModel

    Raises
    ------
    ParameterError
        As :func:`train_on_featureset`.
    """
    settings = _settings(name, "table", k, len(table.y))
    segmented = table.n_tracks < len(table.y)
    params = TableParams()
    segment_seconds = None
    if segmented and table.lengths is not None:
        segment_seconds = round(float(np.median(table.lengths)) / params.sample_rate, 3)
    data = ModelFile(
        model=name, family="table", settings=settings, seed=seed, params=MFCCParams(),
        X=table.X, labels=table.y, paths=table.groups, segment_seconds=segment_seconds,
        # Any order of the family's columns will do: predict takes them by name.
        columns=tuple(table.columns), table_params=params if sorted(table.columns) == sorted(params.columns()) else None,
    )
    return train_model(data, n_jobs=n_jobs)


def _jsonable(value):
    return value.item() if isinstance(value, np.generic) else value


def save_model(model: GenreModel, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` (``.npz``) atomically."""
    save_model_file(model.data, path)


def load_model(path: str | os.PathLike) -> GenreModel:
    """Read a model file and rebuild its estimator, without unpickling anything.

    Raises
    ------
    FeatureFileError
        If the file is missing, malformed, from a newer format version, or
        names a model or parameters this version does not know.
    """
    data = load_model_file(path)
    try:
        return train_model(data, search=False)
    except (ParameterError, ValueError, TypeError) as exc:
        raise FeatureFileError(os.fspath(path), f"invalid model: {exc}") from None
