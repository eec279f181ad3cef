import numpy as np
import pytest
from wavs import tone

from knn_genre.errors import FeatureError, ParameterError
from knn_genre.features.families import track_gaussian
from knn_genre.features.gaussian import dim_from_width, gaussian, pack, packed_width, unpack
from knn_genre.features.mfcc import mfcc_frames
from knn_genre.features.params import MFCCParams


def test_default_parameters_match_the_tutorial_at_22050():
    p = MFCCParams()
    assert (p.sample_rate, p.winlen, p.winstep, p.numcep, p.nfilt) == (22050, 0.020, 0.010, 13, 26)
    assert p.frame_length == 441 and p.fft_size == 512


@pytest.mark.parametrize("rate, winlen, nfft", [(22050, 0.020, 512), (44100, 0.020, 1024), (16000, 0.025, 512), (8000, 0.032, 256)])
def test_fft_size_is_smallest_power_of_two_holding_a_frame(rate, winlen, nfft):
    assert MFCCParams(sample_rate=rate, winlen=winlen).fft_size == nfft


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"numcep": 0}, "numcep=0"),
        ({"numcep": 30}, "must not exceed nfilt"),
        ({"winlen": -0.02}, "winlen"),
        ({"winstep": float("nan")}, "winstep"),
        ({"nfft": 256}, "nfft=256"),
        ({"sample_rate": 22050.5}, "sample_rate"),
        ({"preemph": 1.5}, "preemph"),
    ],
)
def test_invalid_parameters_name_the_value(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        MFCCParams(**kwargs)


def test_params_round_trip_through_dict_with_nfft_resolved():
    p = MFCCParams(numcep=20, nfilt=40)
    d = p.to_dict()
    assert d["nfft"] == 512
    assert MFCCParams.from_dict(d).to_dict() == d
    with pytest.raises(ParameterError, match="unknown"):
        MFCCParams.from_dict({**d, "colour": 1})


def test_mfcc_frames_shape_follows_the_hop():
    x = tone(1.0)
    frames = mfcc_frames(x, MFCCParams())
    # psf pads the last frame: 1 + ceil((n - frame) / hop) frames.
    assert frames.shape == (1 + int(np.ceil((len(x) - 441) / 221)), 13)


def test_gaussian_is_mean_and_unbiased_covariance():
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(500, 4)) @ rng.normal(size=(4, 4))
    mean, cov = gaussian(frames)
    np.testing.assert_allclose(mean, frames.mean(0))
    np.testing.assert_allclose(cov, np.cov(frames, rowvar=False))
    assert np.array_equal(cov, cov.T)


def test_too_short_signal_names_the_file_and_the_minimum():
    x = tone(0.1)  # ~9 frames, 13-d covariance needs 14
    with pytest.raises(FeatureError, match=r"short\.wav: too short.*at least 14"):
        track_gaussian(x, MFCCParams(), path="short.wav")
    mean, cov = track_gaussian(tone(0.2), MFCCParams())  # 20 frames is enough
    assert mean.shape == (13,) and cov.shape == (13, 13)


@pytest.mark.parametrize("d", [1, 2, 3, 13, 20])
def test_pack_unpack_round_trip(d):
    rng = np.random.default_rng(d)
    a = rng.normal(size=(5, d, d))
    covs = a @ a.transpose(0, 2, 1)
    means = rng.normal(size=(5, d))
    X = pack(means, covs)
    assert X.shape == (5, packed_width(d))
    assert dim_from_width(X.shape[1]) == d
    m2, c2 = unpack(X)
    np.testing.assert_array_equal(m2, means)
    np.testing.assert_allclose(c2, covs)
    # The layout is [mean, cov[triu]] in row-major upper-triangle order.
    iu = np.triu_indices(d)
    np.testing.assert_array_equal(X[0, d:], covs[0][iu])


def test_any_stretch_of_the_preemphasis_is_psf_bit_for_bit():
    import python_speech_features as psf

    from knn_genre.features.mfcc import _preemphasised

    x = np.random.default_rng(9).uniform(-1, 1, 1000)
    whole = np.concatenate([psf.sigproc.preemphasis(x, 0.97), np.zeros(100)])
    for start, length in [(0, 1), (0, 1000), (1, 5), (500, 441), (990, 50), (1000, 20), (1050, 10)]:
        np.testing.assert_array_equal(_preemphasised(x, start, length, 0.97), whole[start : start + length])


@pytest.mark.parametrize("block_frames", [1, 7, 512])
def test_mfcc_frames_in_blocks_equal_python_speech_features_to_rounding(monkeypatch, block_frames):
    # Blocks of frames, each pre-emphasised on its own, change only the last
    # bits (BLAS rounds a block of rows of the filter-bank product according
    # to its size).
    import python_speech_features as psf

    from knn_genre.features import mfcc

    monkeypatch.setattr(mfcc, "_BLOCK_FRAMES", block_frames)
    x = np.random.default_rng(5).uniform(-1, 1, 50_000)
    x[20_000:25_000] = 0.0
    expected = psf.mfcc(x, 22050, winlen=0.020, winstep=0.010, numcep=13, nfilt=26, nfft=512, appendEnergy=False)
    np.testing.assert_allclose(mfcc_frames(x, MFCCParams()), expected, rtol=0, atol=1e-13 * np.abs(expected).max())


def test_packed_width_of_13_is_104():
    assert packed_width(13) == 104


@pytest.mark.parametrize("width", [0, 1, 3, 4, 6, 103, 105])
def test_widths_that_pack_nothing_are_rejected(width):
    with pytest.raises(ValueError, match="not a packed Gaussian width"):
        dim_from_width(width)


def test_params_with_auto_nfft_equal_the_resolved_size():
    assert MFCCParams() == MFCCParams(nfft=512)
    assert hash(MFCCParams()) == hash(MFCCParams(nfft=512))
    assert MFCCParams() != MFCCParams(nfft=1024)


@pytest.mark.parametrize("n", [10, 441, 442, 663, 22050, 100_001])
@pytest.mark.parametrize(
    "params",
    [MFCCParams(), MFCCParams(sample_rate=16000, winlen=0.025, winstep=0.0123, numcep=20, nfilt=40), MFCCParams(preemph=0.0, ceplifter=0)],
)
def test_mfcc_frames_equal_python_speech_features_bit_for_bit(n, params):
    # At most 512 frames each: one block, see the next test for more.
    import python_speech_features as psf

    x = np.random.default_rng(n).uniform(-1, 1, n)
    x[: n // 3] = 0.0  # silent stretch: zero filter-bank energies take psf's eps path
    expected = psf.mfcc(
        x, params.sample_rate, winlen=params.winlen, winstep=params.winstep, numcep=params.numcep,
        nfilt=params.nfilt, nfft=params.fft_size, preemph=params.preemph, ceplifter=params.ceplifter, appendEnergy=False,
    )
    np.testing.assert_array_equal(mfcc_frames(x, params), expected)
