"""Worker plugins for the local Dask cluster a command starts (imported with Dask only).

A plugin is set up on every worker that joins, including the one a nanny
starts in place of a worker that died, which ``Client.run`` at start-up
never reached.
"""

from __future__ import annotations

import signal

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["IgnoreInterrupts"]


class IgnoreInterrupts(WorkerPlugin):
    """Ctrl-C reaches the whole process group: only the command acts on it, not each worker with a traceback."""

    name = "knn-genre-ignore-interrupts"

    def setup(self, worker) -> None:
        # The worker's event loop, which runs this, is its process's main thread, where signals are set.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
