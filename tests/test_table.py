"""The table family against librosa's own functions, and its running median against scipy's."""

import numpy as np
import pytest
import scipy.ndimage

from knn_genre.audio.synth import GENRES, synthesize
from knn_genre.errors import FeatureError, ParameterError
from knn_genre.features.median import median_filter_1d
from knn_genre.features.params import TableParams
from knn_genre.features.table import TableFamily, table_features

librosa = pytest.importorskip("librosa")


def librosa_columns(y, sr=22050, pad_mode="reflect"):
    """The table columns from librosa's functions, called as GTZAN's authors did (padding made explicit)."""
    out = []

    def mean_var(a):
        out.extend([np.mean(a), np.var(a)])

    mean_var(librosa.feature.chroma_stft(y=y, sr=sr, pad_mode=pad_mode))
    mean_var(librosa.feature.rms(y=y, pad_mode=pad_mode, dtype=np.float64))
    mean_var(librosa.feature.spectral_centroid(y=y, sr=sr, pad_mode=pad_mode))
    mean_var(librosa.feature.spectral_bandwidth(y=y, sr=sr, pad_mode=pad_mode))
    mean_var(librosa.feature.spectral_rolloff(y=y, sr=sr, pad_mode=pad_mode))
    mean_var(librosa.feature.zero_crossing_rate(y))
    harmonic, percussive = librosa.effects.hpss(y, pad_mode=pad_mode)
    mean_var(harmonic)
    mean_var(percussive)
    onsets = librosa.onset.onset_strength(y=y, sr=sr, aggregate=np.median, pad_mode=pad_mode)
    out.append(float(np.atleast_1d(librosa.beat.beat_track(onset_envelope=onsets, sr=sr)[0])[0]))
    for row in librosa.feature.mfcc(y=y, sr=sr, pad_mode=pad_mode):
        mean_var(row)
    return np.array(out)


@pytest.fixture(scope="module")
def clips():
    # Rhythmic and tonal material, one clip per generated genre, plus a clip
    # with silent stretches (zero frames: the normalisations' special cases).
    signals = [synthesize(genre, 0, seconds=6.0, seed=3) for genre in GENRES]
    gapped = synthesize("drums", 1, seconds=6.0, seed=3)
    gapped[22050:66150] = 0.0
    return signals + [gapped]


@pytest.mark.filterwarnings("ignore:Trying to estimate tuning from empty frequency set")
@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
def test_every_column_equals_librosa(clips, pad_mode):
    params = TableParams(pad_mode=pad_mode)
    columns = params.columns()
    for i, y in enumerate(clips):
        ours = table_features(y, params)
        theirs = librosa_columns(y, pad_mode=pad_mode)
        assert ours.shape == theirs.shape == (57,)
        tempo = columns.index("tempo")
        assert ours[tempo] == theirs[tempo], f"clip {i}"
        # librosa's mel and chroma filter banks are float32: agreement to ~1e-6.
        np.testing.assert_allclose(np.delete(ours, tempo), np.delete(theirs, tempo), rtol=2e-5, atol=1e-9, err_msg=f"clip {i}")


def test_family_interface_and_column_order():
    family = TableFamily()
    columns = family.columns()
    assert columns[:17] == [
        "chroma_stft_mean", "chroma_stft_var", "rms_mean", "rms_var", "spectral_centroid_mean", "spectral_centroid_var",
        "spectral_bandwidth_mean", "spectral_bandwidth_var", "rolloff_mean", "rolloff_var", "zero_crossing_rate_mean",
        "zero_crossing_rate_var", "harmony_mean", "harmony_var", "perceptr_mean", "perceptr_var", "tempo",
    ]
    assert columns[17:] == [f"mfcc{i}_{s}" for i in range(1, 21) for s in ("mean", "var")]
    y = synthesize("organ", 0, seconds=1.0)
    rows = family.compute(y)
    assert rows["table"].shape == (57,) and int(rows["length"]) == len(y)
    with pytest.raises(FeatureError, match="too short"):
        family.compute(y[:1000], path="x.wav")
    assert len(TableParams(n_mfcc=13).columns()) == 17 + 26
    for bad in ({"n_fft": 2047}, {"hpss_width": 30}, {"pad_mode": "wrap"}, {"n_mfcc": 200}):
        with pytest.raises(ParameterError):
            TableParams(**bad)


@pytest.mark.parametrize("shape,width,axis", [((40, 97), 31, 1), ((97, 40), 31, 0), ((5, 33, 7), 9, 1), ((3, 16), 31, -1), ((2, 200), 1, 1)])
def test_running_median_equals_scipy(shape, width, axis):
    rng = np.random.default_rng(0)
    for x in (rng.random(shape), rng.integers(0, 4, shape).astype(float)):  # ties too
        size = [1] * len(shape)
        size[axis] = width
        expected = scipy.ndimage.median_filter(x, size=size, mode="reflect")
        np.testing.assert_array_equal(median_filter_1d(x, width, axis=axis), expected)


def test_running_median_rejects_even_windows():
    with pytest.raises(ParameterError, match="odd"):
        median_filter_1d(np.zeros(10), 4)
