"""Feature files with several families, the published CSV layout, and models trained on a table."""

import contextlib
import io
import json
import os

import numpy as np
import pandas as pd
import pytest

from knn_genre import store
from knn_genre.build_features import main as build_main
from knn_genre.errors import FeatureFileError, ParameterError
from knn_genre.evaluate import main as evaluate_main
from knn_genre.features.analysis import analyse_file
from knn_genre.features.families import GaussianFamily, TableFamily
from knn_genre.features.params import TableParams
from knn_genre.predict import main as predict_main
from knn_genre.store.models import load_model_file
from knn_genre.store.tables import read_feature_table
from knn_genre.train import main as train_main

from wavs import tone, write_wav

#: The header of GTZAN's features_30_sec.csv, as published.
PUBLISHED_HEADER = (
    "filename,length,chroma_stft_mean,chroma_stft_var,rms_mean,rms_var,spectral_centroid_mean,spectral_centroid_var,"
    "spectral_bandwidth_mean,spectral_bandwidth_var,rolloff_mean,rolloff_var,zero_crossing_rate_mean,"
    "zero_crossing_rate_var,harmony_mean,harmony_var,perceptr_mean,perceptr_var,tempo,"
    + ",".join(f"mfcc{i}_mean,mfcc{i}_var" for i in range(1, 21))
    + ",label"
)


@pytest.fixture(scope="module")
def both(collection, tmp_path_factory):
    out = tmp_path_factory.mktemp("both") / "f.npz"
    assert build_main([str(collection), "-o", str(out), "--jobs", "1", "-q", "--families", "gaussian,table"]) == 0
    return out


def run(main, argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    return status, out.getvalue()


def test_one_file_holds_both_families_as_the_analysis_path_computes_them(both, collection):
    fs = store.load(both)
    assert fs.families == ("gaussian", "table") and fs.feature_families() == ("gaussian", "table", "gaussian+table")
    assert fs.meta()["format_version"] == 3 and fs.table.shape == (len(fs), 57)
    assert fs.layout() == {"gaussian": 104, "table": 57}
    np.testing.assert_array_equal(fs.features("gaussian+table"), np.hstack([fs.packed(), fs.table]))
    path = collection / fs.paths[3]
    alone = analyse_file(path, TableFamily()).arrays
    together = analyse_file(path, [GaussianFamily(), TableFamily()]).arrays
    np.testing.assert_array_equal(fs.table[3], alone["table"][0])
    np.testing.assert_array_equal(together["table"], alone["table"])
    np.testing.assert_array_equal(fs.means[3], together["means"][0])
    assert fs.table_lengths[3] == alone["length"][0] == 33075  # 1.5 s at 22050 Hz
    with pytest.raises(ParameterError, match="not among"):
        fs.features("table+gaussian")


def test_table_only_files_and_reuse_across_family_choices(both, collection, tmp_path, capsys):
    out = tmp_path / "t.npz"
    both_copy = tmp_path / "b.npz"
    both_copy.write_bytes(both.read_bytes())
    # The table alone, its rows taken from the file with both families.
    status, text = run(build_main, [str(collection), "-o", str(both_copy), "--jobs", "1", "--families", "table"])
    assert status == 0 and "reused 30 unchanged" in text and "features: table" in text
    table_only = store.load(both_copy)
    assert table_only.families == ("table",) and not table_only.has_gaussians
    np.testing.assert_array_equal(table_only.table, store.load(both).table)
    # Both families from a table-only file: the Gaussians are missing, so every track is analysed.
    status, text = run(build_main, [str(collection), "-o", str(both_copy), "--jobs", "1", "--families", "table,gaussian"])
    assert status == 0 and "analysed 30, reused 0" in text
    status, text = run(build_main, [str(collection), "-o", str(out), "--jobs", "1", "--families", "table", "-q"])
    with pytest.raises(ParameterError, match="no MFCC Gaussians"):
        store.load(out).packed()
    # A file without Gaussians cannot be written as the tutorial's my.dat.
    assert build_main(["--from-features", str(out), "--format", "legacy", "-o", str(tmp_path / "my.dat")]) == 2
    assert "only the table family" in capsys.readouterr().err


def test_feature_file_checks_cover_the_table(both, tmp_path):
    arrays = dict(np.load(both))
    meta = json.loads(str(arrays["meta"]))
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{k: v for k, v in arrays.items() if k != "table_lengths"})
    with pytest.raises(FeatureFileError, match="lacks the array 'table_lengths'"):
        store.load(bad)
    np.savez(bad, **{**arrays, "table": arrays["table"][:, :50]})
    with pytest.raises(FeatureFileError, match="table must have shape"):
        store.load(bad)
    table = arrays["table"].copy()
    table[2, 5] = np.nan
    np.savez(bad, **{**arrays, "table": table})
    with pytest.raises(FeatureFileError, match="non-finite table values"):
        store.load(bad)
    np.savez(bad, **{**arrays, "meta": np.array(json.dumps({**meta, "format_version": 2}))})
    with pytest.raises(FeatureFileError, match="'families' needs format version 3"):
        store.load(bad)
    np.savez(bad, **{**arrays, "meta": np.array(json.dumps({**meta, "families": ["gaussian"]}))})
    with pytest.raises(FeatureFileError, match="array 'table' of a family it does not list"):
        store.load(bad)


def test_csv_is_the_published_layout_and_concatenates_with_it(collection, tmp_path):
    out = tmp_path / "ours.csv"
    status, text = run(build_main, [str(collection), "--families", "table", "--format", "csv", "-o", str(out), "--jobs", "1"])
    assert status == 0 and f"wrote {out}: 30 tracks" in text
    lines = out.read_text().splitlines()
    assert lines[0] == PUBLISHED_HEADER
    first = lines[1].split(",")
    assert first[0] == "ambient.00000.wav" and first[1] == "33075" and first[-1] == "ambient"
    # A small table in the published layout (two rows of GTZAN-like values) and ours concatenate.
    published = tmp_path / "published.csv"
    values = ",".join(["0.5"] * 57)
    published.write_text(f"{PUBLISHED_HEADER}\nblues.00000.wav,661794,{values},blues\njazz.00001.wav,661794,{values},jazz\n")
    combined = pd.concat([pd.read_csv(published), pd.read_csv(out)])
    assert list(combined.columns) == PUBLISHED_HEADER.split(",") and len(combined) == 32
    combined.to_csv(tmp_path / "all.csv", index=False)
    table = read_feature_table(tmp_path / "all.csv")
    assert table.columns == TableParams().columns() and table.X.shape == (32, 57)
    # Values read back exactly.
    fs_rows = read_feature_table(out)
    built = store.load(_build_npz(collection, tmp_path))
    np.testing.assert_array_equal(fs_rows.X, built.table)


def _build_npz(collection, tmp_path):
    path = tmp_path / "t.npz"
    assert build_main([str(collection), "--families", "table", "-o", str(path), "--jobs", "1", "-q"]) == 0
    return path


def test_csv_of_segments_names_them_as_gtzans_3_second_table(collection, tmp_path):
    out = tmp_path / "seg.csv"
    assert build_main([str(collection), "--families", "table", "--format", "csv", "-o", str(out), "--jobs", "1", "-q", "--segment-seconds", "0.5"]) == 0
    table = pd.read_csv(out)
    assert table["filename"].tolist()[:3] == ["ambient.00000.0.wav", "ambient.00000.1.wav", "ambient.00000.2.wav"]
    assert set(table["length"]) == {11025}
    assert read_feature_table(out).n_tracks == 30


def test_csv_of_segments_of_any_track_names_reads_back_as_those_tracks(collection, tmp_path):
    data = tmp_path / "data"
    for genre in ("bass", "organ"):
        (data / genre).mkdir(parents=True)
        for i, clip in enumerate(sorted((collection / genre).glob("*.wav"))[:3]):
            (data / genre / f"{genre} take {i}.wav").write_bytes(clip.read_bytes())
    out = tmp_path / "seg.csv"
    assert build_main([str(data), "--families", "table", "--format", "csv", "-o", str(out), "--jobs", "1", "-q", "--segment-seconds", "0.5"]) == 0
    table = read_feature_table(out)
    assert table.ids[:2].tolist() == ["bass take 0.0.wav", "bass take 0.1.wav"]
    assert table.n_tracks == 6 and sorted(set(table.groups)) == sorted(f"{g} take {i}.wav" for g in ("bass", "organ") for i in range(3))


def test_csv_needs_the_table_family(collection, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        build_main([str(collection), "--format", "csv", "-o", str(tmp_path / "x.csv")])
    assert stop.value.code == 2 and "add --families table" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_main([str(collection), "--families", "gaussian,colour"])


def test_a_file_too_short_for_the_table_is_skipped_with_its_reason(collection, tmp_path, capsys):
    data = tmp_path / "data"
    for genre in ("a", "b"):
        for i in range(3):
            write_wav(data / genre / f"{genre}.{i}.wav", tone(0.5, seed=i))
    write_wav(data / "a" / "short.wav", tone(0.05))
    status, text = run(build_main, [str(data), "--families", "table", "-o", str(tmp_path / "f.npz"), "--jobs", "1"])
    assert status == 0 and "6 tracks" in text
    assert "skipped a/short.wav: too short: 0.050 s; the table features need at least one frame of 2048 samples" in capsys.readouterr().err


def test_a_model_trained_on_a_published_style_table_classifies_audio(collection, tmp_path):
    csv = tmp_path / "table.csv"
    assert build_main([str(collection), "--families", "table", "--format", "csv", "-o", str(csv), "--jobs", "1", "-q"]) == 0
    model = tmp_path / "m.npz"
    status, text = run(train_main, ["--features-csv", str(csv), "--model", "knn", "--k", "1", "-o", str(model), "-q"])
    assert status == 0 and "knn on the table features of 30 tracks" in text
    data = load_model_file(model)
    assert data.family == "table" and data.table_params == TableParams() and data.segment_seconds is None
    files = [collection / "drums" / "drums.00002.wav", collection / "organ" / "organ.00004.wav"]
    status, text = run(predict_main, [*map(str, files), "--model", str(model), "--json"])
    # 1-NN on the table it was trained on: each clip finds its own row.
    assert status == 0 and [r["genre"] for r in json.loads(text)] == ["drums", "organ"]


def test_a_model_on_foreign_table_columns_cannot_predict_audio(collection, tmp_path, capsys):
    csv = tmp_path / "other.csv"
    rows = "\n".join(f"t{i}.wav,{i % 3}.5,{i},{'ab'[i % 2]}" for i in range(12))
    csv.write_text("filename,loudness,brightness,label\n" + rows + "\n")
    model = tmp_path / "m.npz"
    assert run(train_main, ["--features-csv", str(csv), "--model", "knn", "--k", "1", "-o", str(model), "-q"])[0] == 0
    assert predict_main([str(collection / "drums" / "drums.00002.wav"), "--model", str(model)]) == 2
    assert "not the table family's" in capsys.readouterr().err


def test_evaluate_chooses_the_family(both, tmp_path, capsys):
    out = tmp_path / "e.json"
    argv = ["--features", str(both), "--models", "svm,svm:table,knn:table", "--folds", "3", "--json", str(out), "-q"]
    assert evaluate_main(argv + ["--genres", "drums,organ,plucked"]) == 0
    payload = json.loads(out.read_text())
    assert payload["families"] == {"svm": "gaussian", "svm:table": "table", "knn:table": "table"}
    printed = capsys.readouterr().out
    assert "genres kept: drums, organ, plucked (18 of 30 rows)" in printed and "18 tracks, 3 genres" in printed
    assert evaluate_main(["--features", str(both), "--family", "table", "--models", "klsvm", "--folds", "3"]) == 2
    assert "does not accept 'table' features" in capsys.readouterr().err
    assert evaluate_main(["--features", str(both), "--models", "svm", "--genres", "drums,waltz"]) == 2
    assert "unknown genre(s) waltz" in capsys.readouterr().err


def test_train_evaluate_records_the_cross_validation_of_a_table_model(collection, tmp_path):
    csv = tmp_path / "table.csv"
    assert build_main([str(collection), "--families", "table", "--format", "csv", "-o", str(csv), "--jobs", "1", "-q"]) == 0
    model = tmp_path / "m.npz"
    status, text = run(train_main, ["--features-csv", str(csv), "--model", "knn", "--k", "3", "--evaluate", "--folds", "3", "-o", str(model), "-q"])
    assert status == 0 and "evaluated: stratified 3-fold" in text
    record = load_model_file(model).evaluation
    assert record["n_tracks"] == 30 and len(record["accuracy_per_fold"]) == 3
    # The record is evaluate's own number for the same table, model and folds.
    out = tmp_path / "e.json"
    assert run(evaluate_main, ["--features-csv", str(csv), "--models", "knn", "--k", "3", "--folds", "3", "--json", str(out), "-q"])[0] == 0
    assert json.loads(out.read_text())["models"]["knn"]["accuracy_per_fold"] == record["accuracy_per_fold"]


def test_a_table_with_the_columns_in_another_order_predicts_the_same(collection, tmp_path):
    csv = tmp_path / "table.csv"
    assert build_main([str(collection), "--families", "table", "--format", "csv", "-o", str(csv), "--jobs", "1", "-q"]) == 0
    frame = pd.read_csv(csv)
    shuffled = tmp_path / "shuffled.csv"
    columns = list(frame.columns)
    frame[[columns[0], "label"] + columns[1:-1][::-1]].to_csv(shuffled, index=False)
    files = [str(collection / "bass" / "bass.00001.wav"), str(collection / "plucked" / "plucked.00003.wav")]
    outputs = []
    for table in (csv, shuffled):
        model = tmp_path / f"{table.stem}.npz"
        assert run(train_main, ["--features-csv", str(table), "--model", "svm", "-o", str(model), "-q"])[0] == 0
        outputs.append(json.loads(run(predict_main, [*files, "--model", str(model), "--json"])[1]))
    assert [r["genre"] for r in outputs[0]] == [r["genre"] for r in outputs[1]] == ["bass", "plucked"]
    for a, b in zip(*outputs):
        assert [t["probability"] for t in a["top"]] == pytest.approx([t["probability"] for t in b["top"]], abs=1e-9)


def test_csv_escapes_a_file_name_that_is_not_utf8(collection, tmp_path):
    data = tmp_path / "data" / "organ"
    data.mkdir(parents=True)
    clip = sorted((collection / "organ").glob("*.wav"))[0].read_bytes()
    (data / "fine.wav").write_bytes(clip)
    with open(os.fsencode(data) + b"/caf\xe9.wav", "wb") as fh:  # Latin-1 bytes: not UTF-8
        fh.write(clip)
    out = tmp_path / "t.csv"
    assert build_main([str(tmp_path / "data"), "--families", "table", "--format", "csv", "-o", str(out), "--jobs", "1", "-q"]) == 0
    assert sorted(read_feature_table(out).ids.tolist()) == ["caf\\udce9.wav", "fine.wav"]
    out.read_bytes().decode("utf-8")  # the whole file is valid UTF-8
