"""GTZAN's published splits and split files: names matched across spellings, missing and left-out tracks reported, the seed recorded."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from knn_genre import store
from knn_genre.errors import ParameterError
from knn_genre.evaluate import main
from knn_genre.evaluation.splits import GTZAN_SPLITS, gtzan_key, gtzan_split, gtzan_split_lists, split_from_lists
from knn_genre.features.gaussian import unpack
from knn_genre.features.params import MFCCParams

from test_knn import make_tracks

GENRES = ["blues", "jazz", "metal"]


def test_the_published_lists_ship_with_the_package():
    (fault,) = gtzan_split_lists("gtzan-fault-filtered")
    assert (len(fault[0]), len(fault[1])) == (443 + 197, 290)
    assert not set(fault[0]) & set(fault[1])
    artist = gtzan_split_lists("gtzan-artist-3fold")
    assert [len(test) for _, test in artist] == [315, 316, 317]
    for train, test in artist:
        assert not set(train) & set(test) and len(train) + len(test) == 948
    # Every fold tests different tracks; together they test each listed track once.
    tested = [key for _, test in artist for key in test]
    assert len(tested) == len(set(tested)) == 948
    assert all(key is not None for train, test in artist + [fault] for key in train + test)
    with pytest.raises(ParameterError, match="unknown split 'gtzan-random'"):
        gtzan_split_lists("gtzan-random")


@pytest.mark.parametrize(
    "name, key",
    [
        ("blues/blues.00012.wav", "blues.00012"),
        ("./blues_00012.wav\tblues", "blues.00012"),
        ("genres_original/hiphop/hiphop.00003.au", "hiphop.00003"),
        ("Rock.00099.flac", "rock.00099"),
        ("blues.00012", "blues.00012"),
        ("my song.wav", None),
        ("blues.0012.wav", None),
    ],
)
def test_gtzan_key(name, key):
    assert gtzan_key(name) == key


def _listed(name):
    """A few tracks of each side of each fold, per genre: (train keys, test keys) of the first fold."""
    train, test = gtzan_split_lists(name)[0]
    pick = lambda keys: [k for g in GENRES for k in [k for k in keys if k.startswith(g + ".")][:4]]  # noqa: E731
    return pick(train), pick(test)


def write_feature_file(path, keys):
    """A feature file with one synthetic Gaussian per GTZAN track ``keys``, at ``genre/genre.NNNNN.wav``."""
    X, y = make_tracks(np.random.default_rng(0), 60, d=3, spread=2.0)
    unused = {g: iter(np.flatnonzero(y == y[60 * i])) for i, g in enumerate(GENRES)}
    genres = [k.split(".")[0] for k in keys]
    means, covs = unpack(X[[next(unused[g]) for g in genres]])
    paths = [f"{g}/{k}.wav" for g, k in zip(genres, keys)]
    fs = store.FeatureSet(means=means, covs=covs, labels=genres, paths=paths, params=MFCCParams(numcep=3))
    store.save(fs, path)
    return fs


def test_fault_filtered_split_trains_on_train_and_valid_and_tests_on_test():
    train, test = _listed("gtzan-fault-filtered")
    extra = ["blues/blues.99999.wav"]  # not in the split
    paths = [f"{k.split('.')[0]}/{k}.wav" for k in train + test] + extra
    y = [p.split("/")[0] for p in paths]
    (split,), protocol = gtzan_split("gtzan-fault-filtered", paths, y)
    assert sorted(np.asarray(paths)[split[0]].tolist()) == sorted(paths[: len(train)])
    assert sorted(np.asarray(paths)[split[1]].tolist()) == sorted(paths[len(train) : -1])
    assert protocol.kind == "gtzan-fault-filtered" and protocol.folds == 1 and protocol.n_tracks == len(train) + len(test)
    missing = 930 - len(train) - len(test)
    assert any(note.startswith(f"{missing} of the 930 tracks the split lists are not in the data (e.g. ") for note in protocol.notes)
    assert any("1 track(s) of the data are not in the split and are left out (e.g. blues/blues.99999.wav)" in n for n in protocol.notes)


def test_artist_folds_match_every_spelling_and_keep_segments_together():
    artist = gtzan_split_lists("gtzan-artist-3fold")
    listed = sorted({k for _, test in artist for k in test})
    keys = [k for g in GENRES for k in [k for k in listed if k.startswith(g + ".")][:20]]
    # A published table's file names, with three segments per track (features_3_sec.csv style ids).
    paths = [f"{k}.wav" for k in keys for _ in range(3)]
    y = [k.split(".")[0] for k in keys for _ in range(3)]
    splits, protocol = gtzan_split("gtzan-artist-3fold", paths, y)
    assert protocol.n_tracks == 60
    paths = np.asarray(paths)
    for (train, test), (train_keys, test_keys) in zip(splits, artist):
        assert set(paths[test]) == {f"{k}.wav" for k in keys if k in test_keys}
        assert set(paths[train]) == {f"{k}.wav" for k in keys if k in train_keys}
        assert all(np.sum(paths[test] == p) == 3 for p in set(paths[test]))  # segments together


def test_a_split_that_matches_nothing_or_twice_is_an_error():
    with pytest.raises(ParameterError, match="holds no training and test tracks of the split gtzan-fault-filtered"):
        gtzan_split("gtzan-fault-filtered", ["a/song.wav", "b/other.wav"], ["a", "b"])
    with pytest.raises(ParameterError, match="two tracks are GTZAN's blues.00012: a/blues.00012.wav and b/blues.00012.au"):
        gtzan_split("gtzan-fault-filtered", ["a/blues.00012.wav", "b/blues.00012.au"], ["blues", "blues"])


def test_evaluate_split_gtzan_fault_filtered(tmp_path, capsys):
    train, test = _listed("gtzan-fault-filtered")
    fs = write_feature_file(tmp_path / "f.npz", train + test)
    out = tmp_path / "r.json"
    status = main(["--features", str(tmp_path / "f.npz"), "--split", "gtzan-fault-filtered", "--models", "knn,dummy", "--k", "3", "--json", str(out)])
    text = capsys.readouterr().out
    assert status == 0
    data = json.loads(out.read_text())
    assert data["protocol"]["kind"] == "gtzan-fault-filtered"
    knn = data["models"]["knn"]
    assert knn["tested_per_fold"] == [len(test)] and {p["track"] for p in knn["predictions"]} == set(fs.paths[len(train):])
    assert f"single split, tested on {len(test)} tracks" in text
    assert "GTZAN fault-filtered split (Kereliuk, Sturm & Larsen 2015)" in text
    assert "tracks the split lists are not in the data" in text


def test_evaluate_split_gtzan_artist_3fold_on_a_table(tmp_path, capsys):
    artist = gtzan_split_lists("gtzan-artist-3fold")
    keys = sorted({k for _, test in artist for k in test if k.split(".")[0] in GENRES})
    rng = np.random.default_rng(0)
    lines = ["filename,length,f1,f2,label"]
    for k in keys:
        g = k.split(".")[0]
        centre = GENRES.index(g) * 2.0
        lines.append(f"{k}.wav,661794,{centre + rng.normal():.4f},{rng.normal():.4f},{g}")
    table = tmp_path / "features_30_sec.csv"
    table.write_text("\n".join(lines) + "\n")
    out = tmp_path / "r.json"
    status = main(["--features-csv", str(table), "--split", "gtzan-artist-3fold", "--models", "logreg,dummy", "--json", str(out)])
    text = capsys.readouterr().out
    assert status == 0
    data = json.loads(out.read_text())
    assert data["protocol"]["folds"] == 3 and len(data["models"]["logreg"]["accuracy_per_fold"]) == 3
    assert sum(data["models"]["logreg"]["tested_per_fold"]) == len(keys)
    assert "mean ± std over 3 splits" in text and "artist-filtered stratified 3 folds (Foleiss & Tavares 2020)" in text


def test_a_split_name_or_a_fraction(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--split", "gtzan-something"])
    assert "neither a training fraction (e.g. 0.66) nor a named split (gtzan-fault-filtered, gtzan-artist-3fold)" in capsys.readouterr().err
    assert set(GTZAN_SPLITS) == {"gtzan-fault-filtered", "gtzan-artist-3fold"}


def test_benchmarks_put_the_protocols_side_by_side(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.__main__ import main as bench

    train, test = _listed("gtzan-fault-filtered")
    artist = gtzan_split_lists("gtzan-artist-3fold")
    keys = sorted(set(train + test) | {k for _, t in artist for k in t[:12] if k.split(".")[0] in GENRES})
    write_feature_file(tmp_path / "f.npz", keys)
    status = bench(["--features", str(tmp_path / "f.npz"), "--models", "knn,dummy", "--folds", "3", "--k", "3", "--out", str(tmp_path), "--name", "gtzan"])
    assert status == 0
    md = (tmp_path / "gtzan.md").read_text()
    assert "## Accuracy under each protocol, side by side" in md
    assert "| model | random 3-fold | gtzan-fault-filtered | gtzan-artist-3fold |" in md
    assert "(single split)" in md
    rows = (tmp_path / "gtzan.csv").read_text().splitlines()
    assert rows[0].startswith("protocol,model,") and sum(r.startswith("gtzan-artist-3fold,knn,") for r in rows) == 1
    capsys.readouterr()


def _write_published_lists(tmp_path, train_keys, test_keys):
    """Split files as the artist-filtered folds publish them: ``./blues_00000.wav<TAB>blues`` for training, no label for testing."""
    spell = lambda k: "./" + k.replace(".", "_") + ".wav"  # noqa: E731
    train = tmp_path / "f1_train.txt"
    test = tmp_path / "f1_test.txt"
    train.write_text("".join(f"{spell(k)}\t{k.split('.')[0]}\n" for k in train_keys))
    test.write_text("".join(f"{spell(k)}\n" for k in test_keys))
    return train, test


def test_split_lists_in_the_published_format_match_gtzan_names(tmp_path):
    train_keys, test_keys = ["blues.00000", "jazz.00000"], ["blues.00001", "jazz.00001", "metal.00099"]
    train_file, test_file = _write_published_lists(tmp_path, train_keys, test_keys)
    paths = ["blues/blues.00000.wav", "blues/blues.00001.au", "jazz/jazz.00000.wav", "jazz/jazz.00001.wav", "blues/blues.00002.wav"]
    y = [p.split("/")[0] for p in paths]
    (train, test), = split_from_lists(paths, y, train_file.read_text().splitlines(), test_file.read_text().splitlines())[0]
    assert train.tolist() == [0, 2] and test.tolist() == [1, 3]
    _, protocol = split_from_lists(paths, y, train_file.read_text().splitlines(), test_file.read_text().splitlines())
    assert protocol.n_tracks == 4
    assert "1 test entries not in the feature file (e.g. ./metal_00099.wav)" in protocol.notes
    # Like gtzan_split, the data's tracks that neither list names are reported.
    assert "1 track(s) of the data are not in the split and are left out (e.g. blues/blues.00002.wav)" in protocol.notes
    # Entries that matched before still match, with or without a label column.
    (train, test), = split_from_lists(paths, y, ["./blues/blues.00000.wav\tblues", "jazz.00000.wav"], ["blues.00001.wav", "jazz/jazz.00001.wav"])[0]
    assert train.tolist() == [0, 2] and test.tolist() == [1, 3]
    # One GTZAN name, two tracks of the data: ambiguous, as for file names.
    with pytest.raises(ParameterError, match="matches 2 tracks"):
        split_from_lists(["a/blues.00000.wav", "b/blues.00000.au", "jazz.00000.wav"], ["blues", "blues", "jazz"], ["./blues_00000.wav\tblues"], ["jazz_00000.wav"])


def test_evaluate_split_files_in_the_published_format(tmp_path, capsys):
    train_keys, test_keys = _listed("gtzan-artist-3fold")
    fs = write_feature_file(tmp_path / "f.npz", train_keys + test_keys + ["jazz.99999"])
    train_file, test_file = _write_published_lists(tmp_path, train_keys, test_keys)
    out = tmp_path / "r.json"
    status = main(["--features", str(tmp_path / "f.npz"), "--split-files", str(train_file), str(test_file), "--models", "knn,dummy", "--k", "3", "--json", str(out)])
    text = capsys.readouterr().out
    assert status == 0
    data = json.loads(out.read_text())
    assert data["protocol"]["kind"] == "split-files" and data["protocol"]["n_tracks"] == len(train_keys) + len(test_keys)
    assert {p["track"] for p in data["models"]["knn"]["predictions"]} == set(fs.paths[len(train_keys) : -1])
    assert "1 track(s) of the data are not in the split and are left out (e.g. jazz/jazz.99999.wav)" in text


@pytest.mark.parametrize("name", list(GTZAN_SPLITS) + ["split-files"])
def test_fixed_splits_record_the_seed_of_their_inner_searches(name):
    train_keys, test_keys = _listed("gtzan-fault-filtered" if name == "split-files" else name)
    paths = [f"{k.split('.')[0]}/{k}.wav" for k in train_keys + test_keys]
    y = [p.split("/")[0] for p in paths]
    for seed in (0, 7):
        if name == "split-files":
            splits, protocol = split_from_lists(paths, y, paths[: len(train_keys)], paths[len(train_keys) :], seed=seed)
        else:
            splits, protocol = gtzan_split(name, paths, y, seed=seed)
        assert protocol.seed == seed and f"seed {seed}" in protocol.describe()
        if seed == 0:
            first = splits
        else:  # the seed is recorded, the split itself does not move
            assert all(np.array_equal(a, b) for s, t in zip(first, splits) for a, b in zip(s, t))
