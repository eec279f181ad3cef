"""Applying a trained model to audio files of any length.

A file is cut into windows (:mod:`knn_genre.windows`); each window becomes
one Gaussian and gets genre probabilities from the model; the file's
probabilities are the mean over its windows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .features import track_gaussian
from .model import GenreModel
from .windows import iter_windows

__all__ = ["Prediction", "predict_file"]


@dataclass(frozen=True)
class Prediction:
    """Genre probabilities of one file.

    Attributes
    ----------
    path : str
    genres : tuple of str
    probabilities : ndarray of shape (n_genres,)
        Mean of the window probabilities; sums to 1.
    windows : list of (start_s, end_s, ndarray of shape (n_genres,))
    """

    path: str
    genres: tuple
    probabilities: np.ndarray
    windows: list

    @property
    def genre(self) -> str:
        """The most probable genre."""
        return self.top(1)[0][0]

    def top(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` most probable genres with their probabilities, best first."""
        return _ranked(self.genres, self.probabilities)[:n]

    def to_dict(self, n: int = 3) -> dict:
        """JSON-able form: path, top ``n`` genres, and each window's top ``n``."""
        return {
            "path": self.path,
            "top": [{"genre": g, "probability": p} for g, p in self.top(n)],
            "windows": [
                {"start": s, "end": e, "top": [{"genre": g, "probability": p} for g, p in _ranked(self.genres, prob)[:n]]}
                for s, e, prob in self.windows
            ],
        }


def _ranked(genres, probabilities) -> list[tuple[str, float]]:
    # Stable sort: equal probabilities keep the genres' sorted order.
    order = np.argsort(-np.asarray(probabilities), kind="stable")
    return [(str(genres[i]), float(probabilities[i])) for i in order]


def predict_file(
    model: GenreModel,
    path: str | os.PathLike,
    *,
    window_seconds: float = 30.0,
    hop_seconds: float = 15.0,
) -> Prediction:
    """Genre probabilities of one audio file.

    Parameters
    ----------
    model : GenreModel
        From :func:`knn_genre.model.load_model` or :func:`~knn_genre.model.train_model`.
    path : str or path-like
        A ``.wav`` file of any length, rate and channel count.
    window_seconds, hop_seconds : float, default 30 and 15
        Analysis window and hop; a file shorter than a window is one window.

    Returns
    -------
    Prediction

    Raises
    ------
    AudioError, FeatureError
        With the path and the reason, as in ``build_features``.
    """
    path = os.fspath(path)
    spans, means, covs = [], [], []
    for start, end, signal in iter_windows(
        path, sample_rate=model.params.sample_rate, window_seconds=window_seconds, hop_seconds=hop_seconds
    ):
        mean, cov = track_gaussian(signal, model.params, path=path)
        spans.append((start, end))
        means.append(mean)
        covs.append(cov)
    proba = model.predict_proba(np.stack(means), np.stack(covs))
    windows = [(s, e, p) for (s, e), p in zip(spans, proba)]
    return Prediction(path, model.genres, proba.mean(axis=0), windows)
