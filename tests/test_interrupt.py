"""Interrupted builds: the previous output survives, finished work is reused."""

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest
from wavs import tone, write_wav

from knn_genre import build_features, store
from knn_genre.pipeline import build as builder
from knn_genre.build_features import checkpoint_path, main
from knn_genre.pipeline.build import build_featureset
from knn_genre.pipeline.discover import discover
from knn_genre.errors import BuildError

GENRES = ("a", "b", "c", "d", "e")
PER_GENRE = 12


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """One 5 s clip; collections are hard links to it, so they cost nothing to make."""
    return write_wav(tmp_path_factory.mktemp("clip") / "clip.wav", tone(5.0))


def populate(root, clip, genres):
    for genre in genres:
        (root / genre).mkdir(parents=True, exist_ok=True)
        for i in range(PER_GENRE):
            target = root / genre / f"{genre}.{i:02d}.wav"
            if not target.exists():
                try:
                    os.link(clip, target)
                except OSError:
                    shutil.copy(clip, target)
    return root


@pytest.mark.parametrize("families", [("gaussian",), ("gaussian", "table")])
def test_checkpoints_grow_and_an_interruption_saves_the_finished_tracks(tmp_path, clip, families):
    data = populate(tmp_path / "data", clip, GENRES[:2])
    found = discover(data)
    saved = []

    def stop_after_five(done, total):
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_featureset(data, found, n_jobs=1, on_progress=stop_after_five, checkpoint=saved.append, checkpoint_interval=0, families=families)
    assert [len(fs) for fs in saved] == [1, 2, 3, 4, 5]  # after each track; nothing new to save at the stop
    assert all(fs.families == families for fs in saved)
    fs, report = build_featureset(data, found, n_jobs=1, previous=[None, saved[-1]], families=families)
    assert (report.reused, report.analysed, len(fs)) == (5, 2 * PER_GENRE - 5, 2 * PER_GENRE)
    fresh, _ = build_featureset(data, found, n_jobs=1, families=families)
    for name in families:
        np.testing.assert_array_equal(fs.features(name), fresh.features(name))


def test_a_failing_worker_pool_is_a_build_error_after_saving(tmp_path, clip, monkeypatch):
    data = populate(tmp_path / "data", clip, GENRES[:1])
    found = discover(data)
    real_run_tasks = builder.run_tasks

    def pool_dying_after(n):
        def run_tasks(function, tasks, n_jobs):
            for done, result in enumerate(real_run_tasks(function, tasks, 1)):
                if done == n:
                    raise BrokenProcessPool("A process in the process pool was terminated abruptly")
                yield result

        return run_tasks

    monkeypatch.setattr(builder, "run_tasks", pool_dying_after(3))
    saved = []
    with pytest.raises(BuildError, match=r"a/a.03.wav or a track after it .*BrokenProcessPool: A process in the"):
        build_featureset(data, found, n_jobs=2, checkpoint=saved.append, checkpoint_interval=60)
    assert len(saved[-1]) == 3

    monkeypatch.setattr(builder, "run_tasks", pool_dying_after(0))
    with pytest.raises(BuildError, match=r"failed before finishing any track \(BrokenProcessPool: .*try --jobs 1"):
        build_featureset(data, found, n_jobs=2)


def test_a_killed_worker_is_a_build_error_not_a_hang(tmp_path, clip, monkeypatch):
    # A real worker process killed mid-run (as the kernel's OOM killer would).
    data = populate(tmp_path / "data", clip, GENRES[:1])
    # The first track: a worker always takes it (this process works from the back).
    victim = tmp_path / "data" / "a" / "a.00.wav"
    monkeypatch.setattr(builder, "_analyse_safely", _kill_self_on(str(victim)))
    saved = []
    with pytest.raises(BuildError, match=r"a worker process may have run out of memory|failed before finishing"):
        build_featureset(data, discover(data), n_jobs=2, checkpoint=saved.append, checkpoint_interval=60)


class _kill_self_on:
    """A task function that SIGKILLs its worker process on one path (picklable)."""

    def __init__(self, path):
        self.path = path
        self.caller = os.getpid()

    def __call__(self, path, *args):
        if path == self.path and os.getpid() != self.caller:
            os.kill(os.getpid(), signal.SIGKILL)
        return _real_analyse_safely(path, *args)


_real_analyse_safely = builder._analyse_safely


def test_command_stopped_by_a_signal_keeps_work_and_previous_output(tmp_path, clip, monkeypatch, capsys):
    data = populate(tmp_path / "data", clip, GENRES[:1])
    out = tmp_path / "f.npz"
    assert main([str(data), "-o", str(out), "--jobs", "1", "-q"]) == 0
    before = out.read_bytes()
    populate(data, clip, GENRES[1:3])
    real = build_features.build_featureset

    def signal_midway(*args, on_progress, **kwargs):
        def progress(done, total):
            on_progress(done, total)
            if done == PER_GENRE + 4:
                os.kill(os.getpid(), signal.SIGTERM)  # handled by the command, in this process

        return real(*args, on_progress=progress, **kwargs)

    monkeypatch.setattr(build_features, "build_featureset", signal_midway)
    capsys.readouterr()
    assert main([str(data), "-o", str(out), "--jobs", "1", "-q", "--checkpoint-every", "60"]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert f"interrupted by SIGTERM after {PER_GENRE + 4} of {3 * PER_GENRE} tracks" in err
    assert "run the same command again" in err and "Traceback" not in err
    assert out.read_bytes() == before
    assert len(store.load(checkpoint_path(out))) == PER_GENRE + 4
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored

    monkeypatch.setattr(build_features, "build_featureset", real)
    assert main([str(data), "-o", str(out), "--jobs", "1", "-q"]) == 0
    assert f"analysed {2 * PER_GENRE - 4}, reused {PER_GENRE + 4}" in capsys.readouterr().out
    assert not checkpoint_path(out).exists()
    assert len(store.load(out)) == 3 * PER_GENRE


def test_strict_failure_keeps_the_analysed_tracks_for_the_next_run(tmp_path, clip, capsys):
    data = populate(tmp_path / "data", clip, GENRES[:1])
    (data / "a" / "broken.wav").write_bytes(b"junk")
    out = tmp_path / "f.npz"
    assert main([str(data), "-o", str(out), "--jobs", "1", "-q", "--strict"]) == 1
    assert f"the {PER_GENRE} finished track(s) are kept in" in capsys.readouterr().err
    assert not out.exists()
    (data / "a" / "broken.wav").unlink()
    assert main([str(data), "-o", str(out), "--jobs", "1", "-q", "--strict"]) == 0
    assert f"analysed 0, reused {PER_GENRE}" in capsys.readouterr().out


def test_damaged_checkpoint_is_ignored_with_a_note(tmp_path, clip, capsys):
    data = populate(tmp_path / "data", clip, GENRES[:1])
    out = tmp_path / "f.npz"
    checkpoint_path(out).write_bytes(b"PK\x03\x04 half a file")
    assert main([str(data), "-o", str(out), "--jobs", "1", "-q"]) == 0
    assert "note: not reusing" in capsys.readouterr().err
    assert not checkpoint_path(out).exists()


def run_and_kill(data, out, sig, jobs, *, group=False):
    """Start a real build, wait for its first checkpoint, send ``sig``; the process' exit status and stderr."""
    partial = checkpoint_path(out)
    with open(out.parent / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "knn_genre.build_features", str(data), "-o", str(out), "--jobs", str(jobs), "--checkpoint-every", "0"],
            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            assert proc.poll() is None, "the build finished before it could be interrupted"
            (os.killpg if group else os.kill)(proc.pid, sig)
            status = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    return status, (out.parent / "stderr.txt").read_text()


@pytest.mark.parametrize(
    "sig, jobs, group, status",
    [
        (signal.SIGKILL, 2, False, -signal.SIGKILL),
        (signal.SIGTERM, 2, False, 128 + signal.SIGTERM),
        (signal.SIGINT, 2, True, 128 + signal.SIGINT),  # Ctrl-C reaches the workers too
    ],
    ids=["SIGKILL", "SIGTERM", "SIGINT"],
)
def test_killed_build_leaves_previous_output_and_next_run_reuses_its_work(tmp_path, clip, capsys, sig, jobs, group, status):
    data = populate(tmp_path / "data", clip, GENRES[:1])
    out = tmp_path / "out" / "f.npz"
    out.parent.mkdir()
    assert main([str(data), "-o", str(out), "--jobs", "1", "-q"]) == 0
    before = out.read_bytes()
    populate(data, clip, GENRES)

    code, err = run_and_kill(data, out, sig, jobs, group=group)
    assert code == status
    assert "Traceback" not in err
    if sig != signal.SIGKILL:
        assert f"interrupted by {signal.Signals(sig).name}" in err and "run the same command again" in err
    assert out.read_bytes() == before  # untouched, and still a valid feature file
    assert len(store.load(out)) == PER_GENRE
    partial = store.load(checkpoint_path(out))
    assert len(partial) > PER_GENRE

    capsys.readouterr()
    assert main([str(data), "-o", str(out), "--jobs", "2", "-q"]) == 0
    summary = capsys.readouterr().out
    reused = int(summary.split("reused ")[1].split()[0])
    assert reused >= len(partial) > PER_GENRE
    assert len(store.load(out)) == len(GENRES) * PER_GENRE
    assert not checkpoint_path(out).exists()
