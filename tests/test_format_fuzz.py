"""Fuzzing the readers of the other formats: damaged AU, AIFF, FLAC, MP3, Ogg and Opus files give a signal or an AudioError, nothing else."""

import numpy as np
import pytest
from encoded import write_lossless, write_lossy, write_marsyas_au
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from wavs import read_signal, tone

from knn_genre.errors import AudioError

X = tone(0.3)
WRITERS = {
    ".au": lambda p: write_marsyas_au(p, X),
    ".aiff": lambda p: write_lossless(p, X, "aiff", 16),
    ".flac": lambda p: write_lossless(p, X, "flac", 16),
    ".mp3": lambda p: write_lossy(p, X, "mp3"),
    ".ogg": lambda p: write_lossy(p, X, "ogg"),
    ".opus": lambda p: write_lossy(p, tone(0.3, rate=48000), "opus", rate=48000),  # Opus runs at 48 kHz
}


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-bases")
    return {suffix: write(folder / f"base{suffix}").read_bytes() for suffix, write in WRITERS.items()}


# Most parsing happens in the first bytes (headers, the first frame or page); cuts reach further.
byte_edit = st.tuples(st.just("byte"), st.integers(0, 300), st.integers(0, 255))
far_edit = st.tuples(st.just("far"), st.floats(0, 1), st.integers(0, 255))
cut = st.tuples(st.just("cut"), st.integers(0, 600), st.none())
far_cut = st.tuples(st.just("far-cut"), st.floats(0, 1), st.none())
insert = st.tuples(st.just("insert"), st.integers(0, 200), st.binary(min_size=1, max_size=24))


def mutate(data: bytes, edits) -> bytes:
    data = bytearray(data)
    for kind, where, value in edits:
        if kind in ("far", "far-cut"):
            where = int(where * max(len(data) - 1, 0))
        if kind in ("byte", "far") and where < len(data):
            data[where] = value
        elif kind in ("cut", "far-cut"):
            del data[where:]
        elif kind == "insert":
            data[where:where] = value
    return bytes(data)


@settings(max_examples=250, deadline=5000, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from(sorted(WRITERS)), edits=st.lists(st.one_of(byte_edit, far_edit, cut, far_cut, insert), min_size=1, max_size=4))
@example(suffix=".au", edits=[("byte", i, 0) for i in range(8, 12)])  # a header that declares no samples
def test_damaged_files_give_a_signal_or_a_one_line_audio_error(tmp_path, bases, suffix, edits):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(mutate(bases[suffix], edits))
    try:
        signal = read_signal(path)
    except AudioError as exc:
        assert exc.path == str(path) and exc.reason and "\n" not in exc.reason
        return
    # A read that succeeds holds samples: a file without any is an AudioError.
    assert isinstance(signal, np.ndarray) and signal.dtype == np.float64 and signal.ndim == 1
    assert signal.size > 0
    assert np.all(np.isfinite(signal))


@pytest.mark.parametrize("suffix", sorted(WRITERS))
def test_every_prefix_of_the_headers_gives_an_audio_error_or_a_signal(tmp_path, bases, suffix):
    raw = bases[suffix]
    path = tmp_path / f"cut{suffix}"
    errors = 0
    for n in range(0, 200):
        path.write_bytes(raw[:n])
        try:
            read_signal(path)
        except AudioError as exc:
            assert "\n" not in exc.reason and "unexpected" not in exc.reason, (n, exc.reason)
            errors += 1
    assert errors == 200  # no format's first 200 bytes hold a whole file
