"""Exceptions raised by knn_genre, and the parameter checks that raise them.

Every error the package raises on purpose is a :class:`KnnGenreError`, so a
command can catch exactly these and print them without a traceback. Errors
caused by a bad value also subclass :class:`ValueError`, so callers that
catch ``ValueError`` (scikit-learn's estimator checks, for one) see them as
such. Library messages say what is wrong and what would be right; the
command-line hints ("build one with ...") are added by the commands.

The ``check_*`` functions are the one place where each kind of parameter
(an integer with a lower bound, a finite number, a choice) is validated;
estimators, dataclasses and the argparse types all call them.
:func:`printable` makes a name from a file or a folder safe to put in a
one-line message.
"""

from __future__ import annotations

import math
import os
from numbers import Integral, Real

__all__ = [
    "KnnGenreError",
    "ParameterError",
    "AudioError",
    "FeatureError",
    "FeatureFileError",
    "DatasetError",
    "BuildError",
    "ClusterError",
    "AnalysisStopped",
    "check_integer",
    "check_number",
    "check_choice",
    "printable",
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
    """A file cannot be read as audio (unknown format, truncated, non-finite, ...)."""


class FeatureError(_FileError):
    """Audio was read but no features can be computed from it (too short, silent, ...)."""


class FeatureFileError(_FileError):
    """A feature, model or table file is missing, malformed or from an unknown version."""


class DatasetError(_FileError):
    """A data folder or split file does not have the expected layout."""


class BuildError(KnnGenreError):
    """A build could not run to its end for a reason other than its input (a worker process died, ...)."""


class ClusterError(BuildError):
    """A Dask cluster cannot be used: not installed, unreachable, no workers, other versions, lost."""


class AnalysisStopped(KnnGenreError):
    """An analysis was stopped between two windows because its result is no longer wanted."""


def check_integer(name: str, value, minimum: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer >= ``minimum``, else a ParameterError.

    >>> from knn_genre.errors import check_integer
    >>> check_integer("n_neighbors", 5)
    5
    >>> check_integer("folds", 1, minimum=2)
    Traceback (most recent call last):
    ...
    knn_genre.errors.ParameterError: folds=1 must be an integer >= 2
    """
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        requirement = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ParameterError(f"{name}={value!r} must be {requirement}")
    return int(value)


def check_number(name: str, value, *, minimum: float | None = None, strict: bool = False, maximum: float | None = None, unit: str = "") -> float:
    """``value`` as a ``float`` if it is a finite number in range, else a ParameterError.

    Parameters
    ----------
    name : str
        Named in the message.
    value : object
    minimum : float, optional
        Lower bound; ``strict`` makes it exclusive.
    maximum : float, optional
        Upper bound, exclusive.
    unit : str, optional
        Appended to the requirement ("seconds").

    >>> from knn_genre.errors import check_number
    >>> check_number("ridge", 0.0, minimum=0)
    0.0
    >>> check_number("window", -1.0, minimum=0, strict=True, unit="seconds")
    Traceback (most recent call last):
    ...
    knn_genre.errors.ParameterError: window=-1.0 must be a finite number > 0 (seconds)
    """
    ok = not isinstance(value, bool) and isinstance(value, Real) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if strict else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum
    if not ok:
        parts = []
        if minimum is not None:
            parts.append(f"{'>' if strict else '>='} {minimum:g}")
        if maximum is not None:
            parts.append(f"< {maximum:g}")
        requirement = "a finite number" + (" " + " and ".join(parts) if parts else "")
        raise ParameterError(f"{name}={value!r} must be {requirement}" + (f" ({unit})" if unit else ""))
    return float(value)


def check_choice(name: str, value, choices):
    """``value`` if it is one of ``choices``, else a ParameterError listing them.

    >>> from knn_genre.errors import check_choice
    >>> check_choice("weights", "uniform", ("uniform", "distance"))
    'uniform'
    """
    if value not in tuple(choices):
        raise ParameterError(f"{name}={value!r} must be one of {tuple(choices)}")
    return value


def printable(text) -> str:
    """``text`` with control characters and undecodable bytes escaped, so a message stays one line.

    Names come from file systems and feature files: a newline or a terminal
    escape in one must not split a message or reach the terminal.
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
