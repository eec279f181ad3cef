"""What a file is, from its first bytes: so that a reason can say so.

A file whose content is not the format its suffix names (a WAV file saved
as ``.flac``, an M4A renamed ``.mp3``, an HTML error page) is refused by its
reader with a reason naming what it really is, e.g. ``not a FLAC file:
starts with 'RIFF', a WAV file``.
"""

from __future__ import annotations

from .files import show

__all__ = ["HEAD_BYTES", "identify", "cut_kind", "describe", "is_mpeg_sync", "is_adts_sync"]

#: Bytes of a file's start that :func:`identify` looks at.
HEAD_BYTES = 64

# (prefix, kind, description); the first match wins.
_MAGIC = (
    (b"RIFF", "wav", "a WAV file"),
    (b"RIFX", "wav", "a WAV file (big-endian RIFX)"),
    (b"RF64", "wav", "a WAV file (RF64)"),
    (b".snd", "au", "a Sun/NeXT .au file"),
    (b"dns.", "au", "a Sun/NeXT .au file (little-endian)"),
    (b"fLaC", "flac", "a FLAC file"),
    (b"OggS", "ogg", "an Ogg file"),
    (b"ID3", "mp3", "an MP3 file (ID3 tag)"),
    (b"caff", "caf", "a Core Audio (CAF) file"),
    (b"riff\x2e\x91\xcf\x11", "w64", "a Wave64 file"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "asf", "a WMA/ASF file"),
    (b"MAC ", "ape", "a Monkey's Audio (APE) file"),
    (b"wvpk", "wavpack", "a WavPack file"),
    (b"MPCK", "musepack", "a Musepack file"),
    (b"MP+", "musepack", "a Musepack file"),
    (b"\x1a\x45\xdf\xa3", "matroska", "a Matroska/WebM file"),
    (b"#!AMR", "amr", "an AMR file"),
    (b"\x0b\x77", "ac3", "an AC-3 file"),
    (b".RMF", "real", "a RealMedia file"),
    (b"MThd", "midi", "a MIDI file (notes, not audio)"),
    (b"\x00\x05\x16\x07", "appledouble", "a macOS AppleDouble file (the '._' companion of a file copied from a Mac: metadata, not audio)"),
    (b"PK\x03\x04", "zip", "a zip archive"),
    (b"\x1f\x8b", "gzip", "a gzip archive"),
    (b"%PDF", "pdf", "a PDF document"),
    (b"\x89PNG", "image", "a PNG image"),
    (b"\xff\xd8\xff", "image", "a JPEG image"),
    (b"<", "text", "a text/HTML file"),
)


def is_mpeg_sync(head: bytes) -> bool:
    """Whether ``head`` starts with an MPEG audio frame sync (11 bits set, a valid layer)."""
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0


def is_adts_sync(head: bytes) -> bool:
    """Whether ``head`` starts with an ADTS (raw AAC) frame sync: MPEG sync with layer 0."""
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0


def identify(head: bytes) -> tuple[str | None, str]:
    """``(kind, description)`` of a file from its first bytes.

    ``kind`` is a short name (``"wav"``, ``"au"``, ``"aiff"``, ``"flac"``,
    ``"ogg"``, ``"mp3"``, ``"mp4"``, ...) or None when nothing is
    recognised; ``description`` says what the bytes are, for a reason.

    Examples
    --------
    >>> from knn_genre.audio.sniff import identify
    >>> identify(b"fLaC\\x00\\x00\\x00\\x22")
    ('flac', 'a FLAC file')
    >>> identify(b"\\x00\\x00\\x00\\x20ftypM4A ")
    ('mp4', 'an MP4/M4A file (AAC or ALAC)')
    >>> identify(b"")
    ('empty', 'an empty file (0 bytes)')
    """
    if not head:
        return "empty", "an empty file (0 bytes)"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff", "an AIFF file" if head[8:12] == b"AIFF" else "an AIFF-C file"
    if head[:4] == b"FORM" and len(head) >= 12:
        return "iff", f"an IFF file whose form type is {show(head[8:12])}, not 'AIFF' or 'AIFC'"
    if head[4:8] == b"ftyp":
        return "mp4", "an MP4/M4A file (AAC or ALAC)"
    if head[:4] == b"OggS" and b"OpusHead" in head:
        return "ogg", "an Ogg Opus file"
    if head[:4] == b"OggS" and b"\x01vorbis" in head:
        return "ogg", "an Ogg Vorbis file"
    for prefix, kind, description in _MAGIC:
        if head.startswith(prefix):
            return kind, description
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") and _is_utf16_text(head):
        return "text", "a UTF-16 text file"  # its byte-order mark looks like an MPEG sync
    if is_adts_sync(head):
        return "aac", "a raw AAC (ADTS) file"
    if is_mpeg_sync(head):
        return "mp3", "an MP3 file"
    if _is_text(head):
        return "text", "a text file"
    return None, "an unknown format"


def cut_kind(head: bytes) -> str | None:
    """The kind of a file cut in its first bytes: too short for its magic (or AIFF's form type), which it begins.

    A file cut so short says nothing else; the reader of the kind its name
    gives calls it truncated rather than "not that format".

    >>> from knn_genre.audio.sniff import cut_kind
    >>> cut_kind(b"RIF"), cut_kind(b"FORM\\x00\\x00"), cut_kind(b"\\xff"), cut_kind(b"RIFF"), cut_kind(b"abc")
    ('wav', 'aiff', 'mp3', None, None)
    """
    if not head:
        return None
    if len(head) < 12 and b"FORM".startswith(head[:4]):  # AIFF's magic, or its form type, cut off
        return "aiff"
    if head == b"\xff" or (is_mpeg_sync(head) and len(head) < 4):  # less than an MPEG frame header
        return "mp3"
    return next((kind for prefix, kind, _ in _MAGIC if len(head) < len(prefix) and prefix.startswith(head)), None)


def describe(head: bytes) -> str:
    """A reason's account of what a file starts with.

    >>> from knn_genre.audio.sniff import describe
    >>> describe(b"RIFF\\x24\\x00\\x00\\x00WAVEfmt ")
    "starts with 'RIFF', a WAV file"
    >>> describe(b"\\x00\\x01\\x02\\x03")
    "starts with '\\\\x00\\\\x01\\\\x02\\\\x03', not a known audio format"
    """
    kind, description = identify(head)
    if kind == "empty":
        return "empty file (0 bytes)"
    if kind is None:
        return f"starts with {show(head[:4])}, not a known audio format"
    return f"starts with {show(head[:4])}, {description}"


def _is_utf16_text(head: bytes) -> bool:
    """Whether ``head`` is UTF-16 text after its byte-order mark (a cut last character allowed)."""
    body = head[2 : len(head) - len(head) % 2]
    try:
        text = body.decode("utf-16-le" if head[0] == 0xFF else "utf-16-be")
    except UnicodeDecodeError:
        try:
            text = body[:-2].decode("utf-16-le" if head[0] == 0xFF else "utf-16-be")
        except UnicodeDecodeError:
            return False
    # Mostly Latin characters, as a note or a playlist is: random frame data of an MPEG Layer I
    # stream (whose sync is also 0xFFFE) decodes to printable but scattered code points.
    latin = sum(ord(c) < 0x250 for c in text)
    return bool(text) and 2 * latin >= len(text) and all(c.isprintable() or c in "\t\r\n" for c in text)


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the end of the head is still text.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return bool(text) and all(c.isprintable() or c in "\t\r\n" for c in text)
