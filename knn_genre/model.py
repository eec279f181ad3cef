"""Trained genre models: training on a feature file, saving and loading.

A model file is an ``.npz`` that loads without unpickling. It holds the
training Gaussians, their genres, the model kind and its hyper-parameters
(JSON), and the MFCC parameters the features were computed with:

* ``knn``: the reference Gaussians *are* the model;
* ``svm`` and ``klsvm``: the hyper-parameters chosen by the grid search are
  stored, and loading refits the estimator with exactly those parameters on
  the stored training data (with a seeded sigmoid calibration, for
  probabilities). SVC's fit is deterministic for fixed data,
  parameters and ``random_state``, so the loaded model predicts exactly as
  the trained one, with no pickled scikit-learn objects and no dependence on
  scikit-learn's private attributes across versions.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from . import __version__
from .errors import FeatureFileError, ParameterError
from .features import MFCCParams, pack
from .store import FeatureSet, atomic_write, read_npz

__all__ = ["KINDS", "GenreModel", "make_estimator", "train_model", "save_model", "load_model"]

MODEL_FORMAT = "knn_genre-model"
MODEL_VERSION = 1
KINDS = ("knn", "svm", "klsvm")


def _search(kind: str, seed: int):
    """The grid search that picks an SVM's hyper-parameters."""
    from . import svm

    if kind == "svm":
        return svm.make_svm_search(random_state=seed)
    return svm.make_klsvm_search(random_state=seed)


def make_estimator(kind: str, settings: dict, seed: int = 0, calibration_folds: int = 5):
    """An unfitted estimator of ``kind`` with the stored ``settings``.

    Parameters
    ----------
    kind : {"knn", "svm", "klsvm"}
    settings : dict
        For ``knn``, :class:`KLKNNClassifier` parameters; for the SVMs, the
        ``best_params_`` of their grid search.
    seed : int
    calibration_folds : int, default=5
        Folds of the SVMs' probability calibration, at most the number of
        tracks of the smallest genre.
    """
    if kind == "knn":
        from .knn import KLKNNClassifier

        return KLKNNClassifier(**settings)
    if kind in ("svm", "klsvm"):
        from sklearn.calibration import CalibratedClassifierCV

        from .evaluation import InnerStratifiedKFold

        # An SVC gives decision values, not probabilities: a sigmoid fitted
        # to seeded cross-validated decision values turns them into
        # probabilities (Platt scaling), while the SVM itself is fitted once
        # on all the tracks (ensemble=False).
        svm = _search(kind, seed).estimator.set_params(**settings)
        return CalibratedClassifierCV(svm, method="sigmoid", cv=InnerStratifiedKFold(calibration_folds, random_state=seed), ensemble=False)
    raise ParameterError(f"model={kind!r} must be one of {', '.join(KINDS)}")


@dataclass(frozen=True, eq=False)
class GenreModel:
    """A fitted classifier with what is needed to apply it to new audio.

    Attributes
    ----------
    kind : str
    settings : dict
        JSON-able hyper-parameters.
    seed : int
    params : MFCCParams
        How features must be computed for this model.
    training : FeatureSet
        The training Gaussians (kept so the model can be saved).
    estimator : fitted scikit-learn classifier on packed rows
    """

    kind: str
    settings: dict
    seed: int
    params: MFCCParams
    training: FeatureSet
    estimator: object

    @property
    def genres(self) -> tuple:
        """Genre names in the column order of :meth:`predict_proba`."""
        return tuple(str(g) for g in self.estimator.classes_)

    def predict_proba(self, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
        """Genre probabilities of Gaussians, shape (n, n_genres), columns as :attr:`genres`."""
        return self.estimator.predict_proba(pack(np.atleast_2d(means), np.reshape(covs, (-1,) + np.shape(covs)[-2:])))


def _fit(kind, settings, seed, fs: FeatureSet) -> GenreModel:
    X, y = fs.to_xy()
    smallest = int(np.unique(y, return_counts=True)[1].min())
    if kind != "knn" and smallest < 2:
        raise ParameterError(f"an {kind} model needs at least 2 tracks of every genre (for its probabilities); one genre has {smallest}")
    estimator = make_estimator(kind, settings, seed, calibration_folds=min(5, smallest)).fit(X, y)
    return GenreModel(kind, settings, seed, fs.params, fs, estimator)


def train_model(fs: FeatureSet, kind: str = "knn", *, k: int = 5, seed: int = 0) -> GenreModel:
    """Train a model on every track of a feature set.

    For the SVMs the grid search (inner stratified CV, seeded) picks the
    hyper-parameters first.
    """
    if kind not in KINDS:
        raise ParameterError(f"model={kind!r} must be one of {', '.join(KINDS)}")
    if kind == "knn":
        if not (isinstance(k, int) and 1 <= k <= len(fs)):
            raise ParameterError(f"k={k!r} must be an integer between 1 and the number of tracks ({len(fs)})")
        return _fit(kind, {"n_neighbors": k}, seed, fs)
    X, y = fs.to_xy()
    search = _search(kind, seed).fit(X, y)
    settings = {key: _jsonable(v) for key, v in search.best_params_.items()}
    return _fit(kind, settings, seed, fs)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_model(model: GenreModel, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` (``.npz``) atomically."""
    fs = model.training
    meta = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_VERSION,
        "package_version": __version__,
        "kind": model.kind,
        "settings": model.settings,
        "seed": model.seed,
        "mfcc": model.params.to_dict(),
    }
    arrays = {
        "meta": np.array(json.dumps(meta)),
        "means": fs.means,
        "covs": fs.covs,
        "labels": fs.labels,
        "paths": fs.paths,
    }
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load_model(path: str | os.PathLike) -> GenreModel:
    """Read a model file written by :func:`save_model` and rebuild the estimator.

    Nothing in the file is executed: arrays load with ``allow_pickle=False``,
    settings are JSON and are passed only to the known estimator of ``kind``.

    Raises
    ------
    FeatureFileError
        If the file is missing, malformed, or from a newer format version.
    """
    source = os.fspath(path)
    arrays = read_npz(
        source, ("meta", "means", "covs", "labels", "paths"),
        what="model file", missing_hint="train one with python -m knn_genre.train",
    )
    try:
        meta = json.loads(str(arrays["meta"]))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError; deep nesting recurses
        raise FeatureFileError(source, f"metadata is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise FeatureFileError(source, f"not a knn_genre model file (format is not {MODEL_FORMAT!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > MODEL_VERSION:
        raise FeatureFileError(
            source, f"model format version {version!r}; this knn_genre {__version__} reads up to {MODEL_VERSION}: upgrade knn_genre"
        )
    kind, settings, seed = meta.get("kind"), meta.get("settings"), meta.get("seed", 0)
    if kind not in KINDS or not isinstance(settings, dict) or not isinstance(seed, int):
        raise FeatureFileError(source, f"invalid model description: kind={kind!r}, settings={settings!r}")
    try:
        params = MFCCParams.from_dict(meta.get("mfcc", {}))
        fs = FeatureSet(arrays["means"], arrays["covs"], arrays["labels"], arrays["paths"], params=params)
        return _fit(kind, settings, seed, fs)
    except FeatureFileError as exc:
        raise FeatureFileError(source, exc.reason) from None
    except (ParameterError, ValueError, TypeError) as exc:
        raise FeatureFileError(source, f"invalid model: {exc}") from None
