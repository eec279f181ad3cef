import pytest

from knn_genre.pipeline.discover import discover
from knn_genre.errors import DatasetError


def test_discover_sorts_tracks_and_genres_and_ignores_non_audio(tmp_path):
    for rel in ["rock/b.wav", "rock/a.WAV", "blues/x.wav", "blues/.DS_Store", "blues/notes.txt", "README.md", ".DS_Store", "._x.wav", ".hidden/z.wav"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    found = discover(tmp_path)
    assert [(t.path, t.genre) for t in found.tracks] == [("blues/x.wav", "blues"), ("rock/a.WAV", "rock"), ("rock/b.wav", "rock")]
    assert found.genres == ("blues", "rock") and found.outside == ()
    assert sorted(found.ignored) == [".DS_Store", "._x.wav", "README.md", "blues/.DS_Store", "blues/notes.txt"]


def test_non_ascii_names_are_kept(tmp_path):
    path = tmp_path / "música" / "canção ☃.wav"
    path.parent.mkdir()
    path.write_bytes(b"")
    assert [t.path for t in discover(tmp_path).tracks] == ["música/canção ☃.wav"]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="nope: no such folder; expected DATA_DIR/<genre>/<track>"):
        discover(tmp_path / "nope")
    (tmp_path / "a.wav").write_bytes(b"")
    with pytest.raises(DatasetError, match="a.wav: not a folder; expected DATA_DIR/<genre>/<track>"):
        discover(tmp_path / "a.wav")
