"""Sun/NeXT ``.au``/``.snd`` headers: what Marsyas wrote for GTZAN's original release.

The header is six 32-bit words: magic (``.snd``, big-endian, or ``dns.``,
little-endian), data offset, data size (``0xffffffff``: up to the end of
the file), encoding, sample rate and channels. :func:`au_info` checks each
against the file; libsndfile then decodes the samples.
"""

from __future__ import annotations

import struct

from ..errors import AudioError
from .files import file_size, read_at
from .signal import check_rate
from .stream import StreamInfo, expect_kind, truncated_frames

__all__ = ["au_info", "ENCODINGS"]

_UNKNOWN_SIZE = 0xFFFFFFFF

#: Encodings libsndfile decodes: code -> (name, bytes per sample or None for ADPCM, integer output).
ENCODINGS = {
    1: ("mu-law", 1, True),
    2: ("8-bit PCM", 1, True),
    3: ("16-bit PCM", 2, True),
    4: ("24-bit PCM", 3, True),
    5: ("32-bit PCM", 4, True),
    6: ("32-bit float", 4, False),
    7: ("64-bit float", 8, False),
    23: ("G.721 ADPCM", None, True),
    25: ("G.723 3-bit ADPCM", None, True),
    26: ("G.723 5-bit ADPCM", None, True),
    27: ("A-law", 1, True),
}
_OTHER_ENCODINGS = {
    8: "fragmented samples",
    9: "DSP program",
    10: "8-bit fixed point",
    11: "16-bit fixed point",
    12: "24-bit fixed point",
    13: "32-bit fixed point",
    18: "16-bit linear with emphasis",
    19: "16-bit linear compressed",
    20: "16-bit linear with emphasis and compression",
    21: "Music Kit DSP commands",
    24: "G.722 ADPCM",
}


def au_info(fh, path: str) -> StreamInfo:
    """Check the header of an open ``.au`` file against the file.

    Raises
    ------
    AudioError
        If the file is not an .au file (the reason says what it is), the
        header is shorter than 24 bytes, the data offset or size reach past
        the end of the file, the encoding is not one libsndfile decodes, or
        the channels or sample rate are implausible.
    """
    head = expect_kind(fh, path, ("au",), "an .au file")
    size = file_size(fh)
    if size < 24:
        raise AudioError(path, f"truncated: {size} bytes, too short for an .au header (24 bytes)")
    e = ">" if head[:4] == b".snd" else "<"
    offset, data_size, encoding, rate, channels = struct.unpack(e + "5I", read_at(fh, 4, 20, path))
    if offset < 24:
        raise AudioError(path, f"damaged header: data offset {offset}, at least 24 expected")
    if offset > size:
        raise AudioError(path, f"truncated: the audio data starts at byte {offset} but the file holds {size} bytes")
    if encoding not in ENCODINGS:
        name = _OTHER_ENCODINGS.get(encoding, "an unknown encoding")
        supported = "PCM (8 to 32 bits), float, mu-law, A-law and G.72x ADPCM"
        raise AudioError(path, f"unsupported .au encoding {encoding} ({name}); only {supported} can be read")
    if channels == 0:
        raise AudioError(path, "damaged header: 0 channels")
    name, width, integer = ENCODINGS[encoding]
    check_rate(path, rate)
    available = size - offset
    block = (width or 1) * channels
    if data_size != _UNKNOWN_SIZE and data_size > available:
        if width is None:
            raise AudioError(path, f"truncated: the header declares {data_size} bytes of audio but the file holds {available}")
        raise truncated_frames(path, data_size, available, block)
    frames = None
    if width is not None:
        frames = (available if data_size == _UNKNOWN_SIZE else data_size) // block
        if frames == 0:
            raise AudioError(path, "no audio samples (0 frames)")
    return StreamInfo("AU", name, int(rate), int(channels), frames, integer, lossless=not name.startswith("G."))
