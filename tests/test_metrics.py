"""Pooled out-of-fold metrics, paired differences, chance levels, single-split reports, the stratified baseline."""

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, balanced_accuracy_score, f1_score, roc_auc_score

from knn_genre import store
from knn_genre.classifiers.registry import make_model
from knn_genre.evaluate import main
from knn_genre.evaluation.report import format_report
from knn_genre.evaluation.scoring import chance_accuracy, compare_models, evaluate_models, pooled_metrics
from knn_genre.evaluation.splits import cross_validation_splits

from test_knn import make_tracks, save_tracks


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    """A feature file of 3 genres x 10 synthetic 4-d Gaussians."""
    X, y = make_tracks(np.random.default_rng(0), 10, d=4, spread=1.0)
    return save_tracks(X, y, tmp_path_factory.mktemp("metrics") / "f.npz")


def run(capsys, tmp_path, *args):
    out = tmp_path / "r.json"
    status = main([*args, "--json", str(out)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err, (json.loads(out.read_text()) if out.exists() else None)


def test_pooled_metrics_are_scikit_learns_on_the_pooled_predictions():
    rng = np.random.default_rng(0)
    genres = np.array(["a", "b", "c"])
    truth = rng.choice(genres, 60)
    proba = rng.dirichlet(np.ones(3), 60)
    proba[np.arange(60), np.searchsorted(genres, truth)] += 0.3
    proba /= proba.sum(axis=1, keepdims=True)
    predicted = genres[proba.argmax(axis=1)]
    m = pooled_metrics(truth, predicted, proba, genres)
    for j, g in enumerate(genres):
        assert m["roc_auc"][j] == pytest.approx(roc_auc_score(truth == g, proba[:, j]))
        assert m["average_precision"][j] == pytest.approx(average_precision_score(truth == g, proba[:, j]))
    assert m["f1"] == pytest.approx(list(f1_score(truth, predicted, average=None, labels=genres)))
    assert m["macro"]["f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert m["weighted"]["f1"] == pytest.approx(f1_score(truth, predicted, average="weighted"))
    assert m["macro"]["roc_auc"] == pytest.approx(roc_auc_score(truth, proba, multi_class="ovr", average="macro"))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, predicted))
    assert sum(m["support"]) == 60


def test_a_genre_without_test_tracks_has_no_auc_and_stays_out_of_the_averages():
    genres = ["a", "b", "c"]
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    m = pooled_metrics(["a", "b", "a"], ["a", "b", "a"], proba, genres)
    assert np.isnan(m["roc_auc"][2]) and np.isnan(m["average_precision"][2])
    assert m["macro"]["f1"] == 1.0 and m["macro"]["roc_auc"] == 1.0


def test_chance_levels():
    assert chance_accuracy("stratified", ["a"] * 3 + ["b"], ["a", "b"]) == pytest.approx(0.75 * 0.5 + 0.25 * 0.5)
    y = ["a"] * 6 + ["b"] * 3 + ["c"]
    assert chance_accuracy("stratified", y, y) == pytest.approx(0.6**2 + 0.3**2 + 0.1**2)
    assert chance_accuracy("most_frequent", y, y) == pytest.approx(0.6)


def test_paired_differences_to_the_best_baseline_and_model(features):
    fs = store.load(features)
    X, y = fs.to_xy()
    splits, _ = cross_validation_splits(y, folds=3, seed=0)
    models = {name: make_model(name, k=3) for name in ("knn", "gnb", "dummy-most-frequent", "dummy-stratified")}
    results = compare_models(evaluate_models(models, X, y, splits), baselines={"dummy-most-frequent", "dummy-stratified"})
    by = {r.name: r for r in results}
    best_dummy = max(("dummy-most-frequent", "dummy-stratified"), key=lambda n: by[n].accuracy_mean)
    best = max(("knn", "gnb"), key=lambda n: by[n].accuracy_mean)
    for r in results:
        diff = 100 * (np.array(r.accuracy_per_fold) - np.array(by[best_dummy].accuracy_per_fold))
        assert r.extra["vs_best_dummy"]["model"] == best_dummy
        assert r.extra["vs_best_dummy"]["points_per_fold"] == pytest.approx(diff.tolist())
        assert r.extra["vs_best_dummy"]["points_std"] == pytest.approx(diff.std())
        assert r.extra["vs_best_model"]["model"] == best
    assert by[best].extra["vs_best_model"]["points_mean"] == 0.0


def test_json_carries_every_metric_and_keeps_the_documented_keys(features, tmp_path, capsys):
    status, text, _, data = run(capsys, tmp_path, "--features", str(features), "--folds", "3", "--k", "3", "--models", "knn,dummy")
    assert status == 0
    for key in ("protocol", "features", "features_kind", "k", "models", "duplicates"):
        assert key in data
    knn = data["models"]["knn"]
    documented = ("accuracy_mean", "accuracy_std", "accuracy_per_fold", "macro_f1", "confusion", "genres", "precision",
                  "recall", "fit_seconds", "predict_seconds", "predictions")
    added = ("balanced_accuracy", "f1", "roc_auc", "average_precision", "support", "macro", "weighted", "vs_best_dummy",
             "vs_best_model", "tested_per_fold")
    for key in documented + added:
        assert key in knn, key
    assert set(knn["macro"]) == set(knn["weighted"]) == {"precision", "recall", "f1", "roc_auc", "average_precision"}
    assert len(knn["roc_auc"]) == len(knn["genres"]) == 3
    # Every prediction carries the track's probabilities, in the order of the genres.
    first = knn["predictions"][0]
    assert len(first["probabilities"]) == 3 and sum(first["probabilities"]) == pytest.approx(1.0)
    assert first["predicted"] == knn["genres"][int(np.argmax(first["probabilities"]))]
    stratified = data["models"]["dummy-stratified"]
    assert stratified["chance_level"] == pytest.approx(1 / 3, abs=0.01) and len(stratified["chance_level_per_fold"]) == 3
    assert "chance_level" not in knn
    assert "vs dummy" in text and "chance" in text and "macro avg" in text and "weighted avg" in text


def test_chance_of_a_segmented_file_is_per_track_as_the_accuracy_beside_it():
    # Six one-segment tracks of "a", six five-segment tracks of "b": "b" has 5/6 of the rows but half the tracks.
    y = np.array(["a"] * 6 + ["b"] * 30)
    groups = np.array([f"a{i}" for i in range(6)] + [f"b{i}" for i in range(6) for _ in range(5)])
    X = np.random.default_rng(0).normal(size=(len(y), 3))
    splits, _ = cross_validation_splits(y, folds=3, groups=groups, seed=0)
    models = {"dummy-most-frequent": make_model("dummy-most-frequent", family="table")}
    (result,) = evaluate_models(models, X, y, splits, groups=groups, chance={"dummy-most-frequent": "most_frequent"})
    # Trained on the rows, the baseline always says "b"; scored per track it is right on half of them.
    assert result.accuracy_per_fold == pytest.approx([0.5, 0.5, 0.5])
    assert result.extra["chance_level_per_fold"] == pytest.approx(result.accuracy_per_fold)


def test_a_single_split_says_how_many_tracks_were_tested_and_shows_no_spread(features, tmp_path, capsys):
    status, text, _, data = run(capsys, tmp_path, "--features", str(features), "--split", "0.5", "--models", "knn,dummy")
    assert status == 0
    assert "single split, tested on 15 tracks" in text
    assert "± 0.000" not in text and "±" not in text.split("Accuracy (")[1].split("\n\n")[0]
    assert data["models"]["knn"]["tested_per_fold"] == [15]


def test_the_stratified_baseline_guesses_afresh_in_every_fold():
    """Stratified test folds list their tracks in the same genre order; the guesses must still differ."""
    rng = np.random.default_rng(0)
    for n_genres, per_genre, folds in ((4, 20, 10), (10, 8, 8)):
        y = np.repeat([f"g{i}" for i in range(n_genres)], per_genre)
        X = rng.normal(size=(len(y), 3))
        splits, _ = cross_validation_splits(y, folds=folds, seed=0)
        (result,) = evaluate_models({"dummy-stratified": make_model("dummy-stratified", family="table", seed=0)}, X, y, splits)
        per_fold = np.array(result.accuracy_per_fold)
        assert len(set(per_fold.tolist())) > 2, per_fold  # not one lucky draw repeated
        chance = 1 / n_genres
        # Pooled over all tracks, the accuracy is a binomial proportion around chance.
        sd = np.sqrt(chance * (1 - chance) / len(y))
        assert abs(result.accuracy_mean - chance) < 3 * sd and result.accuracy_mean > 0


def test_report_prints_chance_beside_the_baselines(features):
    fs = store.load(features)
    X, y = fs.to_xy()
    splits, protocol = cross_validation_splits(y, folds=3, seed=0)
    models = {name: make_model(name, k=3) for name in ("knn", "dummy-stratified")}
    results = compare_models(evaluate_models(models, X, y, splits, chance={"dummy-stratified": "stratified"}), baselines={"dummy-stratified"})
    text = format_report(protocol, results)
    row = next(line for line in text.splitlines() if line.startswith("dummy-stratified"))
    assert f"{results[1].extra['chance_level']:.3f}" in row
    assert "mean ± std over 3 splits" in text


def test_min_tracks_keeps_the_well_populated_genres(tmp_path, capsys):
    X, y = make_tracks(np.random.default_rng(3), 10, d=4, spread=1.0)
    keep = np.r_[0:20, 20:23]  # the third genre keeps 3 tracks
    path = save_tracks(X[keep], y[keep], tmp_path / "f.npz")
    status, text, _, data = run(capsys, tmp_path, "--features", str(path), "--min-tracks", "5", "--models", "knn,dummy", "--k", "3")
    assert status == 0
    assert data["models"]["knn"]["genres"] == sorted(set(y[:20].tolist()))
    assert f"genres with at least 5 tracks: {', '.join(sorted(set(y[:20].tolist())))} (left out: {y[20]} (3))" in text
    assert main(["--features", str(path), "--min-tracks", "11"]) == 2
    assert "--min-tracks 11 leaves 0 genre(s)" in capsys.readouterr().err


def test_training_names_the_genre_with_too_few_tracks(tmp_path, capsys):
    from knn_genre.train import main as train_main

    X, y = make_tracks(np.random.default_rng(3), 10, d=4, spread=1.0)
    keep = np.r_[0:10, 10]  # the second genre has a single track
    path = save_tracks(X[keep], y[keep], tmp_path / "f.npz")
    assert train_main(["--features", str(path), "--model", "klsvm", "-o", str(tmp_path / "m.npz"), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"genre '{y[10]}' (1 track) has too few training tracks for the inner folds of klsvm's search" in err
