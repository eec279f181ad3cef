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
from ..errors import printable
from .splits import pairs_across_splits

__all__ = ["find_duplicates", "drop_copies", "straddling_pairs", "straddling_warning", "copies_warning"]


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
    return across, copies_warning(across, "accuracy", "--drop-duplicates keeps one of each group")


def copies_warning(pairs, what: str, remedy: str) -> str:
    """The warning on ``pairs`` of copies that straddle the splits, ``(a, b)`` or ``(a, b, folds)`` each.

    ``what`` is the number they inflate, ``remedy`` what scores without them.
    The first three pairs are named (escaped: names come from files).
    """
    def pair(p):
        folds = f" ({'fold' if len(p[2]) == 1 else 'folds'} {', '.join(str(i + 1) for i in p[2])})" if len(p) > 2 else ""
        return f"{printable(p[0])} / {printable(p[1])}{folds}"

    shown = "; ".join(pair(p) for p in pairs[:3])
    more = f"; and {len(pairs) - 3} more" if len(pairs) > 3 else ""
    return (
        f"{len(pairs)} pair(s) of copies straddle the splits (one copy trained on, the other tested), which inflates "
        f"{what}: {shown}{more}; {remedy}"
    )
