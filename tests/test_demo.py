import hashlib

import numpy as np
import pytest

from knn_genre import store
from knn_genre.demo import main
from knn_genre.store.models import load_model_file
from knn_genre.audio.synth import GENRES, synthesize, write_collection


def digest(paths):
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def test_collection_is_deterministic_per_seed(tmp_path):
    a = write_collection(tmp_path / "a", n_per_genre=2, seconds=0.5, seed=1)
    b = write_collection(tmp_path / "b", n_per_genre=2, seconds=0.5, seed=1)
    c = write_collection(tmp_path / "c", n_per_genre=2, seconds=0.5, seed=2)
    assert len(a) == 2 * len(GENRES)
    assert digest(a) == digest(b)
    assert digest(a) != digest(c)


def test_clips_are_in_range_and_genres_differ():
    clips = {g: synthesize(g, 0, seconds=1.0) for g in GENRES}
    for x in clips.values():
        assert x.shape == (22050,) and np.abs(x).max() <= 1.0
    assert not np.allclose(clips["drums"], clips["organ"])


def test_demo_runs_the_whole_pipeline(tmp_path, capsys):
    out = tmp_path / "f.npz"
    model = tmp_path / "m.npz"
    status = main(["--dir", str(tmp_path / "demo"), "-o", str(out), "--model-output", str(model), "--clips", "4", "--seconds", "1", "--jobs", "1", "--k", "3"])
    assert status == 0
    assert len(store.load(out)) == 4 * len(GENRES)
    text = capsys.readouterr().out
    assert "Protocol: stratified 4-fold cross-validation" in text and "knn" in text
    # The model it trains records its evaluation, for the web page's model panel.
    evaluation = load_model_file(model).evaluation
    assert evaluation["protocol"].startswith("stratified 4-fold cross-validation, seed 0; 20 tracks")
    assert f"python -m knn_genre.serve --model {model}" in text


def test_demo_regenerates_when_settings_change(tmp_path, capsys):
    folder = tmp_path / "demo"
    args = ["--dir", str(folder), "-o", str(tmp_path / "f.npz"), "--model-output", str(tmp_path / "m.npz"), "--seconds", "1", "--jobs", "1", "--k", "1"]
    assert main([*args, "--clips", "3"]) == 0
    assert main([*args, "--clips", "2"]) == 0
    assert len(list(folder.glob("*/*.wav"))) == 2 * len(GENRES)


@pytest.mark.parametrize(
    "option, target, words",
    [
        ("--dir", "a-file", "--dir {target}: is a file; give a folder for the clips"),
        ("-o", "missing/f.npz", "-o: cannot write {target}: the folder {parent} does not exist"),
        ("--model-output", "missing/m.npz", "--model-output: cannot write {target}: the folder {parent} does not exist"),
    ],
)
def test_where_it_cannot_write_is_refused_before_any_clip_is_written(tmp_path, capsys, option, target, words):
    (tmp_path / "a-file").write_text("")
    target = tmp_path / target
    args = {"--dir": str(tmp_path / "demo"), "-o": str(tmp_path / "f.npz"), "--model-output": str(tmp_path / "m.npz")}
    args[option] = str(target)
    assert main([arg for pair in args.items() for arg in pair] + ["--clips", "2", "--seconds", "1", "--jobs", "1"]) == 2
    assert words.format(target=target, parent=target.parent) in capsys.readouterr().err
    assert not (tmp_path / "demo").exists() and not (tmp_path / "f.npz").exists()
