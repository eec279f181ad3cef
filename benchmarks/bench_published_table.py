"""The table family against GTZAN's published table: column by column, and as a model that classifies audio.

Usage::

    python benchmarks/bench_published_table.py --data GTZAN_DIR --csv features_30_sec.csv [--models svm,knn]

1. **Columns.** The clips of GTZAN_DIR (``<genre>/<genre>.000NN.wav``) go
   through ``build_features --families table`` (into a temporary folder);
   each (clip, column) value is compared with the published row of that
   clip, in units of the column's standard deviation over the published
   table. Reported per column: the share of clips within 1 % and 5 % of a
   standard deviation, and the largest difference.
2. **Train on the table, predict the audio.** The published rows of the
   clips of GTZAN_DIR are removed; each model is trained on the other rows
   with ``train --features-csv`` and predicts the clips' audio as
   ``predict`` does (30-s windows, which a GTZAN clip fits in one). For
   reference, the same model's nested cross-validation on those training
   rows (``evaluate --features-csv``, 5 folds), and its cross-validation on
   GTZAN's artist-filtered 3 folds (``--split gtzan-artist-3fold``; the
   folds' tracks that are among the clips are left out), which keeps every
   artist on one side of a fold as the held-out clips mostly are.
   Beside them, the clips' own published rows as random 5-fold
   cross-validation of *all* the rows tests them (out-of-fold, the same
   model): this says whether the clips are hard tracks, or whether it is
   holding out their whole block (their artists) that costs accuracy.
   The clips' *audio* is then tested the same way: in each of those five
   folds, the model is trained (``train --features-csv``) on the fold's
   training rows, which leave out the rows of the fold's clips, and
   predicts the audio of those clips. This is the protocol of the table's
   own cross-validation with audio in place of the held-out rows.
   The clips' accuracy comes with its 95 % Wilson interval: on about a
   hundred clips it is several points wide.
3. With ``--artists DIR`` (the ``*_groups.txt`` artist lists of Foleiss &
   Tavares' split), the clips' accuracy is split into the clips whose artist
   has tracks among the training rows and the clips whose artist has none.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _quiet(fn, argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = fn(argv)
    if status != 0:
        raise SystemExit(f"{fn.__module__} {' '.join(argv)} failed with status {status}")
    return out.getvalue()


def compare_columns(fs, published) -> list[tuple]:
    """Per column: (name, share within 1 %, within 5 %, largest difference), in standard deviations."""
    columns = fs.table_params.columns()
    rows = published.set_index("filename")
    names = [Path(p).name for p in fs.paths]
    std = rows[columns].std().to_numpy()
    ours = fs.table
    theirs = rows.loc[names, columns].to_numpy()
    diff = np.abs(ours - theirs) / std
    return [(c, float((diff[:, j] < 0.01).mean()), float((diff[:, j] < 0.05).mean()), float(diff[:, j].max())) for j, c in enumerate(columns)], diff


def read_artists(folder: Path) -> dict[str, str]:
    """GTZAN track (``genre.NNNNN``) -> artist id, from every ``*_groups.txt`` list in ``folder``."""
    from knn_genre.evaluation.splits import gtzan_key

    artists = {}
    for path in sorted(folder.glob("*_groups.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                name, artist = line.rsplit("\t", 1)
                artists[gtzan_key(name)] = artist.strip()
    if not artists:
        raise SystemExit(f"{folder}: no *_groups.txt artist lists in it (expected Foleiss & Tavares' fN_train_groups.txt)")
    return artists


def artist_breakdown(predicted, truth, artists, training_names) -> str:
    """Accuracy of the clips whose artist has training rows, and of the others."""
    from knn_genre.evaluation.splits import gtzan_key

    seen = {artists.get(gtzan_key(n)) for n in training_names} - {None}
    parts = []
    for label, chosen in (
        ("artist among the training rows", [c for c in predicted if artists.get(gtzan_key(c)) in seen]),
        ("artist not among them", [c for c in predicted if gtzan_key(c) in artists and artists[gtzan_key(c)] not in seen]),
        ("no artist id", [c for c in predicted if gtzan_key(c) not in artists]),
    ):
        if chosen:
            right = sum(predicted[c] == truth[c] for c in chosen)
            parts.append(f"{label}: {right / len(chosen):.3f} ({right}/{len(chosen)})")
    return "; ".join(parts)


def wilson_interval(right: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``right / n`` (95 % for the default ``z``)."""
    if n <= 0:
        raise ValueError(f"an interval needs at least one trial, got n={n}")
    p = right / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def own_rows_accuracy(predictions: list[dict], clips) -> str:
    """Out-of-fold accuracy of the clips' rows among an evaluation's pooled ``predictions``."""
    wanted = set(clips)
    chosen = [p for p in predictions if Path(p["track"]).name in wanted]
    if not chosen:
        return "-"
    right = sum(p["predicted"] == p["genre"] for p in chosen)
    return f"{right / len(chosen):.3f} ({right}/{len(chosen)})"


def audio_in_folds(train, load_model, predict_file, name, published, predictions, clips, tmp) -> dict:
    """Genre predicted for each clip's audio by the model of the fold that tested the clip's row.

    ``predictions`` are an evaluation's pooled out-of-fold predictions of
    every published row (each with its ``fold``); each fold's model is trained
    on the rows that fold trained on, with ``train --features-csv``, and
    ``predict_file(load_model(model_path), audio_path).genre`` gives a clip's genre.
    """
    fold_of = {Path(p["track"]).name: p["fold"] for p in predictions}
    predicted = {}
    for fold in sorted(set(fold_of.values())):
        tested = {n for n, f in fold_of.items() if f == fold}
        wanted = [c for c in clips if c in tested]
        if not wanted:
            continue
        rows = tmp / f"fold{fold}.csv"
        published[~published["filename"].isin(tested)].to_csv(rows, index=False)
        model_path = tmp / f"{name}-fold{fold}.npz"
        _quiet(train.main, ["--features-csv", str(rows), "--model", name, "-o", str(model_path), "-q"])
        model = load_model(model_path)
        predicted.update({c: predict_file(model, clips[c]).genre for c in wanted})
    return predicted


def _evaluation(evaluate, csv, name, out, split_args) -> dict:
    _quiet(evaluate.main, ["--features-csv", str(csv), "--models", name, *split_args, "--json", str(out), "-q"])
    return json.loads(out.read_text())["models"][name]


def _cv_accuracy(evaluate, train_csv, name, out, split_args) -> str:
    result = _evaluation(evaluate, train_csv, name, out, split_args)
    return f"{result['accuracy_mean']:.3f} ± {result['accuracy_std']:.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="GTZAN clips, DATA_DIR/<genre>/<genre>.000NN.wav")
    parser.add_argument("--csv", type=Path, required=True, help="GTZAN's features_30_sec.csv")
    parser.add_argument("--models", default="svm", help="table models to train on the published rows (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=-1, help="processes of the feature build (default: all cores)")
    parser.add_argument("--no-cv", action="store_true", help="skip the cross-validations of the training rows")
    parser.add_argument("--artists", type=Path, help="folder of Foleiss & Tavares' *_groups.txt artist lists: split the clips' accuracy by whether their artist has training rows")
    args = parser.parse_args(argv)
    import pandas as pd

    from knn_genre import build_features, evaluate, store, train
    from knn_genre.classifiers.model import load_model
    from knn_genre.pipeline.apply import predict_file

    published = pd.read_csv(args.csv)
    artists = read_artists(args.artists) if args.artists else None
    with tempfile.TemporaryDirectory(prefix="bench_published_") as tmp:
        tmp = Path(tmp)
        features = tmp / "table.npz"
        _quiet(build_features.main, [str(args.data), "--families", "table", "-o", str(features), "--jobs", str(args.jobs), "-q"])
        fs = store.load(features)
        per_column, diff = compare_columns(fs, published)
        print(f"## Table columns of {len(fs)} clips of {args.data} against {args.csv}\n")
        print(
            f"All {diff.size} (clip, column) pairs: {100 * (diff < 0.01).mean():.2f} % within 1 % of the column's "
            f"standard deviation, {100 * (diff < 0.05).mean():.2f} % within 5 %; {int((diff >= 0.05).sum())} beyond 5 %. "
            f"Lengths equal to the published ones: {int(np.sum(fs.table_lengths == published.set_index('filename').loc[[Path(p).name for p in fs.paths], 'length'].to_numpy()))} of {len(fs)}.\n"
        )
        print("| column | within 1 % | within 5 % | largest (std) |")
        print("|---|---:|---:|---:|")
        for name, one, five, worst in per_column:
            print(f"| {name} | {100 * one:.1f} % | {100 * five:.1f} % | {worst:.2g} |")

        clips = {Path(p).name: args.data / p for p in fs.paths}
        rest = published[~published["filename"].isin(list(clips))]
        train_csv = tmp / "train.csv"
        rest.to_csv(train_csv, index=False)
        print(f"\n## Trained on the {len(rest)} other published rows, predicting the {len(clips)} clips' audio\n")
        print(
            "| model | accuracy on the clips' audio (95 % interval) | nested 5-fold CV on the training rows "
            "| artist-filtered 3-fold CV on them | the clips' own rows in random 5-fold CV of all rows "
            "| the clips' audio in the same folds |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        truth = {name: label for name, label in zip(published["filename"], published["label"])}
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            model_path = tmp / f"{name}.npz"
            _quiet(train.main, ["--features-csv", str(train_csv), "--model", name, "-o", str(model_path), "-q"])
            model = load_model(model_path)
            predicted = {clip: predict_file(model, path).genre for clip, path in clips.items()}
            right = sum(predicted[c] == truth[c] for c in clips)
            low, high = wilson_interval(right, len(clips))
            cv = artist_cv = own_rows = own_audio = "-"
            if not args.no_cv:
                cv = _cv_accuracy(evaluate, train_csv, name, tmp / f"{name}.json", ["--folds", "5"])
                artist_cv = _cv_accuracy(evaluate, train_csv, name, tmp / f"{name}-artist.json", ["--split", "gtzan-artist-3fold"])
                every_row = _evaluation(evaluate, args.csv, name, tmp / f"{name}-all.json", ["--folds", "5"])
                own_rows = own_rows_accuracy(every_row["predictions"], clips)
                in_folds = audio_in_folds(train, load_model, predict_file, name, published, every_row["predictions"], clips, tmp)
                hits = sum(in_folds[c] == truth[c] for c in in_folds)
                lo, hi = wilson_interval(hits, len(in_folds))
                own_audio = f"{hits / len(in_folds):.3f} ({hits}/{len(in_folds)}; {lo:.2f}-{hi:.2f})"
            print(f"| {name} | {right / len(clips):.3f} ({right}/{len(clips)}; {low:.2f}-{high:.2f}) | {cv} | {artist_cv} | {own_rows} | {own_audio} |")
            if artists is not None:
                print(f"\n{name} on the clips by artist: {artist_breakdown(predicted, truth, artists, rest['filename'])}")
            wrong = sorted(f"{c}->{predicted[c]}" for c in clips if predicted[c] != truth[c])
            print(f"\n{name} misclassified: {', '.join(wrong) or 'none'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
