import os
import shutil

import numpy as np
import pytest
from wavs import tone, write_wav

from knn_genre import store
from knn_genre.build_features import main


@pytest.fixture
def data(tmp_path, collection):
    """A private copy of the session collection, free to modify."""
    root = tmp_path / "music"
    shutil.copytree(collection, root)
    return root


def build(data, out, *extra):
    return main([str(data), "-o", str(out), "--jobs", "1", "-q", *extra])


def test_builds_one_gaussian_per_track(data, tmp_path, capsys):
    out = tmp_path / "f.npz"
    assert build(data, out) == 0
    fs = store.load(out)
    assert len(fs) == 30 and fs.genres == ("ambient", "bass", "drums", "organ", "plucked")
    assert fs.paths[0] == "ambient/ambient.00000.wav" and fs.labels[0] == "ambient"
    assert fs.means.shape == (30, 13) and fs.covs.shape == (30, 13, 13)
    assert fs.data_dir == str(data.resolve())
    summary = capsys.readouterr().out
    assert "30 tracks, 5 genres" in summary and "analysed 30, reused 0" in summary


def test_progress_goes_to_stderr_with_rate_and_eta(data, tmp_path, capsys):
    assert main([str(data), "-o", str(tmp_path / "f.npz"), "--jobs", "1", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "30/30 files (100%)" in err and "files/s" in err and "ETA" in err


def test_progress_is_silent_when_stderr_is_not_a_terminal(data, tmp_path, capsys):
    assert main([str(data), "-o", str(tmp_path / "f.npz"), "--jobs", "1"]) == 0
    assert capsys.readouterr().err == ""


def test_mfcc_parameters_are_recorded(data, tmp_path):
    out = tmp_path / "f.npz"
    assert build(data, out, "--numcep", "8", "--nfilt", "20", "--winlen", "0.025") == 0
    fs = store.load(out)
    assert fs.dim == 8
    assert fs.params.to_dict() == {
        "sample_rate": 22050, "winlen": 0.025, "winstep": 0.01, "numcep": 8,
        "nfilt": 20, "nfft": 1024, "preemph": 0.97, "ceplifter": 22,
    }


def test_non_audio_files_are_ignored_and_counted(data, tmp_path, capsys):
    (data / "drums" / ".DS_Store").write_bytes(b"\0\1")
    (data / "drums" / "notes.txt").write_text("hi")
    assert build(data, tmp_path / "f.npz") == 0
    assert "ignored 2 non-audio or hidden file(s)" in capsys.readouterr().out
    assert len(store.load(tmp_path / "f.npz")) == 30


def test_bad_files_are_skipped_with_their_reason(data, tmp_path, capsys):
    (data / "organ" / "organ.00054.wav").write_bytes(b"ID3" + b"\0" * 500)  # an mp3 in disguise
    write_wav(data / "bass" / "short.wav", tone(0.05))
    out = tmp_path / "f.npz"
    assert build(data, out) == 0
    captured = capsys.readouterr()
    assert "skipped organ/organ.00054.wav: not a wav file: starts with 'ID3" in captured.err
    assert "skipped bass/short.wav: too short" in captured.err
    fs = store.load(out)
    assert len(fs) == 30  # the 30 good clips, none of the 2 bad ones
    assert [p for p, _ in fs.skipped] == ["bass/short.wav", "organ/organ.00054.wav"]
    assert "organ/organ.00054.wav" not in fs.paths.tolist()


def test_strict_fails_and_writes_nothing(data, tmp_path, capsys):
    out = tmp_path / "f.npz"
    assert build(data, out) == 0
    before = out.read_bytes()
    (data / "jazz").mkdir()
    (data / "jazz" / "jazz.00054.wav").write_bytes(b"not audio")
    assert build(data, out, "--strict") == 1
    assert "--strict" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_no_usable_track_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "rock").mkdir()
    (tmp_path / "rock" / "a.wav").write_bytes(b"junk")
    assert build(tmp_path, tmp_path / "f.npz") == 2
    assert "no usable track" in capsys.readouterr().err
    assert not (tmp_path / "f.npz").exists()


@pytest.mark.parametrize("layout", ["missing", "empty"])
def test_unusable_data_dir_is_a_usage_error(tmp_path, capsys, layout):
    target = tmp_path / "nothing"
    if layout == "empty":
        target.mkdir()
    assert build(target, tmp_path / "f.npz") == 2
    assert str(target) in capsys.readouterr().err


def test_output_is_identical_whatever_the_number_of_jobs(data, tmp_path):
    out1, out2 = tmp_path / "one.npz", tmp_path / "two.npz"
    assert main([str(data), "-o", str(out1), "--jobs", "1", "-q"]) == 0
    assert main([str(data), "-o", str(out2), "--jobs", "2", "-q"]) == 0
    a, b = store.load(out1), store.load(out2)
    np.testing.assert_array_equal(a.means, b.means)
    np.testing.assert_array_equal(a.covs, b.covs)
    assert a.paths.tolist() == b.paths.tolist()


def test_rebuild_reuses_unchanged_tracks_only(data, tmp_path, capsys):
    out = tmp_path / "f.npz"
    assert build(data, out) == 0
    first = store.load(out)
    capsys.readouterr()

    assert build(data, out) == 0
    assert "analysed 0, reused 30" in capsys.readouterr().out

    changed = data / "drums" / "drums.00001.wav"
    write_wav(changed, tone(1.5))
    os.utime(changed, ns=(10**18, 10**18))
    assert build(data, out) == 0
    assert "analysed 1, reused 29" in capsys.readouterr().out
    second = store.load(out)
    i = second.paths.tolist().index("drums/drums.00001.wav")
    assert not np.allclose(second.means[i], first.means[i])
    np.testing.assert_array_equal(np.delete(second.means, i, 0), np.delete(first.means, i, 0))


def test_other_parameters_or_no_reuse_analyse_everything(data, tmp_path, capsys):
    out = tmp_path / "f.npz"
    assert build(data, out) == 0
    assert build(data, out, "--no-reuse") == 0
    assert build(data, out, "--winstep", "0.02") == 0
    out_text = capsys.readouterr().out
    assert out_text.count("analysed 30, reused 0") == 3


def test_unreadable_previous_output_is_replaced_with_a_note(data, tmp_path, capsys):
    out = tmp_path / "f.npz"
    out.write_text("garbage")
    assert build(data, out) == 0
    assert "not reusing" in capsys.readouterr().err
    assert len(store.load(out)) == 30


def test_help_documents_options_and_exit_status(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in ["--output", "--jobs", "--numcep", "--winlen", "--winstep", "--nfilt", "--sample-rate", "--strict", "Exit status"]:
        assert option in text


def test_jobs_zero_is_a_usage_error(data, tmp_path):
    with pytest.raises(SystemExit) as info:
        main([str(data), "--jobs", "0"])
    assert info.value.code == 2


def test_segments_store_one_gaussian_per_segment_with_the_track_id(data, tmp_path, capsys):
    out = tmp_path / "seg.npz"
    assert build(data, out, "--segment-seconds", "0.5") == 0
    assert "30 tracks in 90 segments of 0.5 s" in capsys.readouterr().out
    fs = store.load(out)
    assert len(fs) == 90 and fs.n_tracks == 30 and fs.segment_seconds == 0.5
    rows = np.flatnonzero(fs.paths == "drums/drums.00002.wav")
    np.testing.assert_allclose(fs.segments[rows], [[0.0, 0.5], [0.5, 1.0], [1.0, 1.5]])
    assert set(fs.labels[rows]) == {"drums"}
    # Each segment is the Gaussian of that stretch of the track alone.
    from wavs import read_signal

    from knn_genre.features.families import track_gaussian

    signal = read_signal(data / "drums" / "drums.00002.wav")
    mean, cov = track_gaussian(signal[11025:22050], fs.params)
    np.testing.assert_allclose(fs.means[rows[1]], mean, rtol=1e-12)
    np.testing.assert_allclose(fs.covs[rows[1]], cov, rtol=1e-9, atol=1e-12)


def test_segment_builds_reuse_only_the_same_segmentation(data, tmp_path, capsys):
    out = tmp_path / "seg.npz"
    assert build(data, out, "--segment-seconds", "0.5") == 0
    assert build(data, out, "--segment-seconds", "0.5") == 0
    assert build(data, out, "--segment-seconds", "0.75") == 0
    assert build(data, out) == 0
    text = capsys.readouterr().out
    assert text.count("analysed 0, reused 30") == 1
    assert text.count("analysed 30, reused 0") == 3
    assert len(store.load(out)) == 30


def test_audio_files_in_no_genre_folder_are_named_not_counted_as_non_audio(data, tmp_path, capsys):
    shutil.copy(data / "organ" / "organ.00000.wav", data / "loose.wav")
    (data / "notes.txt").write_text("liner notes")
    assert build(data, tmp_path / "f.npz") == 0
    out, err = capsys.readouterr()
    assert "note: left out 1 audio file(s) in no genre folder, directly in" in err and "(e.g. loose.wav)" in err
    assert "ignored 1 non-audio or hidden file(s)" in out  # notes.txt alone
    assert len(store.load(tmp_path / "f.npz")) == 30


def test_one_genres_folder_given_as_data_dir_is_explained(data, tmp_path, capsys):
    assert build(data / "organ", tmp_path / "f.npz") == 2
    err = capsys.readouterr().err
    assert "its 6 audio file(s) are in no genre folder; give the folder that holds the genre folders" in err
    assert not (tmp_path / "f.npz").exists()


def test_an_interrupt_while_summing_up_leaves_the_checkpoint_or_the_output_never_both(data, tmp_path, capsys, monkeypatch):
    import knn_genre.build_features as command
    from knn_genre.build_features import checkpoint_path

    def interrupted(fs):
        raise KeyboardInterrupt  # Ctrl-C during the duplicate check of the summary

    out = tmp_path / "f.npz"
    with monkeypatch.context() as patch:
        patch.setattr(command, "_duplicates_line", interrupted)
        assert build(data, out) == 130
    assert not out.exists() and checkpoint_path(out).exists()
    assert build(data, out) == 0  # the next run reuses every track and writes the output alone
    assert "reused 30 unchanged" in capsys.readouterr().out and not checkpoint_path(out).exists()


def test_genre_names_with_control_characters_are_printed_escaped(data, tmp_path, capsys):
    (data / "organ").rename(data / "org\nan")
    assert build(data, tmp_path / "f.npz") == 0
    summary = capsys.readouterr().out.splitlines()[0]
    assert "5 genres (ambient, bass, drums, org\\nan, plucked)" in summary
    assert store.load(tmp_path / "f.npz").genres[3] == "org\nan"  # the name itself is kept
