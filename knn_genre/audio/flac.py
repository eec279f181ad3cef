"""FLAC headers: the metadata blocks checked against the file.

A FLAC file is ``fLaC`` (possibly after an ID3v2 tag), metadata blocks
(``STREAMINFO`` first: sample rate, channels, bits per sample, total
samples) and then audio frames, each starting with a 14-bit sync code.
:func:`flac_info` checks every block size against the file and that audio
frames follow the metadata; libsndfile (libFLAC) decodes the frames, and
reports damage or truncation found there when the samples are read.
"""

from __future__ import annotations

import struct
from dataclasses import replace

from ..errors import AudioError
from .files import file_size, read_at
from .mpeg import skip_id3v2
from .signal import check_rate
from .sniff import HEAD_BYTES, describe
from .stream import StreamInfo, expect_kind

__all__ = ["flac_info"]

_STREAMINFO, _INVALID = 0, 127
_MAX_BLOCKS = 1024


def flac_info(fh, path: str) -> StreamInfo:
    """Check the metadata of an open FLAC file against the file.

    Raises
    ------
    AudioError
        If the file is not FLAC (the reason says what it is), a metadata
        block reaches past the end of the file, ``STREAMINFO`` is missing
        or damaged, the header declares no samples or an implausible rate,
        or no audio frame follows the metadata.
    """
    head = expect_kind(fh, path, ("flac", "mp3"), "a FLAC file")  # "mp3": maybe an ID3 tag before 'fLaC'
    size = file_size(fh)
    start = 0
    if head[:4] != b"fLaC":
        if not head.startswith(b"ID3"):
            raise AudioError(path, f"not a FLAC file: {describe(head)}")
        start = skip_id3v2(fh, path, size)
        after = read_at(fh, start, HEAD_BYTES, path)
        if after[:4] != b"fLaC":
            raise AudioError(path, f"not a FLAC file: after its ID3 tag, the file {describe(after) if after else 'ends'}")
    pos, info = start + 4, None
    for index in range(_MAX_BLOCKS):
        raw = read_at(fh, pos, 4, path)
        if len(raw) < 4:
            raise AudioError(path, "truncated: the file ends inside its metadata (no audio)")
        last, kind, length = raw[0] >> 7, raw[0] & 0x7F, int.from_bytes(raw[1:4], "big")
        body = pos + 4
        if body + length > size:
            raise AudioError(path, f"truncated: metadata block {index} declares {length} bytes but only {size - body} follow")
        if index == 0:
            if kind != _STREAMINFO or length < 34:
                raise AudioError(path, "damaged header: the first metadata block is not a STREAMINFO block")
            info = _streaminfo(read_at(fh, body, 34, path), path)
        elif kind == _INVALID:
            raise AudioError(path, f"damaged header: metadata block {index} has the invalid type 127")
        pos = body + length
        if last:
            break
    else:
        raise AudioError(path, f"damaged header: more than {_MAX_BLOCKS} metadata blocks")
    sync = read_at(fh, pos, 2, path)
    if not sync:
        raise AudioError(path, "no audio frames: the file ends after its metadata (truncated?)")
    if len(sync) < 2 or sync[0] != 0xFF or sync[1] & 0xFE != 0xF8:
        raise AudioError(path, f"damaged: no FLAC audio frame where the metadata ends (byte {pos})")
    # After an ID3 tag the decoder is given the file from 'fLaC' on: libFLAC skips a tag, but not one with a footer.
    return replace(info, data_offset=start) if start else info


def _streaminfo(raw: bytes, path: str) -> StreamInfo:
    """Sample rate, channels, bits and total samples from a STREAMINFO body (34 bytes)."""
    (packed,) = struct.unpack(">Q", raw[10:18])
    rate = packed >> 44
    channels = ((packed >> 41) & 0x7) + 1
    bits = ((packed >> 36) & 0x1F) + 1
    frames = packed & ((1 << 36) - 1)
    check_rate(path, rate)
    if bits < 4:
        raise AudioError(path, f"damaged header: {bits} bits per sample")
    if frames == 0:
        # 0 is "unknown" (an encoder writing to a pipe cannot go back to fill it in); libsndfile
        # cannot then tell where the stream ends.
        raise AudioError(path, "its STREAMINFO gives no length (a stream written to a pipe?); encode it to a file to read it")
    return StreamInfo("FLAC", f"{bits}-bit FLAC", int(rate), channels, int(frames), integer=True, lossless=True)
