import json
import tracemalloc

import numpy as np
import pytest
from wavs import write_wav

from knn_genre import store
from knn_genre.build_features import main as build_main
from knn_genre.builder import analyse_track
from knn_genre.errors import FeatureFileError
from knn_genre.model import load_model, save_model, train_model
from knn_genre.predict import main as predict_main
from knn_genre.prediction import predict_file
from knn_genre.synth import synthesize
from knn_genre.train import main as train_main
from knn_genre.windows import iter_windows, window_spans


@pytest.fixture(scope="module")
def features(collection, tmp_path_factory):
    out = tmp_path_factory.mktemp("features") / "f.npz"
    assert build_main([str(collection), "-o", str(out), "--jobs", "1", "-q"]) == 0
    return out


@pytest.fixture(scope="module")
def knn_model(features, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "knn.npz"
    assert train_main(["--features", str(features), "--model", "knn", "--k", "3", "-o", str(out)]) == 0
    return out


@pytest.mark.parametrize(
    "n, window, hop, spans",
    [
        (10, 30, 15, [(0, 10)]),
        (30, 30, 15, [(0, 30)]),
        (37, 30, 15, [(0, 37)]),  # a 7-frame tail is under half a hop: joins the window
        (38, 30, 15, [(0, 30), (8, 38)]),
        (60, 30, 30, [(0, 30), (30, 60)]),
    ],
)
def test_window_spans_cover_the_file(n, window, hop, spans):
    assert window_spans(n, window, hop) == spans


def test_windows_of_a_long_stereo_44k_file_match_reading_each_piece(tmp_path):
    rate = 44100
    song = np.concatenate([synthesize(g, 0, seconds=2.0, sample_rate=rate) for g in ("drums", "organ", "bass")])
    path = write_wav(tmp_path / "song.wav", np.stack([song, song], axis=1), rate=rate)
    windows = list(iter_windows(path, window_seconds=2.0, hop_seconds=2.0))
    assert [(s, e) for s, e, _ in windows] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    for i, (_, _, signal) in enumerate(windows):
        assert signal.shape == (44100,)  # 2 s at 22050 Hz
        piece = write_wav(tmp_path / f"piece{i}.wav", song[i * 2 * rate:(i + 1) * 2 * rate], rate=rate)
        from knn_genre.audio import read_wav

        np.testing.assert_allclose(signal, read_wav(piece), atol=1e-12)


def test_model_file_round_trip_predicts_identically(features, tmp_path):
    fs = store.load(features)
    model = train_model(fs, "knn", k=3)
    save_model(model, tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    assert back.kind == "knn" and back.settings == {"n_neighbors": 3} and back.genres == fs.genres
    assert back.params == fs.params
    np.testing.assert_array_equal(back.predict_proba(fs.means, fs.covs), model.predict_proba(fs.means, fs.covs))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:  # plain arrays only
        assert all(npz[k].dtype != object for k in npz.files)


def test_prediction_of_a_training_clip_equals_its_feature_row(knn_model, collection):
    model = load_model(knn_model)
    path = collection / "drums" / "drums.00002.wav"
    pred = predict_file(model, path)
    mean, cov = analyse_track(path)
    np.testing.assert_allclose(pred.probabilities, model.predict_proba(mean, cov)[0])
    assert len(pred.windows) == 1 and pred.genre == "drums"
    assert pred.probabilities.sum() == pytest.approx(1.0)


def test_a_long_song_is_predicted_from_its_windows(knn_model, tmp_path):
    model = load_model(knn_model)
    song = np.concatenate([synthesize("organ", i, seconds=1.5, seed=9, bleed=0.0) for i in range(6)])
    path = write_wav(tmp_path / "organ_long.wav", song)
    pred = predict_file(model, path, window_seconds=1.5, hop_seconds=0.75)
    assert len(pred.windows) == 11
    np.testing.assert_allclose(pred.probabilities, np.mean([p for _, _, p in pred.windows], axis=0))
    assert pred.genre == "organ"


def test_memory_stays_flat_for_long_files(knn_model, tmp_path):
    model = load_model(knn_model)
    rate = 44100
    clip = np.stack([synthesize("bass", 0, seconds=1.0, sample_rate=rate)] * 2, axis=1)
    peaks = []
    for repeats in (4, 32):
        path = write_wav(tmp_path / f"long{repeats}.wav", np.tile(clip, (repeats, 1)), rate=rate)
        tracemalloc.start()
        predict_file(model, path, window_seconds=1.0, hop_seconds=1.0)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # 8x longer input, about the same peak: only one window is in memory.
    assert peaks[1] < 1.5 * peaks[0]


def test_predict_cli_json_lists_top_genres_per_file(knn_model, collection, tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    songs = [str(collection / "bass" / "bass.00001.wav"), str(bad)]
    assert predict_main([*songs, "--model", str(knn_model), "--json"]) == 0
    captured = capsys.readouterr()
    records = json.loads(captured.out)
    assert records[0]["path"] == songs[0]
    assert [t["genre"] for t in records[0]["top"]][0] == "bass"
    assert len(records[0]["top"]) == 3 and records[0]["windows"]
    probs = [t["probability"] for t in records[0]["top"]]
    assert probs == sorted(probs, reverse=True)
    assert records[1]["path"] == str(bad) and "error" in records[1]
    assert "bad.wav" in captured.err


def test_predict_cli_text_and_windows(knn_model, collection, capsys):
    song = str(collection / "organ" / "organ.00003.wav")
    assert predict_main([song, "--model", str(knn_model), "--windows", "--window", "0.5", "--hop", "0.5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{song}: organ") and "(3 windows)" in out
    assert out.count(" s: ") == 3


def test_predict_cli_errors(knn_model, tmp_path, capsys):
    assert predict_main([str(tmp_path / "none.wav"), "--model", str(knn_model)]) == 2
    assert "no file could be predicted" in capsys.readouterr().err
    assert predict_main(["x.wav", "--model", str(tmp_path / "none.npz")]) == 2
    assert "no such model file" in capsys.readouterr().err


def test_model_files_are_validated(knn_model, tmp_path):
    with np.load(knn_model, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    meta["format_version"] = 99
    np.savez(tmp_path / "newer.npz", **{**arrays, "meta": np.array(json.dumps(meta))})
    with pytest.raises(FeatureFileError, match="upgrade"):
        load_model(tmp_path / "newer.npz")
    meta["format_version"], meta["kind"] = 1, "os.system"
    np.savez(tmp_path / "kind.npz", **{**arrays, "meta": np.array(json.dumps(meta))})
    with pytest.raises(FeatureFileError, match="invalid model description"):
        load_model(tmp_path / "kind.npz")
    np.savez(tmp_path / "obj.npz", **{**arrays, "labels": np.array([object()], dtype=object)})
    with pytest.raises(FeatureFileError, match="pickled"):
        load_model(tmp_path / "obj.npz")


def test_train_rejects_k_larger_than_the_collection(features, tmp_path, capsys):
    assert train_main(["--features", str(features), "--k", "31", "-o", str(tmp_path / "m.npz")]) == 2
    assert "between 1 and 30" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["svm", "klsvm"])
def test_svm_models_round_trip_without_pickles(features, tmp_path, kind):
    fs = store.load(features)
    model = train_model(fs, kind, seed=3)
    assert model.settings and all(isinstance(v, (int, float, str)) for v in model.settings.values())
    save_model(model, tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    assert back.kind == kind and back.settings == model.settings and back.seed == 3
    proba = back.predict_proba(fs.means, fs.covs)
    np.testing.assert_allclose(proba, model.predict_proba(fs.means, fs.covs), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # Trained on these tracks, the model gets most of them right.
    assert np.mean(np.array(back.genres)[proba.argmax(axis=1)] == fs.labels) > 0.8
