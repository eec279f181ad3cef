"""MP3 (MPEG-1/2/2.5 audio) streams: ID3 tags skipped, the chain of frames checked.

An MP3 file is optional ID3v2 tags, then MPEG audio frames back to back,
each a 4-byte header (sync, version, layer, bitrate, sample rate, padding,
channels) whose fields give the frame's length, so the next header is where
the frame ends; then optional trailing tags (ID3v1, APE, Lyrics3). An
encoder's first frame often carries a Xing/Info or VBRI header with the
stream's frame count. :func:`mpeg_info` walks the headers (no decoding) to
find: no frames at all, a stream damaged in the middle (no header where one
must be, while frames follow further on), a stream shorter than its
Xing/VBRI count (truncated), and the frames of a stream without a count,
whose length the decoder can only estimate.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, replace

from ..errors import AudioError
from .files import file_size, read_at
from .signal import check_rate
from .stream import StreamInfo, expect_kind

__all__ = ["skip_id3v2", "mpeg_info", "FrameHeader", "parse_header"]

# Bytes searched for the first frame after the tags, and for frames after damage.
_SEARCH_BYTES = 1 << 16

_RATES = {1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 25: (11025, 12000, 8000)}
_BITRATES = {  # kbit/s by (MPEG-1 or not, layer), index 1..14
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_VERSIONS = {3: 1, 2: 2, 0: 25}  # header bits -> MPEG version (25: MPEG-2.5); 1 is reserved
_TRAILING_TAGS = (b"TAG", b"APETAGEX", b"LYRICSBEGIN", b"ID3")


@dataclass(frozen=True)
class FrameHeader:
    """The fields of one MPEG audio frame header that matter here.

    Attributes
    ----------
    version : int
        1, 2 or 25 (MPEG-2.5).
    layer : int
        1, 2 or 3.
    sample_rate : int
        In Hz.
    channels : int
    samples : int
        Samples per channel in the frame.
    length : int or None
        Bytes of the frame, header included; None for a free-format bitrate.
    bitrate : int
        In kbit/s (0 for free format).
    """

    version: int
    layer: int
    sample_rate: int
    channels: int
    samples: int
    length: int | None
    bitrate: int

    @property
    def stream(self) -> tuple:
        """What every frame of one stream shares."""
        return self.version, self.layer, self.sample_rate


def parse_header(raw: bytes) -> FrameHeader | None:
    """The frame header in the 4 bytes ``raw``, or None if they are not one.

    Examples
    --------
    >>> from knn_genre.audio.mpeg import parse_header
    >>> h = parse_header(bytes.fromhex("fffb9064"))  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz
    >>> h.sample_rate, h.length, h.samples
    (44100, 417, 1152)
    >>> parse_header(b"RIFF") is None
    True
    """
    if len(raw) < 4 or raw[0] != 0xFF or raw[1] & 0xE0 != 0xE0:
        return None
    version = _VERSIONS.get((raw[1] >> 3) & 3)
    layer = 4 - ((raw[1] >> 1) & 3)
    bitrate_index, rate_index = raw[2] >> 4, (raw[2] >> 2) & 3
    if version is None or layer == 4 or bitrate_index == 15 or rate_index == 3:
        return None
    rate = _RATES[version][rate_index]
    mpeg1 = version == 1
    samples = 384 if layer == 1 else 1152 if layer == 2 or mpeg1 else 576
    padding = (raw[2] >> 1) & 1
    channels = 1 if raw[3] >> 6 == 3 else 2
    if bitrate_index == 0:
        return FrameHeader(version, layer, rate, channels, samples, None, 0)
    kbps = _BITRATES[(mpeg1, layer)][bitrate_index - 1]
    if layer == 1:
        length = (12 * kbps * 1000 // rate + padding) * 4
    else:
        length = samples // 8 * kbps * 1000 // rate + padding
    return FrameHeader(version, layer, rate, channels, samples, length, kbps)


def _zero_padding(fh, path: str, size: int) -> int:
    """Zero bytes before an ID3 tag or an MPEG frame at the start of the file (0 if it starts otherwise).

    Some taggers leave the room of a removed tag as zeros; the frames after them are the song.
    """
    if read_at(fh, 0, 1, path) != b"\0":
        return 0  # the usual start, a tag or a frame: nothing more to read
    head = read_at(fh, 0, min(size, _SEARCH_BYTES), path)
    lead = len(head) - len(head.lstrip(b"\0"))
    if lead == 0 or lead == len(head):
        return 0
    rest = head[lead : lead + 4]
    return lead if rest[:3] == b"ID3" or parse_header(rest) is not None else 0


def skip_id3v2(fh, path: str, size: int, pos: int = 0) -> int:
    """Byte offset after the ID3v2 tags at ``pos`` (``pos`` if there are none).

    Raises
    ------
    AudioError
        If a tag is damaged or reaches past the end of the file.
    """
    while True:
        raw = read_at(fh, pos, 10, path)
        if raw[:3] != b"ID3":
            return pos
        if len(raw) < 10 or any(b & 0x80 for b in raw[6:10]):
            raise AudioError(path, f"damaged ID3 tag at byte {pos}: its size field is not valid")
        length = ((raw[6] << 21) | (raw[7] << 14) | (raw[8] << 7) | raw[9]) + 10 + (10 if raw[5] & 0x10 else 0)
        if pos + length > size:
            raise AudioError(path, f"truncated: the ID3 tag declares {length} bytes but the file holds {size - pos}, so no audio")
        pos += length


def mpeg_info(fh, path: str) -> StreamInfo:
    """Check the frames of an open MP3 file, without decoding them.

    Raises
    ------
    AudioError
        If the file is not MPEG audio (the reason says what it is), holds no
        frames (e.g. only an ID3 tag), is damaged in the middle, holds fewer
        frames than its Xing/VBRI header declares, or its rate is implausible.
    """
    size = file_size(fh)
    lead = _zero_padding(fh, path, size)
    if not lead:
        expect_kind(fh, path, ("mp3",), "an MP3 file")
    start = skip_id3v2(fh, path, size, lead)
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        first = _find_stream(data, start, size)
        if first is None and lead:
            raise AudioError(path, f"not an MP3 file: {lead} zero bytes, then no MPEG audio frames")
        if first is None:
            after = f"after its {start}-byte ID3 tag" if start else f"in its first {min(size, _SEARCH_BYTES)} bytes"
            raise AudioError(path, f"no MPEG audio frames {after} (not an MP3 stream, or no audio)")
        head = parse_header(data[first : first + 4])
        check_rate(path, head.sample_rate)
        encoding = f"MPEG-{'2.5' if head.version == 25 else head.version} Layer {'I' * head.layer if head.layer < 3 else 'III'}"
        info = StreamInfo("MP3", encoding, head.sample_rate, head.channels, None, integer=False, lossless=False, data_offset=first)
        if head.length is None:
            return info  # free format: frame lengths are not in the headers
        declared, length_header = _declared_frames(data, first, head)
        frames, end = _walk(data, first, size, head.stream)
        audio_frames = max(0, frames - (declared is not None))  # the Xing/VBRI frame holds no audio
        seconds = head.samples / head.sample_rate
        if not (_is_trailer(data, end, size) or _cut_frame(data, end, size, head.stream)):
            # Not the end of the stream: damage if frames follow further on, else trailing data.
            if _find_stream(data, end + 1, size, head.stream) is not None:
                raise AudioError(
                    path, f"damaged MP3 data at byte {end} ({audio_frames * seconds:.1f} s): no frame header where the frame before it ends"
                )
        if declared is not None and declared > audio_frames + 1:
            raise AudioError(
                path,
                f"truncated: the MP3 header declares {declared} frames ({declared * seconds:.1f} s) "
                f"but the file holds {audio_frames} ({audio_frames * seconds:.1f} s)",
            )
        if declared is not None and declared < audio_frames - 1:
            # The decoder stops at the count: most of the song would be left out, silently.
            raise AudioError(
                path,
                f"damaged Xing/VBRI header: it declares {declared} frames ({declared * seconds:.1f} s) "
                f"but the file holds {audio_frames} ({audio_frames * seconds:.1f} s); the decoder would stop at the count",
            )
        if audio_frames == 0:
            raise AudioError(path, "truncated: the file ends inside its first MPEG audio frame")
    return replace(info, stream_frames=audio_frames * head.samples, length_header=length_header)


def _find_stream(data, start: int, size: int, stream: tuple | None = None) -> int | None:
    """Offset of the first frame at or after ``start`` that the next frame confirms."""
    stop = min(size, start + _SEARCH_BYTES)
    pos = data.find(b"\xff", start, stop)
    while pos != -1:
        head = parse_header(data[pos : pos + 4])
        if head is not None and (stream is None or head.stream == stream):
            if head.length is None:
                return pos if stream is None else None
            nxt = pos + head.length
            if nxt == size or _is_trailer(data, nxt, size):
                return pos
            follow = parse_header(data[nxt : nxt + 4])
            if follow is not None and follow.stream == head.stream:
                return pos
        pos = data.find(b"\xff", pos + 1, stop)
    return None


def _walk(data, pos: int, size: int, stream: tuple) -> tuple[int, int]:
    """``(frames, end)`` of the chain of whole frames from ``pos``."""
    frames, seen = 0, {}
    while pos + 4 <= size:
        raw = data[pos : pos + 4]
        head = seen.get(raw)
        if head is None:
            head = parse_header(raw)
            if head is None or head.stream != stream or head.length is None:
                break
            seen[raw] = head  # headers repeat: parse each distinct one once
        if pos + head.length > size:
            break
        frames += 1
        pos += head.length
    return frames, pos


def _cut_frame(data, pos: int, size: int, stream: tuple) -> bool:
    """Whether a frame of the stream starts at ``pos`` and the end of the file cuts it."""
    head = parse_header(data[pos : pos + 4])
    return head is not None and head.stream == stream and head.length is not None and pos + head.length > size


def _is_trailer(data, pos: int, size: int) -> bool:
    """Whether the bytes at ``pos`` are a tag that may follow the frames (or nothing)."""
    return pos >= size or any(data[pos : pos + len(tag)] == tag for tag in _TRAILING_TAGS)


def _declared_frames(data, first: int, head: FrameHeader) -> tuple[int | None, str | None]:
    """The frame count of a Xing/Info or VBRI header in the first frame, and which header; ``(None, None)`` without.

    A field the file does not hold whole (the first frame cut short) counts
    as absent: the caller then reports the cut frame.
    """
    end = min(len(data), first + head.length)

    def field(at: int) -> int | None:
        return struct.unpack(">I", data[at : at + 4])[0] if at + 4 <= end else None

    side = (32 if head.channels == 2 else 17) if head.version == 1 else (17 if head.channels == 2 else 9)
    xing = first + 4 + side
    if data[xing : xing + 4] in (b"Xing", b"Info"):
        flags = field(xing + 4)
        count = field(xing + 8) if flags is not None and flags & 1 else None
        return count, None if count is None else "Xing"
    vbri = first + 36
    if data[vbri : vbri + 4] == b"VBRI":
        count = field(vbri + 14)
        return count, None if count is None else "VBRI"
    return None, None
