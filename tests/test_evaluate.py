import json

import numpy as np
import pytest

from knn_genre import store
from knn_genre.build_features import main as build_main
from knn_genre.errors import ParameterError
from knn_genre.evaluate import main
from knn_genre.evaluation.splits import cross_validation_splits, random_split, split_from_lists


@pytest.fixture(scope="module")
def features(collection, tmp_path_factory):
    out = tmp_path_factory.mktemp("features") / "f.npz"
    assert build_main([str(collection), "-o", str(out), "--jobs", "1", "-q"]) == 0
    return out


def run_json(capsys, tmp_path, *args):
    out = tmp_path / "r.json"
    status = main([*args, "--json", str(out)])
    text = capsys.readouterr().out
    return status, text, (json.loads(out.read_text()) if out.exists() else None)


def test_report_has_protocol_models_and_confusion(features, tmp_path, capsys):
    status, text, _ = run_json(capsys, tmp_path, "--features", str(features), "--folds", "3", "--models", "knn,dummy")
    assert status == 0
    assert "stratified 3-fold cross-validation, seed 0; 30 tracks, 5 genres" in text
    for name in ("knn", "dummy-most-frequent", "dummy-stratified"):
        assert name in text
    assert "confusion matrix" in text and "precision" in text and "ambient" in text


def test_json_has_stable_keys_and_consistent_numbers(features, tmp_path, capsys):
    status, _, data = run_json(capsys, tmp_path, "--features", str(features), "--folds", "3", "--k", "3", "--models", "knn,svm,klsvm,dummy")
    assert status == 0
    assert data["protocol"]["folds"] == 3 and data["protocol"]["seed"] == 0
    assert set(data["models"]) == {"knn", "svm", "klsvm", "dummy-most-frequent", "dummy-stratified"}
    knn = data["models"]["knn"]
    for key in ("accuracy_mean", "accuracy_std", "accuracy_per_fold", "macro_f1", "confusion", "genres", "fit_seconds", "predict_seconds"):
        assert key in knn
    assert len(knn["accuracy_per_fold"]) == 3
    assert knn["accuracy_mean"] == pytest.approx(np.mean(knn["accuracy_per_fold"]))
    assert knn["accuracy_std"] == pytest.approx(np.std(knn["accuracy_per_fold"]))
    confusion = np.array(knn["confusion"])
    assert confusion.shape == (5, 5) and confusion.sum() == 30
    assert knn["genres"] == ["ambient", "bass", "drums", "organ", "plucked"]
    # The synthetic genres differ in timbre and rhythm: KL-KNN separates them, the baseline cannot.
    assert knn["accuracy_mean"] > 0.6  # chance is 0.2
    assert data["models"]["dummy-most-frequent"]["accuracy_mean"] == pytest.approx(0.2)


def test_same_seed_same_numbers_other_seed_other_folds(features, tmp_path, capsys):
    args = ["--features", str(features), "--split", "0.66", "--models", "knn,svm,klsvm,dummy"]
    _, _, a = run_json(capsys, tmp_path, *args, "--seed", "7")
    _, _, b = run_json(capsys, tmp_path, *args, "--seed", "7")
    for data in (a, b):
        for model in data["models"].values():
            model.pop("fit_seconds"), model.pop("predict_seconds")
    assert a == b
    _, _, c = run_json(capsys, tmp_path, *args, "--seed", "8")
    fs = store.load(features)

    def tested(data):
        return {model: sorted(p["track"] for p in m["predictions"]) for model, m in data["models"].items()}

    for seed, data in ((7, a), (8, c)):
        assert data["protocol"]["kind"] == "random-split" and data["protocol"]["seed"] == seed
        # Every model is tested on the tracks of the split that seed draws.
        (_, test), = random_split(fs.labels, train_fraction=0.66, seed=seed)[0]
        expected = sorted(fs.paths[test].tolist())
        assert all(tracks == expected for tracks in tested(data).values())
    assert tested(a)["knn"] != tested(c)["knn"]


def test_k_larger_than_the_smallest_training_fold_is_a_usage_error(features, capsys):
    assert main(["--features", str(features), "--folds", "3", "--k", "21"]) == 2
    err = capsys.readouterr().err
    assert "--k 21" in err and "between 1 and 20" in err


@pytest.mark.parametrize("k", ["0", "-1", "two"])
def test_k_must_be_a_positive_integer(features, k):
    with pytest.raises(SystemExit) as info:
        main(["--features", str(features), "--k", k])
    assert info.value.code == 2


def test_missing_feature_file_is_a_usage_error(tmp_path, capsys):
    assert main(["--features", str(tmp_path / "none.npz")]) == 2
    assert "none.npz" in capsys.readouterr().err


def test_split_files_evaluates_exactly_that_split(features, tmp_path, capsys):
    paths = store.load(features).paths.tolist()
    train, test = paths[::2], paths[1::2]
    (tmp_path / "train.txt").write_text("\n".join("genres_original/" + p for p in train) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(p.split("/")[1] for p in test) + "\nnot/there.wav\n")
    status, text, data = run_json(
        capsys, tmp_path, "--features", str(features), "--split-files", str(tmp_path / "train.txt"), str(tmp_path / "test.txt")
    )
    assert status == 0
    assert data["protocol"]["kind"] == "split-files"
    assert np.array(data["models"]["knn"]["confusion"]).sum() == len(test)
    assert "1 test entries not in the feature file" in text
    # The seed drives the inner folds and the baselines' guesses even on a fixed split: it is recorded.
    args = ["--features", str(features), "--models", "svm,dummy", "--split-files", str(tmp_path / "train.txt"), str(tmp_path / "test.txt")]
    _, _, seeded = run_json(capsys, tmp_path, *args, "--seed", "3")
    assert seeded["protocol"]["seed"] == 3


def test_fewer_folds_when_a_genre_is_small_and_the_report_says_so():
    y = np.array(["a"] * 10 + ["b"] * 4)
    splits, protocol = cross_validation_splits(y, folds=10, seed=0)
    assert protocol.folds == 4 and len(splits) == 4
    assert "only 4 tracks" in protocol.notes[0]
    for train, test in splits:
        assert set(np.unique(y[test])) == {"a", "b"}
        assert not set(train) & set(test)


def test_every_track_is_tested_exactly_once_in_cross_validation():
    y = np.repeat(np.arange(3), 7)
    splits, _ = cross_validation_splits(y, folds=5, seed=3)
    tested = np.concatenate([test for _, test in splits])
    assert sorted(tested.tolist()) == list(range(21))


@pytest.mark.parametrize("grouped", [False, True])
def test_repeats_of_neighbouring_seeds_share_no_folds(grouped):
    y = np.repeat(np.arange(3), 40)
    groups = np.repeat(np.arange(60), 2) if grouped else None

    def repeats(splits):  # each repeat as its partition of the rows into test folds
        folds = [frozenset(test.tolist()) for _, test in splits]
        return [frozenset(folds[i : i + 3]) for i in range(0, len(folds), 3)]

    first, _ = cross_validation_splits(y, folds=3, seed=0, repeats=3, groups=groups)
    again, _ = cross_validation_splits(y, folds=3, seed=0, repeats=3, groups=groups)
    other, _ = cross_validation_splits(y, folds=3, seed=1, repeats=3, groups=groups)
    single, _ = cross_validation_splits(y, folds=3, seed=0, groups=groups)
    assert repeats(first) == repeats(again) and len(set(repeats(first))) == 3
    # A single repeat is the seed's own folds; later repeats are not the next seed's.
    assert repeats(first)[0] == repeats(single)[0]
    assert not set(repeats(first)[1:]) & set(repeats(other))
    if grouped:
        for _, test in first:
            assert len(np.unique(groups[test])) * 2 == len(test)


def test_split_lists_reject_overlap_and_no_match():
    paths = ["a/1.wav", "a/2.wav", "b/1.wav", "b/2.wav"]
    y = ["a", "a", "b", "b"]
    with pytest.raises(ParameterError, match="both training and testing"):
        split_from_lists(paths, y, ["a/1.wav", "b/1.wav"], ["a/1.wav"])
    with pytest.raises(ParameterError, match="match 0 training"):
        split_from_lists(paths, y, ["x.wav"], ["a/1.wav"])
    with pytest.raises(ParameterError, match="matches 2 tracks"):
        split_from_lists(paths, y, ["1.wav"], ["a/2.wav"])


@pytest.fixture(scope="module")
def segment_features(collection, tmp_path_factory):
    out = tmp_path_factory.mktemp("segments") / "seg.npz"
    assert build_main([str(collection), "-o", str(out), "--jobs", "1", "-q", "--segment-seconds", "0.5"]) == 0
    return out


@pytest.mark.parametrize("options", [["--folds", "3"], ["--folds", "3", "--repeats", "2"], ["--split", "0.5"]])
def test_no_track_has_segments_on_both_sides_of_any_split(segment_features, options):
    from knn_genre.evaluate import build_parser, make_splits

    fs = store.load(segment_features)
    assert len(fs) == 3 * fs.n_tracks  # three segments per track
    args = build_parser().parse_args(["--features", str(segment_features), *options])
    splits, protocol = make_splits(args, fs.labels, fs.paths, fs.groups)
    assert protocol.n_tracks == fs.n_tracks
    for train, test in splits:
        assert not set(fs.groups[train]) & set(fs.groups[test])
        assert len(train) + len(test) == len(fs)


def test_segment_evaluation_reports_track_accuracy(segment_features, tmp_path, capsys):
    status, text, data = run_json(capsys, tmp_path, "--features", str(segment_features), "--folds", "3", "--models", "knn,dummy")
    assert status == 0
    assert "track accuracy" in text and "segment accuracy" in text and "all rows of a track are in the same fold" in text
    knn = data["models"]["knn"]
    # The headline is the tracks' accuracy, each decided from its segments as predict decides a file.
    assert len(knn["accuracy_per_fold"]) == 3 and np.array(knn["confusion"]).sum() == 30
    decided = [(p["fold"], p["genre"] == p["predicted"]) for p in knn["predictions"]]
    assert knn["accuracy_per_fold"] == [pytest.approx(np.mean([ok for f, ok in decided if f == fold])) for fold in range(3)]
    assert len(knn["segment_accuracy_per_fold"]) == 3
    assert knn["segment_accuracy_mean"] == pytest.approx(np.mean(knn["segment_accuracy_per_fold"]))
    assert knn["accuracy_mean"] > 0.6


def test_track_decisions_pool_probabilities_or_votes():
    from knn_genre.evaluation.scoring import track_decisions

    def track_predictions(estimator, X, groups):
        _, tracks, decided = track_decisions(estimator, X, groups)
        return tracks, decided

    class Voter:
        classes_ = np.array(["a", "b"])

        def predict(self, X):
            return np.where(X[:, 0] > 0, "b", "a")

    class Prober(Voter):
        def predict_proba(self, X):
            p = np.clip(X[:, :1], 0, 1)
            return np.hstack([1 - p, p])

    X = np.array([[0.9], [0.0], [0.0], [0.6], [0.7], [0.0]])
    groups = np.array(["t1", "t1", "t1", "t2", "t2", "t2"])
    tracks, votes = track_predictions(Voter(), X, groups)
    assert tracks.tolist() == ["t1", "t2"] and votes.tolist() == ["a", "b"]
    # Mean probability of b: t1 0.3, t2 0.433; one sure segment does not outvote two.
    assert track_predictions(Prober(), X, groups)[1].tolist() == ["a", "a"]
    # A 1-1 tie of votes goes to the genre of the earlier row.
    assert track_predictions(Voter(), X[2:4], groups[2:4][[0, 0]])[1].tolist() == ["a"]
