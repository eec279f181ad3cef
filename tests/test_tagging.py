"""Tagging a library: one row per file, resumable, the same rows locally and on a cluster."""

import csv
import json
import os
import signal

import numpy as np
import pytest
from wavs import tone, write_wav

from knn_genre import predict
from knn_genre.build_features import main as build_main
from knn_genre.classifiers.model import load_model
from knn_genre.pipeline.apply import predict_file
from knn_genre.pipeline.tagging import CSV_COLUMNS, TagOutput, count_audio_files, iter_audio_files, tag_library
from knn_genre.predict import main
from knn_genre.train import main as train_main


@pytest.fixture(scope="module")
def model(collection, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    assert build_main([str(collection), "-o", str(folder / "f.npz"), "--jobs", "1", "-q"]) == 0
    assert train_main(["--features", str(folder / "f.npz"), "--model", "knn", "--k", "3", "-o", str(folder / "knn.npz"), "-q"]) == 0
    return folder / "knn.npz"


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """24 clips in nested folders, a hidden file, a non-audio file and a broken one."""
    root = tmp_path_factory.mktemp("library")
    for i in range(24):
        write_wav(root / f"disc{i % 3}" / ("cd2" if i % 2 else "") / f"track {i:02d}, live.wav", tone(2.0, seed=i))
    (root / ".hidden.wav").write_bytes(b"RIFF")
    (root / "notes.txt").write_text("not audio")
    (root / "disc0" / "broken.wav").write_bytes(b"RIFF junk")
    return root


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    return [dict(zip(CSV_COLUMNS, r)) for r in rows[1:]]


def test_folders_are_walked_recursively_in_a_fixed_order(library):
    found = list(iter_audio_files([library]))
    paths = [p for p, problem in found]
    assert len(paths) == 25 and all(problem is None for _, problem in found)
    assert paths == sorted(paths, key=lambda p: os.path.relpath(p, library).split(os.sep))  # by name, folder by folder
    assert not any(".hidden" in p or p.endswith(".txt") for p in paths)
    assert paths == [p for p, _ in iter_audio_files([library])]
    assert count_audio_files([library]) == 25


def test_a_csv_row_per_file_with_what_predict_says(model, library, tmp_path, capsys):
    out = tmp_path / "tags.csv"
    assert main([str(library), "--model", str(model), "-o", str(out), "--jobs", "2", "-q"]) == 1  # one broken file
    rows = read_csv(out)
    assert sorted(r["path"] for r in rows) == sorted(p for p, _ in iter_audio_files([library]))
    broken = [r for r in rows if r["error"]]
    assert [os.path.basename(r["path"]) for r in broken] == ["broken.wav"]
    assert broken[0]["genre"] == "" and broken[0]["probability"] == ""
    loaded = load_model(model)
    for row in rows[:5]:
        if row["error"]:
            continue
        pred = predict_file(loaded, row["path"])
        assert row["genre"] == pred.genre
        assert float(row["probability"]) == pytest.approx(pred.top(1)[0][1], abs=1e-6)
        assert [t.split("=")[0] for t in row["top"].split(";")] == [g for g, _ in pred.top(3)]
        assert int(row["windows"]) == len(pred.windows)
    err = capsys.readouterr().err
    assert "broken.wav" in err and "1 of 25 files could not be predicted" in err


def test_interrupted_tagging_resumes_with_every_file_exactly_once(model, library, tmp_path, monkeypatch, capsys):
    out = tmp_path / "tags.jsonl"
    real = predict.tag_library

    def interrupted_after(n):
        def run(*args, on_progress=None, **kwargs):
            def progress(done, total):
                if on_progress:
                    on_progress(done, total)
                if done == n:
                    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, handled by the command
            return real(*args, on_progress=progress, **kwargs)

        return run

    monkeypatch.setattr(predict, "tag_library", interrupted_after(7))
    assert main([str(library), "--model", str(model), "-o", str(out), "--jobs", "1", "--progress"]) == 130
    assert "run the same command again to continue" in capsys.readouterr().err
    first = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(first) == 7
    # A row half written by a run killed at that moment is cut off, not kept.
    with open(out, "a") as fh:
        fh.write('{"path": "half a ro')
    monkeypatch.setattr(predict, "tag_library", real)
    broken_left = not any(r["error"] for r in first)  # the status is of the files of this run
    assert main([str(library), "--model", str(model), "-o", str(out), "--jobs", "2", "-q"]) == (1 if broken_left else 0)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    paths = [r["path"] for r in rows]
    assert sorted(paths) == sorted(p for p, _ in iter_audio_files([library]))  # every file exactly once
    assert rows[:7] == first
    assert "already has 7 rows" in capsys.readouterr().err
    # Nothing left to do: status 0, nothing appended.
    assert main([str(library), "--model", str(model), "-o", str(out), "-q"]) == 0
    assert out.read_text().count("\n") == len(rows)


def test_tagging_on_a_cluster_gives_the_local_rows(dask_cluster, model, library, tmp_path):
    address, _ = dask_cluster
    local, remote = tmp_path / "local.csv", tmp_path / "cluster.csv"
    assert main([str(library), "--model", str(model), "-o", str(local), "--jobs", "1", "-q"]) == 1
    assert main([str(library), "--model", str(model), "-o", str(remote), "--scheduler", address, "-q"]) == 1

    def by_path(path):
        return {r["path"]: r for r in read_csv(path)}

    assert by_path(remote) == by_path(local)


def test_interrupted_cluster_tagging_resumes_with_every_file_exactly_once(dask_cluster, model, library, tmp_path):
    address, _ = dask_cluster
    from knn_genre.pipeline.cluster import Cluster

    out = tmp_path / "tags.csv"

    def stop_after_five(done, total):
        if done == 5:
            raise KeyboardInterrupt

    with Cluster(address) as cluster:
        with TagOutput(out) as output, pytest.raises(KeyboardInterrupt):
            tag_library(model, [library], output, cluster=cluster, on_progress=stop_after_five)
        assert len(read_csv(out)) == 5
        with TagOutput(out) as output:
            assert output.rows_before == 5
            report = tag_library(model, [library], output, cluster=cluster)
    assert (report.done, report.already) == (20, 5)
    rows = read_csv(out)
    assert sorted(r["path"] for r in rows) == sorted(p for p, _ in iter_audio_files([library]))
    assert [os.path.basename(r["path"]) for r in rows if r["error"]] == ["broken.wav"]


def test_a_foreign_file_is_not_appended_to(model, library, tmp_path, capsys):
    out = tmp_path / "other.csv"
    out.write_text("a,b\n1,2\n")
    assert main([str(library), "--model", str(model), "-o", str(out), "-q"]) == 2
    assert "not a tagging output" in capsys.readouterr().err
    assert out.read_text() == "a,b\n1,2\n"
    assert main([str(library), "--model", str(model), "-o", str(tmp_path / "x.txt"), "-q"]) == 2
    assert ".csv or .jsonl" in capsys.readouterr().err


def test_options_that_need_an_output(model, library, capsys):
    with pytest.raises(SystemExit):
        main([str(library), "--model", str(model), "--jobs", "2"])
    assert "--output" in capsys.readouterr().err


def test_folders_without_output_print_one_line_per_file(model, library, capsys):
    assert main([str(library / "disc1"), "--model", str(model)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8 and all("window" in line for line in lines)


def test_a_full_disk_stops_tagging_with_one_line_and_the_next_run_goes_on(model, library, tmp_path):
    import subprocess
    import sys

    from conftest import can_mount_privately

    if not can_mount_privately():
        pytest.skip("needs unshare and mount (root) to give the command a small disk of its own")
    # A 4-KiB file system, in a mount namespace of the command's own, holds a few of the rows.
    disk, kept = tmp_path / "disk", tmp_path / "tags.jsonl"
    disk.mkdir()
    command = f"{sys.executable} -m knn_genre.predict {library} --model {model} -o {disk}/tags.jsonl --jobs 1 -q"
    script = f"mount -t tmpfs -o size=4k tmpfs {disk} && {{ {command}; status=$?; cp {disk}/tags.jsonl {kept}; exit $status; }}"
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "No space left on device" in done.stderr and "run the same command again to continue" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    whole = [json.loads(line) for line in kept.read_text().split("\n")[:-1]]  # the rows that end in a newline
    assert 0 < len(whole) < 25
    # With space again, the next run cuts a partial last row off and tags the rest, each file once;
    # its status is of its own files: 1 if the broken file is among them.
    broken_left = not any(r["error"] for r in whole)
    assert main([str(library), "--model", str(model), "-o", str(kept), "--jobs", "1", "-q"]) == (1 if broken_left else 0)
    paths = [json.loads(line)["path"] for line in kept.read_text().splitlines()]
    assert sorted(paths) == sorted(p for p, _ in iter_audio_files([library]))


def test_an_empty_folder_among_the_paths_is_named_and_a_missing_output_folder_refused(model, library, tmp_path, capsys):
    empty = tmp_path / "empty.wav"  # a folder, whatever its name
    empty.mkdir()
    (empty / "notes.txt").write_text("no audio here")
    song = next(p for p, _ in iter_audio_files([library]) if "broken" not in p)
    assert main([song, str(empty), "--model", str(model)]) == 0
    captured = capsys.readouterr()
    assert f"note: {empty}: no audio files in this folder (.wav" in captured.err
    assert captured.out.count("\n") == 1  # the song's line
    target = tmp_path / "missing" / "tags.csv"
    assert main([str(library), "--model", str(model), "-o", str(target)]) == 2
    assert f"cannot write {target}: the folder {target.parent} does not exist; create it first" in capsys.readouterr().err
    assert not target.parent.exists()
