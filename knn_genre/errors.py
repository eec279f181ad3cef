"""Exceptions raised by knn_genre.

Every error the package raises on purpose is a :class:`KnnGenreError`, so a
command can catch exactly these and print them without a traceback. Errors
caused by a bad value also subclass :class:`ValueError`.
"""

from __future__ import annotations

import os

__all__ = [
    "KnnGenreError",
    "ParameterError",
    "AudioError",
    "FeatureError",
    "FeatureFileError",
    "DatasetError",
    "BuildError",
]


class KnnGenreError(Exception):
    """Base class of every error raised by knn_genre."""


class ParameterError(KnnGenreError, ValueError):
    """A parameter is outside its legal range."""


class _FileError(KnnGenreError, ValueError):
    """An error about one file: keeps the path and the reason apart."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class AudioError(_FileError):
    """A file cannot be read as audio (not a wav, truncated, non-finite, ...)."""


class FeatureError(_FileError):
    """Audio was read but no Gaussian can be computed from it (too short, ...)."""


class FeatureFileError(_FileError):
    """A feature or model file is missing, malformed or from an unknown version."""


class DatasetError(_FileError):
    """A data folder or split file does not have the expected layout."""


class BuildError(KnnGenreError):
    """A build could not run to its end for a reason other than its input (a worker process died, ...)."""
