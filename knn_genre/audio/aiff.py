"""AIFF and AIFF-C headers: the COMM and SSND chunks checked against the file.

An AIFF file is an IFF ``FORM`` of big-endian chunks, padded to even
sizes: ``COMM`` declares the channels, frames, sample size, the sample rate
(an 80-bit extended float) and, in AIFF-C, the compression; ``SSND`` holds
the samples. :func:`aiff_info` walks the chunks, checks that the samples
``COMM`` declares are in the file, then libsndfile decodes them.
"""

from __future__ import annotations

import math
import struct

from ..errors import AudioError
from .files import file_size, read_at
from .signal import check_rate
from .sniff import show
from .stream import StreamInfo, expect_kind, truncated_frames

__all__ = ["aiff_info", "COMPRESSIONS"]

_MAX_CHUNKS = 1024

#: AIFF-C compression types libsndfile decodes: type -> (name, bytes per sample (None: from
#: the sample size, 0: compressed, counted by the decoder), integer output).
COMPRESSIONS = {
    b"NONE": ("PCM", None, True),
    b"twos": ("PCM", None, True),
    b"sowt": ("little-endian PCM", None, True),
    b"raw ": ("unsigned 8-bit PCM", 1, True),
    b"in24": ("24-bit PCM", 3, True),
    b"in32": ("32-bit PCM", 4, True),
    b"fl32": ("32-bit float", 4, False),
    b"FL32": ("32-bit float", 4, False),
    b"fl64": ("64-bit float", 8, False),
    b"FL64": ("64-bit float", 8, False),
    b"ulaw": ("mu-law", 1, True),
    b"ULAW": ("mu-law", 1, True),
    b"alaw": ("A-law", 1, True),
    b"ALAW": ("A-law", 1, True),
    b"ima4": ("IMA ADPCM", 0, True),
    b"GSM ": ("GSM 6.10", 0, True),
}
_OTHER_COMPRESSIONS = {
    b"MAC3": "MACE 3:1",
    b"MAC6": "MACE 6:1",
    b"QDM2": "QDesign Music 2",
    b"QDMC": "QDesign Music",
    b"Qclp": "Qualcomm PureVoice",
    b"ACE2": "ACE 2:1",
    b"ACE8": "ACE 8:3",
    b"alac": "Apple Lossless",
    b"aac ": "AAC",
}


def aiff_info(fh, path: str) -> StreamInfo:
    """Check the chunks of an open AIFF or AIFF-C file against the file.

    Raises
    ------
    AudioError
        If the file is not AIFF (the reason says what it is), a chunk
        declares more bytes than the file holds before the samples are
        found, ``COMM`` or ``SSND`` is missing or damaged, the samples
        ``COMM`` declares are not all in the file, the compression is not
        one libsndfile decodes, or the channels or rate are implausible.
    """
    head = expect_kind(fh, path, ("aiff",), "an AIFF file")
    aifc = head[8:12] == b"AIFC"
    size = file_size(fh)
    comm = ssnd = None
    pos = 12
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > size or (comm and ssnd):
            break
        chunk_id, chunk_size = struct.unpack(">4sI", read_at(fh, pos, 8, path))
        body, available = pos + 8, size - pos - 8
        if chunk_id == b"COMM":
            if chunk_size < 18 or chunk_size > available:
                bad = "truncated" if chunk_size > available else "damaged header"
                raise AudioError(path, f"{bad}: COMM chunk of {chunk_size} bytes ({min(available, chunk_size)} in the file)")
            comm = _parse_comm(read_at(fh, body, min(chunk_size, 64), path), aifc, path)
        elif chunk_id == b"SSND":
            if available < 8:
                raise AudioError(path, "truncated: the SSND chunk ends inside its header")
            (data_offset,) = struct.unpack(">I", read_at(fh, body, 4, path))
            start = body + 8 + data_offset
            # A streaming writer (ffmpeg to a pipe) leaves the SSND size and COMM's frame count
            # at 0: the samples are then what the file holds.
            held = size - start if chunk_size == 0 else chunk_size - 8 - data_offset
            ssnd = (start, max(0, min(held, size - start)), chunk_size > available, chunk_size == 0)
        elif chunk_size > available:
            raise AudioError(path, f"truncated: chunk {show(chunk_id)} declares {chunk_size} bytes but only {available} follow")
        pos = body + chunk_size + (chunk_size & 1)
    else:
        raise AudioError(path, f"damaged header: more than {_MAX_CHUNKS} chunks before the audio data")
    if comm is None:
        raise AudioError(path, "damaged header: no COMM chunk (truncated or not audio)")
    if ssnd is None:
        raise AudioError(path, "no SSND chunk: the file holds no audio (truncated?)")
    encoding, channels, frames, width, integer, rate = comm
    _start, data_bytes, cut, streamed = ssnd
    if frames == 0 and streamed and width:
        frames = data_bytes // (width * channels)
    if frames == 0:
        raise AudioError(path, "no audio samples (0 frames)")
    if width:
        block = width * channels
        if frames * block > data_bytes:
            raise truncated_frames(path, frames * block, data_bytes, block)
    elif cut:
        raise AudioError(path, "truncated: the SSND chunk declares more bytes than the file holds")
    return StreamInfo("AIFF-C" if aifc else "AIFF", encoding, rate, channels, frames if width else None, integer, lossless=width != 0)


def _parse_comm(raw: bytes, aifc: bool, path: str) -> tuple:
    """``(encoding, channels, frames, bytes per sample (0: compressed), integer, rate)`` from COMM."""
    channels, frames, bits = struct.unpack(">hIh", raw[:8])
    if channels <= 0:
        raise AudioError(path, f"damaged header: {channels} channels")
    compression = b"NONE"
    if aifc:
        if len(raw) < 22:
            raise AudioError(path, "damaged header: AIFF-C COMM chunk without a compression type")
        compression = raw[18:22]
    if compression not in COMPRESSIONS:
        name = _OTHER_COMPRESSIONS.get(compression, "an unknown compression")
        raise AudioError(
            path,
            f"unsupported AIFF-C compression {show(compression)} ({name}); only PCM, float, mu-law, A-law, IMA ADPCM and GSM can be read",
        )
    name, width, integer = COMPRESSIONS[compression]
    if width is None:
        if not 1 <= bits <= 32:
            raise AudioError(path, f"damaged header: {bits} bits per sample (1 to 32 expected)")
        width = (bits + 7) // 8
        name = f"{8 * width}-bit {name}"
    value = _extended(raw[8:18])
    rate = check_rate(path, round(value) if math.isfinite(value) else value)
    return name, channels, frames, width, integer, rate


def _extended(raw: bytes) -> float:
    """An IEEE 754 80-bit extended float (the AIFF sample rate); 0 for an unusable one.

    >>> _extended(bytes.fromhex("400dac44000000000000"))
    22050.0
    """
    exponent = ((raw[0] & 0x7F) << 8) | raw[1]
    mantissa = int.from_bytes(raw[2:10], "big")
    if raw[0] & 0x80 or exponent == 0x7FFF:
        return 0.0  # negative, infinite or NaN
    try:
        return math.ldexp(mantissa, exponent - 16383 - 63)
    except OverflowError:
        return math.inf
