"""Copies among the tracks, and the copies that straddle a protocol's splits.

GTZAN holds repeated and near-repeated clips; a copy trained on while its
twin is tested inflates accuracy. ``build_features`` lists the copies,
``evaluate`` warns when some straddle its splits (or drops all but one of
each group), and ``train --evaluate`` records those of its folds with the
accuracy, so a reader of the record knows.
"""

from __future__ import annotations

import numpy as np

from ..classifiers.duplicates import find_duplicates, keep_one_of_each
from .splits import pairs_across_splits

__all__ = ["find_duplicates", "drop_copies", "straddling_pairs", "straddling_warning"]


def drop_copies(duplicates, X, y, paths, groups):
    """Rows of the tracks that are not copies of an earlier one; the dropped track names."""
    dropped = keep_one_of_each(duplicates)
    rows = ~np.isin(np.asarray(groups), sorted(dropped))
    return {f: x[rows] for f, x in X.items()}, y[rows], np.asarray(paths)[rows], np.asarray(groups)[rows], sorted(dropped)


def straddling_pairs(duplicates, splits, groups) -> list:
    """``(a, b, folds)`` of each pair of copies with one copy trained on and the other tested."""
    return pairs_across_splits([(a, b) for a, b, _ in duplicates.pairs], splits, groups)


def straddling_warning(duplicates, splits, groups) -> tuple[list, str | None]:
    """Pairs of copies with one copy trained on and the other tested, and the warning to print."""
    across = straddling_pairs(duplicates, splits, groups)
    if not across:
        return across, None
    shown = "; ".join(f"{a} / {b} ({'fold' if len(f) == 1 else 'folds'} {', '.join(str(i + 1) for i in f)})" for a, b, f in across[:3])
    more = f"; and {len(across) - 3} more" if len(across) > 3 else ""
    return across, (
        f"{len(across)} pair(s) of copies straddle the splits (one copy trained on, the other tested), which inflates "
        f"accuracy: {shown}{more}; --drop-duplicates keeps one of each group"
    )
