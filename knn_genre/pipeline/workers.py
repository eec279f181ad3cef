"""Running one function over many files in worker processes.

:func:`run_tasks` yields ``(index, result)`` as tasks finish. Which pool runs
them:

- one job: this process, no pool;
- Linux: the calling process and ``n_jobs - 1`` workers of a
  :class:`concurrent.futures.ProcessPoolExecutor`, *forked*. They start in
  milliseconds with numpy, scipy and this package already imported, where
  a freshly spawned worker takes about 0.5 s to import them: as long as
  analysing 40 clips, which would eat the gain of a second core on
  collections of a few hundred clips;
- elsewhere (macOS, Windows), and when the calling process runs other Python
  threads (which a fork could catch holding a lock): joblib's loky workers.

In every case each process uses one BLAS thread: the output must not depend
on the number of jobs, and multi-threaded reductions round differently.
Workers ignore Ctrl-C (the calling process handles it and stops them), die
with the calling process on Linux, and a worker that dies (killed for lack
of memory, say) makes :func:`run_tasks` raise instead of waiting forever.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

from joblib import Parallel, delayed, effective_n_jobs
from threadpoolctl import threadpool_limits

__all__ = ["keep_freed_memory", "run_tasks"]

_worker_ready = False  # per process: set once a worker has been prepared


def keep_freed_memory() -> None:
    """Ask glibc (Linux) to keep freed blocks of up to 32 MiB for reuse.

    Analysing a track allocates and frees some tens of MB of temporaries
    (frames, spectra). By default glibc maps and unmaps each of them, and
    the page faults of touching fresh pages cost as much as the MFCCs
    themselves: on 104 GTZAN clips, 416,000 faults and 1.5 s of system time,
    against 3,600 faults and 0.2 s with freed memory kept. The price is that
    the process keeps up to about one track's temporaries mapped until it
    exits. A no-op elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: serve blocks up to 32 MiB from the heap
        libc.mallopt(-1, 128 << 20)  # M_TRIM_THRESHOLD: keep up to 128 MiB of freed heap
    except (OSError, AttributeError):
        pass


def _prepare_worker(parent_pid: int) -> None:
    """In a worker process, once: ignore Ctrl-C, one BLAS thread, die with the parent (Linux).

    The calling process handles SIGINT and stops its workers; a worker that
    also raised KeyboardInterrupt would print a traceback. Without the
    parent-death signal, idle workers outlive a build killed by SIGKILL for
    minutes, holding memory and the terminal's output pipes open.
    """
    global _worker_ready
    if _worker_ready or os.getpid() == parent_pid:
        return
    _worker_ready = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for stop in ("SIGTERM", "SIGHUP"):  # a forked worker inherits the caller's handlers
        if hasattr(signal, stop):
            signal.signal(getattr(signal, stop), signal.SIG_DFL)
    keep_freed_memory()
    threadpool_limits(limits=1, user_api="blas")  # for the life of the worker
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _in_worker(parent_pid: int, function: Callable, args: tuple):
    """A task run by joblib: prepare the worker on its first task."""
    _prepare_worker(parent_pid)
    return function(*args)


def _can_fork() -> bool:
    # fork is only safe when no other Python thread may hold a lock; native
    # BLAS threads are handled by the BLAS libraries' own fork handlers.
    return (
        sys.platform.startswith("linux")
        and "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
    )


@contextmanager
def _sigint_blocked():
    """Block SIGINT while workers start; they inherit the mask.

    A Ctrl-C sent to the whole process group then reaches only the calling
    process, which stops the workers, instead of printing a traceback from
    each of them. A SIGINT that arrives meanwhile is delivered as soon as
    the mask is restored.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def run_tasks(function: Callable, tasks: Sequence[tuple], n_jobs: int = -1) -> Iterator[tuple[int, object]]:
    """Yield ``(i, function(*tasks[i]))`` for every task, in the order they finish.

    Parameters
    ----------
    function : callable
        A module-level function (it is pickled for the loky workers); it
        should not raise: an exception from a task propagates and stops the
        whole run.
    tasks : sequence of tuples
        Positional arguments of each call.
    n_jobs : int, default=-1
        Processes, joblib's convention: -1 is all cores. Never more than
        there are tasks.

    Yields
    ------
    (int, object)
        Index of the task and its result.

    Raises
    ------
    concurrent.futures.process.BrokenProcessPool, or joblib's equivalent
        If a worker process dies.

    Closing the generator (``close()``, or leaving a ``for`` loop by an
    exception) drops the tasks not started; forked workers are stopped at
    once, joblib's finish their current task in the background.
    """
    n = min(effective_n_jobs(n_jobs), len(tasks))
    if n <= 1:
        yield from _run_here(function, tasks)
    elif _can_fork():
        yield from _run_forked(function, tasks, n)
    else:
        yield from _run_joblib(function, tasks, n)


def _run_here(function, tasks):
    with threadpool_limits(limits=1, user_api="blas"):
        for i, task in enumerate(tasks):
            yield i, function(*task)


# Batches handed to each worker ahead: one running and one waiting, so that
# it never waits for the next, and the last ones end close together.
_AHEAD_PER_WORKER = 2

# Tasks per batch at most. Each hand-over costs this process about 0.5 ms
# (pickling, and the pool's threads); batches of 4 clips cut that to a few
# percent of the work. Near the end batches shrink to single tasks.
_BATCH = 4


def _run_batch(function, batch):
    """A worker's unit of work: several tasks, results in order."""
    return [function(*task) for task in batch]


def _run_forked(function, tasks, n):
    """``n - 1`` forked workers take tasks from the front, this process takes them from the back.

    This process works too rather than wait: it starts at once, while the
    workers are being forked, and a task it takes is one fewer to send
    across. Each worker has ``_AHEAD_PER_WORKER`` batches handed to it at
    any time (the next one is handed over as one ends, by the pool's
    thread), so the two ends meet with little left to wait for.
    """
    lock = threading.Lock()
    ends = [0, len(tasks) - 1]  # next task for the workers, next for this process
    finished = queue.SimpleQueue()  # futures, put by the pool's thread as they end
    first_task = {}

    def hand_over(_=None):
        with lock:
            unclaimed = ends[1] - ends[0] + 1
            if unclaimed <= 0:
                return
            size = max(1, min(_BATCH, unclaimed // (4 * (n - 1))))
            first = ends[0]
            ends[0] += size
        try:
            future = pool.submit(_run_batch, function, tasks[first : first + size])
        except Exception as exc:  # noqa: BLE001 - the pool broke or closed: the loop below raises it
            finished.put(exc)
            return
        first_task[future] = first
        future.add_done_callback(finished.put)
        future.add_done_callback(hand_over)

    context = multiprocessing.get_context("fork")
    with _sigint_blocked(), warnings.catch_warnings():
        # Python 3.12+ warns about forking with any thread alive, native BLAS
        # threads included; see _can_fork for why this fork is safe.
        warnings.filterwarnings("ignore", message=r".*multi-threaded.*fork", category=DeprecationWarning)
        others = set(multiprocessing.active_children())
        pool = ProcessPoolExecutor(n - 1, mp_context=context, initializer=_prepare_worker, initargs=(os.getpid(),))
        for _ in range(_AHEAD_PER_WORKER * (n - 1)):
            hand_over()  # the first submit forks the workers
        workers = set(multiprocessing.active_children()) - others

    def collected(item):
        if isinstance(item, Exception):
            raise item
        return enumerate(item.result(), start=first_task[item])

    remaining = len(tasks)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            while remaining:
                while not finished.empty():
                    for result in collected(finished.get()):
                        remaining -= 1
                        yield result
                with lock:
                    mine = None
                    if ends[1] >= ends[0]:
                        mine = ends[1]
                        ends[1] -= 1
                if mine is not None:
                    remaining -= 1
                    yield mine, function(*tasks[mine])
                elif remaining:
                    for result in collected(finished.get()):  # wait for a worker
                        remaining -= 1
                        yield result
    finally:
        with lock:
            ends[0] = ends[1] + 1  # hand nothing more over
        if remaining:
            # Leaving early (an interrupt, a dead worker, an error): stop the
            # workers' tasks now rather than wait for them; they only compute.
            for worker in workers:
                worker.kill()
        # Waiting for the pool's thread to end keeps its exit tidy (Python
        # 3.11 can print a traceback at exit if it is still running).
        pool.shutdown(wait=True)


def _run_joblib(function, tasks, n):
    with _sigint_blocked():
        results = Parallel(n_jobs=n, return_as="generator", batch_size="auto")(
            delayed(_in_worker)(os.getpid(), function, task) for task in tasks
        )
    try:
        yield from enumerate(results)
    finally:
        with warnings.catch_warnings():
            # Closing a joblib generator early warns that tasks were cancelled: expected here.
            warnings.simplefilter("ignore")
            results.close()
