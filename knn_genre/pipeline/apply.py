"""Applying a trained model to audio files of any length.

A file goes through the one analysis path
(:func:`knn_genre.features.analysis.analyse_file`), cut into windows: by
default the model's training segments (so a segment model sees what it was
evaluated on), or 30-s windows every 15 s for a model of whole tracks
(a file of up to 37.5 s is then one window: the whole track). Each window
gets genre probabilities from the model; the file's genre is decided from
its windows by the rule ``evaluate`` applies to a test track
(:meth:`knn_genre.classifiers.model.GenreModel.decide`).

The rows are those of the model's family, computed as ``build_features``
computes them: packed MFCC Gaussians, the table family's columns (in the
model's column order: a model trained on GTZAN's published table gets the
same columns from the song), or both side by side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..classifiers.model import GenreModel
from ..features.analysis import analyse_file
from ..features.families import GaussianFamily, TableFamily
from ..features.gaussian import pack

__all__ = ["Prediction", "predict_file", "predict_rows", "analyse_for_model", "default_windows", "model_rows"]

#: Window and hop, in seconds, for models trained on whole tracks.
WHOLE_TRACK_WINDOWS = (30.0, 15.0)


@dataclass(frozen=True)
class Prediction:
    """Genre probabilities of one file.

    Attributes
    ----------
    path : str
    genre : str
        The decided genre (the most probable one; ties as ``evaluate`` breaks them).
    genres : tuple of str
    probabilities : ndarray of shape (n_genres,)
        Mean of the window probabilities; sums to 1.
    windows : list of (start_s, end_s, ndarray of shape (n_genres,))
    dropped : tuple of (start_s, end_s, reason)
        Windows left out (silent or constant).
    """

    path: str
    genre: str
    genres: tuple
    probabilities: np.ndarray
    windows: list
    dropped: tuple = ()

    def top(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` most probable genres with their probabilities, best first."""
        return _ranked(self.genres, self.probabilities, first=self.genre)[:n]

    def to_dict(self, n: int = 3) -> dict:
        """JSON-able form: path, top ``n`` genres, and each window's top ``n``."""
        return {
            "path": self.path,
            "genre": self.genre,
            "top": [{"genre": g, "probability": p} for g, p in self.top(n)],
            "windows": [
                {"start": s, "end": e, "top": [{"genre": g, "probability": p} for g, p in _ranked(self.genres, prob)[:n]]}
                for s, e, prob in self.windows
            ],
        }


def _ranked(genres, probabilities, first=None) -> list[tuple[str, float]]:
    # Most probable first; among equal probabilities ``first`` (the decided
    # genre), then the genres' sorted order.
    order = sorted(range(len(genres)), key=lambda i: (-float(probabilities[i]), genres[i] != first, i))
    return [(str(genres[i]), float(probabilities[i])) for i in order]


def default_windows(model: GenreModel) -> tuple[float, float]:
    """``(window, hop)`` seconds that ``predict`` uses for ``model`` by default."""
    if model.segment_seconds is not None:
        return model.segment_seconds, model.segment_seconds
    return WHOLE_TRACK_WINDOWS


def _families(model: GenreModel) -> list:
    model.check_analysable()
    parts = model.family.split("+")
    return [GaussianFamily(model.params) if part == "gaussian" else TableFamily(model.table_params) for part in parts]


def model_rows(model: GenreModel, arrays: dict) -> np.ndarray:
    """The model's ``X`` from the arrays of :func:`~knn_genre.features.analysis.analyse_file`."""
    blocks = []
    if "gaussian" in model.family:
        blocks.append(pack(arrays["means"], arrays["covs"]))
    if "table" in model.family:
        order = [model.table_params.columns().index(c) for c in model.columns]
        blocks.append(arrays["table"][:, order])
    return blocks[0] if len(blocks) == 1 else np.hstack(blocks)


def predict_file(
    model: GenreModel,
    path: str | os.PathLike,
    *,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
) -> Prediction:
    """Genre probabilities of one audio file.

    Parameters
    ----------
    model : GenreModel
        From :func:`knn_genre.classifiers.model.load_model` or
        :func:`~knn_genre.classifiers.model.train_on_featureset`.
    path : str or path-like
        An audio file of any length, rate and channel count.
    window_seconds, hop_seconds : float, optional
        Analysis window and hop; default :func:`default_windows`. A window
        given without a hop keeps the default's proportion (half a window
        for a model of whole tracks). A file shorter than a window is one
        window.

    Returns
    -------
    Prediction

    Raises
    ------
    AudioError, FeatureError
        With the path and the reason, as in ``build_features``.
    ParameterError
        If the model's table columns cannot be computed from audio
        (:meth:`~knn_genre.classifiers.model.GenreModel.check_analysable`).
    """
    analysis, X = analyse_for_model(model, path, window_seconds=window_seconds, hop_seconds=hop_seconds)
    return predict_rows(model, analysis, X)


def analyse_for_model(
    model: GenreModel,
    path: str | os.PathLike,
    *,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
    should_stop=None,
):
    """The windows of one file, analysed as ``model`` needs them.

    The first half of :func:`predict_file`, shared with
    :func:`knn_genre.pipeline.similar.similar_file`, so that a file
    analysed once can be both predicted and compared with the library.
    ``should_stop`` is :func:`~knn_genre.features.analysis.analyse_file`'s.

    Returns
    -------
    analysis : knn_genre.features.analysis.Analysis
    X : ndarray of shape (n_windows, w)
        The windows' rows of the model's family (:func:`model_rows`), what the model is applied to.
    """
    window, hop = default_windows(model)
    if window_seconds is not None:
        # A window of the user's: hop as the defaults do (segments, or half windows).
        hop = window_seconds * hop / window
        window = window_seconds
    if hop_seconds is not None:
        hop = hop_seconds
    analysis = analyse_file(path, _families(model), window_seconds=window, hop_seconds=hop, should_stop=should_stop)
    return analysis, model_rows(model, analysis.arrays)


def predict_rows(model: GenreModel, analysis, X: np.ndarray) -> Prediction:
    """The :class:`Prediction` of a file from the result of :func:`analyse_for_model`."""
    genre, probabilities, rows = model.decide(X)
    windows = [(float(s), float(e), p) for (s, e), p in zip(analysis.spans, rows)]
    return Prediction(analysis.path, genre, model.genres, probabilities, windows, analysis.dropped)
