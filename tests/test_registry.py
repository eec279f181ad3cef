"""The model registry: one table of models, and evaluate scoring exactly what predict applies."""

import json

import numpy as np
import pytest

from sklearn.base import clone
from sklearn.svm import SVC
from test_knn import applicable_checks

from knn_genre import store
from knn_genre.classifiers.baselines import RowSeededDummyClassifier
from knn_genre.classifiers.probability import SoftmaxClassifier
from knn_genre.build_features import main as build_main
from knn_genre.classifiers.registry import ALIASES, REGISTRY, RegisteredModel, decide_groups, expand_names, make_model, model_names
from knn_genre.errors import ParameterError
from knn_genre.evaluate import main as evaluate_main
from knn_genre.predict import main as predict_main
from knn_genre.train import main as train_main

FOLDS = 3


@pytest.fixture(scope="module")
def whole(collection, tmp_path_factory):
    """Both families of the collection in one feature file."""
    out = tmp_path_factory.mktemp("whole") / "f.npz"
    assert build_main([str(collection), "-o", str(out), "--jobs", "1", "-q", "--families", "gaussian,table"]) == 0
    return out


#: Every registry model on every family it accepts; the Gaussian entries by
#: plain name (the default family of a file holding both), the others as NAME:FAMILY.
ENTRIES = [name if family == "gaussian" else f"{name}:{family}" for name, spec in REGISTRY.items() for family in spec.families]


@pytest.fixture(scope="module")
def segmented(collection, tmp_path_factory):
    out = tmp_path_factory.mktemp("seg") / "f.npz"
    assert build_main([str(collection), "-o", str(out), "--jobs", "1", "-q", "--segment-seconds", "0.5", "--families", "gaussian,table"]) == 0
    return out


def evaluate_predictions(features, name, tmp_path, seed):
    out = tmp_path / f"{name}.json"
    argv = ["--features", str(features), "--models", name, "--folds", str(FOLDS), "--k", "3", "--seed", str(seed), "--json", str(out)]
    assert evaluate_main(argv) == 0
    return json.loads(out.read_text())["models"][name]["predictions"]


def train_and_predict(fs, collection, train_tracks, test_tracks, entry, tmp_path, seed):
    """``train`` on the training tracks' rows, then ``predict`` the test files: {track: genre}."""
    name, _, family = entry.partition(":")
    store.save(fs.subset(np.isin(fs.paths, sorted(train_tracks))), tmp_path / "train.npz")
    model = tmp_path / f"{name}.npz"
    argv = ["--features", str(tmp_path / "train.npz"), "--model", name, "--k", "3", "--seed", str(seed), "-o", str(model), "-q", "--jobs", "2"]
    assert train_main(argv + (["--family", family] if family else [])) == 0
    tracks = sorted(test_tracks)
    return dict(zip(tracks, (r["genre"] for r in _predict_json([str(collection / t) for t in tracks], model))))


def _predict_json(files, model):
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert predict_main([*files, "--model", str(model), "--json"]) == 0
    return json.loads(buffer.getvalue())


@pytest.mark.parametrize("name", ENTRIES)
def test_evaluate_scores_what_train_and_predict_deploy(name, whole, collection, tmp_path, capsys):
    """For every registry model and feature family: evaluate's prediction of each test track of
    a fold is the genre that predict gives its file, with a model trained on that fold's training tracks."""
    seed = 4
    predictions = evaluate_predictions(whole, name, tmp_path, seed)
    fs = store.load(whole)
    everything = set(fs.paths.tolist())
    for fold in range(FOLDS):
        tested = {p["track"]: p["predicted"] for p in predictions if p["fold"] == fold}
        deployed = train_and_predict(fs, collection, everything - set(tested), set(tested), name, tmp_path, seed)
        assert deployed == tested, f"{name}, fold {fold}"
    capsys.readouterr()


@pytest.mark.parametrize("name", ["knn", "svm", "dummy-stratified", "knn:table"])
def test_evaluate_scores_what_predict_decides_from_segments(name, segmented, collection, tmp_path, capsys):
    """Segment models: a test track is decided from its segments as predict decides a file from its windows."""
    predictions = evaluate_predictions(segmented, name, tmp_path, 0)
    fs = store.load(segmented)
    tested = {p["track"]: p["predicted"] for p in predictions if p["fold"] == 1}
    deployed = train_and_predict(fs, collection, set(fs.paths.tolist()) - set(tested), set(tested), name, tmp_path, 0)
    assert deployed == tested
    capsys.readouterr()


def test_every_model_can_be_made_for_each_family_it_accepts():
    for name, spec in REGISTRY.items():
        assert spec.families and spec.variant(spec.families[0]).description
        for family in spec.families:
            assert isinstance(make_model(name, family=family, k=3), RegisteredModel)
    assert model_names("table") == ["knn", "svm", "logreg", "rf", "hgb", "mlp", "gnb", "vote", "dummy-most-frequent", "dummy-stratified"]
    assert "fusion" in model_names("gaussian+table") and "fusion" not in model_names("gaussian")
    with pytest.raises(ParameterError, match="width of their Gaussian block"):
        make_model("fusion", family="gaussian+table").fit(np.zeros((4, 6)), ["a", "a", "b", "b"])
    assert expand_names(["dummy", "knn", "dummy-stratified"]) == ["dummy-most-frequent", "dummy-stratified", "knn"]
    assert set(ALIASES["dummy"]) <= set(REGISTRY)
    with pytest.raises(ParameterError, match="unknown model"):
        make_model("forest")
    with pytest.raises(ParameterError, match="does not accept 'table' features"):
        make_model("klsvm", family="table")


@pytest.mark.parametrize("entry", ENTRIES)
def test_groups_of_another_length_than_the_rows_are_refused_by_every_model(entry, whole):
    fs = store.load(whole)
    name, _, family = entry.partition(":")
    family = family or "gaussian"
    X = fs.features(family)
    model = make_model(name, family=family, k=3, gaussian_columns=fs.packed().shape[1])
    groups = np.arange(len(fs.labels)) // 2
    # One short, as a row left out of the groups would leave it in no inner fold.
    for wrong in (groups[:-1], np.r_[groups, groups]):
        with pytest.raises(ParameterError, match=rf"groups must give the track of each of the {len(groups)} rows"):
            model.fit(X, fs.labels, groups=wrong)


def test_ties_of_mean_probabilities_go_to_the_rows_most_frequent_then_earliest_prediction():
    classes = np.array(["a", "b", "c"])
    proba = np.array([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5], [0.2, 0.8, 0.0]])
    rows = np.array(["b", "c", "b", "b"])
    # Group 0: rows 0-2 tie a, b and c at 1.0 each; b is predicted twice.
    # Group 1: one row, no tie.
    assert decide_groups(proba, rows, np.array([0, 0, 0, 1]), 2, classes).tolist() == ["b", "b"]
    # One row tied between a and b: its own prediction decides (the KNN's nearest-neighbour rule).
    assert decide_groups(proba[:1], np.array(["b"]), np.array([0]), 1, classes).tolist() == ["b"]
    # A tie the rows do not settle goes to the earliest row's prediction among the tied.
    assert decide_groups(proba[:2], np.array(["c", "a"]), np.array([0, 0]), 1, classes).tolist() == ["a"]


def test_stratified_baseline_guesses_per_track_not_per_batch(whole):
    fs = store.load(whole)
    X, y = fs.to_xy()
    model = make_model("dummy-stratified", seed=1).fit(X, y)
    alone = np.concatenate([model.predict(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_array_equal(model.predict(X), alone)
    np.testing.assert_array_equal(model.predict(X[::-1]), alone[::-1])
    # Guesses follow the genre frequencies, not one genre.
    assert len(set(alone.tolist())) > 1
    other = make_model("dummy-stratified", seed=2).fit(X, y).predict(X)
    assert (other != alone).any()


def test_an_unseeded_baseline_guesses_anew_at_each_fit_and_keeps_its_guesses_when_pickled():
    import pickle

    X = np.random.default_rng(0).normal(size=(200, 3))
    y = np.repeat(["a", "b", "c", "d"], 50)
    first, second = (RowSeededDummyClassifier(strategy="stratified").fit(X, y) for _ in range(2))
    assert (first.predict(X) != second.predict(X)).any()  # None is fresh randomness, as in scikit-learn
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(first)).predict(X), first.predict(X))
    seeded = RowSeededDummyClassifier(strategy="stratified", random_state=7)
    np.testing.assert_array_equal(seeded.fit(X, y).predict(X), clone(seeded).fit(X, y).predict(X))
    drawn = [RowSeededDummyClassifier(strategy="stratified", random_state=np.random.RandomState(3)).fit(X, y) for _ in range(2)]
    np.testing.assert_array_equal(drawn[0].predict(X), drawn[1].predict(X))  # the same generator state, the same key


@applicable_checks(
    [
        make_model("knn", family="table", k=3),
        make_model("svm", family="table").set_params(param_grid={"svc__C": [1.0, 10.0]}),
        RowSeededDummyClassifier(strategy="stratified"),
        make_model("dummy-stratified", family="table"),
        SoftmaxClassifier(SVC()),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
