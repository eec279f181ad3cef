"""Ogg Vorbis and Ogg Opus files: every page checked, before any decoding.

An Ogg file is a sequence of pages, each ``OggS``, a header type (bit 2:
beginning of stream, bit 4: end of stream), the granule position (samples
decoded up to the end of the page), a stream serial number, a page sequence
number, a CRC-32 of the page and a segment table giving the body's length.
:func:`ogg_info` reads the codec's identification header from the first
page (channels, rate), then walks every page: a page whose checksum does not
match, a missing page, or a last page without the end-of-stream flag (a
truncated file) is refused with its place in the file. Walking reads the
file once, a page (at most 64 KiB) at a time; the checksums are computed by
:func:`zlib.crc32`.
"""

from __future__ import annotations

import struct
import zlib

from ..errors import AudioError
from .files import file_size, read_at
from .signal import check_rate
from .stream import StreamInfo, expect_kind

__all__ = ["ogg_info", "ogg_crc", "opus_output_rate"]

_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, type, granule, serial, sequence, crc, segments
_BOS, _EOS = 0x02, 0x04
# Ogg's CRC-32 (polynomial 0x04c11db7) is zlib's with every bit order reversed.
_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
# Opus's own rates. An Opus stream is coded at 48 kHz and counts its granules so; libsndfile
# decodes it at the header's input rate rounded up to one of these (48 kHz beyond), which is
# what ffmpeg records (24 kHz for a 22050 Hz source).
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_OPUS_GRANULE_RATE = 48000
# Vorbis and Opus define speaker layouts for up to 8 channels (7.1); more is a damaged header.
_MAX_CHANNELS = 8


def opus_output_rate(input_rate: int) -> int:
    """The rate an Opus stream whose header records ``input_rate`` decodes at.

    >>> from knn_genre.audio.ogg import opus_output_rate
    >>> [opus_output_rate(r) for r in (0, 8000, 11025, 22050, 24000, 44100, 96000)]
    [8000, 8000, 12000, 24000, 24000, 48000, 48000]
    """
    return next((rate for rate in _OPUS_RATES if input_rate <= rate), _OPUS_GRANULE_RATE)


def ogg_crc(page: bytes) -> int:
    """The Ogg checksum of a page whose CRC field is zeroed.

    >>> from knn_genre.audio.ogg import ogg_crc
    >>> hex(ogg_crc(b"123456789"))  # CRC-32/MPEG-2 style, no reflection, no final xor
    '0x89a1897f'
    """
    crc = zlib.crc32(page.translate(_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{crc:032b}"[::-1], 2)


def ogg_info(fh, path: str) -> StreamInfo:
    """Check every page of an open Ogg file and describe its Vorbis or Opus stream.

    Raises
    ------
    AudioError
        If the file is not Ogg (the reason says what it is), its first
        stream is not Vorbis or Opus, a page is damaged (bad checksum, bad
        header) or missing, the stream has no end-of-stream page
        (truncated), or the channels or rate are implausible.
    """
    expect_kind(fh, path, ("ogg",), "an Ogg file")
    size = file_size(fh)
    pos, index = 0, 0
    serial = codec = None
    expected_sequence, last_granule, ended = 0, 0, False
    while pos < size:
        raw = read_at(fh, pos, _HEADER.size, path)
        if ended and not raw.startswith(b"OggS"):
            break  # bytes after the last page (a tag, padding) are not audio, as after any other format's
        if len(raw) < _HEADER.size:
            raise AudioError(path, f"truncated: the file ends inside Ogg page {index} (byte {pos})")
        capture, version, kind, granule, page_serial, sequence, crc, segments = _HEADER.unpack(raw)
        if capture != b"OggS" or version != 0:
            raise AudioError(path, f"damaged Ogg file: no page header at byte {pos} (page {index})")
        table = read_at(fh, pos + _HEADER.size, segments, path)
        length = _HEADER.size + segments + sum(table)
        if len(table) < segments or pos + length > size:
            raise AudioError(path, f"truncated: Ogg page {index} at byte {pos} needs {length} bytes but only {size - pos} remain")
        page = bytearray(read_at(fh, pos, length, path))
        page[22:26] = b"\0\0\0\0"
        if ogg_crc(bytes(page)) != crc:
            raise AudioError(path, f"damaged Ogg page {index} at byte {pos}: its checksum does not match its content")
        if index == 0:
            if not kind & _BOS:
                raise AudioError(path, "damaged Ogg file: the first page does not begin a stream")
            serial = page_serial
            codec = _identify(bytes(page[_HEADER.size + segments :]), path)
        if ended and kind & _BOS and page_serial != serial:
            # A chain: the next song of a stream (an internet radio's, or files joined with cat).
            # libsndfile reads only the first, so its length would be the first part's.
            raise AudioError(path, f"unsupported chained Ogg file: a second stream begins at byte {pos}, after the first one ends")
        if page_serial == serial:
            if ended:
                raise AudioError(path, "unsupported chained Ogg file: a second stream follows the first one")
            if sequence != expected_sequence:
                raise AudioError(path, f"damaged Ogg file: page {expected_sequence} of the stream is missing (byte {pos})")
            expected_sequence += 1
            if granule != -1:
                last_granule = granule
            ended = bool(kind & _EOS)
        pos += length
        index += 1
    if not ended:
        raise AudioError(path, f"truncated: the Ogg stream has no last page (end-of-stream flag); it stops after {index} pages")
    name, channels, rate, preskip = codec
    frames = last_granule - preskip
    if name == "Opus":  # granules count 48-kHz samples, whatever the decoded rate
        frames = frames * rate // _OPUS_GRANULE_RATE
    if frames <= 0:
        raise AudioError(path, "no audio samples (0 frames)")
    return StreamInfo(f"Ogg {name}", name, rate, channels, int(frames), integer=False, lossless=False)


def _identify(packet: bytes, path: str) -> tuple:
    """``(codec, channels, rate, pre-skip)`` from the first packet of the stream."""
    if packet[:7] == b"\x01vorbis" and len(packet) >= 16:
        channels, rate = packet[11], struct.unpack("<I", packet[12:16])[0]
        preskip = 0
        name = "Vorbis"
    elif packet[:8] == b"OpusHead" and len(packet) >= 19:
        channels, preskip, input_rate = packet[9], *struct.unpack("<HI", packet[10:16])
        rate, name = opus_output_rate(input_rate), "Opus"
        if input_rate == 0:
            # "Unspecified" by the spec; libsndfile takes it for 8 kHz and would cut the music at 4 kHz.
            raise AudioError(path, "unsupported Opus header: its input sample rate is 0 (unspecified), which the "
                                   "decoder reads as 8 kHz, losing everything above 4 kHz; convert it with ffmpeg, which decodes it at 48 kHz (ffmpeg -i IN.opus OUT.flac)")
        check_rate(path, input_rate)  # the decoded rate is derived from it
    else:
        other = {b"\x7fFLAC": "FLAC", b"Speex": "Speex", b"\x80theora": "Theora video", b"fishead": "Skeleton"}
        found = next((n for magic, n in other.items() if packet.startswith(magic)), "an unknown codec")
        raise AudioError(path, f"unsupported Ogg stream: {found}; only Ogg Vorbis and Ogg Opus can be read")
    if channels == 0:
        raise AudioError(path, "damaged header: 0 channels")
    if channels > _MAX_CHANNELS:
        raise AudioError(path, f"damaged header: {channels} channels (Ogg {name} music has 1 to {_MAX_CHANNELS})")
    check_rate(path, rate)
    return name, channels, int(rate), preskip
