"""Pieces shared by the command-line entry points.

Exit statuses are the same for every command: 0 success, 1 the run failed
on its data (or ``--strict`` refused skipped files), 2 a usage error or no
usable input.
"""

from __future__ import annotations

import argparse
import math
import sys

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "error", "positive_int", "positive_float", "non_negative_float"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def error(prog: str, message: str) -> None:
    """Print ``prog: error: message`` on stderr, as argparse does."""
    print(f"{prog}: error: {message}", file=sys.stderr)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be a positive integer")
    return value


def _number(text: str, ok, requirement: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"{text} must be {requirement}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _number(text, lambda v: v > 0, "a positive number")


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _number(text, lambda v: v >= 0, "a number >= 0")
