"""What the page and the API show: the model's description and each file's result, as plain data.

Pure functions from the model and :class:`~knn_genre.web.predictor.FileResult`
to dictionaries: ``/api/model`` returns :func:`describe_model` as JSON and
the templates draw :func:`file_view`. Names are passed through as text; the
templates escape everything they show.
"""

from __future__ import annotations

from ..classifiers.model import GenreModel
from ..classifiers.registry import get_spec
from ..pipeline.apply import default_windows
from ..pipeline.similar import distance_measure
from .predictor import FileResult

__all__ = ["describe_model", "file_view", "N_COLOURS"]

#: Colours of the stylesheet (classes ``g0`` ... ``g11``), one per genre in model order.
N_COLOURS = 12
#: Genres drawn as bars per file.
BARS = 5


def describe_model(model: GenreModel, name: str = "") -> dict:
    """The model panel and ``GET /api/model``: what the model is, knows and was measured at.

    Parameters
    ----------
    model : GenreModel
    name : str
        The model file's name (no folder: the server's paths are not shown).
    """
    data = model.data
    k = next((v for key, v in model.settings.items() if key.endswith("n_neighbors")), None)
    window, hop = default_windows(model)
    return {
        "file": name,
        "model": model.name,
        "description": get_spec(model.name).description(model.family, k),
        "family": model.family,
        "genres": list(model.genres),
        "n_tracks": data.n_tracks,
        "n_rows": len(data.X),
        "segment_seconds": data.segment_seconds,
        "windows": {"window_seconds": window, "hop_seconds": hop},
        "settings": dict(model.settings),
        "seed": data.seed,
        "features": data.params.to_dict(),
        "keeps_references": model.keeps_references and model.family == "gaussian",
        "similarity": distance_measure(model) if model.keeps_references and model.family == "gaussian" else None,
        "evaluation": _evaluation(data.evaluation),
        "package_version": data.package_version,
    }


def _evaluation(record) -> dict | None:
    """The model file's evaluation record if it has the fields shown (a protocol and an accuracy), else None."""
    if not isinstance(record, dict) or not _is_number(record.get("accuracy_mean")):
        return None
    out = dict(record)
    out["protocol"] = str(record.get("protocol", "protocol not recorded"))
    out["accuracy_std"] = record.get("accuracy_std") if _is_number(record.get("accuracy_std")) else None
    return out


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def file_view(result: FileResult, genres: tuple) -> dict:
    """One file's result for the page: verdict, bars, window strip, similar tracks."""
    view = {"name": result.name, "ok": result.ok, "status": result.status, "error": result.error}
    if not result.ok:
        return view
    pred = result.prediction
    colour = {g: f"g{i % N_COLOURS}" for i, g in enumerate(genres)}
    ranked = pred.top(len(genres))
    view.update(
        genre=pred.genre,
        probability=ranked[0][1],
        colour=colour[pred.genre],
        bars=[{"genre": g, "probability": p, "percent": 100 * p, "colour": colour[g]} for g, p in ranked[:BARS] if p > 0 or g == pred.genre],
        n_windows=len(pred.windows),
        dropped=len(pred.dropped),
        strip=_strip(pred, colour),
        similar=[t.to_dict() for t in result.similar] if result.similar is not None else None,
    )
    return view


def _strip(pred, colour) -> dict | None:
    """Each window's genre along the song, as slots of a 1000-unit-wide bar; None for one window.

    A window's genre is its most probable one, as ``predict --windows`` lists it.
    """
    windows = pred.to_dict(1)["windows"]
    if len(windows) < 2:
        return None
    end = max(w["end"] for w in windows)
    cells, seen = [], []
    for i, w in enumerate(windows):
        # A window owns the stretch up to the next window's start (windows overlap).
        until = windows[i + 1]["start"] if i + 1 < len(windows) else w["end"]
        best = w["top"][0]
        cells.append({
            "x": 1000 * w["start"] / end, "width": 1000 * (until - w["start"]) / end, "colour": colour[best["genre"]],
            "title": f"{w['start']:.0f}–{w['end']:.0f} s: {best['genre']} ({100 * best['probability']:.0f}%)",
        })
        if best["genre"] not in seen:
            seen.append(best["genre"])
    return {"cells": cells, "seconds": end, "legend": [{"genre": g, "colour": colour[g]} for g in seen]}
