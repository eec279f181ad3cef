"""Figures of evaluation results (needs the optional matplotlib: ``pip install knn_genre[plot]``).

matplotlib is imported only when a figure is drawn, so the rest of the
package works without it; :func:`require_matplotlib` lets a command check
for it before spending time on an evaluation.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..errors import KnnGenreError
from ..store.npz import atomic_write

__all__ = ["MISSING_MATPLOTLIB", "require_matplotlib", "check_image_path", "plot_confusion_matrices", "plot_evaluation"]

MISSING_MATPLOTLIB = (
    "drawing figures needs matplotlib, which is not installed: "
    "pip install 'knn_genre[plot]' (or pip install matplotlib)"
)


def require_matplotlib() -> None:
    """Raise :class:`KnnGenreError` with install instructions if matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        raise KnnGenreError(MISSING_MATPLOTLIB) from None


def check_image_path(path) -> str:
    """The image format of ``path`` (its extension), if matplotlib can write it.

    Raises
    ------
    KnnGenreError
        If matplotlib is missing or the extension is not an image format it writes.
    """
    require_matplotlib()
    from matplotlib.backend_bases import FigureCanvasBase

    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    supported = FigureCanvasBase.get_supported_filetypes()
    if fmt not in supported:
        raise KnnGenreError(
            f"{path}: cannot draw a {('.' + fmt) if fmt else 'file without an extension'}; "
            f"use one of {', '.join('.' + f for f in sorted(supported))}"
        )
    return fmt


def _title(result) -> str:
    single = len(result.accuracy_per_fold) == 1
    spread = "" if single else f" ± {result.accuracy_std:.3f}"
    return f"{result.name}: {result.accuracy_mean:.3f}{spread}"


def _draw_confusion(ax, result) -> None:
    """Counts of pooled out-of-fold predictions, coloured by their share of the true genre (the row)."""
    counts = np.asarray(result.confusion, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    ax.imshow(share, vmin=0.0, vmax=1.0, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        if value:
            ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(result.genres)), result.genres, rotation=90, fontsize=7)
    ax.set_yticks(range(len(result.genres)), result.genres, fontsize=7)
    ax.set_xlabel("predicted", fontsize=8)
    ax.set_ylabel("true", fontsize=8)
    ax.set_title(_title(result), fontsize=9)


def _draw_precision_recall(ax, result) -> None:
    """One-vs-rest precision-recall curve of each genre from the pooled out-of-fold probabilities."""
    from sklearn.metrics import precision_recall_curve

    truth, proba = result.oof_truth, result.oof_probabilities
    for j, genre in enumerate(result.genres):
        positive = np.asarray(truth) == genre
        if not positive.any():
            continue  # no test track of this genre: no curve
        precision, recall, _ = precision_recall_curve(positive, proba[:, j])
        ax.step(recall, precision, where="post", linewidth=1, label=f"{genre} (AP {result.average_precision[j]:.2f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall", fontsize=8)
    ax.set_ylabel("precision", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"{result.name}: PR curves, macro AP {result.macro.get('average_precision', float('nan')):.2f}", fontsize=9)
    ax.legend(fontsize=6, loc="lower left")


def plot_evaluation(results, path, *, title: str = "") -> None:
    """Draw each model's confusion matrix and precision-recall curves into an image file.

    One row per model: on the left the confusion matrix of its pooled
    out-of-fold predictions (counts, coloured by the share of the true
    genre's tests so that genres of different sizes compare at a glance),
    on the right the one-vs-rest precision-recall curve of every genre from
    its pooled out-of-fold probabilities, with its average precision.

    Parameters
    ----------
    results : list of knn_genre.evaluation.scoring.ModelResult
    path : str or os.PathLike
        Output file; the format follows the extension (``.png``, ``.pdf``,
        ``.svg``, ...).
    title : str, optional
        Figure title, e.g. the protocol.

    Raises
    ------
    KnnGenreError
        If matplotlib is not installed, or cannot write that format.
    """
    fmt = check_image_path(path)
    # The object-oriented API without pyplot: no GUI backend, no global state.
    from matplotlib.figure import Figure

    n = max(len(results), 1)
    genres = results[0].genres if results else []
    side = 1.8 + 0.35 * len(genres)
    fig = Figure(figsize=(2 * side + 0.5, side * n + (0.5 if title else 0)), layout="constrained")
    axes = fig.subplots(n, 2, squeeze=False)
    for row, result in zip(axes, results):
        _draw_confusion(row[0], result)
        _draw_precision_recall(row[1], result)
    if title:
        fig.suptitle(title, fontsize=9)
    # The format follows the extension of ``path``, not of the temporary file.
    atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=120))


def plot_confusion_matrices(results, path, *, title: str = "") -> None:
    """Draw one confusion matrix per model into an image file (three per row).

    Cells show counts of pooled out-of-fold predictions; their colour is the
    share of the true genre's tracks (the row), so genres of different sizes
    compare at a glance.

    Parameters
    ----------
    results : list of knn_genre.evaluation.scoring.ModelResult
    path : str or os.PathLike
        Output file; the format follows the extension.
    title : str, optional

    Raises
    ------
    KnnGenreError
        If matplotlib is not installed, or cannot write that format.
    """
    fmt = check_image_path(path)
    from matplotlib.figure import Figure

    n = len(results)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    genres = results[0].genres if results else []
    side = 1.5 + 0.35 * len(genres)
    fig = Figure(figsize=(side * cols, side * rows + (0.5 if title else 0)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, result in zip(axes, results):
        _draw_confusion(ax, result)
    for ax in axes[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=9)
    atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=120))
