"""Audio input: every file format, decoded to one canonical kind of signal.

- :mod:`~knn_genre.audio.source`: :func:`open_audio`, one interface for every format;
- :mod:`~knn_genre.audio.wav`: WAV headers checked against the file, samples by frame range;
- :mod:`~knn_genre.audio.au`, :mod:`~knn_genre.audio.aiff`, :mod:`~knn_genre.audio.flac`,
  :mod:`~knn_genre.audio.ogg`, :mod:`~knn_genre.audio.mpeg`: the other containers' headers
  checked against the file, before any decoding;
- :mod:`~knn_genre.audio.decoded`: their samples decoded by libsndfile (``soundfile``), block by block;
- :mod:`~knn_genre.audio.sniff`: what a file is from its first bytes, for reasons;
- :mod:`~knn_genre.audio.files`: opening files safely (no FIFOs, every failure an AudioError);
- :mod:`~knn_genre.audio.signal`: scaling to [-1, 1], channel mixing, resampling;
- :mod:`~knn_genre.audio.windows`: segments and windows, in frames of the file's rate;
- :mod:`~knn_genre.audio.synth`: the generated demo collection.

This stage imports nothing of the stages above it (features, classifiers, ...).
"""

from .signal import resample, to_float, to_mono
from .source import AUDIO_SUFFIXES, UNSUPPORTED, is_audio_name, open_audio, read_audio
from .windows import window_spans

__all__ = ["AUDIO_SUFFIXES", "UNSUPPORTED", "is_audio_name", "open_audio", "read_audio", "resample", "to_float", "to_mono", "window_spans"]
