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
from ..store.featureset import FeatureSet
from ..store.models import ModelFile, load_model_file, save_model_file
from .registry import RegisteredModel, decide_groups, get_spec, make_model

__all__ = ["GenreModel", "train_model", "train_on_featureset", "save_model", "load_model"]


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


def train_on_featureset(fs: FeatureSet, name: str = "knn", *, k: int = 5, seed: int = 0, n_jobs: int | None = None) -> GenreModel:
    """Train the registry model ``name`` on every row of a feature file.

    Raises
    ------
    ParameterError
        For an unknown model, a ``k`` larger than the number of tracks, or
        too few tracks of a genre for the model's inner folds.
    """
    spec = get_spec(name)
    variant = spec.variant("gaussian")
    settings = {}
    if variant.k_param is not None:
        check_integer("k", k)
        if k > len(fs):
            raise ParameterError(f"k={k} must be at most the number of training rows ({len(fs)})")
        settings[variant.k_param] = k
    data = ModelFile(
        model=name, family="gaussian", settings=settings, seed=seed, params=fs.params,
        X=fs.packed(), labels=fs.labels, paths=fs.paths, segment_seconds=fs.segment_seconds,
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
