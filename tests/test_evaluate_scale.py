"""Fast evaluation: divergences and kernels computed once, (model, fold) fits in parallel or on a
cluster, and the same numbers as one fit after the other with everything recomputed."""

import json

import numpy as np
import pytest

from knn_genre import store
from knn_genre.classifiers.cache import DivergenceCache
from knn_genre.classifiers.knn import KLKNNClassifier
from knn_genre.classifiers.svm import GaussianVectorizer, KLSVMClassifier
from knn_genre.evaluate import main

from test_knn import make_tracks, save_tracks

MODELS = "knn,knn-mp,svm,klsvm,dummy"


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    """3 genres x 12 synthetic 5-d Gaussians, two of them identical (exact ties)."""
    X, y = make_tracks(np.random.default_rng(1), 12, d=5, spread=1.5)
    X[1] = X[0]
    return save_tracks(X, y, tmp_path_factory.mktemp("features") / "f.npz")


ROUNDED = ("kernel_negative_mass", "probabilities")  # sums of divergences taken in another order


def numbers(path):
    """The JSON report without its timings and rounded values: everything that must not change; and those values."""
    report = json.loads(path.read_text())

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if "seconds" not in k and k not in ROUNDED}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    rounded = {
        name: (m.get("kernel_negative_mass"), [p["probabilities"] for p in m["predictions"]])
        for name, m in report["models"].items()
    }
    return strip(report), rounded


def evaluate(features, tmp_path, name, *options):
    out = tmp_path / f"{name}.json"
    argv = ["--features", str(features), "--models", MODELS, "--folds", "3", "--k", "3", "--seed", "2", "-q", "--json", str(out)]
    assert main([*argv, *options]) == 0
    return numbers(out)


def test_cached_and_parallel_evaluation_gives_the_same_numbers(features, tmp_path):
    plain, plain_rounded = evaluate(features, tmp_path, "plain", "--no-cache", "--jobs", "1")
    fast, fast_rounded = evaluate(features, tmp_path, "fast", "--jobs", "2")
    assert fast == plain  # accuracies, F1, confusions, chosen parameters, every prediction
    for name, (mass, probabilities) in plain_rounded.items():
        np.testing.assert_allclose(fast_rounded[name][1], probabilities, rtol=1e-9, atol=1e-15)
        if mass is not None:
            np.testing.assert_allclose(fast_rounded[name][0], mass, rtol=1e-9, atol=1e-15)


def test_evaluation_on_a_cluster_gives_the_local_numbers(dask_cluster, features, tmp_path, capsys):
    address, _ = dask_cluster
    local, local_mass = evaluate(features, tmp_path, "local", "--jobs", "1")
    remote, remote_mass = evaluate(features, tmp_path, "cluster", "--scheduler", address)
    assert "fitting on the Dask scheduler" in capsys.readouterr().err
    assert remote == local
    assert remote_mass == local_mass  # the same computation, wherever it runs


def test_progress_names_each_model_and_fold_as_they_finish(features, capsys):
    from knn_genre.evaluate import make_models
    from knn_genre.evaluation.scoring import evaluate_models
    from knn_genre.evaluation.splits import cross_validation_splits

    X, y = store.load(features).to_xy()
    splits, _ = cross_validation_splits(y, folds=3, seed=0)
    seen = []
    models = make_models(["knn", "klsvm"], k=3, seed=0, cache=DivergenceCache(X))
    evaluate_models(models, X, y, splits, n_jobs=2, on_progress=lambda done, total, label: seen.append((done, total, label)))
    assert [(done, total) for done, total, _ in seen] == [(i, 6) for i in range(1, 7)]
    assert sorted(label for _, _, label in seen) == sorted(f"{m} fold {f}/3" for m in ("knn", "klsvm") for f in (1, 2, 3))
    # The command prints them with a rate and an ETA.
    assert main(["--features", str(features), "--models", "knn,klsvm", "--folds", "3", "--k", "3", "--progress", "--jobs", "2"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning:" not in line]  # copies in the collection
    assert err[0].startswith("0/6 folds (0%) [starting]")
    assert err[-1].startswith("6/6 folds (100%) [") and "fold" in err[-1] and "ETA 0 s" in err[-1]


@pytest.fixture(scope="module")
def tracks():
    X, y = make_tracks(np.random.default_rng(3), 8, d=3, spread=1.5)
    return X, y


def test_estimators_read_their_divergences_from_the_cache(tracks, monkeypatch):
    X, y = tracks
    cache = DivergenceCache(X)
    train, test = np.arange(0, len(X), 2), np.arange(1, len(X), 2)
    for make in (lambda **kw: KLKNNClassifier(3, **kw), lambda **kw: KLKNNClassifier(3, hubness="mutual_proximity", **kw),
                 lambda **kw: KLSVMClassifier(C=10.0, **kw)):
        plain = make().fit(X[train], y[train])
        cached = make(cache=cache).fit(X[train], y[train])
        np.testing.assert_array_equal(cached.predict(X[test]), plain.predict(X[test]))
        np.testing.assert_allclose(cached.predict_proba(X[test]) if hasattr(cached, "predict_proba") else 0,
                                   plain.predict_proba(X[test]) if hasattr(plain, "predict_proba") else 0, atol=1e-9)
        # New rows (not in the cache) are computed as usual.
        moved = X[test] + np.r_[1e-3, np.zeros(X.shape[1] - 1)]
        np.testing.assert_array_equal(cached.predict(moved), plain.predict(moved))
    # The cache is what answers: a cache whose matrix says otherwise changes the answer.
    cached = KLKNNClassifier(1, cache=cache).fit(X[train], y[train])
    fake = np.full((len(X), len(X)), 5.0)
    fake[test[0], train[-1]] = 0.0
    monkeypatch.setattr(cache, "_matrix", fake)
    assert cached.kneighbors(X[test[:1]], return_distance=False).tolist() == [[len(train) - 1]]


def test_the_cache_is_shared_by_clones_and_rebuilt_after_pickling(tracks):
    import pickle

    from sklearn.base import clone

    X, y = tracks
    cache = DivergenceCache(X)
    matrix = cache.matrix()
    assert clone(KLKNNClassifier(cache=cache)).cache is cache
    back = pickle.loads(pickle.dumps(cache))
    assert back._matrix is None  # only X travels; the matrix is computed again when asked
    np.testing.assert_array_equal(back.matrix(), matrix)
    vectorizer = GaussianVectorizer(cache=cache).fit(X)
    np.testing.assert_array_equal(vectorizer.transform(X[3:5]), GaussianVectorizer().fit(X).transform(X[3:5]))
