"""Stop signals as an exception, so that a long run can save its work and exit.

While :func:`stop_signals_raise` is active, SIGINT (Ctrl-C), SIGTERM and
SIGHUP raise :class:`Stopped` (a ``KeyboardInterrupt`` carrying the signal
number) in the main thread; the run saves what is finished and exits with
``128 + signal``.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

__all__ = ["STOP_SIGNALS", "Stopped", "stop_signals_raise"]

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """Raised by the signal handler; carries the signal number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextmanager
def stop_signals_raise():
    """Turn SIGINT, SIGTERM and SIGHUP into :class:`Stopped` while the block runs.

    After the first signal the others are ignored, so that the finished work
    can be saved. Signal handlers can only be set in the main thread; in
    other threads this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise Stopped(signum)

    saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        if saved[sig] is not signal.SIG_IGN:  # e.g. nohup: stay immune to SIGHUP
            signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
