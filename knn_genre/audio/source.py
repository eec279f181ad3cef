"""Opening an audio file of any supported format as one kind of object.

:func:`open_audio` picks the reader from the file name and returns a source
with the same small interface whatever the container: ``path``,
``sample_rate``, ``frames`` and ``read(start, stop)``, which gives frames
``[start, stop)`` as a mono float64 signal in [-1, 1] at the file's own
rate. Everything downstream (cutting, resampling, features) sees only that
interface; a new format is one reader class here and one suffix in
:data:`READERS`.
"""

from __future__ import annotations

import os
from pathlib import PurePath

from ..errors import AudioError
from .wav import WavSource

__all__ = ["READERS", "AUDIO_SUFFIXES", "open_audio", "read_audio", "is_audio_name"]

#: Reader class by lower-case file suffix.
READERS = {".wav": WavSource}

#: Suffixes of the files a collection is built from.
AUDIO_SUFFIXES = tuple(READERS)


def is_audio_name(name: str | os.PathLike) -> bool:
    """Whether a file name has a suffix :func:`open_audio` reads (case-insensitive)."""
    return PurePath(name).suffix.lower() in READERS


def open_audio(path: str | os.PathLike):
    """An open audio source for ``path``, its header already checked.

    Raises
    ------
    AudioError
        If the suffix is not a supported format, or the file cannot be read
        as one (the reason names what was found instead).
    """
    path = os.fspath(path)
    reader = READERS.get(PurePath(path).suffix.lower())
    if reader is None:
        raise AudioError(path, f"unsupported file type {PurePath(path).suffix or '(no suffix)'!r}; supported: {', '.join(AUDIO_SUFFIXES)}")
    return reader(path)


def read_audio(path: str | os.PathLike, sample_rate: int | None = None):
    """The whole file as a mono float64 signal: ``(signal, rate)``.

    Parameters
    ----------
    path : str or path-like
    sample_rate : int, optional
        Resample to this rate (Hz); by default the file's own rate is kept.
    """
    from .signal import resample

    with open_audio(path) as source:
        signal, rate = source.read(), source.sample_rate
    if sample_rate is not None and sample_rate != rate:
        try:
            signal, rate = resample(signal, rate, sample_rate), sample_rate
        except MemoryError:
            raise AudioError(os.fspath(path), f"too long to resample in memory ({len(signal)} frames)") from None
    return signal, rate
