import json

import numpy as np
import pytest

from knn_genre import store
from knn_genre.errors import FeatureFileError
from knn_genre.features import MFCCParams
from knn_genre.store import FeatureSet


def make_set(n=6, d=13, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d, d))
    return FeatureSet(
        means=rng.normal(size=(n, d)),
        covs=a @ a.transpose(0, 2, 1) + np.eye(d),
        labels=["rock", "jazz"] * (n // 2),
        paths=[f"g/{i}.wav" for i in range(n)],
        params=MFCCParams(numcep=d),
        file_sizes=np.arange(n) + 100,
        file_mtimes_ns=np.arange(n) * 10**9,
        skipped=(("jazz/jazz.00054.wav", "not a readable wav file"),),
        data_dir="/music",
    )


def test_round_trip_keeps_everything(tmp_path):
    fs = make_set()
    store.save(fs, tmp_path / "f.npz")
    back = store.load(tmp_path / "f.npz")
    np.testing.assert_array_equal(back.means, fs.means)
    np.testing.assert_array_equal(back.covs, fs.covs)
    assert back.labels.tolist() == fs.labels.tolist()
    assert back.paths.tolist() == fs.paths.tolist()
    assert back.genres == ("jazz", "rock")
    assert back.params == fs.params
    assert back.skipped == fs.skipped
    assert back.data_dir == "/music"
    np.testing.assert_array_equal(back.file_sizes, fs.file_sizes)


def test_file_loads_without_pickle_and_records_versions(tmp_path):
    store.save(make_set(), tmp_path / "f.npz")
    with np.load(tmp_path / "f.npz", allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
    assert meta["format"] == store.FORMAT_NAME and meta["format_version"] == store.FORMAT_VERSION
    assert meta["mfcc"]["nfft"] == 512 and "package_version" in meta


def test_to_frame_has_one_row_per_track():
    frame = make_set(n=4).to_frame()
    assert len(frame) == 4
    assert list(frame.columns[:4]) == ["path", "genre", "mean_0", "mean_1"]
    assert frame.shape[1] == 2 + 104
    assert frame.loc[1, "genre"] == "jazz"


def test_to_xy_gives_packed_rows_and_genres():
    X, y = make_set(n=4).to_xy()
    assert X.shape == (4, 104) and y.tolist() == ["rock", "jazz", "rock", "jazz"]


def rewrite(path, **changes):
    """Copy a saved file with some arrays replaced (None removes the key)."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez(path, **arrays)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "f.npz"
    store.save(make_set(), path)
    return path


def test_missing_file_says_how_to_build_one(tmp_path):
    with pytest.raises(FeatureFileError, match="build_features"):
        store.load(tmp_path / "none.npz")


def test_truncated_file_is_rejected(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(FeatureFileError, match="not a readable .npz"):
        store.load(saved)


def test_text_file_is_rejected(saved):
    saved.write_text("hello")
    with pytest.raises(FeatureFileError):
        store.load(saved)


def test_object_arrays_are_never_unpickled(saved):
    rewrite(saved, labels=np.array([object()] * 6, dtype=object))
    with pytest.raises(FeatureFileError, match="pickled"):
        store.load(saved)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"covs": np.zeros((6, 13, 12))}, "covs must be"),
        ({"means": np.zeros(6)}, "means must be"),
        ({"paths": np.array(["a"] * 5)}, "paths must have shape"),
        ({"labels": np.arange(6)}, "labels must be a 1-d array of strings"),
        ({"genres": None}, "missing genres"),
        ({"meta": np.array("not json")}, "not valid JSON"),
    ],
)
def test_wrong_shapes_and_keys_are_rejected(saved, change, message):
    rewrite(saved, **change)
    with pytest.raises(FeatureFileError, match=message):
        store.load(saved)


def test_nan_asymmetric_and_indefinite_covariances_are_rejected(saved):
    fs = make_set()
    covs = fs.covs.copy()
    covs[2, 0, 0] = np.nan
    rewrite(saved, covs=covs)
    with pytest.raises(FeatureFileError, match=r"non-finite .* first: g/2.wav"):
        store.load(saved)
    covs = fs.covs.copy()
    covs[3, 0, 1] += 1.0
    rewrite(saved, covs=covs)
    with pytest.raises(FeatureFileError, match="g/3.wav is not symmetric"):
        store.load(saved)
    covs = fs.covs.copy()
    covs[4] = -np.eye(13)
    rewrite(saved, covs=covs)
    with pytest.raises(FeatureFileError, match="g/4.wav is not positive semi-definite"):
        store.load(saved)


def test_newer_format_version_asks_for_an_upgrade(saved):
    meta = make_set().meta()
    meta["format_version"] = store.FORMAT_VERSION + 1
    rewrite(saved, meta=np.array(json.dumps(meta)))
    with pytest.raises(FeatureFileError, match="newer knn_genre.*upgrade"):
        store.load(saved)


def test_labels_outside_genres_are_rejected(saved):
    rewrite(saved, genres=np.array(["jazz"]))
    with pytest.raises(FeatureFileError, match="not among the genres"):
        store.load(saved)


def test_failed_write_leaves_the_previous_file_intact(saved, monkeypatch):
    before = saved.read_bytes()

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(RuntimeError):
        store.save(make_set(seed=5), saved)
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]  # no temporary left
