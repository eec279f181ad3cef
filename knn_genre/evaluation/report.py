"""Evaluation results as text and as JSON; display only, no computation.

:func:`format_report` is what ``evaluate`` prints, :func:`results_to_json`
what ``--json`` writes (stable keys).
"""

from __future__ import annotations

from dataclasses import asdict

from .scoring import ModelResult
from .splits import Protocol

__all__ = ["format_report", "results_to_json", "group_folds"]


def results_to_json(protocol: Protocol, results: list[ModelResult]) -> dict:
    """The report as a JSON-able dict with stable keys."""
    return {
        "protocol": asdict(protocol),
        "models": {
            r.name: {
                "accuracy_mean": r.accuracy_mean,
                "accuracy_std": r.accuracy_std,
                "accuracy_per_fold": r.accuracy_per_fold,
                "macro_f1": r.macro_f1,
                "confusion": r.confusion,
                "genres": r.genres,
                "precision": r.precision,
                "recall": r.recall,
                "fit_seconds": r.fit_seconds,
                "predict_seconds": r.predict_seconds,
                **r.extra,
                "predictions": [
                    {"fold": fold, "track": track, "genre": genre, "predicted": predicted}
                    for fold, track, genre, predicted in r.predictions
                ],
            }
            for r in results
        },
    }


def _table(header, rows, align=None) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    align = align or ["<"] + [">"] * (len(header) - 1)
    fmt = "  ".join(f"{{:{a}{w}}}" for a, w in zip(align, widths))
    lines = [fmt.format(*header), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*map(str, row)) for row in rows]
    return lines


def _short_params(params) -> str:
    """``{"svc__C": 10.0}`` as ``C=10``: the step prefix is noise in a report."""
    if not isinstance(params, dict):
        return str(params)
    parts = []
    for key, value in sorted(params.items()):
        text = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{key.rsplit('__', 1)[-1]}={text}")
    return ", ".join(parts)


def group_folds(chosen) -> list[tuple[str, str]]:
    """Distinct settings, most frequent first, each with the folds that chose it."""
    folds = {}
    for i, params in enumerate(chosen, start=1):
        folds.setdefault(_short_params(params), []).append(i)
    ordered = sorted(folds.items(), key=lambda item: (-len(item[1]), item[1][0]))
    return [(setting, ("fold " if len(which) == 1 else "folds ") + ", ".join(map(str, which))) for setting, which in ordered]


def format_report(protocol: Protocol, results: list[ModelResult], *, confusion_for=None) -> str:
    """Plain-text report: protocol, model table, per-genre scores, confusion matrices.

    Parameters
    ----------
    confusion_for : list of str, optional
        Models whose per-genre table and confusion matrix are printed
        (default: all that are not dummies).
    """
    lines = [f"Protocol: {protocol.describe()}"]
    lines += [f"  note: {n}" for n in protocol.notes]
    spread = "std over folds" if protocol.folds > 1 else "single split, no spread"
    lines += ["", f"Accuracy (mean ± {spread}), macro-F1 on pooled out-of-fold predictions, seconds per fold:"]
    rows = [
        (r.name, f"{r.accuracy_mean:.3f} ± {r.accuracy_std:.3f}", f"{r.macro_f1:.3f}", f"{r.fit_seconds:.3f}", f"{r.predict_seconds:.3f}")
        for r in results
    ]
    header = ("model", "accuracy", "macro-F1", "fit s", "predict s")
    if results and "track_accuracy_mean" in results[0].extra:
        lines[-1] = (
            f"Rows are segments. Segment accuracy (mean ± {spread}), track accuracy (each test track's "
            "segments pooled: mean probabilities, or votes), segment macro-F1, seconds per fold:"
        )
        header = ("model", "segment accuracy", "track accuracy", "macro-F1", "fit s", "predict s")
        rows = [
            (row[0], row[1], f"{r.extra['track_accuracy_mean']:.3f} ± {r.extra['track_accuracy_std']:.3f}", *row[2:])
            for row, r in zip(rows, results)
        ]
    lines += _table(header, rows)
    for r in results:
        if r.extra.get("chosen_params"):
            lines.append(f"  {r.name}: parameters chosen by the inner search, per outer fold (folds numbered from 1):")
            lines += [f"    {setting}: {which}" for setting, which in group_folds(r.extra["chosen_params"])]
    show = confusion_for if confusion_for is not None else [r.name for r in results if not r.name.startswith("dummy")]
    for r in results:
        if r.name not in show:
            continue
        lines += ["", f"{r.name}: per-genre precision and recall"]
        lines += _table(("genre", "precision", "recall"), [(g, f"{p:.2f}", f"{q:.2f}") for g, p, q in zip(r.genres, r.precision, r.recall)])
        lines += ["", f"{r.name}: confusion matrix (rows: true genre, columns: predicted)"]
        short = [g[:6] for g in r.genres]
        lines += _table(["true \\ pred"] + short, [[g] + row for g, row in zip(r.genres, r.confusion)])
    return "\n".join(lines)
