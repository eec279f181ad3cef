"""build_features and predict on one folder mixing every format, good and bad files."""

import json

import numpy as np
import pytest
from encoded import write_lossless, write_lossy, write_marsyas_au

from knn_genre import store
from knn_genre.audio.synth import synthesize
from knn_genre.errors import ParameterError
from knn_genre.build_features import main as build_main
from knn_genre.predict import main as predict_main
from knn_genre.train import main as train_main

GENRES = ("bass", "drums", "organ")
FORMATS = ("wav", "au", "marsyas", "aiff", "flac", "mp3", "ogg", "opus")
SUFFIX = {"wav": ".wav", "au": ".snd", "marsyas": ".au", "aiff": ".aif", "flac": ".flac", "mp3": ".mp3", "ogg": ".ogg", "opus": ".opus"}


def write_clip(folder, genre, i, fmt):
    rate = 48000 if fmt == "opus" else 22050
    x = synthesize(genre, i, seconds=1.5, sample_rate=rate)
    path = folder / f"{genre}.{i:05d}{SUFFIX[fmt]}"
    if fmt == "marsyas":
        return write_marsyas_au(path, x)
    if fmt in ("mp3", "ogg", "opus"):
        return write_lossy(path, x, fmt, rate)
    return write_lossless(path, x, "au-le" if fmt == "au" else fmt, 16)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Every genre in every format, plus one bad file of each kind."""
    root = tmp_path_factory.mktemp("mixed")
    good = []
    for genre in GENRES:
        (root / genre).mkdir()
        for i, fmt in enumerate(FORMATS):
            good.append(write_clip(root / genre, genre, i, fmt).relative_to(root).as_posix())
    flac = (root / "bass" / "bass.00004.flac").read_bytes()
    ogg = (root / "drums" / "drums.00006.ogg").read_bytes()
    bad = {
        "bass/damaged.flac": flac[: len(flac) // 3] + b"\0" * 3000 + flac[len(flac) // 3 + 3000 :],
        "bass/no-frames.mp3": b"ID3\x03\x00\x00\x00\x00\x00\x14" + b"\0" * 4000,
        "drums/cut.ogg": ogg[: len(ogg) // 2],
        "drums/readme.flac": b"these are my favourite songs\n",
        "organ/empty.au": b"",
        "organ/song.m4a": b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00" + b"\0" * 200,
    }
    for rel, content in bad.items():
        (root / rel).write_bytes(content)
    (root / "organ" / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0")
    return root, sorted(good), sorted(bad)


def test_build_features_reads_every_format_and_names_every_bad_file(mixed, tmp_path, capsys):
    root, good, bad = mixed
    out = tmp_path / "f.npz"
    assert build_main([str(root), "-o", str(out), "--jobs", "2", "-q"]) == 0
    captured = capsys.readouterr()
    fs = store.load(out)
    assert sorted(fs.paths.tolist()) == good
    assert sorted(p for p, _ in fs.skipped) == bad
    lines = captured.err.splitlines()
    reasons = {
        "bass/damaged.flac": "damaged or truncated FLAC data between",
        "bass/no-frames.mp3": "no MPEG audio frames after its 30-byte ID3 tag",
        "drums/cut.ogg": "truncated: Ogg page",
        "drums/readme.flac": "not a FLAC file: starts with 'thes', a text file",
        "organ/empty.au": "empty file (0 bytes)",
        "organ/song.m4a": "MP4/M4A audio (AAC or Apple Lossless) cannot be decoded here",
    }
    for rel, reason in reasons.items():
        assert any(line.startswith(f"skipped {rel}: ") and reason in line for line in lines), (rel, lines)
    assert "Traceback" not in captured.err and "ignored 1 non-audio or hidden file(s)" in captured.out


def test_predict_takes_every_format_and_reports_bad_files(mixed, tmp_path, capsys):
    root, good, bad = mixed
    features, model = tmp_path / "f.npz", tmp_path / "m.npz"
    assert build_main([str(root), "-o", str(features), "--jobs", "1", "-q"]) == 0
    assert train_main(["--features", str(features), "--model", "knn", "--k", "1", "-o", str(model)]) == 0
    capsys.readouterr()
    songs = [str(root / rel) for rel in good + bad]
    assert predict_main([*songs, "--model", str(model), "--json", "--window", "0.5", "--hop", "0.25"]) == 1
    captured = capsys.readouterr()
    records = {r["path"]: r for r in json.loads(captured.out)}
    for rel in good:
        # Each training clip is its own nearest neighbour, whatever its format.
        assert records[str(root / rel)]["genre"] == rel.split("/")[0], rel
    for rel in bad:
        assert "error" in records[str(root / rel)] and rel.split("/")[1] in captured.err
    assert "Traceback" not in captured.err and f"{len(bad)} of {len(songs)} files could not be predicted" in captured.err


def test_split_lists_of_wav_names_match_tracks_in_other_formats():
    from knn_genre.evaluation.splits import split_from_lists

    paths = ["blues/blues.00000.au", "blues/blues.00001.flac", "jazz/jazz.00000.au", "jazz/jazz.00001.mp3"]
    y = ["blues", "blues", "jazz", "jazz"]
    (train, test), = split_from_lists(paths, y, ["blues/blues.00000.wav", "jazz.00000.wav"], ["blues.00001.wav", "jazz/jazz.00001.au"])[0]
    assert train.tolist() == [0, 2] and test.tolist() == [1, 3]
    # Exact names still win, and a name two formats share is ambiguous.
    both = ["blues/blues.00000.au", "blues/blues.00000.flac", "jazz/jazz.00000.au"]
    (train, test), = split_from_lists(both, ["blues", "blues", "jazz"], ["blues/blues.00000.flac"], ["jazz.00000.wav"])[0]
    assert train.tolist() == [1] and test.tolist() == [2]
    with pytest.raises(ParameterError, match="matches 2 tracks"):
        split_from_lists(both, ["blues", "blues", "jazz"], ["blues.00000.wav"], ["jazz.00000.wav"])
