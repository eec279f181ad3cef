"""Music similarity: the tracks of a model's library nearest to a song.

A model whose registry entry keeps reference tracks (the KNN models, see
:attr:`~knn_genre.classifiers.registry.ModelSpec.keeps_references`) holds
its training tracks; their distances to a song rank them, as in
Musly-style music similarity with one Gaussian per piece.

A song is cut into the windows ``predict`` uses
(:func:`~knn_genre.pipeline.apply.analyse_for_model`), and a library track
may have several rows (the segments of a model trained on segments). The
distance of a song ``s`` to a library track ``t`` is::

    D(s, t) = mean over the windows w of s of  min over the rows r of t of  d(w, r)

where ``d`` is the model's own distance: the symmetric KL divergence in
nats, or for ``knn-mp`` the mutual-proximity distance in [0, 1] that its
votes use. A song of one window against a library of whole tracks is the
plain divergence between the two Gaussians. Each window counts as much as
any other and a track is as near as its nearest segment: a minimum and a
mean, so the result does not depend on the order of the windows or of the
rows (beyond rounding). Tracks at equal distance are listed by path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..classifiers.model import GenreModel
from ..classifiers.registry import REGISTRY
from ..errors import ParameterError, check_integer
from .apply import analyse_for_model

__all__ = ["SimilarTrack", "check_references", "distance_measure", "track_distances", "similar_tracks", "similar_file"]

#: Entries of the divergence matrix computed at once (query windows x library rows).
_BLOCK_ENTRIES = 1 << 20


@dataclass(frozen=True)
class SimilarTrack:
    """One track of the model's library and its distance to the song.

    Attributes
    ----------
    path : str
        The track as the model's training data names it.
    genre : str
    divergence : float
        ``D(song, track)`` (see the module docstring), >= 0.
    """

    path: str
    genre: str
    divergence: float

    def to_dict(self) -> dict:
        return {"path": self.path, "genre": self.genre, "divergence": self.divergence}


def check_references(model: GenreModel):
    """The fitted neighbour search of ``model``, or a ParameterError if it keeps no reference tracks."""
    base = getattr(model.estimator, "base_estimator_", None)
    if not model.keeps_references or model.family != "gaussian" or not hasattr(base, "kneighbors"):
        names = ", ".join(name for name, spec in REGISTRY.items() if spec.keeps_references and "gaussian" in spec.variants)
        if model.keeps_references:  # a KNN on the table: its tracks are kept, but not as Gaussians
            problem = f"model {model.name!r} keeps its tracks as {model.family} features, not Gaussians"
        else:
            problem = f"model {model.name!r} ({model.family} features) keeps no reference tracks to compare songs with"
        raise ParameterError(f"{problem}; similarity needs a model of track Gaussians that keeps them: {names}")
    return base


def distance_measure(model: GenreModel) -> str:
    """What ``SimilarTrack.divergence`` measures for ``model``, in words."""
    if getattr(check_references(model), "hubness", None) == "mutual_proximity":
        return "mutual-proximity distance (0 to 1)"
    return "symmetric KL divergence (nats)"


def track_distances(model: GenreModel, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance of a song, given as its windows, to every track of the model's library.

    Parameters
    ----------
    model : GenreModel
        A model that keeps reference tracks.
    X : ndarray of shape (n_windows, w)
        The song's windows as packed Gaussians.

    Returns
    -------
    tracks : ndarray of shape (n_tracks,), str
        The library's tracks, sorted.
    genres : ndarray of shape (n_tracks,), str
    distances : ndarray of shape (n_tracks,)
        ``D(song, track)``, see the module docstring.
    """
    knn = check_references(model)
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    paths, labels = model.data.paths, model.data.labels
    tracks, track_of_row = np.unique(paths, return_inverse=True)
    order = np.argsort(track_of_row, kind="stable")  # rows grouped by track
    starts = np.flatnonzero(np.r_[True, np.diff(track_of_row[order]) != 0])
    genres = labels[order][starts]
    n_rows = len(paths)
    step = max(1, _BLOCK_ENTRIES // n_rows)
    per_window = []  # (n_windows, n_tracks): each window's distance to each track's nearest row
    for first in range(0, len(X), step):
        block = X[first:first + step]
        dist, ind = knn.kneighbors(block, n_neighbors=n_rows)
        full = np.empty_like(dist)
        full[np.arange(len(block))[:, None], ind] = dist
        per_window.append(np.minimum.reduceat(full[:, order], starts, axis=1))
    return tracks, genres, np.concatenate(per_window).mean(axis=0)


def similar_tracks(model: GenreModel, X: np.ndarray, top: int = 10) -> list[SimilarTrack]:
    """The ``top`` library tracks nearest to a song given as its windows, nearest first.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.pipeline.similar import similar_tracks
    >>> from knn_genre.classifiers.model import train_model
    >>> from knn_genre.features.gaussian import pack
    >>> from knn_genre.features.params import MFCCParams
    >>> from knn_genre.store.models import ModelFile
    >>> means = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    >>> X = pack(means, np.tile(np.eye(2), (3, 1, 1)))
    >>> data = ModelFile("knn", "gaussian", {"n_neighbors": 1}, 0, MFCCParams(numcep=2),
    ...                  X, ["a", "a", "b"], ["a/1.wav", "a/2.wav", "b/1.wav"])
    >>> model = train_model(data, search=False)
    >>> [(t.path, t.divergence) for t in similar_tracks(model, X[:1], top=2)]
    [('a/1.wav', 0.0), ('a/2.wav', 1.0)]
    """
    top = check_integer("top", top)
    tracks, genres, distances = track_distances(model, X)
    ranked = np.lexsort((tracks, distances))[:top]  # by distance, then by path
    return [SimilarTrack(str(tracks[i]), str(genres[i]), float(distances[i])) for i in ranked]


def similar_file(
    model: GenreModel,
    path: str | os.PathLike,
    top: int = 10,
    *,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
) -> list[SimilarTrack]:
    """The ``top`` library tracks nearest to an audio file, nearest first.

    The file is analysed as :func:`~knn_genre.pipeline.apply.predict_file`
    analyses it (same windows, same defaults).

    Raises
    ------
    ParameterError
        If the model keeps no reference tracks.
    AudioError, FeatureError
        With the path and the reason.
    """
    check_references(model)
    _, X = analyse_for_model(model, path, window_seconds=window_seconds, hop_seconds=hop_seconds)
    return similar_tracks(model, X, top)
