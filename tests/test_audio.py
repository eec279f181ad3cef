import numpy as np
import pytest
from scipy.signal import resample_poly
from wavs import tone, write_wav

from knn_genre.audio import read_wav, to_float
from knn_genre.builder import analyse_track
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
    y = read_wav(path)
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
    y = read_wav(path, 22050)
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
        (b"", "not a readable wav"),
        (b"ID3\x03\x00\x00\x00" + b"\x00" * 200, "not a readable wav"),
        (b"RIFF\x24\x00\x00\x00AVI LIST" + b"\x00" * 40, "not a readable wav"),
    ],
)
def test_non_wav_bytes_raise_audio_error_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=reason) as info:
        read_wav(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_truncated_data_chunk_is_an_error(tmp_path):
    path = write_wav(tmp_path / "t.wav", tone(0.5))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError):
        read_wav(path)


def test_zero_frames_and_non_finite_samples_are_errors(tmp_path):
    empty = write_wav(tmp_path / "empty.wav", np.zeros(0), fmt="int16")
    with pytest.raises(AudioError, match="no audio samples"):
        read_wav(empty)
    x = tone(0.5).astype(np.float32)
    x[100] = np.nan
    nan = write_wav(tmp_path / "nan.wav", x, fmt="float32")
    with pytest.raises(AudioError, match="NaN or infinity"):
        read_wav(nan)


def test_missing_file_and_directory_are_audio_errors(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        read_wav(tmp_path / "nope.wav")
    (tmp_path / "dir.wav").mkdir()
    with pytest.raises(AudioError, match="directory"):
        read_wav(tmp_path / "dir.wav")


def test_audio_errors_are_value_errors_of_the_package():
    assert issubclass(AudioError, KnnGenreError) and issubclass(AudioError, ValueError)

