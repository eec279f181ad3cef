import signal
import subprocess
import sys
from pathlib import Path

import pytest

# Test helpers (tests/wavs.py) import as a plain module.
sys.path.insert(0, str(Path(__file__).parent))

from knn_genre.audio.synth import write_collection  # noqa: E402


def pytest_configure(config):
    # A shell that starts a job in the background makes it ignore SIGINT, and
    # so its children; the tests of Ctrl-C need it delivered as a user's
    # terminal would deliver it. A handler (unlike "ignore") is reset to the
    # default in every program started from here.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def collection(tmp_path_factory):
    """A small synthetic GTZAN-style collection: 5 pure genres x 6 clips x 1.5 s."""
    root = tmp_path_factory.mktemp("collection")
    write_collection(root, n_per_genre=6, seconds=1.5, seed=0, bleed=0.0)
    return root


@pytest.fixture(scope="session")
def dask_cluster():
    """A real Dask ``LocalCluster``: a scheduler and two single-threaded worker processes.

    Yields ``(address, cluster)``; torn down at the end of the session. Tests
    that kill a worker wait for the nanny to bring it back (:func:`restore_workers`).
    """
    distributed = pytest.importorskip("distributed")
    import logging

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.CRITICAL,
    )
    try:
        yield cluster.scheduler_address, cluster
    finally:
        cluster.close()


def restore_workers(address, n=2, timeout=60):
    """Wait until ``n`` workers are connected to the scheduler at ``address`` again."""
    import distributed

    with distributed.Client(address, set_as_default=False) as client:
        client.wait_for_workers(n, timeout=timeout)


def can_mount_privately() -> bool:
    """Whether this process may give a child a mount namespace of its own (``unshare``, as root)."""
    probe = ["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "tmpfs", "/mnt"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def pytest_collection_modifyitems(config, items):
    """Tests that use Dask in this process run last.

    Dask leaves a thread behind in the process once a client has run (its
    offload executor), and from then on the local pool, rightly, will not
    fork (see ``knn_genre.pipeline.workers``): the tests of the forked pool
    must come before.
    """
    def uses_dask(item):
        return "dask_cluster" in getattr(item, "fixturenames", ()) or item.path.name == "test_cluster.py"

    items[:] = [item for item in items if not uses_dask(item)] + [item for item in items if uses_dask(item)]
