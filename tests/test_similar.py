"""`similar`: the library tracks nearest to a song, by the model's own divergence."""

import json
import subprocess
import sys

import numpy as np
import pytest
from wavs import write_wav

from knn_genre import store
from knn_genre.audio.synth import synthesize
from knn_genre.build_features import main as build_main
from knn_genre.classifiers.divergence import pairwise_symmetric_kl
from knn_genre.classifiers.model import load_model, train_on_featureset
from knn_genre.errors import ParameterError
from knn_genre.features.gaussian import unpack
from knn_genre.pipeline.apply import analyse_for_model, predict_file
from knn_genre.pipeline.similar import distance_measure, similar_file, similar_tracks, track_distances
from knn_genre.similar import main as similar_main
from knn_genre.train import main as train_main


@pytest.fixture(scope="module")
def features(collection, tmp_path_factory):
    out = tmp_path_factory.mktemp("similar") / "f.npz"
    assert build_main([str(collection), "-o", str(out), "--jobs", "1", "-q"]) == 0
    return out


@pytest.fixture(scope="module")
def knn_path(features, tmp_path_factory):
    out = tmp_path_factory.mktemp("similar-model") / "knn.npz"
    assert train_main(["--features", str(features), "--model", "knn", "--k", "3", "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def knn(knn_path):
    return load_model(knn_path)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """Three stretches of different genres: three windows of 2 s."""
    x = np.concatenate([synthesize(g, 7, seconds=2.0) for g in ("drums", "organ", "bass")])
    return write_wav(tmp_path_factory.mktemp("song") / "song.wav", x)


def brute_force(model, X):
    """D(song, track) = mean over windows of the divergence to the track's nearest row, by plain loops."""
    library = pairwise_symmetric_kl(*unpack(X), *unpack(model.data.X))  # (windows, rows)
    out = {}
    for track in sorted(set(model.data.paths.tolist())):
        rows = model.data.paths == track
        out[track] = float(np.mean(library[:, rows].min(axis=1)))
    return out


def test_a_training_clip_is_its_own_nearest_track_and_the_ranking_is_by_divergence(knn, collection):
    clip = collection / "organ" / "organ.00002.wav"
    found = similar_file(knn, clip, top=6)
    assert found[0].path == "organ/organ.00002.wav" and found[0].genre == "organ" and found[0].divergence == 0.0
    _, X = analyse_for_model(knn, clip)
    expected = sorted(brute_force(knn, X).items(), key=lambda kv: (kv[1], kv[0]))[:6]
    assert [t.path for t in found] == [p for p, _ in expected]
    np.testing.assert_allclose([t.divergence for t in found], [d for _, d in expected], rtol=1e-9, atol=1e-9)
    assert [t.genre for t in found] == [knn.data.labels[knn.data.paths == t.path][0] for t in found]
    assert distance_measure(knn) == "symmetric KL divergence (nats)"


def test_a_song_of_several_windows_against_a_model_of_segments(collection, song, tmp_path):
    seg = tmp_path / "seg.npz"
    assert build_main([str(collection), "-o", str(seg), "--segment-seconds", "0.5", "--jobs", "1", "-q"]) == 0
    model = train_on_featureset(store.load(seg), "knn", k=3)
    assert len(model.data.X) > model.data.n_tracks  # several rows per track
    analysis, X = analyse_for_model(model, song, window_seconds=2.0)
    assert len(X) == 3
    tracks, genres, distances = track_distances(model, X)
    expected = brute_force(model, X)
    assert tracks.tolist() == sorted(expected)
    np.testing.assert_allclose(distances, [expected[t] for t in tracks], rtol=1e-9, atol=1e-9)
    # The result does not depend on the order of the windows.
    ranked = similar_tracks(model, X, top=len(tracks))
    for order in ([2, 0, 1], [1, 2, 0], [2, 1, 0]):
        shuffled = similar_tracks(model, X[order], top=len(tracks))
        assert [t.path for t in shuffled] == [t.path for t in ranked]
        np.testing.assert_allclose([t.divergence for t in shuffled], [t.divergence for t in ranked], rtol=1e-12)


def test_mutual_proximity_models_rank_by_their_own_distance(features, knn, collection):
    mp = train_on_featureset(store.load(features), "knn-mp", k=3)
    found = similar_file(mp, collection / "drums" / "drums.00001.wav", top=30)
    assert distance_measure(mp) == "mutual-proximity distance (0 to 1)"
    assert all(0.0 <= t.divergence <= 1.0 for t in found)
    assert [t.divergence for t in found] == sorted(t.divergence for t in found)
    assert found[0].path == "drums/drums.00001.wav"


def test_models_without_reference_tracks_are_refused(features, collection):
    dummy = train_on_featureset(store.load(features), "dummy-most-frequent")
    with pytest.raises(ParameterError, match="keeps no reference tracks.*knn, knn-mp"):
        similar_file(dummy, collection / "drums" / "drums.00001.wav")


def test_the_command_prints_json_nearest_first_and_reports_bad_files(knn_path, collection, tmp_path, capsys):
    good = collection / "bass" / "bass.00003.wav"
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    assert similar_main([str(good), str(bad), "--model", str(knn_path), "--top", "4", "--json"]) == 1
    out = capsys.readouterr()
    records = json.loads(out.out)
    assert [r["path"] for r in records] == [str(good), str(bad)]
    assert [t["path"] for t in records[0]["similar"]][0] == "bass/bass.00003.wav"
    assert len(records[0]["similar"]) == 4 and set(records[0]["similar"][0]) == {"path", "genre", "divergence"}
    divergences = [t["divergence"] for t in records[0]["similar"]]
    assert divergences == sorted(divergences)
    assert "not a wav file" in records[1]["error"] and "bad.wav" in out.err
    assert records[0]["similar"] == [t.to_dict() for t in similar_file(load_model(knn_path), good, 4)]


def test_the_command_exits_2_when_no_file_or_no_usable_model(knn_path, features, tmp_path, capsys):
    assert similar_main([str(tmp_path / "none.wav"), "--model", str(knn_path)]) == 2
    assert "no file could be compared" in capsys.readouterr().err
    svm = tmp_path / "dummy.npz"
    assert train_main(["--features", str(features), "--model", "dummy-most-frequent", "-o", str(svm)]) == 0
    capsys.readouterr()
    assert similar_main([str(tmp_path / "none.wav"), "--model", str(svm)]) == 2
    err = capsys.readouterr().err
    assert "keeps no reference tracks" in err and "python -m knn_genre.train --model knn" in err


def test_a_knn_on_the_table_family_is_refused_for_what_it_keeps(collection, tmp_path, capsys):
    features, model = tmp_path / "t.npz", tmp_path / "knn-table.npz"
    assert build_main([str(collection), "--families", "table", "-o", str(features), "--jobs", "1", "-q"]) == 0
    assert train_main(["--features", str(features), "--model", "knn", "-o", str(model), "-q"]) == 0
    capsys.readouterr()
    assert similar_main([str(collection / "drums" / "drums.00001.wav"), "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "model 'knn' keeps its tracks as table features, not Gaussians" in err
    assert "python -m knn_genre.train --model knn --family gaussian" in err


def test_the_text_output_and_the_knn_genre_dispatcher(knn_path, collection):
    clip = collection / "ambient" / "ambient.00000.wav"
    done = subprocess.run(
        [sys.executable, "-m", "knn_genre", "similar", str(clip), "--model", str(knn_path), "--top", "3"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"nearest tracks of {knn_path} (30 tracks) by symmetric KL")
    assert lines[1] == f"{clip}:"
    assert lines[2].split()[:4] == ["1.", "ambient/ambient.00000.wav", "ambient", "0"]
    assert len(lines) == 5
    # The genre predict gives is the one its nearest neighbours vote for.
    assert predict_file(load_model(knn_path), clip).genre == "ambient"
