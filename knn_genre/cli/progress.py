"""Progress lines with rate and ETA for long loops, written to stderr."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """Report ``done/total`` with a rate and an ETA, at most every ``interval`` seconds.

    On a terminal the line is redrawn in place; elsewhere (logs, CI) a new
    line is printed at most every ``interval`` seconds so logs stay short.

    Parameters
    ----------
    total : int
        Number of items expected.
    unit : str
        Plural noun for the items, e.g. ``"files"``.
    stream : file-like, default sys.stderr
    interval : float, default 0.5 on a terminal, 5 elsewhere
    clock : callable, default time.monotonic
    """

    def __init__(self, total, unit="items", *, stream=None, interval=None, clock=time.monotonic):
        self.total = int(total)
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = (0.5 if self.tty else 5.0) if interval is None else interval
        self.clock = clock
        self.start = clock()
        self._last = None
        self.done = 0
        self.label = ""

    def line(self) -> str:
        """The current progress text: done/total, rate per second and ETA."""
        elapsed = max(self.clock() - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta_text = f"ETA {eta:.0f} s" if rate > 0 else "ETA --"
        pct = 100.0 * self.done / self.total if self.total else 100.0
        label = f" [{self.label}]" if self.label else ""
        rate_text = f"{rate:.1f}" if rate >= 1 else f"{rate:.2g}"
        return f"{self.done}/{self.total} {self.unit} ({pct:.0f}%){label}, {rate_text} {self.unit}/s, {eta_text}"

    def update(self, done: int, label: str | None = None) -> None:
        """Record ``done`` items finished (the last one described by ``label``) and print if the interval has passed."""
        self.done = done
        if label is not None:
            self.label = label
        now = self.clock()
        if self._last is None or now - self._last >= self.interval or done == self.total:
            self._last = now
            self._emit()

    def close(self) -> None:
        """Finish the progress line (a newline on a terminal)."""
        if self.tty and self._last is not None:
            self.stream.write("\n")
            self.stream.flush()

    def _emit(self):
        if self.tty:
            self.stream.write("\r" + self.line() + "\033[K")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
