"""`train --evaluate`: the model file records the cross-validation `evaluate` reports for the same recipe."""

import json

import pytest

from knn_genre.build_features import main as build_main
from knn_genre.classifiers.model import load_model
from knn_genre.evaluate import main as evaluate_main
from knn_genre.store.models import load_model_file
from knn_genre.train import main as train_main


@pytest.fixture(scope="module")
def features(collection, tmp_path_factory):
    out = tmp_path_factory.mktemp("train-evaluate") / "f.npz"
    assert build_main([str(collection), "-o", str(out), "--jobs", "1", "-q"]) == 0
    return out


@pytest.mark.parametrize("model, k", [("knn", "3"), ("dummy-stratified", "5")])
def test_the_recorded_evaluation_is_what_evaluate_reports(features, tmp_path, capsys, model, k):
    report = tmp_path / "report.json"
    assert evaluate_main(["--features", str(features), "--models", model, "--folds", "3", "--k", k, "--seed", "4", "--json", str(report), "-q"]) == 0
    expected = json.loads(report.read_text())["models"][model]
    out = tmp_path / "m.npz"
    assert train_main(["--features", str(features), "--model", model, "--k", k, "--seed", "4", "--evaluate", "--folds", "3", "-o", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    record = load_model_file(out).evaluation
    assert record["accuracy_per_fold"] == expected["accuracy_per_fold"]
    assert record["accuracy_mean"] == pytest.approx(expected["accuracy_mean"])
    assert record["accuracy_std"] == pytest.approx(expected["accuracy_std"])
    assert record["macro_f1"] == pytest.approx(expected["macro_f1"])
    assert record["protocol"] == "stratified 3-fold cross-validation, seed 4; 30 tracks, 5 genres"
    assert (record["kind"], record["folds"], record["seed"], record["n_tracks"]) == ("cross-validation", 3, 4, 30)
    assert f"evaluated: {record['protocol']}: accuracy {record['accuracy_mean']:.3f} ± {record['accuracy_std']:.3f}" in printed
    assert load_model(out).data.evaluation == record  # it survives loading


def test_segment_models_record_track_accuracy(collection, tmp_path):
    seg = tmp_path / "seg.npz"
    assert build_main([str(collection), "-o", str(seg), "--segment-seconds", "0.5", "--jobs", "1", "-q"]) == 0
    report = tmp_path / "report.json"
    assert evaluate_main(["--features", str(seg), "--models", "knn", "--folds", "3", "--k", "3", "--json", str(report), "-q"]) == 0
    expected = json.loads(report.read_text())["models"]["knn"]
    out = tmp_path / "m.npz"
    assert train_main(["--features", str(seg), "--model", "knn", "--k", "3", "--evaluate", "--folds", "3", "-o", str(out), "-q"]) == 0
    record = load_model_file(out).evaluation
    assert record["accuracy_per_fold"] == expected["accuracy_per_fold"]  # the tracks', as predict decides files
    assert record["accuracy_mean"] == pytest.approx(expected["accuracy_mean"])
    assert record["segment_accuracy_mean"] == pytest.approx(expected["segment_accuracy_mean"])


def test_without_the_option_nothing_is_recorded_and_bad_folds_are_a_usage_error(features, tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert train_main(["--features", str(features), "--k", "3", "-o", str(out)]) == 0
    assert load_model_file(out).evaluation is None
    assert train_main(["--features", str(features), "--evaluate", "--folds", "1", "-o", str(tmp_path / "x.npz")]) == 2
    assert "--folds 1 must be at least 2" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()
    # Folds without --evaluate would be silently unused: refused before training.
    assert train_main(["--features", str(features), "--folds", "3", "-o", str(tmp_path / "y.npz")]) == 2
    assert "--folds 3 sets the folds of --evaluate; add --evaluate" in capsys.readouterr().err
    assert not (tmp_path / "y.npz").exists()
