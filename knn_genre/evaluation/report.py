"""Evaluation results as text and as JSON; display only, no computation.

:func:`format_report` is what ``evaluate`` prints, :func:`results_to_json`
what ``--json`` writes (stable keys).
"""

from __future__ import annotations

import math
from dataclasses import asdict

from ..errors import printable
from .scoring import ModelResult
from .splits import Protocol

__all__ = ["format_report", "format_duplicates", "results_to_json", "group_folds"]


def _json_number(value):
    """NaN (an undefined score) as None, which JSON can hold."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _json_numbers(values):
    if isinstance(values, dict):
        return {key: _json_numbers(v) for key, v in values.items()}
    if isinstance(values, (list, tuple)):
        return [_json_numbers(v) for v in values]
    return _json_number(values)


def results_to_json(protocol: Protocol, results: list[ModelResult]) -> dict:
    """The report as a JSON-able dict with stable keys (undefined scores are null)."""
    return {
        "protocol": asdict(protocol),
        "models": {
            r.name: _json_numbers({
                "accuracy_mean": r.accuracy_mean,
                "accuracy_std": r.accuracy_std,
                "accuracy_per_fold": r.accuracy_per_fold,
                "macro_f1": r.macro_f1,
                "balanced_accuracy": r.balanced_accuracy,
                "confusion": r.confusion,
                "genres": r.genres,
                "precision": r.precision,
                "recall": r.recall,
                "f1": r.f1,
                "roc_auc": r.roc_auc,
                "average_precision": r.average_precision,
                "support": r.support,
                "macro": r.macro,
                "weighted": r.weighted,
                "tested_per_fold": r.tested_per_fold,
                "fit_seconds": r.fit_seconds,
                "predict_seconds": r.predict_seconds,
                **r.extra,
                "predictions": [
                    {"fold": fold, "track": track, "genre": genre, "predicted": predicted, "probabilities": proba}
                    for fold, track, genre, predicted, proba in r.predictions
                ],
            })
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
    """``{"svc__C": 10.0}`` as ``C=10``: the step prefix is noise in a report.

    A vote's choice, ``{"members": [...], "member_params": {name: params}}``,
    reads ``knn(n_neighbors=5) + svm(C=10, ...)``.
    """
    if not isinstance(params, dict):
        return str(params)
    if "members" in params:
        inner = params.get("member_params") or {}
        return " + ".join(f"{name}({_short_params(inner.get(name, {}))})" for name in params["members"])
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


def _score(value, digits=3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _spread(mean: float, std: float, single: bool, fmt="{:.3f}", std_fmt="{:.3f}") -> str:
    """``mean ± std``; a single split has no spread: the mean alone (the header says "single split")."""
    return fmt.format(mean) if single else f"{fmt.format(mean)} ± {std_fmt.format(std)}"


def _difference(entry, single: bool) -> str:
    if not entry:
        return "-"
    return _spread(entry["points_mean"], entry["points_std"], single, "{:+.1f}", "{:.1f}")


def format_report(protocol: Protocol, results: list[ModelResult], *, confusion_for=None) -> str:
    """Plain-text report: protocol, model table, per-genre scores, confusion matrices.

    Parameters
    ----------
    confusion_for : list of str, optional
        Models whose per-genre table and confusion matrix are printed
        (default: all that are not baselines, i.e. have no chance level).
    """
    single = protocol.folds * protocol.repeats == 1
    lines = [f"Protocol: {protocol.describe()}"]
    if results and single:
        lines[0] += f"; single split, tested on {results[0].n_tested} tracks"
    lines += [f"  note: {n}" for n in protocol.notes]
    splits = protocol.folds * protocol.repeats
    spread = "single split, no spread" if single else f"mean ± std over {splits} splits"
    segmented = bool(results) and "segment_accuracy_mean" in results[0].extra
    lines += [
        "",
        f"{'Track accuracy' if segmented else 'Accuracy'} ({spread}); balanced accuracy, macro-F1 and macro ROC-AUC on pooled "
        "out-of-fold predictions; accuracy points above the best baseline (vs dummy) and below the best model "
        "(vs best), paired fold by fold; chance: the accuracy a baseline's guessing is expected to reach; seconds per fold:",
    ]
    header = ["model", "track accuracy" if segmented else "accuracy"]
    if segmented:
        header.append("segment accuracy")
    header += ["balanced", "macro-F1", "ROC-AUC", "vs dummy", "vs best", "chance", "fit s", "predict s"]
    rows = []
    for r in results:
        row = [r.name, _spread(r.accuracy_mean, r.accuracy_std, single)]
        if segmented:
            row.append(_spread(r.extra["segment_accuracy_mean"], r.extra["segment_accuracy_std"], single))
        chance = r.extra.get("chance_level")
        row += [
            _score(r.balanced_accuracy), _score(r.macro_f1), _score(r.macro.get("roc_auc")),
            _difference(r.extra.get("vs_best_dummy"), single), _difference(r.extra.get("vs_best_model"), single),
            "" if chance is None else f"{chance:.3f}", f"{r.fit_seconds:.3f}", f"{r.predict_seconds:.3f}",
        ]
        rows.append(row)
    lines += _table(header, rows)
    if segmented:
        lines.append(
            "  Rows are segments: every score but segment accuracy decides each test track from its segments "
            "(mean probabilities, or votes) as predict decides a file; segment accuracy counts single segments."
        )
    references = [(key, r.extra[key]["model"]) for key in ("vs_best_dummy", "vs_best_model") for r in results[:1] if key in r.extra]
    if references:
        lines.append("  " + "; ".join(f"{'vs dummy' if key == 'vs_best_dummy' else 'vs best'}: {name}" for key, name in references))
    if any("chance_level" in r.extra for r in results):
        lines.append(
            "  chance: stratified guessing sum_i p_i q_i (p training, q test genre shares; sum_i p_i^2 on stratified "
            "folds), most-frequent the test share of the largest training genre (the largest class share)"
        )
    for r in results:
        if r.extra.get("chosen_params"):
            lines.append(f"  {r.name}: parameters chosen by the inner search, per outer fold (folds numbered from 1):")
            lines += [f"    {setting}: {which}" for setting, which in group_folds(r.extra["chosen_params"])]
    show = confusion_for if confusion_for is not None else [r.name for r in results if "chance_level" not in r.extra and not r.name.startswith("dummy")]
    for r in results:
        if r.name not in show:
            continue
        lines += ["", f"{r.name}: per-genre scores on pooled out-of-fold predictions (AP: average precision, the area under the precision-recall curve)"]
        genre_rows = [
            (printable(g), _score(p, 2), _score(q, 2), _score(f, 2), _score(a, 2), _score(ap, 2), n)
            for g, p, q, f, a, ap, n in zip(r.genres, r.precision, r.recall, r.f1, r.roc_auc, r.average_precision, r.support)
        ]
        for label, avg in (("macro avg", r.macro), ("weighted avg", r.weighted)):
            genre_rows.append((label, *(_score(avg.get(k), 2) for k in ("precision", "recall", "f1", "roc_auc", "average_precision")), sum(r.support)))
        lines += _table(("genre", "precision", "recall", "F1", "ROC-AUC", "AP", "tests"), genre_rows)
        lines += ["", f"{r.name}: confusion matrix (rows: true genre, columns: predicted)"]
        names = [printable(g) for g in r.genres]
        lines += _table(["true \\ pred"] + [g[:6] for g in names], [[g] + row for g, row in zip(names, r.confusion)])
    return "\n".join(lines)


def format_duplicates(duplicates, across=(), dropped=(), *, limit: int = 5) -> str:
    """Lines on the copies found: groups, which straddle the splits, which were dropped.

    Parameters
    ----------
    duplicates : knn_genre.classifiers.duplicates.Duplicates
    across : list of (a, b, folds)
        Pairs on both sides of a split (:func:`~knn_genre.evaluation.splits.pairs_across_splits`).
    dropped : list of str
        Tracks left out by ``--drop-duplicates``.
    limit : int
        Groups shown.
    """
    if not duplicates.groups:
        return f"Duplicates: none ({duplicates.measure})"
    tracks = sum(len(g) for g in duplicates.groups)
    lines = [f"Duplicates: {len(duplicates.groups)} group(s) of copies, {tracks} tracks ({duplicates.measure}):"]
    distance = {(a, b): d for a, b, d in duplicates.pairs}
    for group in duplicates.groups[:limit]:
        closest = min(d for (a, b), d in distance.items() if a in group and b in group)
        lines.append(f"  {' = '.join(map(printable, group))} (closest pair {closest:.3g})")
    if len(duplicates.groups) > limit:
        lines.append(f"  ... and {len(duplicates.groups) - limit} more group(s)")
    if dropped:
        lines.append(f"  --drop-duplicates: kept the first of each group, left out {len(dropped)} track(s)")
    elif across:
        lines.append(f"  warning: {len(across)} pair(s) straddle the splits (one copy trained on, the other tested)")
    else:
        lines.append("  no pair straddles the splits")
    return "\n".join(lines)
