"""The shared model is safe to apply from several threads at once, as the web server does."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits
from wavs import write_wav

pytest.importorskip("flask", reason="the web extra (Flask, waitress) is not installed")

from knn_genre import store  # noqa: E402
from knn_genre.audio.synth import GENRES, synthesize  # noqa: E402
from knn_genre.build_features import main as build_main  # noqa: E402
from knn_genre.errors import AnalysisStopped  # noqa: E402
from knn_genre.classifiers.model import train_on_featureset  # noqa: E402
from knn_genre.pipeline.apply import predict_file  # noqa: E402
from knn_genre.pipeline.similar import similar_file  # noqa: E402
from knn_genre.web import predictor as predictor_module  # noqa: E402
from knn_genre.web.predictor import THREAD_SAFE_MODELS, Predictor  # noqa: E402
from knn_genre.web.uploads import Upload  # noqa: E402

THREADS = 4


@pytest.fixture(scope="module")
def fs(collection, tmp_path_factory):
    out = tmp_path_factory.mktemp("threads") / "f.npz"
    assert build_main([str(collection), "-o", str(out), "--jobs", "1", "-q"]) == 0
    return store.load(out)


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("thread-songs")
    return [write_wav(folder / f"{i}.wav", synthesize(GENRES[i % len(GENRES)], 50 + i, seconds=2.0, bleed=0.3)) for i in range(8)]


def at_once(function, items):
    """``function`` of every item, from THREADS threads started together, several times over."""
    barrier = threading.Barrier(THREADS)

    def work(chunk):
        barrier.wait()
        return [function(item) for item in chunk for _ in range(3)][::3]

    chunks = [items[i::THREADS] for i in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        parts = list(pool.map(work, chunks))
    out = [None] * len(items)
    for i, part in enumerate(parts):
        out[i::THREADS] = part
    return out


@pytest.mark.parametrize("name", sorted(THREAD_SAFE_MODELS))
def test_every_model_listed_as_thread_safe_predicts_the_same_from_many_threads(fs, name):
    model = train_on_featureset(fs, name, k=3)
    rng = np.random.default_rng(0)
    X = fs.packed()
    batches = [X[rng.choice(len(X), size=5, replace=False)] for _ in range(16)]
    with threadpool_limits(limits=1, user_api="blas"):
        alone = [model.decide(b) for b in batches]
        together = at_once(model.decide, batches)
    for (g1, p1, r1), (g2, p2, r2) in zip(alone, together):
        assert g1 == g2
        np.testing.assert_array_equal(p1, p2)
        np.testing.assert_array_equal(r1, r2)


def test_analysis_and_similarity_from_many_threads_equal_one_at_a_time(fs, songs):
    model = train_on_featureset(fs, "knn", k=3)

    def both(path):
        pred = predict_file(model, path)
        return pred.genre, pred.probabilities, similar_file(model, path, 5)

    with threadpool_limits(limits=1, user_api="blas"):
        alone = [both(p) for p in songs]
        together = at_once(both, songs)
        blas = {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    assert blas <= {1}, "concurrent analyses leave the process at one BLAS thread"
    for (g1, p1, s1), (g2, p2, s2) in zip(alone, together):
        assert g1 == g2 and s1 == s2
        np.testing.assert_array_equal(p1, p2)


def test_a_model_not_known_to_be_thread_safe_is_applied_by_one_thread_at_a_time(fs, songs, monkeypatch):
    monkeypatch.setattr(predictor_module, "THREAD_SAFE_MODELS", frozenset())
    model = train_on_featureset(fs, "knn", k=3)
    inside, most = [0], [0]
    lock = threading.Lock()
    original = predictor_module.predict_rows

    def counting(*args):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            threading.Event().wait(0.02)  # long enough for the threads to overlap if they could
            return original(*args)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(predictor_module, "predict_rows", counting)
    predictor = Predictor(model, threads=THREADS, timeout=60, n_similar=3)
    uploads = [Upload(p.name, str(p), p.stat().st_size, p.suffix) for p in songs]
    try:
        with threadpool_limits(limits=1, user_api="blas"):  # as the server runs
            results = at_once(lambda u: predictor.run([u])[0], uploads)
            assert [r.prediction.genre for r in results] == [predict_file(model, p).genre for p in songs]
            assert [r.similar for r in results] == [similar_file(model, p, 3) for p in songs]
    finally:
        predictor.close()
    assert most[0] == 1


def test_an_analysis_that_outlives_its_request_is_stopped_and_frees_its_thread(fs, songs, monkeypatch):
    model = train_on_featureset(fs, "knn", k=3)
    original = predictor_module.analyse_for_model
    seen = {"stopped": threading.Event(), "windows": 0}

    def endless(model, path, *, should_stop):
        if not path.endswith("long.wav"):
            return original(model, path, should_stop=should_stop)
        while seen["windows"] < 100_000:  # a song of many windows, each 10 ms
            if should_stop():
                seen["stopped"].set()
                raise AnalysisStopped(f"{path}: stopped")
            seen["windows"] += 1
            threading.Event().wait(0.01)
        raise AssertionError("the analysis was never told to stop")

    monkeypatch.setattr(predictor_module, "analyse_for_model", endless)
    predictor = Predictor(model, threads=1, timeout=0.2, n_similar=3)
    long_song = Upload("long.wav", str(songs[0].parent / "long.wav"), 1, ".wav")
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            assert [r.status for r in predictor.run([long_song])] == [503]
            assert seen["stopped"].wait(30)  # told to stop, it ended at its next window
            predictor.timeout = 60
            again = predictor.run([Upload(songs[1].name, str(songs[1]), songs[1].stat().st_size, ".wav")])
    finally:
        predictor.close()
    assert again[0].status == 200 and again[0].prediction.genre == predict_file(model, songs[1]).genre
