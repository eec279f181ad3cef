"""The evaluation a model file records: how well the saved model's recipe did on seeded folds.

``train --evaluate`` scores the registry model it is about to save with the
code ``evaluate`` runs (:func:`~knn_genre.evaluation.splits.cross_validation_splits`,
:func:`~knn_genre.classifiers.registry.make_model`,
:func:`~knn_genre.evaluation.scoring.evaluate_models`) and keeps the protocol
and the accuracy in the model file (``ModelFile.evaluation``), so whoever
applies the model (``serve``'s model panel, for one) can say how it was
evaluated.
"""

from __future__ import annotations

import numpy as np

from ..classifiers.registry import get_spec, make_model
from ..errors import ParameterError
from .copies import find_duplicates, straddling_pairs
from .scoring import evaluate_models
from .splits import cross_validation_splits, smallest_training_size

__all__ = ["cross_validated_record"]


def cross_validated_record(X, y, groups, name: str, *, family: str = "gaussian", k: int = 5, seed: int = 0,
                           folds: int = 10, n_jobs: int | None = None, gaussian_columns: int | None = None) -> dict:
    """Cross-validate the registry model ``name`` on ``(X, y)``; the record a model file keeps.

    Parameters
    ----------
    X : ndarray of shape (n, w)
    y : ndarray of shape (n,)
    groups : ndarray of shape (n,)
        Track of each row; the rows of a track stay in one fold.
    name : str
        Registry entry, with ``k`` neighbours for the KNN models.
    folds, seed : int
        As ``evaluate --folds --seed``.
    family : str, default="gaussian"
        The feature family of ``X``.
    gaussian_columns : int, optional
        For ``gaussian+table`` rows: the width of their Gaussian block.

    Returns
    -------
    dict
        JSON-able: ``protocol`` (one line), ``kind``, ``folds``, ``seed``,
        ``n_tracks``, ``accuracy_mean``, ``accuracy_std`` and
        ``accuracy_per_fold`` (accuracy of the tracks, each decided from all
        its rows as ``predict`` decides a file), ``macro_f1`` (of the
        tracks, pooled over the folds), ``copies_across_folds`` (pairs of
        copies, one trained on while the other was tested, which inflate
        the accuracy; see :mod:`~knn_genre.evaluation.copies`) and, for a
        model of segments, ``segment_accuracy_mean``.

    Raises
    ------
    ParameterError
        If the folds cannot be made, or ``k`` exceeds the smallest training fold.
    """
    splits, protocol = cross_validation_splits(y, folds=folds, seed=seed, groups=groups)
    if get_spec(name).variant(family).k_param is not None and k > smallest_training_size(splits):
        raise ParameterError(f"k={k} is larger than the smallest training fold ({smallest_training_size(splits)} rows)")
    model = make_model(name, family=family, k=k, seed=seed, n_jobs=n_jobs, gaussian_columns=gaussian_columns)
    (result,) = evaluate_models({name: model}, X, y, splits, groups=groups)
    record = {
        "protocol": protocol.describe(),
        "kind": protocol.kind,
        "folds": protocol.folds,
        "seed": seed,
        "n_tracks": protocol.n_tracks,
        "accuracy_mean": result.accuracy_mean,
        "accuracy_std": result.accuracy_std,
        "accuracy_per_fold": [float(a) for a in result.accuracy_per_fold],
        "macro_f1": result.macro_f1,
    }
    copies = find_duplicates(_copy_families(X, family, gaussian_columns), groups)
    record["copies_across_folds"] = [[a, b] for a, b, _ in straddling_pairs(copies, splits, groups)]
    if "segment_accuracy_mean" in result.extra:
        record["segment_accuracy_mean"] = result.extra["segment_accuracy_mean"]
    return record


def _copy_families(X, family: str, gaussian_columns: int | None) -> dict:
    """The rows copies are looked for in, as evaluate looks: the Gaussians if there are any, else the table."""
    if family == "gaussian+table":
        return {"gaussian": np.asarray(X)[:, :gaussian_columns]}
    return {family: np.asarray(X)}
