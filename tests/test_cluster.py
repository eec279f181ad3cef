"""Builds on a real Dask cluster: the same file as a local build, whatever happens to the workers."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import can_mount_privately, restore_workers
from wavs import tone, write_wav

from knn_genre import store
from knn_genre.build_features import checkpoint_path, main
from knn_genre.errors import ClusterError, ParameterError
from knn_genre.pipeline.build import build_featureset
from knn_genre.pipeline.cluster import Cluster, check_address, open_cluster
from knn_genre.pipeline.discover import discover

pytest.importorskip("distributed")

GENRES = ("a", "b", "c")
PER_GENRE = 10


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Three genres of ten 3-s clips, all different (seeded), and one broken file."""
    root = tmp_path_factory.mktemp("library")
    for g, genre in enumerate(GENRES):
        for i in range(PER_GENRE):
            write_wav(root / genre / f"{genre}.{i:02d}.wav", tone(3.0, seed=10 * g + i))
    (root / "a" / "broken.wav").write_bytes(b"RIFF junk")
    return root


@pytest.fixture(scope="module")
def local_build(library, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "local.npz"
    assert main([str(library), "-o", str(out), "--jobs", "1", "-q"]) == 0
    return out


def test_addresses_are_checked():
    assert check_address("local:3") == "local:3"
    assert check_address("127.0.0.1:8786") == "tcp://127.0.0.1:8786"
    for bad in ("local:0", "local:x", "http://host:80", "tcp://host", "host:99999", ""):
        with pytest.raises(ParameterError, match="local:N|scheduler address"):
            check_address(bad)


def test_a_cluster_build_is_bit_identical_to_a_local_build(dask_cluster, library, local_build, tmp_path, capsys):
    address, _ = dask_cluster
    out = tmp_path / "cluster.npz"
    assert main([str(library), "-o", str(out), "--scheduler", address, "-q"]) == 0
    captured = capsys.readouterr()
    assert "analysing on the Dask scheduler" in captured.err and "(2 workers, 2 threads)" in captured.err
    assert "skipped a/broken.wav" in captured.err  # skipped files and their reasons, as locally
    assert out.read_bytes() == local_build.read_bytes()
    # Unchanged tracks are reused, nothing is sent to the cluster.
    assert main([str(library), "-o", str(out), "--scheduler", address, "-q"]) == 0
    assert f"analysed 1, reused {len(GENRES) * PER_GENRE}" in capsys.readouterr().out
    assert out.read_bytes() == local_build.read_bytes()


def worker_pids(address):
    import distributed

    with distributed.Client(address, set_as_default=False) as client:
        return client.run(os.getpid)


def test_a_worker_killed_mid_build_loses_no_track(dask_cluster, library, local_build):
    address, _ = dask_cluster
    victim = sorted(worker_pids(address).values())[0]
    killed = []
    seen = []

    def kill_one_worker(done, total):
        seen.append(done)
        if done >= 3 and not killed:
            os.kill(victim, signal.SIGKILL)
            killed.append(done)

    with Cluster(address) as cluster:
        fs, report = build_featureset(library, discover(library), cluster=cluster, on_progress=kill_one_worker)
    assert killed and killed[0] < len(GENRES) * PER_GENRE  # the kill happened with work left to do
    assert seen[-1] == len(GENRES) * PER_GENRE + 1 and report.analysed == len(GENRES) * PER_GENRE + 1
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)  # really gone
    expected = store.load(local_build)
    np.testing.assert_array_equal(fs.means, expected.means)
    np.testing.assert_array_equal(fs.covs, expected.covs)
    assert list(fs.paths) == list(expected.paths) and fs.skipped == expected.skipped
    restore_workers(address)


def test_ctrl_c_during_a_local_cluster_build_keeps_finished_tracks(library, local_build, tmp_path):
    # A cluster started by the command (local:2); Ctrl-C reaches the whole
    # process group, workers included, as from a terminal.
    out = tmp_path / "f.npz"
    partial = checkpoint_path(out)
    command = [sys.executable, "-m", "knn_genre.build_features", str(library), "-o", str(out),
               "--scheduler", "local:2", "--checkpoint-every", "0"]
    with open(tmp_path / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            assert proc.poll() is None, "the build finished before it could be interrupted"
            os.killpg(proc.pid, signal.SIGINT)
            status = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    text = (tmp_path / "stderr.txt").read_text()
    assert status == 128 + signal.SIGINT
    assert "interrupted by SIGINT" in text and "run the same command again" in text
    assert "Traceback" not in text and not out.exists()
    kept = store.load(partial)
    assert 0 < len(kept) < len(GENRES) * PER_GENRE
    # The next run reuses the finished tracks and writes the same file as a local build.
    assert main([str(library), "-o", str(out), "--jobs", "1", "-q"]) == 0
    assert out.read_bytes() == local_build.read_bytes()
    assert not partial.exists()


def test_no_scheduler_is_a_clear_error():
    with pytest.raises(ClusterError, match=r"cannot reach a Dask scheduler at tcp://127.0.0.1:9 within 1 s"):
        Cluster("tcp://127.0.0.1:9", timeout=1).open()


@pytest.mark.parametrize("answer", [b"HTTP/1.1 400 Bad Request\r\n\r\n", None], ids=["other-service", "silent"])
def test_a_service_that_is_not_a_scheduler_is_a_one_line_error_within_the_timeout(answer):
    import socket
    import threading

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        accepted = []

        def serve():
            conn, _ = server.accept()
            accepted.append(conn)
            if answer is not None:
                conn.sendall(answer)

        threading.Thread(target=serve, daemon=True).start()
        expected = "does not answer as a Dask scheduler" if answer else f"cannot reach a Dask scheduler at tcp://127.0.0.1:{port} within 1 s"
        with pytest.raises(ClusterError, match=expected) as info:
            Cluster(f"tcp://127.0.0.1:{port}", timeout=1).open()
        assert "\n" not in str(info.value)
        for conn in accepted:
            conn.close()


def test_workers_must_see_the_data_folder(dask_cluster, tmp_path):
    address, _ = dask_cluster
    with pytest.raises(ClusterError, match="do not see the folder"):
        open_cluster(address, folders=[tmp_path / "nowhere"])


def test_commands_do_not_import_dask():
    code = (
        "import sys, knn_genre.build_features, knn_genre.predict, knn_genre.evaluate, knn_genre.train, knn_genre.demo;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_closing_a_cluster_keeps_its_event_loops_cancelled_callbacks_quiet(caplog):
    import logging

    from knn_genre.pipeline.cluster import _quiet_event_loops

    loop_log = logging.getLogger("tornado.application")
    names = ("tornado", "tornado.application", "asyncio", "distributed", "distributed.client")
    before = [logging.getLogger(n).level for n in names]
    with _quiet_event_loops():
        try:
            raise RuntimeError("a callback cancelled by the close")
        except RuntimeError:
            loop_log.error("Exception in callback", exc_info=True)  # as tornado logs it
    assert caplog.records == []
    assert [logging.getLogger(n).level for n in names] == before
    loop_log.error("after the close")  # the loggers speak again
    assert [r.getMessage() for r in caplog.records] == ["after the close"]


@pytest.fixture
def blind_worker(library, tmp_path):
    """A scheduler with one real worker that sees the genre folders of ``library`` but none of its files.

    The worker runs in a mount namespace of its own where an empty copy of the
    folders is bound over the library, as a machine whose shared file system
    holds other data under the same path; the folder check passes for it.
    """
    if not can_mount_privately():
        pytest.skip("needs unshare and mount (root) to give a worker its own view of the files")
    import distributed

    skeleton = tmp_path / "skeleton"
    for genre in GENRES:
        (skeleton / genre).mkdir(parents=True)
    scheduler = distributed.LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None, processes=True)
    script = f"mount --bind {skeleton} {library} && exec {sys.executable} -m distributed.cli.dask_worker {scheduler.scheduler_address} --nthreads 1 --no-dashboard"
    worker = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        restore_workers(scheduler.scheduler_address, n=1)
        yield scheduler.scheduler_address
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        scheduler.close()


def test_a_worker_that_does_not_see_the_files_stops_the_build_instead_of_skipping_them(blind_worker, library, tmp_path, capsys):
    out = tmp_path / "f.npz"
    assert main([str(library), "-o", str(out), "--scheduler", blind_worker, "-q"]) == 1
    err = capsys.readouterr().err
    assert "a Dask worker found no file" in err and "every worker must see the data under the same path" in err
    assert "Traceback" not in err and not out.exists()  # no feature file that silently lacks the tracks


def test_a_worker_that_does_not_see_the_files_stops_tagging_with_the_rows_kept(blind_worker, library, local_build, tmp_path, capsys):
    from knn_genre.predict import main as predict_main
    from knn_genre.train import main as train_main

    model = tmp_path / "m.npz"  # outside the library: the worker sees it
    assert train_main(["--features", str(local_build), "--model", "knn", "-o", str(model), "-q"]) == 0
    tags = tmp_path / "tags.csv"
    assert predict_main([str(library), "--model", str(model), "-o", str(tags), "--scheduler", blind_worker, "-q"]) == 1
    err = capsys.readouterr().err
    assert "a Dask worker found no file" in err and "run the same command again" in err
    assert "no such file" not in tags.read_text()  # no row records the worker's blindness as the file's fault


def _start_worker(address, env_version=None):
    """A real dask worker process; with ``env_version`` its knn_genre reports that version."""
    patch = f"import knn_genre; knn_genre.__version__ = {env_version!r}; " if env_version else ""
    code = f"{patch}import sys; from distributed.cli.dask_worker import main; sys.argv = ['dask-worker', {address!r}, '--nthreads', '1', '--no-dashboard', '--no-nanny']; main()"
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def test_a_worker_of_another_version_is_refused_at_start_and_when_it_joins_later(library, tmp_path):
    import distributed

    scheduler = distributed.LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None, processes=True)
    address = scheduler.scheduler_address
    workers = []
    try:
        workers.append(_start_worker(address, "0.0.0-other"))
        restore_workers(address, n=1)
        with pytest.raises(ClusterError, match=r"runs knn_genre 0\.0\.0-other, numpy .*, this machine knn_genre .*: its features would differ"):
            open_cluster(address)
        # The same worker joining after the check at start-up is caught by its first results.
        os.killpg(workers.pop().pid, signal.SIGKILL)
        workers.append(_start_worker(address))
        restore_workers(address, n=1)
        with open_cluster(address) as cluster:
            workers.append(_start_worker(address, "0.0.0-other"))
            restore_workers(address, n=2)
            with distributed.Client(address, set_as_default=False) as client:
                good = [w for w, v in client.run(lambda: __import__("knn_genre").__version__).items() if v != "0.0.0-other"]
                client.retire_workers(good)  # only the late worker is left to run the tasks
            found = discover(library)
            with pytest.raises(ClusterError, match=r"worker tcp://.* runs knn_genre 0\.0\.0-other"):
                build_featureset(library, found, cluster=cluster, checkpoint=None)
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
        scheduler.close()
