"""evaluate with several models: --models, nested searches, --repeats, --plot, --features-csv."""

import json
import sys

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from knn_genre.errors import FeatureFileError
from knn_genre.classifiers.registry import ALIASES, REGISTRY
from knn_genre.evaluate import main, make_models, parse_models
from knn_genre.evaluation.scoring import evaluate_models
from knn_genre.evaluation.splits import cross_validation_splits, random_split
from knn_genre.store.tables import read_feature_table, table_groups, track_of

from test_knn import make_tracks, save_tracks

GENRES = ["blues", "jazz", "metal"]


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    """A feature file of 3 genres x 10 synthetic 4-d Gaussians (no audio needed)."""
    X, y = make_tracks(np.random.default_rng(0), 10, d=4, spread=2.0)
    return save_tracks(X, y, tmp_path_factory.mktemp("features") / "f.npz")


def write_table(path, *, n_per_genre=12, segments=1, seed=0):
    """A GTZAN-style CSV: filename, length, 5 numeric features, label."""
    rng = np.random.default_rng(seed)
    lines = ["filename,length,tempo,rms_mean,rms_var,mfcc1_mean,mfcc1_var,label"]
    for g, genre in enumerate(GENRES):
        centre = rng.normal(0, 3, 5)
        for i in range(n_per_genre):
            track = centre + rng.normal(0, 1, 5)
            for s in range(segments):
                name = f"{genre}.{i:05d}.wav" if segments == 1 else f"{genre}.{i:05d}.{s}.wav"
                values = track + rng.normal(0, 0.3, 5)
                lines.append(",".join([name, "661794", *(f"{v:.6f}" for v in values), genre]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return write_table(tmp_path_factory.mktemp("table") / "features.csv")


def run(capsys, tmp_path, *args):
    out = tmp_path / "r.json"
    status = main([*args, "--json", str(out)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err, (json.loads(out.read_text()) if out.exists() else None)


# -- model selection -----------------------------------------------------------------------


def test_parse_models():
    # By default every model of the registry that accepts the features is compared.
    assert parse_models(None) == [
        "knn", "knn-mp", "svm", "klsvm", "logreg", "rf", "hgb", "mlp", "gnb", "vote", "dummy-most-frequent", "dummy-stratified"
    ]
    assert parse_models(None, table=True) == [
        "knn", "svm", "logreg", "rf", "hgb", "mlp", "gnb", "vote", "dummy-most-frequent", "dummy-stratified"
    ]
    assert parse_models(" svm, knn ,svm") == ["svm", "knn"]
    assert list(make_models(parse_models("dummy"), k=3, seed=0)) == ["dummy-most-frequent", "dummy-stratified"]


def test_the_svms_run_nested_on_the_same_folds(features, tmp_path, capsys):
    status, text, _, data = run(capsys, tmp_path, "--features", str(features), "--folds", "3", "--k", "3", "--models", "knn,svm,klsvm,dummy")
    assert status == 0
    assert list(data["models"]) == ["knn", "svm", "klsvm", "dummy-most-frequent", "dummy-stratified"]
    for name, model in data["models"].items():
        assert len(model["accuracy_per_fold"]) == 3
        assert np.array(model["confusion"]).sum() == 30
    for name in ("svm", "klsvm"):
        chosen = data["models"][name]["chosen_params"]
        assert len(chosen) == 3 and all(isinstance(p, dict) for p in chosen)
        assert data["models"][name]["accuracy_mean"] > 0.8
    assert set(data["models"]["svm"]["chosen_params"][0]) == {"vectorize__covariance", "svc__C", "svc__gamma"}
    assert set(data["models"]["klsvm"]["chosen_params"][0]) == {"C", "gamma"}
    mass = data["models"]["klsvm"]["kernel_negative_mass"]
    assert len(mass) == 3 and all(0 <= m < 1 for m in mass)
    assert "svm: parameters chosen by the inner search, per outer fold" in text
    assert "klsvm: SVM with the kernel exp(-gamma * sKL / median sKL)" in text


def test_models_option_selects_models(features, tmp_path, capsys):
    status, _, _, data = run(capsys, tmp_path, "--features", str(features), "--folds", "3", "--models", "knn-mp,dummy")
    assert status == 0
    assert list(data["models"]) == ["knn-mp", "dummy-most-frequent", "dummy-stratified"]


@pytest.mark.parametrize(
    "models, message",
    [
        ("knn,forest", "unknown model(s) forest; choose from " + ", ".join(list(REGISTRY) + list(ALIASES))),
        (",", "names no model"),
    ],
)
def test_bad_models_are_usage_errors(features, capsys, models, message):
    assert main(["--features", str(features), "--models", models]) == 2
    assert message in capsys.readouterr().err


def test_every_model_sees_the_same_training_tracks():
    class Spy(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            self.rows_ = X[:, 0].astype(int).tolist()
            self.classes_ = np.unique(y)
            return self

        def predict(self, X):
            return np.full(len(X), self.classes_[0])

    y = np.repeat(["a", "b"], 6)
    X = np.arange(12.0)[:, None]
    splits, _ = cross_validation_splits(y, folds=3, seed=5)
    seen = {}
    evaluate_models({"one": Spy(), "two": Spy()}, X, y, splits, on_fold=lambda n, f, est: seen.setdefault(n, []).append(est.rows_))
    assert seen["one"] == seen["two"] == [sorted(train.tolist()) for train, _ in splits]


# -- repeated cross-validation -------------------------------------------------------------


def test_repeats(features, tmp_path, capsys):
    status, text, _, data = run(capsys, tmp_path, "--features", str(features), "--folds", "3", "--repeats", "2", "--models", "knn")
    assert status == 0
    assert data["protocol"]["repeats"] == 2
    assert len(data["models"]["knn"]["accuracy_per_fold"]) == 6
    assert np.array(data["models"]["knn"]["confusion"]).sum() == 60
    assert "stratified 3-fold cross-validation repeated 2 times (6 splits), seed 0" in text
    assert "every track is tested 2 times" in text


def test_repeats_need_cross_validation(features, capsys):
    assert main(["--features", str(features), "--split", "0.66", "--repeats", "3"]) == 2
    assert "--repeats applies to cross-validation" in capsys.readouterr().err


# -- plots -------------------------------------------------------------------------------------


def test_plot_writes_an_image(features, tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    image = tmp_path / "confusion.png"
    status, text, _, _ = run(capsys, tmp_path, "--features", str(features), "--folds", "3", "--models", "knn,dummy", "--plot", str(image))
    assert status == 0
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"Confusion matrices and precision-recall curves drawn in {image}" in text


def test_plot_without_matplotlib_is_a_usage_error(features, tmp_path, capsys, monkeypatch):
    # None in sys.modules makes "import matplotlib" raise ImportError.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    image = tmp_path / "confusion.png"
    assert main(["--features", str(features), "--plot", str(image)]) == 2
    captured = capsys.readouterr()
    assert "needs matplotlib" in captured.err and "pip install 'knn_genre[plot]'" in captured.err
    assert captured.out == "" and not image.exists()


# -- feature tables ------------------------------------------------------------------------------


def test_feature_table_models(table, tmp_path, capsys):
    status, text, _, data = run(capsys, tmp_path, "--features-csv", str(table), "--folds", "2", "--k", "3", "--models", "knn,svm,dummy")
    assert status == 0
    assert data["features_kind"] == "table"
    assert list(data["models"]) == ["knn", "svm", "dummy-most-frequent", "dummy-stratified"]
    assert data["models"]["svm"]["accuracy_mean"] > 0.9
    assert set(data["models"]["svm"]["chosen_params"][0]) == {"scale__method", "svc__C", "svc__gamma"}
    assert "table: 36 rows, 5 numeric columns; ignored: filename, length" in text
    assert "Euclidean on standardised features" in text


def test_gaussian_models_on_a_table_are_a_usage_error(table, capsys):
    assert main(["--features-csv", str(table), "--models", "knn,klsvm"]) == 2
    assert "--models klsvm need(s) track Gaussians (--features)" in capsys.readouterr().err


def test_table_split_files_match_file_names(table, tmp_path, capsys):
    (tmp_path / "train.txt").write_text("\n".join(f"{g}.{i:05d}.wav" for g in GENRES for i in range(8)) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(f"{g}.{i:05d}.wav" for g in GENRES for i in range(8, 12)) + "\n")
    status, _, _, data = run(
        capsys, tmp_path, "--features-csv", str(table), "--models", "knn", "--split-files", str(tmp_path / "train.txt"), str(tmp_path / "test.txt")
    )
    assert status == 0 and np.array(data["models"]["knn"]["confusion"]).sum() == 12


def test_segments_of_a_track_stay_in_one_fold(tmp_path, capsys):
    path = write_table(tmp_path / "features_3_sec.csv", n_per_genre=6, segments=4)
    t = read_feature_table(path)
    assert len(t.y) == 72 and t.n_tracks == 18
    splits, protocol = cross_validation_splits(t.y, folds=3, groups=t.groups)
    for train, test in splits:
        assert not set(t.groups[train]) & set(t.groups[test])
    assert protocol.n_tracks == 18 and "72 rows from 18 tracks" in protocol.notes[0]
    (train, test), = random_split(t.y, train_fraction=0.5, groups=t.groups)[0]
    assert not set(t.groups[train]) & set(t.groups[test])
    status, text, _, _ = run(capsys, tmp_path, "--features-csv", str(path), "--folds", "3", "--models", "knn")
    assert status == 0 and "all rows of a track are in the same fold" in text


def test_track_of():
    assert track_of("blues.00000.wav") == "blues.00000.wav"
    assert track_of("blues.00000.9.wav") == "blues.00000.wav"
    assert track_of("my song.3.mp3") == "my song.3.mp3"


def test_table_groups_find_segments_of_any_name_only_in_a_table_of_segments():
    seg = ["my song.0.mp3", "my song.1.mp3", "dup.0.wav", "dup.1.wav", "dup.10.wav"]
    assert table_groups(seg, ["a", "a", "b", "b", "b"]).tolist() == ["my song.mp3"] * 2 + ["dup.wav"] * 3
    # A table of whole tracks: one name without a segment number, a "track" in two genres, GTZAN ids.
    assert table_groups(["take.1.wav", "take.2.wav", "other.wav"], ["a", "a", "a"]).tolist() == ["take.1.wav", "take.2.wav", "other.wav"]
    assert table_groups(["take.1.wav", "take.2.wav"], ["a", "b"]).tolist() == ["take.1.wav", "take.2.wav"]
    assert table_groups(["blues.00000.wav", "blues.00001.wav"], ["blues", "blues"]).tolist() == ["blues.00000.wav", "blues.00001.wav"]
    assert table_groups(["blues.00000.0.wav", "blues.00000.1.wav"], ["blues"] * 2).tolist() == ["blues.00000.wav"] * 2


def test_split_files_keep_the_segments_of_a_track_together(tmp_path, capsys):
    path = write_table(tmp_path / "features_3_sec.csv", n_per_genre=6, segments=4)
    (tmp_path / "train.txt").write_text("\n".join(f"{g}.{i:05d}.wav" for g in GENRES for i in range(4)) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(f"{g}.{i:05d}.wav" for g in GENRES for i in range(4, 6)) + "\n")
    status, _, _, data = run(
        capsys, tmp_path, "--features-csv", str(path), "--models", "knn", "--k", "3", "--split-files", str(tmp_path / "train.txt"), str(tmp_path / "test.txt")
    )
    assert status == 0
    assert np.array(data["models"]["knn"]["confusion"]).sum() == 3 * 2  # tracks, each decided from its 4 segments
    assert data["protocol"]["n_tracks"] == 18


def test_missing_label_column_names_the_file_and_the_columns(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text("filename,tempo,genre\na.wav,1.0,jazz\nb.wav,2.0,rock\n")
    assert main(["--features-csv", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "no 'label' column" in err and "columns found: filename, tempo, genre" in err


def test_non_numeric_feature_columns_are_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("filename,tempo,key,mode,label\na.wav,1.0,C,major,jazz\nb.wav,2.0,D,minor,rock\n")
    with pytest.raises(FeatureFileError, match=r"non-numeric feature column\(s\) key, mode"):
        read_feature_table(path)


@pytest.mark.parametrize(
    "text, match",
    [
        ("label,tempo\njazz,1.0\nrock,\n", "1 missing or non-finite value\\(s\\), first in row 3, column 'tempo'"),
        ("filename,length,label\na.wav,1,jazz\n", "no feature columns besides label, filename, length"),
        ("tempo,label\n1.0,jazz\n2.0,\n", "row 3 has no 'label'"),
        ("tempo,label\n", "the table has no rows"),
        ("", "not a readable CSV table"),
    ],
)
def test_table_errors(tmp_path, text, match):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(FeatureFileError, match=match):
        read_feature_table(path)


def test_table_without_id_column_and_missing_file(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("tempo,label\n1.0,jazz\n2.0,rock\n")
    t = read_feature_table(path)
    assert t.ids.tolist() == ["row0", "row1"] and t.dropped == []
    with pytest.raises(FeatureFileError, match="no such feature table"):
        read_feature_table(tmp_path / "none.csv")
