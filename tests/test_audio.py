import struct

import numpy as np
import pytest
from crafted import chunk, extensible, fmt, pcm16, riff, wav16
from scipy.io import wavfile
from scipy.signal import resample_poly
from wavs import analyse_track, read_signal, tone, write_wav

from knn_genre.audio import read_audio, resample, to_float
from knn_genre.audio.wav import WavSource, samples_from_bytes, wav_info
from knn_genre.errors import AudioError, KnnGenreError


@pytest.mark.parametrize(
    "dtype, raw, expected",
    [
        (np.uint8, [0, 128, 255], [-1.0, 0.0, 127 / 128]),
        (np.int16, [-32768, 0, 16384], [-1.0, 0.0, 0.5]),
        (np.int32, [-(2**31), 0, 2**30], [-1.0, 0.0, 0.5]),
        (np.float32, [-1.0, 0.25, 1.0], [-1.0, 0.25, 1.0]),
    ],
)
def test_to_float_scales_each_dtype_to_unit_range(dtype, raw, expected):
    np.testing.assert_allclose(to_float(np.array(raw, dtype=dtype)), expected)


@pytest.mark.parametrize("fmt", ["uint8", "int16", "int24", "int32", "float32", "float64"])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_every_supported_format_reads_as_mono_float(tmp_path, fmt, channels):
    x = tone(0.5)
    data = np.repeat(x[:, None], channels, axis=1) if channels > 1 else x
    path = write_wav(tmp_path / f"clip_{fmt}_{channels}.wav", data, fmt=fmt)
    y = read_signal(path)
    assert y.dtype == np.float64 and y.shape == x.shape
    # uint8 keeps 8 bits: its error is about one quantisation step.
    tol = 1 / 64 if fmt == "uint8" else 1e-4
    np.testing.assert_allclose(y, x, atol=tol)


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_other_rates_are_resampled_to_the_target(tmp_path, rate):
    x = tone(1.0)  # at 22050 Hz
    # The same band-limited signal stored at another rate.
    stored = resample_poly(x, rate, 22050) if rate > 22050 else None
    if stored is None:
        x = resample_poly(resample_poly(x, rate, 22050), 22050, rate)  # band-limit first
        stored = resample_poly(x, rate, 22050)
    path = write_wav(tmp_path / "r.wav", 0.9 * stored / np.abs(stored).max(), rate=rate, fmt="float32")
    y = read_signal(path, 22050)
    assert abs(len(y) - len(x)) <= 1
    n = min(len(x), len(y))
    ref = 0.9 * x / np.abs(stored).max()
    # Compare away from the edges, where the polyphase filters ramp up.
    core = slice(200, n - 200)
    assert np.max(np.abs(y[core] - ref[:n][core])) < 0.02


def test_same_clip_in_every_encoding_gives_the_same_gaussian(tmp_path):
    x = tone(1.0)
    versions = {
        "int16": write_wav(tmp_path / "a.wav", x, fmt="int16"),
        "int24": write_wav(tmp_path / "b.wav", x, fmt="int24"),
        "float32": write_wav(tmp_path / "c.wav", x, fmt="float32"),
        "stereo": write_wav(tmp_path / "d.wav", np.stack([x, x], axis=1), fmt="int16"),
    }
    ref_mean, ref_cov = analyse_track(versions["int16"])
    for name, path in versions.items():
        mean, cov = analyse_track(path)
        np.testing.assert_allclose(mean, ref_mean, rtol=1e-3, atol=1e-3 * np.abs(ref_mean).max(), err_msg=name)
        np.testing.assert_allclose(cov, ref_cov, rtol=1e-3, atol=1e-3 * np.abs(ref_cov).max(), err_msg=name)


def test_int16_path_equals_the_reference_recipe_exactly(tmp_path):
    import python_speech_features as psf
    from scipy.io import wavfile

    path = write_wav(tmp_path / "ref.wav", tone(2.0), fmt="int16")
    _, raw = wavfile.read(path)
    frames = psf.mfcc(raw / 2**15, 22050, winlen=0.020, winstep=0.010, numcep=13, nfilt=26, nfft=512, appendEnergy=False)
    mean, cov = analyse_track(path)
    np.testing.assert_allclose(mean, frames.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cov, np.cov(frames.T), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty file"),
        (b"ID3\x03\x00\x00\x00" + b"\x00" * 200, "not a wav file: starts with 'ID3.*MP3"),
        (b"RIFF\x24\x00\x00\x00AVI LIST" + b"\x00" * 40, "RIFF form type is 'AVI '"),
        (b"fLaC\x00\x00\x00\x22" + b"\x00" * 40, "a FLAC file"),
        (b"RIFF\x04\x00", "too short for a wav header"),
    ],
)
def test_non_wav_bytes_raise_audio_error_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=reason) as info:
        read_signal(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_truncated_data_chunk_is_an_error(tmp_path):
    path = write_wav(tmp_path / "t.wav", tone(0.5))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"truncated: the header declares 11025 frames \(22050 bytes\) but the file holds 5501 "):
        read_signal(path)


def test_zero_frames_and_non_finite_samples_are_errors(tmp_path):
    empty = write_wav(tmp_path / "empty.wav", np.zeros(0), fmt="int16")
    with pytest.raises(AudioError, match="no audio samples"):
        read_signal(empty)
    x = tone(0.5).astype(np.float32)
    x[100] = np.nan
    nan = write_wav(tmp_path / "nan.wav", x, fmt="float32")
    with pytest.raises(AudioError, match="NaN or infinity"):
        read_signal(nan)


def test_missing_file_and_directory_are_audio_errors(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        read_signal(tmp_path / "nope.wav")
    (tmp_path / "dir.wav").mkdir()
    with pytest.raises(AudioError, match="directory"):
        read_signal(tmp_path / "dir.wav")


def test_audio_errors_are_value_errors_of_the_package():
    assert issubclass(AudioError, KnnGenreError) and issubclass(AudioError, ValueError)


@pytest.mark.parametrize("fmt_name", ["uint8", "int16", "int24", "int32", "float32", "float64"])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_samples_are_exactly_those_scipy_decodes(tmp_path, fmt_name, channels):
    x = tone(0.2)
    data = np.stack([x * (c + 1) / channels for c in range(channels)], axis=1) if channels > 1 else x
    path = write_wav(tmp_path / "s.wav", data, fmt=fmt_name)
    rate, raw = wavfile.read(path)
    signal, got_rate = read_audio(path)
    assert got_rate == rate == 22050
    np.testing.assert_array_equal(signal, to_float(raw).reshape(len(raw), -1).mean(axis=1))
    # The own decoder, used for valid layouts scipy cannot map, agrees bit for bit.
    info = wav_info(path)
    with open(path, "rb") as fh:
        fh.seek(info.data_offset)
        own = samples_from_bytes(fh.read(info.frames * info.block_align), info)
    assert own.dtype == raw.dtype
    np.testing.assert_array_equal(own, raw)
    # And so does every stretch read on its own.
    with WavSource(path) as source:
        np.testing.assert_array_equal(np.concatenate([source.read(a, a + 1000) for a in range(0, source.frames, 1000)]), signal)


def test_wav_info_describes_the_layout_without_reading_samples(tmp_path):
    info = wav_info(write_wav(tmp_path / "i.wav", np.zeros((441, 2)), rate=44100, fmt="int24"))
    assert (info.sample_rate, info.channels, info.encoding, info.bits_per_sample) == (44100, 2, "pcm", 24)
    assert (info.container_bytes, info.block_align, info.frames, info.seconds) == (3, 6, 441, 0.01)


def test_big_endian_rifx_and_rf64_are_read(tmp_path):
    x = tone(0.5)
    samples = np.round(x * 32767).astype(">i2").tobytes()
    body = b"WAVE" + b"fmt " + struct.pack(">IHHIIHH", 16, 1, 1, 22050, 44100, 2, 16) + b"data" + struct.pack(">I", len(samples)) + samples
    (tmp_path / "rifx.wav").write_bytes(b"RIFX" + struct.pack(">I", len(body)) + body)
    good = pcm16(x)
    ds64 = chunk(b"ds64", struct.pack("<QQQI", 0, len(good), len(good) // 2, 0))
    body = b"WAVE" + ds64 + fmt() + b"data" + struct.pack("<I", 0xFFFFFFFF) + good
    (tmp_path / "rf64.wav").write_bytes(b"RF64" + struct.pack("<I", 0xFFFFFFFF) + body)
    (tmp_path / "ref.wav").write_bytes(wav16(x))
    reference = read_signal(tmp_path / "ref.wav")
    np.testing.assert_array_equal(read_signal(tmp_path / "rifx.wav"), reference)
    np.testing.assert_array_equal(read_signal(tmp_path / "rf64.wav"), reference)


def test_extensible_pcm_and_float_are_read(tmp_path):
    x = tone(0.5)
    six = np.repeat(x[:, None], 6, axis=1)
    (tmp_path / "pcm.wav").write_bytes(riff([fmt(tag=0xFFFE, channels=6, ext=extensible(1, 16, 0x3F)), chunk(b"data", pcm16(six.ravel()))]))
    (tmp_path / "f.wav").write_bytes(riff([fmt(tag=0xFFFE, bits=32, ext=extensible(3, 32)), chunk(b"data", x.astype("<f4").tobytes())]))
    np.testing.assert_allclose(read_signal(tmp_path / "pcm.wav"), x, atol=1e-4)
    np.testing.assert_allclose(read_signal(tmp_path / "f.wav"), x, atol=1e-7)


def test_header_quirks_of_real_files_are_tolerated(tmp_path):
    x = tone(0.5)
    good = pcm16(x)
    (tmp_path / "ref.wav").write_bytes(wav16(x))
    reference = read_signal(tmp_path / "ref.wav")
    variants = {
        "metadata chunks": riff([fmt(), chunk(b"bext", b"\0" * 602), chunk(b"id3 ", b"\0" * 11), chunk(b"data", good)]),
        "trailing chunk": riff([fmt(), chunk(b"data", good), chunk(b"LIST", b"INFO")]),
        "streaming RIFF size": riff([fmt(), chunk(b"data", good)], size=0xFFFFFFFF),
        "zero RIFF size": riff([fmt(), chunk(b"data", good)], size=0),
        # ffmpeg writing to a pipe: neither size known, the samples run to the end of the file.
        "streaming data size": riff([fmt(), chunk(b"LIST", b"INFO"), chunk(b"data", good, size=0xFFFFFFFF)], size=0xFFFFFFFF),
        "streaming data size, partial last frame": riff(
            [fmt(channels=2), chunk(b"data", pcm16(np.repeat(x, 2)) + b"\x01\x02", size=0xFFFFFFFF)], size=0xFFFFFFFF
        ),
        "partial last frame": riff([fmt(channels=2), chunk(b"data", pcm16(np.repeat(x, 2)) + b"\x01\x02")]),
        "wrong byte rate": riff([fmt(byte_rate=7), chunk(b"data", good)]),
    }
    for name, content in variants.items():
        path = tmp_path / "v.wav"
        path.write_bytes(content)
        np.testing.assert_array_equal(read_signal(path), reference, err_msg=name)


@pytest.mark.parametrize(
    "content, reason",
    [
        (riff([fmt(), chunk(b"data", b"\0" * 100, size=10**9)]), r"header declares 500000000 frames \(1000000000 bytes\) but the file holds 50 "),
        (riff([chunk(b"fmt ", b"\0" * 16, size=2**31)]), "fmt chunk declares 2147483648 bytes but only 16 follow"),
        (riff([fmt(), chunk(b"LIST", b"", size=2**30)]), "chunk 'LIST' declares 1073741824 bytes"),
        (riff([chunk(b"data", b"\0\0"), fmt()]), "data chunk comes before the fmt chunk"),
        (riff([fmt()]), "no data chunk"),
        (riff([chunk(b"JUNK", b"")] * 2000), "more than 1024 chunks"),
        (riff([chunk(b"fmt ", b"\0" * 8), chunk(b"data", b"\0\0")]), "fmt chunk of 8 bytes"),
        (riff([fmt(channels=0, block=2), chunk(b"data", b"\0\0")]), "0 channels"),
        (riff([fmt(channels=2, block=3), chunk(b"data", b"\0" * 6)]), "3 bytes per frame cannot hold 2"),
        (riff([fmt(bits=0, block=2), chunk(b"data", b"\0\0")]), "0 bits per sample"),
        (riff([fmt(bits=24, block=2), chunk(b"data", b"\0\0")]), "24 bits per sample do not fit 2-byte"),
        (riff([fmt(bits=80, block=10), chunk(b"data", b"\0" * 10)]), "at most 64 bits"),
        (riff([fmt(tag=3, bits=16), chunk(b"data", b"\0\0")]), "16-bit float"),
        (riff([fmt(tag=7, bits=8), chunk(b"data", b"\0\0")]), "mu-law"),
        (riff([fmt(tag=0xFFFE, ext=extensible(0x55, 16)), chunk(b"data", b"\0\0")]), "MP3"),
        (riff([fmt(tag=0xFFFE, ext=b"\x16\x00"), chunk(b"data", b"\0\0")]), "EXTENSIBLE fmt chunk shorter than 40"),
        (riff([fmt(rate=999), chunk(b"data", b"\0\0")]), "implausible sample rate 999 Hz"),
        # 1 kHz would make an hour at 22050 Hz of a few megabytes: a damaged header, not music.
        (riff([fmt(rate=1000), chunk(b"data", b"\0\0")]), r"implausible sample rate 1000 Hz in the header \(supported: 4000 to"),
        (riff([fmt(rate=3999), chunk(b"data", b"\0\0")]), "implausible sample rate 3999 Hz"),
        (riff([fmt(rate=768001), chunk(b"data", b"\0\0")]), "implausible sample rate 768001 Hz"),
        (b"RF64\xff\xff\xff\xffWAVE" + fmt() + b"data\xff\xff\xff\xff\0\0", "no ds64 chunk"),
    ],
)
def test_damaged_headers_are_named_before_any_sample_is_read(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=reason) as info:
        read_signal(path)
    assert "\n" not in str(info.value)


def test_odd_sample_rates_resample_in_bounded_time(monkeypatch):
    import scipy.signal

    from knn_genre.audio import signal as signal_module

    ratios = []

    def bounded_resample_poly(x, up, down, *args, **kwargs):
        # Checked before the call: an unbounded ratio would build its huge filter first.
        ratios.append((up, down))
        assert 1 <= up <= signal_module._MAX_RATIO_TERM and 1 <= down <= signal_module._MAX_RATIO_TERM, (up, down)
        return resample_poly(x, up, down, *args, **kwargs)

    monkeypatch.setattr(scipy.signal, "resample_poly", bounded_resample_poly)
    # The exact ratio 22050/767993 would need a filter of 15 million taps.
    x = np.random.default_rng(0).standard_normal(767993 // 4)
    y = resample(x, 767993, 22050)
    ((up, down),) = ratios
    assert abs(up / down - 22050 / 767993) < 1e-6 * 22050 / 767993  # the nearest bounded ratio
    assert abs(len(y) - 22050 // 4) <= 1
    assert len(resample(np.ones(48000), 48000, 22050)) == 22050  # common rates stay exact
    assert ratios[1:] == [(147, 320)]


def test_special_files_are_refused_without_blocking(tmp_path):
    import os

    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    with pytest.raises(AudioError, match="not a regular file"):
        read_signal(fifo)
    (tmp_path / "link.wav").symlink_to(tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="broken symbolic link"):
        read_signal(tmp_path / "link.wav")
