"""The accuracy benchmark command writes its Markdown and CSV tables."""

import csv
import re
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

# benchmarks/ sits beside the package, outside it: import it from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.__main__ import main  # noqa: E402
from benchmarks.bench_table import main as main_table  # noqa: E402

from test_evaluate_models import features, table  # noqa: E402,F401  (fixtures)


def test_accuracy_tables_for_a_feature_file(features, tmp_path, capsys):  # noqa: F811
    status = main(["--features", str(features), "--models", "knn,klsvm,dummy", "--folds", "3", "--k", "3", "--out", str(tmp_path), "--name", "small", "--protocols", "folds"])
    assert status == 0
    md = (tmp_path / "small.md").read_text()
    printed = capsys.readouterr().out
    assert md.strip() in printed
    assert "| model | accuracy (mean ± std) | macro-F1 | fit s / fold | predict s / fold | vs dummy (points) |" in md
    assert "stratified 3-fold cross-validation, seed 0; 30 tracks, 3 genres" in md
    assert "klsvm, chosen by the inner search" in md
    assert f"python -m benchmarks --features {features} --models knn,klsvm,dummy --folds 3 --repeats 1 --k 3 --seed 0 --protocols folds" in md
    with open(tmp_path / "small.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model"] for r in rows] == ["knn", "klsvm", "dummy-most-frequent", "dummy-stratified"]
    knn = rows[0]
    best_dummy = max(float(r["accuracy_mean"]) for r in rows[2:])
    assert float(knn["vs_dummy_points_mean"]) == pytest.approx(100 * (float(knn["accuracy_mean"]) - best_dummy), abs=1e-3)
    assert knn["splits"] == "3"


def test_accuracy_table_for_a_feature_table(table, tmp_path, capsys):  # noqa: F811
    assert main(["--features-csv", str(table), "--models", "knn,dummy", "--folds", "3", "--out", str(tmp_path), "--protocols", "folds"]) == 0
    assert (tmp_path / "features.md").exists() and (tmp_path / "features.csv").exists()
    assert "table: 36 rows, 5 numeric columns" in capsys.readouterr().out


def test_bad_input_is_a_usage_error(tmp_path, capsys):
    assert main(["--features", str(tmp_path / "none.npz"), "--out", str(tmp_path)]) == 2
    assert "none.npz" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:Trying to estimate tuning from empty frequency set")
def test_table_speed_benchmark_runs_both_implementations_on_the_same_clips(capsys):
    pytest.importorskip("librosa")
    from benchmarks.bench_table import librosa_table

    from knn_genre.audio.synth import synthesize
    from knn_genre.features.params import TableParams
    from knn_genre.features.table import table_features

    y = synthesize("drums", 0, seconds=3.0)
    # librosa's calls, at its current defaults (zero padding) and on float32 samples, compute
    # the table family's columns with pad_mode="constant": the benchmark times the same work.
    theirs = librosa_table(y.astype(np.float32))
    np.testing.assert_allclose(table_features(y, TableParams(pad_mode="constant")), theirs, rtol=2e-3, atol=1e-6)
    assert main_table(["--clips", "2", "--no-two"]) == 0
    out = capsys.readouterr().out
    assert "| knn_genre table family |" in out and "| librosa, function by function |" in out
    assert "librosa / table family, 1 process:" in out


def test_published_table_benchmark_splits_the_clips_by_whether_their_artist_was_trained_on(tmp_path):
    from benchmarks.bench_published_table import artist_breakdown, read_artists

    (tmp_path / "f1_train_groups.txt").write_text("./blues_00000.wav\t7\n./blues_00001.wav\t7\n./rock_00005.wav\t9\n")
    (tmp_path / "f1_evaluate_groups.txt").write_text("./jazz_00003.wav\t8\n")
    artists = read_artists(tmp_path)
    assert artists == {"blues.00000": "7", "blues.00001": "7", "rock.00005": "9", "jazz.00003": "8"}
    truth = {"blues.00001.wav": "blues", "jazz.00003.wav": "jazz", "rock.00005.wav": "rock", "pop.00002.wav": "pop"}
    predicted = {"blues.00001.wav": "blues", "jazz.00003.wav": "rock", "rock.00005.wav": "metal", "pop.00002.wav": "pop"}
    # blues.00001 shares artist 7 with the training row blues.00000; rock.00005's artist has no training row.
    line = artist_breakdown(predicted, truth, artists, ["blues.00000.wav", "classical.00004.wav"])
    assert line == "artist among the training rows: 1.000 (1/1); artist not among them: 0.000 (0/2); no artist id: 1.000 (1/1)"
    with pytest.raises(SystemExit, match="no \\*_groups.txt"):
        read_artists(tmp_path / "empty")


def test_published_table_benchmark_gives_the_clips_accuracy_its_interval_and_their_own_rows_score():
    from benchmarks.bench_published_table import own_rows_accuracy, wilson_interval

    # At the ends Wilson's interval has a closed form: [0, z²/(n+z²)] for none right, [n/(n+z²), 1] for all.
    z2 = 1.96**2
    assert wilson_interval(0, 10) == pytest.approx((0.0, z2 / (10 + z2)))
    assert wilson_interval(10, 10) == pytest.approx((10 / (10 + z2), 1.0))
    # In between it is symmetric under right <-> wrong, and holds the observed share.
    low, high = wilson_interval(72, 112)
    assert (round(low, 3), round(high, 3)) == (0.551, 0.726)
    assert wilson_interval(40, 112) == pytest.approx((1 - high, 1 - low))
    with pytest.raises(ValueError, match="n=0"):
        wilson_interval(0, 0)
    predictions = [
        {"track": "blues.00080.wav", "genre": "blues", "predicted": "blues"},
        {"track": "blues.00081.wav", "genre": "blues", "predicted": "jazz"},
        {"track": "rock.00001.wav", "genre": "rock", "predicted": "metal"},
    ]
    # Only the clips' rows count: rock.00001 is a training row, not a clip.
    assert own_rows_accuracy(predictions, ["blues.00080.wav", "blues.00081.wav"]) == "0.500 (1/2)"
    assert own_rows_accuracy(predictions, ["pop.00000.wav"]) == "-"


def test_published_table_benchmark_tests_each_clip_by_the_model_of_the_fold_that_held_its_row_out(tmp_path):
    import pandas as pd

    from benchmarks.bench_published_table import audio_in_folds

    published = pd.DataFrame({"filename": [f"t{i}.wav" for i in range(6)], "f": range(6), "label": ["a", "b"] * 3})
    predictions = [{"track": f"t{i}.wav", "fold": i % 3} for i in range(6)]
    clips = {"t1.wav": tmp_path / "t1.wav", "t3.wav": tmp_path / "t3.wav", "t5.wav": tmp_path / "t5.wav"}

    class Train:  # records the rows each fold's model was trained on, in place of train --features-csv
        @staticmethod
        def main(argv):
            rows = pd.read_csv(argv[argv.index("--features-csv") + 1])
            Path(argv[argv.index("-o") + 1]).write_text(",".join(rows["filename"]))
            return 0

    def load_model(path):
        return Path(path).read_text().split(",")

    def predict_file(model, audio):
        return SimpleNamespace(genre=model)

    got = audio_in_folds(Train, load_model, predict_file, "svm", published, predictions, clips, tmp_path)
    assert set(got) == set(clips)
    for clip, trained in got.items():
        fold = int(clip[1]) % 3
        assert trained == [f"t{i}.wav" for i in range(6) if i % 3 != fold]  # every row but its fold's


def test_the_reproduce_line_of_a_published_split_runs_again(table, tmp_path, capsys):  # noqa: F811
    first = tmp_path / "first"
    assert main(["--features-csv", str(table), "--models", "knn,dummy", "--k", "3", "--out", str(first), "--protocols", "gtzan-artist-3fold"]) == 0
    md = (first / "features.md").read_text()
    command = re.search(r"Reproduce: `python -m benchmarks ([^`]*)`", md).group(1)
    assert "--protocols gtzan-artist-3fold" in command and "--split" not in command
    again = tmp_path / "again"
    assert main([*shlex.split(command), "--out", str(again)]) == 0
    table_of = lambda text: re.search(r"\| model \|.*?\n\n", text, re.S).group(0)  # noqa: E731
    strip_times = lambda text: re.sub(r"\| [0-9.]+ \| [0-9.]+ \| ([^|]*) \|$", r"| \1 |", text, flags=re.M)  # noqa: E731
    assert strip_times(table_of((again / "features.md").read_text())) == strip_times(table_of(md))
