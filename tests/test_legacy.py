"""The tutorial's my.dat: safe import, export, and the command-line conversions."""

import os
import pickle

import numpy as np
import pytest

from knn_genre import store
from knn_genre.build_features import main
from knn_genre.errors import FeatureFileError, ParameterError
from knn_genre.store.legacy import legacy_genre_names, load_legacy, save_legacy


def tutorial_record(label, seed, d=13):
    """What the tutorial pickles for one track."""
    mfcc_feat = np.random.default_rng(seed).normal(size=(60, d))
    covariance = np.cov(np.matrix.transpose(mfcc_feat))
    mean_matrix = mfcc_feat.mean(0)
    return (mean_matrix, covariance, label)


def write_dat(path, records, protocol=pickle.DEFAULT_PROTOCOL):
    with open(path, "wb") as f:  # the tutorial opens with "ab" and dumps one tuple per track
        for record in records:
            pickle.dump(record, f, protocol=protocol)
    return path


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_tutorial_file_imports_with_every_pickle_protocol(tmp_path, protocol):
    records = [tutorial_record(label, seed) for seed, label in enumerate([1, 1, 2, 3, 2])]
    fs = load_legacy(write_dat(tmp_path / "my.dat", records, protocol))
    assert len(fs) == 5 and fs.dim == 13
    assert fs.labels.tolist() == ["genre1", "genre1", "genre2", "genre3", "genre2"]
    assert fs.paths.tolist() == [f"my.dat#{i}" for i in range(1, 6)]
    np.testing.assert_array_equal(fs.means[3], records[3][0])
    np.testing.assert_allclose(fs.covs[3], records[3][1], rtol=0, atol=1e-15)


def test_genre_names_are_given_in_index_order_or_made_up(tmp_path):
    path = write_dat(tmp_path / "my.dat", [tutorial_record(i, i) for i in (1, 2, 10)])
    assert load_legacy(path).genres == ("genre01", "genre02", "genre10")
    names = [f"g{i}" for i in range(1, 11)]
    assert load_legacy(path, names).labels.tolist() == ["g1", "g2", "g10"]
    with pytest.raises(ParameterError, match="label index 10 but only 2 genre name"):
        load_legacy(path, ["blues", "classical"])
    with pytest.raises(ParameterError, match="distinct"):
        legacy_genre_names([1], ["a", "a"])


class Payload:
    """Unpickling this runs os.system: it would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class EvalPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("payload", [Payload, EvalPayload])
@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_hostile_file_executes_nothing(tmp_path, payload, protocol):
    marker = tmp_path / "executed"
    records = [tutorial_record(1, 0), (payload(marker), np.eye(13), 1)]
    path = write_dat(tmp_path / "my.dat", records, protocol)
    # The payload works with pickle.load, so the test proves something.
    with open(path, "rb") as f:
        pickle.Unpickler(f).load()
        pickle.Unpickler(f).load()
    assert marker.exists()
    marker.unlink()
    with pytest.raises(FeatureFileError, match=r"refused: record 2 asks for the Python object (posix|os|nt|builtins|__builtin__)\.(system|eval).*nothing was loaded or executed"):
        load_legacy(path)
    assert not marker.exists()


def test_hostile_file_through_the_command(tmp_path, capsys):
    marker = tmp_path / "executed"
    path = write_dat(tmp_path / "my.dat", [(Payload(marker), np.eye(13), 1)])
    assert main(["--from-legacy", str(path), "-o", str(tmp_path / "f.npz")]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "f.npz").exists()


def test_bad_records_are_skipped_with_reasons(tmp_path):
    good = tutorial_record(1, 0)
    asym = good[1].copy()
    asym[0, 1] += 1.0
    records = [
        good,
        (good[0], good[1] * np.nan, 1),
        (good[0], asym, 1),
        (good[0], -np.eye(13), 1),
        (good[0], good[1], 0),
        (good[0], good[1], "rock"),
        (good[0][:5], good[1], 1),
        (np.zeros(20), np.eye(20), 1),
        (good[0], good[1]),
        np.array([1, None], dtype=object),
        (np.array(["a"] * 13), good[1], 1),
    ]
    fs = load_legacy(write_dat(tmp_path / "my.dat", records))
    assert len(fs) == 1
    assert [reason for _, reason in fs.skipped] == [
        "non-finite values (NaN or inf)",
        "covariance is not symmetric",
        "covariance is not positive semi-definite",
        "label index 0; legacy files number genres from 1",
        "label index must be an integer, got str",
        "covariance of shape (13, 13) does not match a mean of length 5",
        "dimension 20, but the first record has dimension 13",
        "a tuple of length 2, not a (mean, covariance, label_index) tuple",
        "an ndarray, not a (mean, covariance, label_index) tuple",
        "mean must be a 1-d array of real numbers, got <U1 array of shape (13,)",
    ]
    assert [p for p, _ in fs.skipped][0] == "my.dat#2"


def test_interrupted_tutorial_write_keeps_the_complete_records(tmp_path):
    path = write_dat(tmp_path / "my.dat", [tutorial_record(1, i) for i in range(3)])
    data = path.read_bytes()
    path.write_bytes(data[:-25])
    fs = load_legacy(path)
    assert len(fs) == 2
    assert fs.skipped[0][0] == "my.dat#3" and "ends inside a record" in fs.skipped[0][1]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"hello world", "starts with 'hell', not a pickle"),
        (b"PK\x03\x04", "zip archive.*--from-features"),
        (b"\x80\x04K\x01.", "no usable record.*an int"),
        (b"\x80\x04\x95", "ends inside a record"),
        (b"\x80\x04\xff\xff\xff", "not a legacy feature file"),
    ],
)
def test_files_that_are_not_legacy_files(tmp_path, content, message):
    path = tmp_path / "x.dat"
    path.write_bytes(content)
    with pytest.raises(FeatureFileError, match=message):
        load_legacy(path)


def test_export_round_trips_with_sorted_genre_indices(tmp_path):
    records = [tutorial_record(label, seed) for seed, label in enumerate([2, 1, 2])]
    fs = load_legacy(write_dat(tmp_path / "my.dat", records), ["rock", "blues"])
    assert fs.labels.tolist() == ["blues", "rock", "blues"]
    assert save_legacy(fs, tmp_path / "out.dat") == {1: "blues", 2: "rock"}
    with open(tmp_path / "out.dat", "rb") as f:  # what an old script does
        first = pickle.Unpickler(f).load()
    assert first[2] == 1 and first[0].shape == (13,) and first[1].shape == (13, 13)
    back = load_legacy(tmp_path / "out.dat", ["blues", "rock"])
    assert back.labels.tolist() == ["blues", "rock", "blues"]
    np.testing.assert_array_equal(back.covs, fs.covs)


def test_command_converts_both_ways(tmp_path, capsys):
    records = [tutorial_record(label, seed) for seed, label in enumerate([1, 2, 3, 1])]
    dat = write_dat(tmp_path / "my.dat", records)
    npz = tmp_path / "f.npz"
    assert main(["--from-legacy", str(dat), "--legacy-genres", "blues,classical,country", "-o", str(npz)]) == 0
    assert "wrote" in capsys.readouterr().out
    fs = store.load(npz)
    assert fs.genres == ("blues", "classical", "country") and len(fs) == 4
    back = tmp_path / "back.dat"
    assert main(["--from-features", str(npz), "--format", "legacy", "-o", str(back)]) == 0
    assert "label indices: 1=blues, 2=classical, 3=country" in capsys.readouterr().out
    assert load_legacy(back).labels.tolist() == ["genre1", "genre2", "genre3", "genre1"]


def test_build_can_write_the_legacy_format(collection, tmp_path, capsys):
    out = tmp_path / "my.dat"
    assert main([str(collection), "--format", "legacy", "-o", str(out), "--jobs", "1", "-q"]) == 0
    assert "label indices: 1=ambient" in capsys.readouterr().out
    assert len(load_legacy(out)) == 30


def test_skipped_records_and_strict_in_the_command(tmp_path, capsys):
    dat = write_dat(tmp_path / "my.dat", [tutorial_record(1, 0), (np.zeros(13), np.eye(13) * np.nan, 1)])
    assert main(["--from-legacy", str(dat), "-o", str(tmp_path / "f.npz")]) == 0
    assert "skipped my.dat#2: non-finite values" in capsys.readouterr().err
    assert main(["--from-legacy", str(dat), "-o", str(tmp_path / "g.npz"), "--strict"]) == 1
    assert not (tmp_path / "g.npz").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["data", "--from-legacy", "my.dat"], "exactly one of DATA_DIR"),
        ([], "exactly one of DATA_DIR"),
        (["data", "--legacy-genres", "a,b"], "only applies to --from-legacy"),
        (["--from-legacy", "my.dat", "--legacy-genres", "a,,b"], "distinct, non-empty"),
    ],
)
def test_conversion_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_legacy_file_is_a_usage_error(tmp_path, capsys):
    assert main(["--from-legacy", str(tmp_path / "none.dat"), "-o", str(tmp_path / "f.npz")]) == 2
    assert "none.dat: no such file" in capsys.readouterr().err


def test_export_names_modules_every_numpy_can_import(tmp_path):
    import pickletools

    fs = load_legacy(write_dat(tmp_path / "my.dat", [tutorial_record(1, 0)]))
    save_legacy(fs, tmp_path / "out.dat")
    data = (tmp_path / "out.dat").read_bytes()
    names = {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert names == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype", "_codecs encode"}
    record = pickle.loads(data)  # the trusted file we just wrote, read as an old script would
    np.testing.assert_array_equal(record[1], fs.covs[0])
