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

__all__ = ["MISSING_MATPLOTLIB", "require_matplotlib", "check_image_path", "plot_confusion_matrices"]

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


def plot_confusion_matrices(results, path, *, title: str = "") -> None:
    """Draw one confusion matrix per model into an image file.

    Cells show counts of pooled out-of-fold predictions; their colour is the
    share of the true genre's tracks (the row), so genres of different sizes
    compare at a glance.

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

    n = len(results)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    genres = results[0].genres if results else []
    side = 1.5 + 0.35 * len(genres)
    fig = Figure(figsize=(side * cols, side * rows + (0.5 if title else 0)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, result in zip(axes, results):
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
        ax.set_title(f"{result.name}: {result.accuracy_mean:.3f} ± {result.accuracy_std:.3f}", fontsize=9)
    for ax in axes[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=9)
    # The format follows the extension of ``path``, not of the temporary file.
    atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=120))
