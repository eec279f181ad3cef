"""Opening an audio file of any supported format as one kind of object.

:func:`open_audio` picks the reader from the file name and returns a source
with the same small interface whatever the container: ``path``,
``sample_rate``, ``frames`` and ``read(start, stop)``, which gives frames
``[start, stop)`` as a mono float64 signal in [-1, 1] at the file's own
rate. Everything downstream (cutting, resampling, features) sees only that
interface; a new format is one reader class and one suffix in
:data:`READERS`.

Files in audio formats that cannot be decoded here (:data:`UNSUPPORTED`:
AAC/M4A, WMA, APE, ...) are still audio files: a collection lists them
among its tracks and skips each with its reason, rather than counting it
as "non-audio".
"""

from __future__ import annotations

import os
from pathlib import PurePath

from ..errors import AudioError
from .decoded import AiffSource, AuSource, FlacSource, Mp3Source, OggSource
from .files import open_regular, read_bytes
from .sniff import HEAD_BYTES, identify
from .wav import WavSource

__all__ = ["READERS", "AUDIO_SUFFIXES", "UNSUPPORTED", "open_audio", "read_audio", "is_audio_name"]

#: Reader class by lower-case file suffix.
READERS = {
    ".wav": WavSource,
    ".wave": WavSource,
    ".bwf": WavSource,  # Broadcast WAV: RIFF WAVE with a bext chunk
    ".rf64": WavSource,
    ".au": AuSource,
    ".snd": AuSource,
    ".aiff": AiffSource,
    ".aif": AiffSource,
    ".aifc": AiffSource,
    ".flac": FlacSource,
    ".ogg": OggSource,
    ".oga": OggSource,
    ".opus": OggSource,
    ".mp3": Mp3Source,
    ".mp2": Mp3Source,
}

#: Suffixes of the files a collection is built from.
AUDIO_SUFFIXES = tuple(READERS)

#: Audio formats no reader decodes, by lower-case suffix: what they are.
UNSUPPORTED = {
    ".m4a": "MP4/M4A audio (AAC or Apple Lossless)",
    ".m4b": "MP4 audiobook (AAC)",
    ".m4p": "protected MP4 audio (AAC with DRM)",
    ".mp4": "MP4 (AAC audio)",
    ".aac": "raw AAC (ADTS)",
    ".alac": "Apple Lossless",
    ".wma": "Windows Media Audio",
    ".asf": "Windows Media (ASF)",
    ".ape": "Monkey's Audio",
    ".wv": "WavPack",
    ".mpc": "Musepack",
    ".ac3": "AC-3 (Dolby Digital)",
    ".dts": "DTS",
    ".amr": "AMR speech",
    ".mka": "Matroska audio",
    ".webm": "WebM audio",
    ".weba": "WebM audio",
    ".ra": "RealAudio",
    ".rm": "RealMedia",
    ".dsf": "DSD (DSF)",
    ".dff": "DSD (DSDIFF)",
    ".tta": "True Audio",
    ".mid": "MIDI (notes, not sound)",
    ".midi": "MIDI (notes, not sound)",
    ".caf": "Core Audio Format",
    ".w64": "Sony Wave64",
}


def is_audio_name(name: str | os.PathLike) -> bool:
    """Whether a file name has the suffix of an audio format (case-insensitive).

    True for the formats :func:`open_audio` reads and for those it only
    recognises (:data:`UNSUPPORTED`), which it refuses with a reason.
    """
    suffix = PurePath(name).suffix.lower()
    return suffix in READERS or suffix in UNSUPPORTED


def open_audio(path: str | os.PathLike):
    """An open audio source for ``path``, its header already checked.

    Raises
    ------
    AudioError
        If the suffix is not a supported format, or the file cannot be read
        as one (the reason names what was found instead).
    """
    path = os.fspath(path)
    suffix = PurePath(path).suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        raise AudioError(path, _unsupported_reason(path, suffix))
    return reader(path)


def _unsupported_reason(path: str, suffix: str) -> str:
    """Why ``path`` has no reader: an unknown suffix, or an audio format not decoded here."""
    supported = ", ".join(AUDIO_SUFFIXES)
    with open_regular(path) as fh:  # a missing file, a folder or a FIFO get their own reason
        if suffix not in UNSUPPORTED:
            return f"unsupported file type {suffix or '(no suffix)'!r}; supported: {supported}"
        kind, description = identify(read_bytes(fh, HEAD_BYTES, path))
    if kind == "empty":
        return "empty file (0 bytes)"
    if kind in _SUFFIX_OF_KIND:
        return f"named {suffix} but its content is {description}: rename it to {_SUFFIX_OF_KIND[kind]}"
    return unsupported_reason(suffix)


def unsupported_reason(suffix: str) -> str:
    """Why a file of the undecoded format ``suffix`` (a key of :data:`UNSUPPORTED`) is refused."""
    return f"{UNSUPPORTED[suffix]} cannot be decoded here; convert it to FLAC, WAV or MP3"


# The suffix that reads a file of each kind identify() recognises.
_SUFFIX_OF_KIND = {"wav": ".wav", "au": ".au", "aiff": ".aiff", "flac": ".flac", "ogg": ".ogg", "mp3": ".mp3"}


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
