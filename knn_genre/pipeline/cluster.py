"""Running tasks on a Dask cluster (``--scheduler``): the distributed twin of :mod:`.workers`.

A task is a pure function of its arguments (a path and parameters)
returning arrays, so a task whose worker dies is simply run again on
another worker, and its result is the same; the calling process alone
writes files. :class:`Cluster` connects to a scheduler (``tcp://host:8786``)
or starts a local one with ``local:N`` worker processes, and
:meth:`Cluster.run` yields ``(index, result)`` as tasks finish, like
:func:`knn_genre.pipeline.workers.run_tasks`.

Dask (``pip install 'knn_genre[dask]'``) is imported only here, and only
when a cluster is used: the rest of the package never needs it.

Workers read the files by path: on a real cluster every worker must see the
data under the same path (a shared file system, or the same mount on every
machine), and must run the same versions of knn_genre, numpy and scipy, or
the features would not be the same as a local build's.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from threadpoolctl import threadpool_limits

from ..audio.files import MISSING_REASONS
from ..errors import ClusterError, KnnGenreError, ParameterError
from .workers import _sigint_blocked, keep_freed_memory

__all__ = ["LOCAL_PREFIX", "check_address", "check_seen", "require_dask", "Cluster", "open_cluster", "worker_versions"]

#: ``local:N`` starts a local cluster of N worker processes.
LOCAL_PREFIX = "local:"

_SCHEMES = ("tcp", "tls", "ws", "wss", "inproc", "ucx")
_ADDRESS = re.compile(r"^(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9a-fA-F:]+\]|[^\s:/]+):(?P<port>\d{1,5})$")

#: Seconds to wait for the first worker of a remote scheduler.
WORKER_TIMEOUT = 30.0

# Tasks per batch at most: a Dask task costs the scheduler and this process
# about a millisecond, a batch of 8 clips of 30 s a fifth of a second of work.
_BATCH = 8
# Batches in flight per worker thread: one running, one waiting.
_AHEAD_PER_THREAD = 2
# How often the number of worker threads is asked again (workers may come and go).
_REFRESH_SECONDS = 2.0


def check_address(text: str) -> str:
    """A scheduler address as Dask takes it, or ``local:N``; a ParameterError otherwise.

    ``host:port`` gets the ``tcp://`` scheme.

    Examples
    --------
    >>> from knn_genre.pipeline.cluster import check_address
    >>> check_address("local:2"), check_address("10.0.0.5:8786"), check_address("tls://head:8786")
    ('local:2', 'tcp://10.0.0.5:8786', 'tls://head:8786')
    """
    text = str(text).strip()
    if text.startswith(LOCAL_PREFIX):
        count = text[len(LOCAL_PREFIX):]
        if not count.isdigit() or int(count) < 1:
            raise ParameterError(f"{text!r}: local:N needs a number of worker processes N >= 1, e.g. local:2")
        return f"{LOCAL_PREFIX}{int(count)}"
    match = _ADDRESS.match(text)
    if match is None or (match["scheme"] or "tcp") not in _SCHEMES or not 0 < int(match["port"]) < 65536:
        raise ParameterError(
            f"{text!r} is not a scheduler address; give tcp://HOST:PORT (e.g. tcp://10.0.0.5:8786) "
            "or local:N for a local cluster of N worker processes"
        )
    return f"{match['scheme'] or 'tcp'}://{match['host']}:{match['port']}"


def worker_versions() -> tuple[str, str, str]:
    """``(knn_genre, numpy, scipy)`` versions of this process: what a worker must match."""
    import numpy
    import scipy

    from .. import __version__

    return __version__, numpy.__version__, scipy.__version__


def _run_batch(function: Callable, batch: Sequence[tuple]) -> dict:
    """A worker's unit of work: several tasks, results in order, with the versions that computed them.

    One BLAS thread, as in the local pool: results must not depend on where
    they were computed. Freed memory is kept for reuse (see
    :func:`~knn_genre.pipeline.workers.keep_freed_memory`; Dask's nanny asks
    glibc for the opposite); setting it again is idempotent and costs a
    microsecond. The worker's versions travel with the results: a worker that
    joined after the check at start-up is checked by its first batch.
    """
    keep_freed_memory()
    with threadpool_limits(limits=1, user_api="blas"):
        results = [function(*task) for task in batch]
    return {"versions": worker_versions(), "worker": _worker_address(), "results": results}


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "a worker"


def _version_mismatch(worker: str, versions, mine) -> ClusterError:
    names = ("knn_genre", "numpy", "scipy")
    have = ", ".join(f"{n} {v}" for n, v in zip(names, versions))
    want = ", ".join(f"{n} {v}" for n, v in zip(names, mine))
    return ClusterError(
        f"worker {worker} runs {have}, this machine {want}: its features would differ; "
        "install the same versions on every worker"
    )


def _batch_results(outcome, mine) -> list:
    """The results of a batch, once the worker that computed them is known to run ``mine`` versions.

    A worker with a knn_genre that does not send its versions (an older one)
    gives a plain list: that is a mismatch too.
    """
    if not isinstance(outcome, dict) or "versions" not in outcome:
        raise ClusterError(
            f"a Dask worker runs another knn_genre (its tasks return a {type(outcome).__name__}, without versions): "
            "its features would differ; install the same versions on every worker"
        )
    if tuple(outcome["versions"]) != tuple(mine):
        raise _version_mismatch(outcome["worker"], outcome["versions"], mine)
    return outcome["results"]


def _probe_scheduler(address: str, timeout: float) -> None:
    """A ClusterError unless a Dask peer completes the comm handshake at ``address`` within ``timeout``.

    ``Client`` itself, given another service (an HTTP server, a proxy),
    may wait forever or fail with a traceback while it is collected; a
    bounded handshake first makes either one line.
    """
    import asyncio

    from distributed.comm import connect

    async def handshake():
        comm = await connect(address, timeout=timeout)
        await comm.close()

    try:
        asyncio.run(asyncio.wait_for(handshake(), timeout))
    except (OSError, asyncio.TimeoutError) as exc:  # refused, unresolvable, silent
        detail = _one_line(exc)[:200] or "no answer to the handshake"
        raise ClusterError(f"cannot reach a Dask scheduler at {address} within {timeout:g} s ({type(exc).__name__}: {detail})") from None
    except Exception as exc:  # noqa: BLE001 - another service answers with bytes that are no Dask message
        raise _not_a_scheduler(address, exc) from None


def _not_a_scheduler(address: str, exc: Exception) -> ClusterError:
    return ClusterError(
        f"the service at {address} does not answer as a Dask scheduler ({type(exc).__name__}: "
        f"{_one_line(exc)[:200]}); give the address of a dask scheduler"
    )


def _path_visible(path: str) -> bool:
    return os.path.isdir(path)


#: Loggers of the event loops behind a Dask client and cluster.
_LOOP_LOGGERS = ("tornado", "asyncio", "distributed")


@contextmanager
def _quiet_event_loops():
    """While a cluster closes, the callbacks it cancels (tasks of an interrupted build) are not logged.

    Their event loops would print each as a traceback ("Exception in
    callback ..."), which says nothing about the build: the command has
    already reported why it stopped.
    """
    # Their children too: Dask's configuration gives some their own level (tornado.application: error).
    names = set(_LOOP_LOGGERS) | {n for n in logging.root.manager.loggerDict if n.split(".")[0] in _LOOP_LOGGERS}
    loggers = [logging.getLogger(name) for name in sorted(names)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class Cluster:
    """A connection to a Dask scheduler, or a local cluster started and stopped with it.

    Use as a context manager::

        with Cluster("local:2") as cluster:
            for i, result in cluster.run(function, tasks):
                ...

    Parameters
    ----------
    address : str
        ``tcp://HOST:PORT`` (any address :func:`check_address` accepts), or
        ``local:N`` for a ``LocalCluster`` of N single-threaded worker
        processes, closed on exit.
    timeout : float, default=WORKER_TIMEOUT (30)
        Seconds to wait for the scheduler and its first worker.

    Attributes
    ----------
    client : distributed.Client
        Only inside the ``with`` block.

    Raises
    ------
    ClusterError
        On entering: Dask is not installed, the scheduler cannot be reached,
        no worker joins it, or a worker runs other versions of knn_genre,
        numpy or scipy than this process.
    """

    def __init__(self, address: str, *, timeout: float = WORKER_TIMEOUT):
        self.address = check_address(address)
        self.timeout = float(timeout)
        self.client = None
        self._local = None

    @property
    def is_local(self) -> bool:
        return self.address.startswith(LOCAL_PREFIX)

    def __enter__(self) -> "Cluster":
        return self.open()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def open(self) -> "Cluster":
        """Connect (start the local cluster); returns self. See the class for the errors."""
        distributed = _import_distributed()
        try:
            if self.is_local:
                n = int(self.address[len(LOCAL_PREFIX):])
                try:
                    with _sigint_blocked():
                        self._local = distributed.LocalCluster(
                            n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address=None, silence_logs=logging.ERROR,
                            # No dashboard, and its HTTP server on a free port, not 8787.
                            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                        )
                        self.client = distributed.Client(self._local, set_as_default=False)
                except (OSError, RuntimeError, TimeoutError) as exc:
                    raise ClusterError(
                        f"cannot start a local Dask cluster of {n} worker processes "
                        f"({type(exc).__name__}: {_one_line(exc)[:200]})"
                    ) from None
                # Ctrl-C reaches the whole process group: only this process
                # should act on it (it saves its work, then closes the
                # cluster), not every worker with a traceback; the plugin
                # also reaches the workers that replace lost ones.
                from .dask_plugins import IgnoreInterrupts

                self.client.register_plugin(IgnoreInterrupts())
            else:
                _probe_scheduler(self.address, self.timeout)
                try:
                    with _sigint_blocked():
                        self.client = distributed.Client(self.address, timeout=self.timeout, set_as_default=False)
                except (OSError, TimeoutError) as exc:  # distributed's TimeoutError is an OSError too
                    raise ClusterError(
                        f"cannot reach a Dask scheduler at {self.address} within {self.timeout:g} s "
                        f"({type(exc).__name__}: {_one_line(exc)[:200]})"
                    ) from None
                except Exception as exc:  # noqa: BLE001 - a peer that passed the handshake but is no scheduler
                    raise _not_a_scheduler(self.address, exc) from None
            self._wait_for_a_worker()
            self._check_versions()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Disconnect, and stop the local cluster if this started one."""
        client, local, self.client, self._local = self.client, self._local, None, None
        # Closing must not hide the error that brought us here.
        with _quiet_event_loops():
            for closable in (client, local):
                if closable is not None:
                    try:
                        closable.close()
                    except Exception:  # noqa: BLE001 - best effort at exit
                        pass

    def _wait_for_a_worker(self):
        try:
            self.client.wait_for_workers(1, timeout=self.timeout)
        except Exception:  # noqa: BLE001 - distributed raises a plain TimeoutError or OSError
            raise ClusterError(
                f"no Dask worker joined the scheduler {self.address} within {self.timeout:g} s; "
                "the tasks need at least one worker connected to it"
            ) from None

    def _check_versions(self):
        mine = worker_versions()
        try:
            theirs = self.client.run(worker_versions)
        except Exception as exc:  # noqa: BLE001 - a worker that cannot even import the package
            raise ClusterError(
                f"the Dask workers of {self.address} cannot run knn_genre ({type(exc).__name__}: {exc}); "
                "install the same knn_genre on every worker"
            ) from None
        for worker, versions in sorted(theirs.items()):
            if tuple(versions) != mine:
                raise _version_mismatch(worker, versions, mine)

    @property
    def threads(self) -> int:
        """Worker threads in the cluster now."""
        return max(1, sum(self.client.nthreads().values()))

    def describe(self) -> str:
        """One line: where the tasks run."""
        workers = len(self.client.nthreads())
        where = "a local Dask cluster" if self.is_local else f"the Dask scheduler {self.address}"
        return f"{where} ({workers} worker{'s' if workers != 1 else ''}, {self.threads} thread{'s' if self.threads != 1 else ''})"

    def missing_folder(self, folder: str) -> list[str]:
        """Workers that do not see ``folder`` (an absolute path) as a folder."""
        seen = self.client.run(_path_visible, folder)
        return sorted(worker for worker, ok in seen.items() if not ok)

    def run(self, function: Callable, tasks: Sequence[tuple], *,
            on_failure: Callable[[BaseException], object] | None = None) -> Iterator[tuple[int, object]]:
        """Yield ``(i, function(*tasks[i]))`` for every task, in the order they finish.

        Tasks are sent in batches, a few per worker thread ahead, so that
        neither this process nor the scheduler holds more than a window of
        them, however many there are.

        Parameters
        ----------
        function : callable
            Module-level (workers import it by name); it should not raise.
        tasks : sequence of tuples
            Positional arguments of each call.
        on_failure : callable(exception) -> result, optional
            The result to yield for a task that killed every worker that ran
            it (Dask gives up after a few: ``KilledWorker``, e.g. a file that
            takes more memory than a worker has). A batch that fails so is
            split and its tasks retried one by one first, so only the task
            at fault fails. Without ``on_failure`` a ClusterError is raised.

        Raises
        ------
        ClusterError
            When the cluster fails: the scheduler is lost, or it cancels the
            tasks.

        Closing the generator (``close()``, or leaving a ``for`` loop by an
        exception) cancels the tasks not finished.
        """
        distributed = _import_distributed()
        client = self.client
        done = distributed.as_completed(loop=client.loop)
        spans = {}  # future -> (first task, last task + 1)
        singles = []  # tasks of failed batches, to retry one by one
        size = max(1, min(_BATCH, len(tasks) // (4 * self.threads)))
        starts = iter(range(0, len(tasks), size))
        window = {"threads": self.threads, "asked": time.monotonic()}
        mine = worker_versions()

        def submit(first, stop):
            future = client.submit(_run_batch, function, tasks[first:stop], pure=False)
            spans[future] = (first, stop)
            done.add(future)

        def top_up():
            if time.monotonic() - window["asked"] > _REFRESH_SECONDS:
                window.update(threads=self.threads, asked=time.monotonic())
            while len(spans) < _AHEAD_PER_THREAD * window["threads"]:
                if singles:
                    first = singles.pop()
                    submit(first, first + 1)
                    continue
                first = next(starts, None)
                if first is None:
                    return
                submit(first, min(first + size, len(tasks)))

        try:
            top_up()
            for future in done:
                first, stop = spans.pop(future)
                try:
                    results = _batch_results(future.result(), mine)
                except distributed.KilledWorker as exc:
                    if stop - first > 1:
                        singles.extend(reversed(range(first, stop)))
                        top_up()
                        continue
                    if on_failure is None:
                        raise ClusterError(f"a task killed every Dask worker that ran it ({exc})") from None
                    results = [on_failure(exc)]
                except distributed.client.CancelledError as exc:
                    raise ClusterError(
                        f"the Dask scheduler {self.address} cancelled the tasks "
                        f"(it was restarted or lost its connection: {exc})"
                    ) from None
                except OSError as exc:  # CommClosedError among them
                    raise ClusterError(f"lost the connection to the Dask scheduler {self.address}: {exc}") from None
                top_up()
                yield from enumerate(results, start=first)
        finally:
            if spans:
                try:
                    client.cancel(list(spans))
                except Exception:  # noqa: BLE001 - the connection may be gone already
                    pass


def _one_line(text) -> str:
    return " ".join(str(text).split())


_MISSING = "a Dask cluster (--scheduler) needs the packages dask and distributed, which are not installed"


def check_seen(path: str, reason: str | None) -> None:
    """Raise a ClusterError if a worker found no file at ``path`` that this machine has.

    The folder check when a cluster opens covers the workers connected then;
    a worker that joins later and does not see the data would otherwise turn
    every file it is given into a skipped "no such file".
    """
    if reason in MISSING_REASONS and os.path.exists(path):
        raise ClusterError(
            f"a Dask worker found no file {path}, which this machine has: every worker must see the data "
            "under the same path (did a worker join that does not?)"
        )


def require_dask() -> None:
    """Raise a KnnGenreError, before any work, if the ``dask`` extra is not installed.

    Only looks for the packages (importing them takes about a second); a
    broken installation is still found when the cluster opens.
    """
    import importlib.util

    if any(importlib.util.find_spec(name) is None for name in ("dask", "distributed")):
        raise KnnGenreError(_MISSING)


def _import_distributed():
    try:
        import distributed
        import distributed.client
    except ImportError:
        raise ClusterError(_MISSING) from None
    return distributed


def open_cluster(address: str, *, folders: Sequence[str | os.PathLike] = (), timeout: float = WORKER_TIMEOUT) -> Cluster:
    """An open :class:`Cluster` whose workers all see ``folders``; close it with ``close()``.

    Raises
    ------
    ClusterError
        As :class:`Cluster` does, or when a worker does not see one of
        ``folders`` (resolved to absolute paths) as a folder.
    """
    cluster = Cluster(address, timeout=timeout).open()
    try:
        for folder in folders:
            path = str(Path(folder).resolve())
            blind = cluster.missing_folder(path)
            if blind:
                raise ClusterError(
                    f"Dask worker(s) {', '.join(blind)} do not see the folder {path}: workers read the files "
                    "by path, so each must see them under the same path (a shared file system or the same mount)"
                )
    except BaseException:
        cluster.close()
        raise
    return cluster
