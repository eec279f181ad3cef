"""The worker pools behind build_features: results, BLAS threads, signals, failures."""

import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from joblib.externals.loky import get_reusable_executor
from threadpoolctl import threadpool_info

from knn_genre.pipeline import workers
from knn_genre.pipeline.workers import run_tasks


def square_and_pid(x):
    return x * x, os.getpid()


def blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def worker_state(_):
    return blas_threads(), signal.getsignal(signal.SIGINT) == signal.SIG_IGN, os.getpid()


def fail_on_three(x):
    if x == 3:
        raise ValueError("three")
    return x


def only_the_main_thread():
    """End the threads earlier pools left (loky keeps its executor's), so that fork is allowed again."""
    get_reusable_executor().shutdown(wait=True)
    for thread in threading.enumerate():
        if thread is not threading.main_thread():
            thread.join(timeout=5)


FORKS = sys.platform.startswith("linux")


@pytest.fixture(params=["here", "fork", "joblib"])
def pool(request, monkeypatch):
    """``n_jobs`` that selects each pool; the joblib one is forced by refusing fork."""
    if request.param == "fork":
        if not FORKS:
            pytest.skip("workers are forked on Linux only")
        only_the_main_thread()
        assert workers._can_fork()
    if request.param == "joblib":
        monkeypatch.setattr(workers, "_can_fork", lambda: False)
    return 1 if request.param == "here" else 2


def test_every_task_runs_once(pool):
    results = dict(run_tasks(square_and_pid, [(x,) for x in range(23)], pool))
    assert {i: r[0] for i, r in results.items()} == {x: x * x for x in range(23)}
    pids = {pid for _, pid in results.values()}
    if pool == 1:
        assert pids == {os.getpid()}
    else:  # two processes: this one and a worker (fork), or two workers (joblib)
        assert 1 <= len(pids) <= 2


def test_one_blas_thread_and_ctrl_c_left_to_the_caller(pool):
    before = blas_threads()
    for _, (threads, ignores_sigint, pid) in run_tasks(worker_state, [(x,) for x in range(6)], pool):
        assert all(n == 1 for n in threads)
        # Workers leave SIGINT to the calling process, which keeps its handler.
        assert ignores_sigint == (pid != os.getpid())
    assert blas_threads() == before  # the caller's limit is restored
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_exception_in_a_task_stops_the_run(pool):
    with pytest.raises(ValueError, match="three"):
        list(run_tasks(fail_on_three, [(x,) for x in range(8)], pool))


def wait_for(done, give_up_after=10.0):
    """Poll until ``done()``; give up after a while so that a broken pool fails its test instead of hanging it."""
    give_up = time.monotonic() + give_up_after
    while not done() and time.monotonic() < give_up:
        time.sleep(0.002)


def recorded_call(x, folder, caller):
    """Leave a file per call (workers may be other processes), then hold every worker past the first tasks.

    A worker's task waits for the file ``open``, which the test writes once
    the generator is closed: anything still running then was started, not
    finished, before the close. Tasks of the calling process never wait.
    """
    Path(folder, f"call-{x}-{os.getpid()}").touch()
    if os.getpid() != caller and x >= 3:
        gate = Path(folder, "open")
        wait_for(gate.exists)
        gate.touch()  # after giving up, let the other tasks through at once
    return x


def test_closing_early_returns_promptly_with_the_rest_undone(pool, tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    n = 200
    jobs = run_tasks(recorded_call, [(x, str(calls), os.getpid()) for x in range(n)], pool)
    first = [next(jobs) for _ in range(3)]
    jobs.close()  # returns while the workers still wait on their task
    started = sorted(int(p.name.split("-")[1]) for p in calls.glob("call-*"))
    (calls / "open").touch()
    get_reusable_executor().shutdown(wait=True)  # joblib's workers end their batch in the background
    assert len({i for i, _ in first}) == 3 and {i for i, _ in first} <= set(started)
    if pool == 1:
        assert started == [0, 1, 2]  # in this process, nothing runs beyond what was asked for
    else:
        # The three collected, the ones the workers had finished but not yet
        # handed back, and one waiting task per worker: nothing else started.
        assert len(started) <= 8, started


def slow_pid(_):
    time.sleep(0.02)
    return os.getpid()


def pid_after_meeting(x, folder):
    """The pid, once two processes have each started a task: neither can run them all alone."""
    Path(folder, f"call-{x}-{os.getpid()}").touch()
    alone = Path(folder, "alone")

    def met():
        return alone.exists() or len({p.name.split("-")[2] for p in Path(folder).glob("call-*")}) >= 2

    wait_for(met)
    if not met():
        alone.touch()  # a broken pool: the other tasks need not wait as well
    return os.getpid()


@pytest.mark.skipif(not FORKS, reason="workers are forked on Linux only")
def test_this_process_and_a_forked_worker_share_the_work(tmp_path):
    only_the_main_thread()
    results = dict(run_tasks(pid_after_meeting, [(x, str(tmp_path)) for x in range(10)], 2))
    assert sorted(results) == list(range(10))
    here = sorted(i for i, pid in results.items() if pid == os.getpid())
    # Neither process can finish a task before the other has taken one.
    assert 0 < len(here) < 10
    # The worker works from the front, this process from the back.
    assert here == list(range(10 - len(here), 10))


@pytest.mark.skipif(not FORKS, reason="workers are forked on Linux only")
def test_leaving_early_stops_the_forked_workers_at_once():
    only_the_main_thread()
    jobs = run_tasks(slow_pid, [(x,) for x in range(50)], 2)
    next(jobs)
    jobs.close()
    assert multiprocessing.active_children() == []
    assert threading.active_count() == 1


def test_no_tasks_and_more_jobs_than_tasks():
    assert list(run_tasks(square_and_pid, [], 2)) == []
    (only,) = run_tasks(square_and_pid, [(4,)], -1)  # one task runs here, no pool
    assert only == (0, (16, os.getpid()))


@pytest.mark.skipif(not FORKS, reason="workers are forked on Linux only")
def test_no_fork_while_other_threads_run():
    only_the_main_thread()
    assert workers._can_fork()
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert not workers._can_fork()
    finally:
        release.set()
        other.join()
    assert workers._can_fork()
