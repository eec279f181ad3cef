"""Copies in a collection: found by build_features and evaluate, warned about when split, dropped on request."""

import json
import shutil

import numpy as np
import pytest
from scipy.io import wavfile

from knn_genre.audio.synth import write_collection
from knn_genre.build_features import main as build_main
from knn_genre.classifiers.duplicates import gaussian_duplicates, keep_one_of_each, track_gaussians, vector_duplicates
from knn_genre.evaluate import main as evaluate_main
from knn_genre.store.models import load_model_file
from knn_genre.train import main as train_main

COPIES = ["drums/drums.00002.wav", "drums/drums.00100.wav", "drums/drums.00101.wav", "organ/organ.00100.wav"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The test collection plus three copies of drums.00002: exact, at half the gain, and re-encoded
    as 32-bit float stereo at -3 dB filed under another genre (GTZAN has such a pair, metal.00058 and rock.00016)."""
    root = tmp_path_factory.mktemp("planted")
    write_collection(root, n_per_genre=6, seconds=1.5, seed=0, bleed=0.0)
    source = root / "drums" / "drums.00002.wav"
    rate, x = wavfile.read(source)
    shutil.copy(source, root / "drums" / "drums.00100.wav")
    wavfile.write(root / "drums" / "drums.00101.wav", rate, np.round(x * 0.5).astype(np.int16))
    stereo = (x.astype(np.float32) / 32768 * 10 ** (-3 / 20))[:, None].repeat(2, axis=1)
    wavfile.write(root / "organ" / "organ.00100.wav", rate, stereo)
    out = root / "features.npz"
    assert build_main([str(root), "-o", str(out), "--jobs", "1", "-q"]) == 0
    return root, out


def test_build_features_reports_the_planted_copies(planted, capsys):
    root, _ = planted
    assert build_main([str(root), "-o", str(root / "again.npz"), "--jobs", "1", "-q"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if "duplicates:" in l)
    assert "1 group(s) of copies, 4 tracks" in line and " = ".join(COPIES) in line


def test_build_features_finds_no_copies_where_there_are_none(collection, tmp_path, capsys):
    assert build_main([str(collection), "-o", str(tmp_path / "f.npz"), "--jobs", "1", "-q"]) == 0
    assert "duplicates: none (symmetric KL between track Gaussians without c0, below 1 nat)" in capsys.readouterr().out


def test_evaluate_reports_copies_and_warns_when_they_straddle_the_folds(planted, tmp_path, capsys):
    _, features = planted
    out = tmp_path / "r.json"
    assert evaluate_main(["--features", str(features), "--models", "knn,dummy", "--folds", "3", "--k", "3", "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Duplicates: 1 group(s) of copies, 4 tracks" in captured.out
    data = json.loads(out.read_text())
    assert data["duplicates"]["groups"] == [COPIES]
    assert len(data["duplicates"]["pairs"]) == 6
    exact = next(p for p in data["duplicates"]["pairs"] if {p["a"], p["b"]} == set(COPIES[:2]))
    assert exact["distance"] == 0.0
    # With 4 copies in 3 folds some pair is on both sides of a split, and evaluate says so.
    assert data["duplicates"]["across_splits"]
    assert "pair(s) of copies straddle the splits" in captured.err and "--drop-duplicates keeps one of each group" in captured.err


def test_drop_duplicates_keeps_one_of_each_group(planted, tmp_path, capsys):
    _, features = planted
    out = tmp_path / "r.json"
    argv = ["--features", str(features), "--models", "knn", "--folds", "3", "--k", "3", "--drop-duplicates", "--json", str(out)]
    assert evaluate_main(argv) == 0
    captured = capsys.readouterr()
    data = json.loads(out.read_text())
    assert data["duplicates"]["dropped"] == COPIES[1:]
    assert data["protocol"]["n_tracks"] == 30
    tested = {p["track"] for p in data["models"]["knn"]["predictions"]}
    assert COPIES[0] in tested and not tested & set(COPIES[1:])
    assert "straddle" not in captured.err and "left out 3 copies" in captured.out


def test_copies_in_a_feature_table(tmp_path, capsys):
    lines = ["filename,length," + ",".join(f"f{j}" for j in range(8)) + ",label"]
    rng = np.random.default_rng(0)
    for g in ("jazz", "rock"):
        for i in range(8):
            values = rng.normal(size=8) + (g == "rock") * 3
            lines.append(f"{g}.{i:05d}.wav,1," + ",".join(f"{v:.6f}" for v in values) + f",{g}")
    lines.append(lines[1].replace("jazz.00000", "jazz.00050"))  # an exact repeat
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "r.json"
    assert evaluate_main(["--features-csv", str(path), "--models", "knn", "--folds", "3", "--k", "3", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["duplicates"]["groups"] == [["jazz.00000.wav", "jazz.00050.wav"]]
    assert "root-mean-square difference between standardised feature rows" in capsys.readouterr().out


def test_gain_only_moves_c0_which_the_detector_ignores():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(3, 4))
    covs = np.tile(np.eye(4), (3, 1, 1))
    louder = means[:1].copy()
    louder[0, 0] += 20.0  # a gain changes c0 only
    found = gaussian_duplicates(np.vstack([means, louder]), np.vstack([covs, covs[:1]]), ["a", "b", "c", "a-louder"])
    assert found.groups == [["a", "a-louder"]] and found.pairs[0][2] == 0.0
    assert keep_one_of_each(found) == {"a-louder"}
    assert gaussian_duplicates(means, covs, ["a", "b", "c"], threshold=0.0).groups == []


def test_copies_of_copies_form_one_group():
    X = np.array([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [9.0, 9.0], [0.0, 9.0]])
    # Rows 0-1 and 1-2 are close (standardised), 0-2 is not: still one group of three.
    found = vector_duplicates(X, list("abcde"), threshold=0.14)
    assert found.groups == [["a", "b", "c"]] and len(found.pairs) == 2


def test_segments_are_pooled_into_the_track_gaussian():
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(600, 3)) @ rng.normal(size=(3, 3))
    halves = np.split(frames, [200])
    means = np.array([h.mean(axis=0) for h in halves])
    covs = np.array([np.cov(h.T, bias=True) for h in halves])
    tracks, mean, cov = track_gaussians(means, covs, ["t", "t"], weights=[200, 400])
    assert tracks.tolist() == ["t"]
    np.testing.assert_allclose(mean[0], frames.mean(axis=0))
    np.testing.assert_allclose(cov[0], np.cov(frames.T, bias=True))


def test_train_evaluate_records_and_warns_of_the_copies_across_its_folds(planted, tmp_path, capsys):
    _, features = planted
    report = tmp_path / "r.json"
    assert evaluate_main(["--features", str(features), "--models", "knn", "--folds", "3", "--k", "3", "--json", str(report)]) == 0
    expected = {tuple(sorted((p["a"], p["b"]))) for p in json.loads(report.read_text())["duplicates"]["across_splits"]}
    capsys.readouterr()
    out = tmp_path / "m.npz"
    assert train_main(["--features", str(features), "--k", "3", "--evaluate", "--folds", "3", "-o", str(out)]) == 0
    recorded = load_model_file(out).evaluation["copies_across_folds"]
    assert {tuple(sorted(pair)) for pair in recorded} == expected and expected  # the same folds as evaluate's
    err = capsys.readouterr().err
    assert f"warning: {len(expected)} pair(s) of copies straddle the splits" in err and "inflates the recorded accuracy" in err


def test_evaluate_escapes_the_names_it_prints(tmp_path, capsys):
    # Names come from file systems and shared feature files: a terminal escape or a newline in a
    # genre or a track name is shown escaped, so it neither reaches the terminal nor splits a line.
    root = tmp_path / "c"
    write_collection(root, n_per_genre=6, seconds=1.5, seed=0, bleed=0.0)
    (root / "drums").rename(root / "dr\x1bums")
    source = root / "dr\x1bums" / "drums.00002.wav"
    shutil.copy(source, root / "dr\x1bums" / "copy\nof.00002.wav")
    features = tmp_path / "f.npz"
    assert build_main([str(root), "-o", str(features), "--jobs", "1", "-q"]) == 0
    capsys.readouterr()
    assert evaluate_main(["--features", str(features), "--models", "knn", "--folds", "3", "--k", "3"]) == 0
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err
    assert "dr\\x1bums/copy\\nof.00002.wav" in captured.out  # the copy's group
    assert "dr\\x1bums" in next(line for line in captured.out.splitlines() if line.startswith("dr"))  # the genre tables
    assert evaluate_main(["--features", str(features), "--models", "knn", "--folds", "3", "--k", "3",
                          "--drop-duplicates", "--min-tracks", "2"]) == 0
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err and "\n" not in captured.out.split("left out 1 copies (")[1].split(")")[0]
