import json
import tracemalloc

import numpy as np
import pytest
from wavs import analyse_track, write_wav

from knn_genre import store
from knn_genre.audio.synth import synthesize
from knn_genre.audio.windows import window_spans
from knn_genre.build_features import main as build_main
from knn_genre.classifiers.model import load_model, save_model, train_on_featureset
from knn_genre.errors import AnalysisStopped, FeatureFileError
from knn_genre.features.analysis import analyse_file
from knn_genre.features.families import GaussianFamily
from knn_genre.features.gaussian import pack
from knn_genre.pipeline.apply import predict_file
from knn_genre.predict import main as predict_main
from knn_genre.train import main as train_main


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


@pytest.mark.parametrize("rate, channels", [(44100, 2), (16000, 1), (22050, 1)])
def test_build_and_predict_give_identical_gaussians_for_the_same_stretch(tmp_path, rate, channels):
    """The one analysis path: a segment of build_features and a window of predict are the same numbers."""
    song = np.concatenate([synthesize(g, 0, seconds=2.0, sample_rate=rate) for g in ("drums", "organ", "bass")])
    data = np.stack([song, 0.5 * song], axis=1) if channels == 2 else song
    write_wav(tmp_path / "lib" / "mix" / "song.wav", data, rate=rate)
    write_wav(tmp_path / "lib" / "mix" / "other.wav", data[::-1], rate=rate)
    out = tmp_path / "seg.npz"
    assert build_main([str(tmp_path / "lib"), "-o", str(out), "--segment-seconds", "2", "--jobs", "1", "-q"]) == 0
    fs = store.load(out)
    rows = fs.paths == "mix/song.wav"
    assert fs.segments[rows].tolist() == [[0.0, 2.0], [2.0, 4.0], [4.0, 6.0]]
    model = train_on_featureset(fs, "knn", k=1)
    pred = predict_file(model, tmp_path / "lib" / "mix" / "song.wav")  # the model's segments are its windows
    assert [(s, e) for s, e, _ in pred.windows] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    windows = analyse_file(tmp_path / "lib" / "mix" / "song.wav", GaussianFamily(), window_seconds=2.0)
    np.testing.assert_array_equal(pack(windows.arrays["means"], windows.arrays["covs"]), fs.packed()[rows])
    # A whole-track build and a one-window prediction are the same Gaussian too.
    whole = tmp_path / "whole.npz"
    assert build_main([str(tmp_path / "lib"), "-o", str(whole), "--jobs", "1", "-q"]) == 0
    one = analyse_file(tmp_path / "lib" / "mix" / "song.wav", GaussianFamily(), window_seconds=30.0, hop_seconds=15.0)
    np.testing.assert_array_equal(pack(one.arrays["means"], one.arrays["covs"]), store.load(whole).packed()[[1]])


def test_windows_are_read_and_resampled_one_by_one(tmp_path):
    rate = 44100
    song = np.concatenate([synthesize(g, 0, seconds=2.0, sample_rate=rate) for g in ("drums", "organ", "bass")])
    path = write_wav(tmp_path / "song.wav", np.stack([song, song], axis=1), rate=rate)
    windows = analyse_file(path, GaussianFamily(), window_seconds=2.0)
    assert windows.spans.tolist() == [[0.0, 2.0], [2.0, 4.0], [4.0, 6.0]]
    for i in range(3):
        piece = write_wav(tmp_path / f"piece{i}.wav", song[i * 2 * rate:(i + 1) * 2 * rate], rate=rate)
        mean, cov = analyse_track(piece)
        np.testing.assert_allclose(windows.arrays["means"][i], mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(windows.arrays["covs"][i], cov, rtol=1e-10, atol=1e-12)


def test_an_analysis_asked_to_stop_ends_before_its_next_window(tmp_path):
    song = np.concatenate([synthesize(g, 0, seconds=2.0) for g in ("drums", "organ", "bass", "drums")])
    path = write_wav(tmp_path / "song.wav", song)
    asked = []

    def after_two_windows():
        asked.append(True)
        return len(asked) > 2

    with pytest.raises(AnalysisStopped, match=r"song\.wav: analysis stopped at 4\.0 s of 8\.0 s"):
        analyse_file(path, GaussianFamily(), window_seconds=2.0, should_stop=after_two_windows)
    assert len(asked) == 3  # asked once per window, and the third window was never read
    whole = analyse_file(path, GaussianFamily(), window_seconds=2.0, should_stop=lambda: False)
    np.testing.assert_array_equal(whole.arrays["means"], analyse_file(path, GaussianFamily(), window_seconds=2.0).arrays["means"])


def test_silent_windows_are_left_out_and_named(tmp_path):
    song = np.concatenate([synthesize("organ", 0, seconds=2.0), np.zeros(2 * 22050), synthesize("organ", 1, seconds=2.0)])
    path = write_wav(tmp_path / "gap.wav", song)
    windows = analyse_file(path, GaussianFamily(), window_seconds=2.0)
    assert windows.spans.tolist() == [[0.0, 2.0], [4.0, 6.0]]
    assert windows.dropped == ((2.0, 4.0, "digital silence: every sample is 0"),)


def test_model_file_round_trip_predicts_identically(features, tmp_path):
    fs = store.load(features)
    model = train_on_featureset(fs, "knn", k=3)
    save_model(model, tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    assert back.name == "knn" and back.settings == {"n_neighbors": 3} and back.genres == fs.genres
    assert back.params == fs.params
    np.testing.assert_array_equal(back.predict_proba(fs.packed()), model.predict_proba(fs.packed()))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:  # plain arrays only
        assert all(npz[k].dtype != object for k in npz.files)


def test_prediction_of_a_training_clip_equals_its_feature_row(knn_model, collection):
    model = load_model(knn_model)
    path = collection / "drums" / "drums.00002.wav"
    pred = predict_file(model, path)
    mean, cov = analyse_track(path)
    np.testing.assert_allclose(pred.probabilities, model.predict_proba(pack(mean[None], cov[None]))[0])
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
    assert predict_main([*songs, "--model", str(knn_model), "--json"]) == 1  # one file could not be read
    captured = capsys.readouterr()
    records = json.loads(captured.out)
    assert records[0]["path"] == songs[0]
    assert [t["genre"] for t in records[0]["top"]][0] == "bass"
    assert len(records[0]["top"]) == 3 and records[0]["windows"]
    probs = [t["probability"] for t in records[0]["top"]]
    assert probs == sorted(probs, reverse=True)
    assert records[1]["path"] == str(bad) and "error" in records[1]
    assert "bad.wav" in captured.err and "1 of 2 files could not be predicted" in captured.err
    assert records[0]["genre"] == records[0]["top"][0]["genre"]


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
    meta["format_version"], meta["model"] = 2, "os.system"
    np.savez(tmp_path / "kind.npz", **{**arrays, "meta": np.array(json.dumps(meta))})
    with pytest.raises(FeatureFileError, match="invalid model: unknown model 'os.system'"):
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
    model = train_on_featureset(fs, kind, seed=3)
    assert model.settings and all(isinstance(v, (int, float, str)) for v in model.settings.values())
    save_model(model, tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    assert back.name == kind and back.settings == model.settings and back.data.seed == 3
    proba = back.predict_proba(fs.packed())
    np.testing.assert_allclose(proba, model.predict_proba(fs.packed()), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # Trained on these tracks, the model gets most of them right.
    assert np.mean(np.array(back.genres)[proba.argmax(axis=1)] == fs.labels) > 0.8
