import json
import os

import numpy as np
import pytest

from knn_genre import store
from knn_genre.errors import FeatureFileError
from knn_genre.features.params import MFCCParams
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
    # Whole-track files stay at version 1, readable by every release; segments need version 2.
    assert meta["format"] == store.FORMAT_NAME and meta["format_version"] == 1
    assert meta["mfcc"]["nfft"] == 512 and "package_version" in meta


def segmented_set(seed=0):
    base = make_set(n=4, seed=seed)
    return FeatureSet(
        means=base.means, covs=base.covs, labels=["rock", "rock", "jazz", "jazz"],
        paths=["rock/a.wav", "rock/a.wav", "jazz/b.wav", "jazz/b.wav"],
        segments=[[0, 3], [3, 6], [0, 3], [3, 5.5]], segment_seconds=3.0,
    )


def test_segmented_sets_round_trip_as_version_2(tmp_path):
    fs = segmented_set()
    assert fs.n_tracks == 2 and len(fs) == 4 and fs.groups.tolist() == fs.paths.tolist()
    store.save(fs, tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz", allow_pickle=False) as npz:
        assert json.loads(str(npz["meta"]))["format_version"] == 2
    back = store.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(back.segments, fs.segments)
    assert back.segment_seconds == 3.0
    assert list(back.to_frame().columns[:4]) == ["path", "start", "end", "genre"]


def test_segments_are_validated():
    base = segmented_set()
    with pytest.raises(FeatureFileError, match="start at the same time"):
        FeatureSet(base.means, base.covs, base.labels, base.paths, segments=[[0, 3], [0, 3], [0, 3], [3, 5]], segment_seconds=3)
    with pytest.raises(FeatureFileError, match="0 <= start < end"):
        FeatureSet(base.means, base.covs, base.labels, base.paths, segments=[[0, 3], [3, 2], [0, 3], [3, 5]], segment_seconds=3)
    with pytest.raises(FeatureFileError, match="given together"):
        FeatureSet(base.means, base.covs, base.labels, base.paths, segments=base.segments)
    with pytest.raises(FeatureFileError, match="not unique"):
        FeatureSet(base.means, base.covs, base.labels, base.paths)


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


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FeatureFileError, match="none.npz: no such feature file$"):
        store.load(tmp_path / "none.npz")


def test_a_device_is_not_called_missing(tmp_path):
    fifo = tmp_path / "f.npz"
    os.mkfifo(fifo)
    with pytest.raises(FeatureFileError, match="f.npz: not a regular file"):
        store.load(fifo)  # and does not block reading the pipe


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


def write_npz(path, arrays, compression=None):
    """An .npz written member by member, so headers can be forged."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", compression or zipfile.ZIP_STORED) as zf:
        for key, raw in arrays.items():
            if isinstance(raw, np.ndarray):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, raw, allow_pickle=False)
                raw = buf.getvalue()
            zf.writestr(f"{key}.npy", raw)


def saved_arrays(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def forged_header(shape, dtype="<f8"):
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + b"\0" * 64


def test_array_declaring_more_data_than_present_is_refused_before_allocating(saved):
    arrays = saved_arrays(saved)
    arrays["covs"] = forged_header((10**9, 13, 13))  # 1.3 TB if believed
    write_npz(saved, arrays)
    with pytest.raises(FeatureFileError, match=r"array covs declares shape \(1000000000, 13, 13\) .* holds only"):
        store.load(saved)


def test_zip_bomb_is_refused(saved, monkeypatch):
    import zipfile

    from knn_genre.store import npz

    monkeypatch.setattr(npz, "_EXPANSION_ALLOWANCE", 10_000)
    arrays = saved_arrays(saved)
    arrays["means"] = np.zeros((20_000, 13))  # 2 MB of zeros deflate to a few kB
    write_npz(saved, arrays, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(FeatureFileError, match="array means would expand .* zip bomb"):
        store.load(saved)


def test_compressed_feature_file_still_loads(saved):
    import zipfile

    write_npz(saved, saved_arrays(saved), compression=zipfile.ZIP_DEFLATED)
    assert len(store.load(saved)) == 6


def test_object_array_header_is_refused_before_reading(saved):
    arrays = saved_arrays(saved)
    arrays["paths"] = forged_header((6,), dtype="|O")
    write_npz(saved, arrays)
    with pytest.raises(FeatureFileError, match="array paths holds pickled Python objects"):
        store.load(saved)


def test_unknown_npy_version_is_refused(saved):
    import io

    arrays = saved_arrays(saved)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arrays["means"], version=(3, 0))
    arrays["means"] = buf.getvalue()
    write_npz(saved, arrays)
    with pytest.raises(FeatureFileError, match=r"format version \(3, 0\)"):
        store.load(saved)


def test_damaged_array_header_is_named(saved):
    arrays = saved_arrays(saved)
    arrays["labels"] = b"\x93NUMPY\x01\x00\x10\x00{'descr': oops}     \n"
    write_npz(saved, arrays)
    with pytest.raises(FeatureFileError, match="array labels has a damaged header"):
        store.load(saved)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"\x80\x04\x95\x10\x00\x00\x00", "looks like a pickle stream, such as the tutorial.s my.dat"),
        (b"\x93NUMPY\x01\x00", "a single .npy array"),
        (b"PK\x03\x04garbage", "not a readable .npz"),
    ],
)
def test_other_files_are_named_for_what_they_are(tmp_path, content, message):
    path = tmp_path / "f.npz"
    path.write_bytes(content)
    with pytest.raises(FeatureFileError, match=message):
        store.load(path)


def test_directory_is_not_a_feature_file(tmp_path):
    with pytest.raises(FeatureFileError, match="is a directory"):
        store.load(tmp_path)


def test_hostile_metadata_is_a_clear_error(saved):
    rewrite(saved, meta=np.array("[" * 100_000 + "]" * 100_000))
    with pytest.raises(FeatureFileError, match="not valid JSON"):
        store.load(saved)
    meta = make_set().meta()
    meta["mfcc"]["winlen"] = 1e308
    rewrite(saved, meta=np.array(json.dumps(meta)))
    with pytest.raises(FeatureFileError, match="invalid MFCC parameters"):
        store.load(saved)


def test_huge_but_valid_covariances_load_without_overflow(saved):
    fs = make_set()
    covs = fs.covs.copy()
    covs[1] = 1e307 * np.eye(13)
    rewrite(saved, covs=covs)
    assert store.load(saved).covs[1, 0, 0] == 1e307


def test_gaussian_problems_names_each_bad_row():
    d = 3
    means = np.zeros((4, d))
    covs = np.stack([np.eye(d)] * 4)
    covs[1, 0, 0] = np.inf
    covs[2, 0, 1] = 0.5
    covs[3] = -np.eye(d)
    from knn_genre.features.gaussian import gaussian_problems

    assert gaussian_problems(means, covs) == [
        None,
        "non-finite values (NaN or inf)",
        "covariance is not symmetric",
        "covariance is not positive semi-definite",
    ]
