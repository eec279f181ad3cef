"""Fuzzing the wav reader: mutated headers and bytes give a signal or an AudioError, nothing else."""

import struct

import numpy as np
import pytest
from crafted import chunk, extensible, fmt, pcm16, riff
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from wavs import analyse_track, read_signal, tone

from knn_genre.errors import AudioError, KnnGenreError

X = tone(0.2)
BASES = [
    riff([fmt(), chunk(b"data", pcm16(X))]),
    riff([fmt(channels=2), chunk(b"LIST", b"INFOabcd"), chunk(b"data", pcm16(np.repeat(X, 2)))]),
    riff([fmt(tag=3, bits=32), chunk(b"data", X.astype("<f4").tobytes())]),
    riff([fmt(bits=8), chunk(b"data", np.round(X * 127 + 128).astype(np.uint8).tobytes())]),
    riff([fmt(tag=0xFFFE, bits=24, ext=extensible(1, 24)), chunk(b"data", np.round(X * 2**23).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes())]),
]
# (offset, struct format) of the fields of the canonical 44-byte header.
FIELDS = [(4, "<I"), (16, "<I"), (20, "<H"), (22, "<H"), (24, "<I"), (28, "<I"), (32, "<H"), (34, "<H"), (40, "<I")]
INTERESTING = [0, 1, 2, 3, 7, 8, 16, 24, 32, 44, 64, 1000, 22050, 44100, 0x7FFF, 0xFFFE, 0xFFFF, 2**31 - 1, 2**32 - 1]

field_edit = st.tuples(st.just("field"), st.sampled_from(FIELDS), st.one_of(st.sampled_from(INTERESTING), st.integers(0, 2**32 - 1)))
byte_edit = st.tuples(st.just("byte"), st.integers(0, 200), st.integers(0, 255))
cut = st.tuples(st.just("cut"), st.integers(0, 400), st.none())
insert = st.tuples(st.just("insert"), st.integers(0, 120), st.binary(min_size=1, max_size=24))


def mutate(data: bytes, edits) -> bytes:
    data = bytearray(data)
    for kind, where, value in edits:
        if kind == "field":
            offset, form = where
            value &= (1 << (8 * struct.calcsize(form))) - 1
            data[offset : offset + struct.calcsize(form)] = struct.pack(form, value)
        elif kind == "byte" and where < len(data):
            data[where] = value
        elif kind == "cut":
            del data[where:]
        elif kind == "insert":
            data[where:where] = value
    return bytes(data)


def assert_a_signal(signal):
    """What a read that succeeds returns: some samples, mono, finite (a file without any is an AudioError)."""
    assert isinstance(signal, np.ndarray) and signal.dtype == np.float64 and signal.ndim == 1
    assert signal.size > 0
    assert np.all(np.isfinite(signal))


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from(range(len(BASES))), edits=st.lists(st.one_of(field_edit, byte_edit, cut, insert), min_size=1, max_size=4))
@example(base=0, edits=[("field", (40, "<I"), 0)])  # a data chunk of no samples
def test_mutated_wavs_give_a_signal_or_an_audio_error(tmp_path, base, edits):
    path = tmp_path / "fuzz.wav"
    path.write_bytes(mutate(BASES[base], edits))
    try:
        signal = read_signal(path)
    except AudioError as exc:
        assert exc.path == str(path) and "\n" not in exc.reason
        return
    assert_a_signal(signal)
    try:
        mean, cov = analyse_track(path)
    except KnnGenreError:
        return
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))


@settings(max_examples=100, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300))
def test_arbitrary_bytes_give_an_audio_error(tmp_path, content):
    path = tmp_path / "noise.wav"
    data = b"RIFF" + content[:4] + b"WAVE" + content[4:] if len(content) % 2 else content
    path.write_bytes(data)
    magic = data[:4] in (b"RIFF", b"RIFX", b"RF64") and data[8:12] == b"WAVE"
    # Without the magic, or without both a fmt and a data chunk, no bytes make a wav.
    if not magic or b"fmt " not in data or b"data" not in data:
        with pytest.raises(AudioError) as info:
            read_signal(path)
        assert info.value.path == str(path) and info.value.reason and "\n" not in info.value.reason
        return
    try:
        signal = read_signal(path)
    except AudioError:
        return
    assert_a_signal(signal)
