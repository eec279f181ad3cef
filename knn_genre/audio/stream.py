"""What every format's header check returns, and the checks they share.

Each container module (:mod:`~knn_genre.audio.au`,
:mod:`~knn_genre.audio.aiff`, :mod:`~knn_genre.audio.flac`,
:mod:`~knn_genre.audio.ogg`, :mod:`~knn_genre.audio.mpeg`) reads the header
of an open file itself, checks every declared size against the file and the
sample rate against :data:`~knn_genre.audio.signal.MIN_SAMPLE_RATE` ..
:data:`~knn_genre.audio.signal.MAX_SAMPLE_RATE`, and describes the stream
as a :class:`StreamInfo` before the decoder sees a byte.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import AudioError
from .files import read_at
from .sniff import HEAD_BYTES, cut_kind, identify, show

__all__ = ["StreamInfo", "expect_kind", "truncated_frames"]


@dataclass(frozen=True)
class StreamInfo:
    """The audio stream of a file, as its header declares it.

    Attributes
    ----------
    format : str
        Container and codec, for messages: ``"AU"``, ``"FLAC"``, ``"Ogg Vorbis"``, ``"MP3"``, ...
    encoding : str
        How samples are stored: ``"16-bit PCM"``, ``"mu-law"``, ``"MPEG-1 Layer III"``, ...
    sample_rate : int
        In Hz.
    channels : int
    frames : int or None
        Frames (one sample per channel) the header declares, already
        checked against the file where the file size bounds them; None when
        only the decoder knows (MP3).
    integer : bool
        The decoder gives integer PCM (read as left-justified int32 and
        scaled as WAV is), not float.
    lossless : bool
        Decoding gives the samples that were encoded, so a seek lands on
        exactly the sample asked for.
    stream_frames : int or None
        For MP3: frames the stream holds by counting its MPEG frames
        (before the encoder's delay and padding are removed).
    length_header : str or None
        For MP3: the header giving the decoder the stream's length
        (``"Xing"``, ``"VBRI"``), None without one.
    data_offset : int
        Byte where the decoder is given the file: for MP3 its first frame,
        after tags and padding (0: the whole file).
    """

    format: str
    encoding: str
    sample_rate: int
    channels: int
    frames: int | None
    integer: bool
    lossless: bool
    stream_frames: int | None = None
    length_header: str | None = None
    data_offset: int = 0


def expect_kind(fh, path: str, kinds: tuple[str, ...], name: str) -> bytes:
    """The file's first bytes, if they are one of ``kinds`` (see :func:`~knn_genre.audio.sniff.identify`).

    Raises
    ------
    AudioError
        ``empty file (0 bytes)``, or ``not <name>: starts with ..., <what it is>``.
    """
    head = read_at(fh, 0, HEAD_BYTES, path)
    kind, description = identify(head)
    if kind == "empty":
        raise AudioError(path, "empty file (0 bytes)")
    if cut_kind(head) in kinds:
        raise AudioError(path, f"truncated: {len(head)} byte{'s' if len(head) != 1 else ''}, too short for the header of {name}")
    if kind not in kinds:
        what = f", {description}" if kind is not None else ", not a known audio format"
        raise AudioError(path, f"not {name}: starts with {show(head[:4])}{what}")
    return head


def truncated_frames(path: str, declared_bytes: int, available_bytes: int, block: int) -> AudioError:
    """The error for a data section that declares more bytes than the file holds (worded as for WAV)."""
    return AudioError(
        path,
        f"truncated: the header declares {declared_bytes // block} frames ({declared_bytes} bytes) "
        f"but the file holds {available_bytes // block} ({available_bytes} bytes)",
    )
