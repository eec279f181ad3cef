"""The bad-input matrix: every broken file named with a one-line reason, every valid one built."""

import io
import os
import subprocess
import sys

import pytest
from crafted import write_matrix, write_non_utf8_name
from wavs import tone, write_wav, analyse_track

from knn_genre import store
from knn_genre.build_features import main
from knn_genre.errors import AudioError, KnnGenreError


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """DATA_DIR with the matrix in jazz/ and two plain tracks in rock/."""
    root = tmp_path_factory.mktemp("matrix")
    cases = write_matrix(root / "jazz")
    for i in range(2):
        write_wav(root / "rock" / f"rock.{i}.wav", tone(1.0, seed=i))
    return root, cases


def test_reader_gives_each_case_its_reason(matrix):
    root, cases = matrix
    for name, expected in cases.items():
        path = root / "jazz" / name
        if expected is None:
            mean, cov = analyse_track(path)
            assert mean.shape == (13,) and cov.shape == (13, 13), name
            continue
        with pytest.raises(KnnGenreError) as info:
            analyse_track(path)
        assert expected in info.value.reason, name
        assert info.value.path == str(path)
        assert "\n" not in str(info.value)


def build(root, out, *extra):
    return main([str(root), "-o", str(out), "--jobs", "1", "-q", *extra])


def test_build_skips_each_bad_file_with_its_reason_and_builds_the_rest(matrix, tmp_path, capsys):
    root, cases = matrix
    out = tmp_path / "f.npz"
    assert build(root, out) == 0
    err = capsys.readouterr().err
    fs = store.load(out)
    skipped = dict(fs.skipped)
    for name, expected in cases.items():
        rel = f"jazz/{name}"
        if expected is None:
            assert rel in fs.paths.tolist(), name
        else:
            assert expected in skipped[rel], name
            line = next(line for line in err.splitlines() if line.startswith(f"skipped {rel}: "))
            assert expected in line
    assert len(fs) == 2 + sum(e is None for e in cases.values())
    assert "Traceback" not in err


def test_strict_refuses_the_matrix_and_writes_nothing(matrix, tmp_path, capsys):
    root, cases = matrix
    out = tmp_path / "f.npz"
    assert build(root, out, "--strict") == 1
    err = capsys.readouterr().err
    assert f"--strict: {sum(e is not None for e in cases.values())} file(s) skipped" in err
    assert not out.exists()


def test_only_bad_files_is_a_usage_error(tmp_path, capsys):
    write_matrix(tmp_path / "data" / "jazz")
    for name in os.listdir(tmp_path / "data" / "jazz"):
        path = tmp_path / "data" / "jazz" / name
        if name.startswith(("pcm_", "float_32", "float_64", "six", "extreme", "música", "metadata", "streaming")):
            path.unlink()
    assert build(tmp_path / "data", tmp_path / "f.npz") == 2
    assert "no usable track" in capsys.readouterr().err
    assert not (tmp_path / "f.npz").exists()


def test_the_command_itself_prints_no_traceback(matrix, tmp_path):
    # What a user sees: a real process, the default worker pool.
    root, cases = matrix
    out = tmp_path / "f.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "knn_genre.build_features", str(root), "-o", str(out), "--jobs", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    skip_lines = [line for line in proc.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skip_lines) == sum(e is not None for e in cases.values())
    assert len(store.load(out)) == 2 + sum(e is None for e in cases.values())


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_skipped(tmp_path, capsys):
    for i in range(2):
        write_wav(tmp_path / "data" / "rock" / f"{i}.wav", tone(1.0, seed=i))
    os.chmod(tmp_path / "data" / "rock" / "1.wav", 0)
    assert build(tmp_path / "data", tmp_path / "f.npz") == 0
    assert "skipped rock/1.wav: permission denied" in capsys.readouterr().err


def test_unreadable_file_is_skipped_simulated(tmp_path, capsys, monkeypatch):
    # The same case where the tests run as root: the operating system's answer is simulated.
    for i in range(2):
        write_wav(tmp_path / "data" / "rock" / f"{i}.wav", tone(1.0, seed=i))
    locked = str(tmp_path / "data" / "rock" / "1.wav")
    real_open = os.open

    def fake_open(path, *args, **kwargs):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    with pytest.raises(AudioError, match="permission denied"):
        analyse_track(locked)
    assert build(tmp_path / "data", tmp_path / "f.npz") == 0
    assert "skipped rock/1.wav: permission denied" in capsys.readouterr().err


def test_unlistable_genre_folder_is_reported(tmp_path, capsys, monkeypatch):
    for genre in ("jazz", "rock"):
        write_wav(tmp_path / "data" / genre / "a.wav", tone(1.0))
    real_scandir = os.scandir

    def fake_scandir(path="."):
        if os.fspath(path).endswith("jazz"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", fake_scandir)
    assert build(tmp_path / "data", tmp_path / "f.npz") == 0
    assert "skipped jazz/: cannot list the folder: Permission denied" in capsys.readouterr().err
    assert store.load(tmp_path / "f.npz").skipped == (("jazz/", "cannot list the folder: Permission denied"),)


def test_names_that_are_not_utf8_or_hold_control_characters(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "rock"
    name = write_non_utf8_name(folder)
    (folder / "two\nlines.wav").write_bytes(b"junk")
    # A terminal that can only show ASCII must not make the command fail.
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out_bytes, encoding="ascii"))
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(err_bytes, encoding="ascii"))
    status = build(tmp_path / "data", tmp_path / "f.npz")
    sys.stdout.flush()
    sys.stderr.flush()
    assert status == 0
    err = err_bytes.getvalue().decode("ascii")
    assert err.splitlines() == ["skipped rock/two\\nlines.wav: not a wav file: starts with 'junk', a text file"]
    assert store.load(tmp_path / "f.npz").paths.tolist() == [f"rock/{name}"]


def test_output_that_is_a_folder_or_unwritable_is_a_usage_error_before_any_work(tmp_path, capsys):
    write_wav(tmp_path / "data" / "rock" / "a.wav", tone(1.0))
    (tmp_path / "out").mkdir()
    assert build(tmp_path / "data", tmp_path / "out") == 2
    assert "is a directory" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert build(tmp_path / "data", tmp_path / "file" / "f.npz") == 2
    assert "file is a file, not a folder" in capsys.readouterr().err
    assert build(tmp_path / "data", tmp_path / "missing" / "f.npz") == 2
    assert "the folder" in capsys.readouterr().err and not (tmp_path / "missing").exists()
