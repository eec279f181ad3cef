"""The command line as a user meets it: one entry point, --version, pipes, outputs, permissions, progress."""

import json
import re
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import knn_genre
from knn_genre.build_features import main as build_main
from knn_genre.evaluate import main as evaluate_main
from knn_genre.train import main as train_main

COMMANDS = ["build_features", "evaluate", "train", "predict", "similar", "serve", "demo"]


def run(*args, **kwargs):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, **kwargs)


@pytest.fixture(scope="module")
def features(collection, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "f.npz"
    assert build_main([str(collection), "-o", str(out), "--jobs", "1", "-q"]) == 0
    return out


@pytest.mark.parametrize("module", ["knn_genre", *(f"knn_genre.{c}" for c in COMMANDS)])
def test_every_command_tells_its_version(module):
    done = run("-m", module, "--version")
    assert done.returncode == 0 and done.stdout.strip() == f"knn_genre {knn_genre.__version__}"


def test_the_console_script_runs_the_subcommands(features, tmp_path):
    script = Path(sys.executable).parent / "knn-genre"
    assert script.exists(), "the package is installed with its knn-genre console script"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and all(name in done.stdout for name in ("build", "evaluate", "train", "predict", "demo"))
    done = subprocess.run(
        [str(script), "evaluate", "--features", str(features), "--models", "knn", "--folds", "2", "--k", "3"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0 and "Protocol: stratified 2-fold" in done.stdout
    bad = run("-m", "knn_genre", "evaluate", "--features", str(tmp_path / "none.npz"))
    assert bad.returncode == 2
    assert bad.stderr.startswith("knn-genre evaluate: error:") and "no such feature file; build one with" in bad.stderr
    assert run("-m", "knn_genre", "colour").returncode == 2


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_closed_pipe_ends_the_command_quietly(features, collection, tmp_path, command):
    # As `... | head -1` once head has left: the reading end is closed before the command writes.
    if command == "evaluate":
        args = ["--features", str(features), "--models", "knn,dummy", "--folds", "2", "--k", "3"]
    else:
        assert train_main(["--features", str(features), "-o", str(tmp_path / "m.npz"), "-q"]) == 0
        args = [str(collection / "drums" / "drums.00001.wav"), "--model", str(tmp_path / "m.npz")]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", f"knn_genre.{command}", *args], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""  # no traceback, no "Exception ignored" at exit
    assert done.returncode == 141


def test_json_into_a_missing_folder_fails_before_any_work(features, tmp_path, capsys):
    target = tmp_path / "missing" / "r.json"
    assert evaluate_main(["--features", str(features), "--json", str(target)]) == 2
    err = capsys.readouterr()
    assert "missing does not exist" in err.err and err.out == ""  # no report: nothing was evaluated
    assert not target.parent.exists()
    (tmp_path / "r.json").mkdir()
    assert evaluate_main(["--features", str(features), "--json", str(tmp_path / "r.json")]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert evaluate_main(["--features", str(features), "--plot", str(tmp_path / "c.xyz")]) == 2
    assert "cannot draw a .xyz" in capsys.readouterr().err


def test_files_are_created_with_the_users_umask(collection, features, tmp_path):
    old = os.umask(0o022)
    try:
        assert build_main([str(collection), "-o", str(tmp_path / "f.npz"), "-q", "--jobs", "1"]) == 0
        assert train_main(["--features", str(features), "-o", str(tmp_path / "m.npz"), "-q"]) == 0
        assert evaluate_main(["--features", str(features), "--models", "knn", "--folds", "2", "--json", str(tmp_path / "r.json")]) == 0
        os.umask(0o077)
        assert train_main(["--features", str(features), "-o", str(tmp_path / "private.npz"), "-q"]) == 0
    finally:
        os.umask(old)
    for name in ("f.npz", "m.npz", "r.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    assert stat.S_IMODE((tmp_path / "private.npz").stat().st_mode) == 0o600


def test_evaluate_progress_names_model_fold_and_eta(features, capsys):
    assert evaluate_main(["--features", str(features), "--models", "knn,svm", "--folds", "2", "--k", "3", "--progress"]) == 0
    err = capsys.readouterr().err
    # Folds finish in any order when they run in parallel: the last one is named.
    assert re.search(r"4/4 folds \(100%\) \[(knn|svm) fold [12]/2\]", err) and "ETA" in err
    assert evaluate_main(["--features", str(features), "--models", "knn", "--folds", "2", "--k", "3"]) == 0
    assert capsys.readouterr().err == ""  # stderr is not a terminal here: silent unless asked


def test_evaluate_json_lists_every_out_of_fold_prediction(features, tmp_path):
    out = tmp_path / "r.json"
    assert evaluate_main(["--features", str(features), "--models", "knn", "--folds", "3", "--k", "3", "--json", str(out)]) == 0
    knn = json.loads(out.read_text())["models"]["knn"]
    tracks = [p["track"] for p in knn["predictions"]]
    assert len(tracks) == len(set(tracks)) == 30
    correct = sum(p["genre"] == p["predicted"] for p in knn["predictions"])
    assert correct / 30 == pytest.approx(sum(a * n for a, n in zip(knn["accuracy_per_fold"], (10, 10, 10))) / 30)


@pytest.mark.parametrize("command", ["build_features", "evaluate", "train", "demo", "predict"])
def test_zero_jobs_is_refused_by_every_command_that_takes_jobs(command, capsys):
    import importlib

    main = importlib.import_module(f"knn_genre.{command}").main
    args = {"build_features": ["data-dir-never-read"], "predict": ["song-never-read.wav", "--model", "m.npz", "-o", "t.csv"]}.get(command, [])
    with pytest.raises(SystemExit) as info:
        main([*args, "--jobs", "0"])
    assert info.value.code == 2
    assert "argument --jobs: 0 must be a positive number of processes or -1 for all cores" in capsys.readouterr().err


def test_a_cluster_without_the_dask_extra_is_a_usage_error_before_any_work(features, collection, tmp_path, capsys, monkeypatch):
    from knn_genre.predict import main as predict_main

    model = tmp_path / "m.npz"
    assert train_main(["--features", str(features), "--model", "knn", "-o", str(model), "-q"]) == 0
    capsys.readouterr()
    # None in sys.modules: the packages look uninstalled, as in an installation without the extra.
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "distributed", None)
    runs = {
        "build_features": (build_main, [str(collection), "-o", str(tmp_path / "f.npz")], tmp_path / "f.npz"),
        "evaluate": (evaluate_main, ["--features", str(features), "--json", str(tmp_path / "r.json")], tmp_path / "r.json"),
        "predict": (predict_main, [str(collection), "--model", str(model), "-o", str(tmp_path / "tags.csv")], tmp_path / "tags.csv"),
    }
    for command, (main, args, output) in runs.items():
        assert main([*args, "--scheduler", "local:1"]) == 2, command
        captured = capsys.readouterr()
        assert "needs the packages dask and distributed" in captured.err, command
        assert "pip install 'knn_genre[dask]'" in captured.err, command
        assert captured.out == "", command  # nothing was loaded or compared first
        assert not output.exists(), command
