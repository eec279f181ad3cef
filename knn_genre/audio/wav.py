"""WAV files: the header checked against the file, then samples by frame range.

Reading happens in two steps:

1. :func:`wav_info` walks the RIFF chunks and checks the header against the
   file *before* any sample is read: every declared size must fit in the
   file, the encoding must be PCM or IEEE float (plain or
   ``WAVE_FORMAT_EXTENSIBLE``), and the sample rate plausible. A damaged or
   hostile header therefore gives a one-line reason, never a huge allocation
   or a silently shortened track.
2. :class:`WavSource` maps the checked data chunk with
   :func:`scipy.io.wavfile.read` (``mmap=True``), or, for the valid layouts
   scipy cannot map (24-bit and other odd widths, a RIFF size of 0, RF64),
   decodes the mapped bytes itself with scipy's sample layout (the tests
   check that both agree bit for bit on every format). Either way only the
   frames asked for are read from disk, so memory is bounded by the window.
"""

from __future__ import annotations

import os
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.io import wavfile

from ..errors import AudioError
from .files import open_regular, read_bytes, show
from .signal import check_rate, to_float, to_mono
from .sniff import cut_kind, identify

__all__ = ["WavInfo", "WavSource", "wav_info", "samples_from_bytes"]

# More chunks than any real wav has before its data (fmt, fact, LIST, bext,
# ...); a file made of millions of empty chunks would otherwise be slow.
_MAX_CHUNKS = 1024

_PCM, _IEEE_FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
# Tail of the KSDATAFORMAT_SUBTYPE GUIDs of plain formats (RFC 2361), as
# stored: the first three GUID fields are in the file's byte order.
_GUID_TAIL = {
    "<": b"\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71",
    ">": b"\x00\x00\x00\x10\x80\x00\x00\xaa\x00\x38\x9b\x71",
}
_CODEC_NAMES = {
    0x0002: "Microsoft ADPCM",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0050: "MPEG audio",
    0x0055: "MP3",
    0x00FF: "AAC",
    0x0160: "WMA",
    0x0161: "WMA",
    0x0162: "WMA Pro",
    0x0163: "WMA Lossless",
    0x2000: "AC-3",
    0x2001: "DTS",
    0xF1AC: "FLAC",
}


@dataclass(frozen=True)
class WavInfo:
    """The layout of a wav file, as checked by :func:`wav_info`.

    Attributes
    ----------
    sample_rate : int
        Frames per second, in Hz.
    channels : int
    encoding : {"pcm", "float"}
    bits_per_sample : int
        Significant bits of a sample (left-justified in its container).
    container_bytes : int
        Bytes per sample in the file: 1 to 8 for PCM, 4 or 8 for float.
    big_endian : bool
        True for ``RIFX`` files.
    data_offset : int
        Byte offset of the first sample.
    frames : int
        Complete frames (one sample per channel) in the data chunk.
    """

    sample_rate: int
    channels: int
    encoding: str
    bits_per_sample: int
    container_bytes: int
    big_endian: bool
    data_offset: int
    frames: int

    @property
    def block_align(self) -> int:
        """Bytes per frame."""
        return self.channels * self.container_bytes

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.frames / self.sample_rate


def wav_info(path: str | os.PathLike) -> WavInfo:
    """Check a wav header against its file and describe the layout.

    Nothing but the header is read. Every chunk size is checked against the
    file size before it is used.

    Raises
    ------
    AudioError
        If the file is not a readable PCM or float wav: not RIFF/RIFX/RF64,
        not WAVE, truncated (the data chunk declares more bytes than the
        file holds), a compressed encoding, an inconsistent or implausible
        header, no samples.
    """
    path = os.fspath(path)
    with _open_regular(path) as fh:
        return _inspect(fh, path)


def _open_regular(path: str):
    """Open a regular file for binary reading (see :func:`~knn_genre.audio.files.open_regular`)."""
    return open_regular(path, "a wav file")


_read = read_bytes


def _inspect(fh, path: str) -> WavInfo:
    """Walk the chunks of an open wav file; see :func:`wav_info`."""

    def bad(reason):
        raise AudioError(path, reason)

    size = os.fstat(fh.fileno()).st_size
    head = _read(fh, 12, path)
    if size == 0:
        bad("empty file (0 bytes)")
    magic = head[:4]
    if magic not in (b"RIFF", b"RIFX", b"RF64") and cut_kind(head) != "wav":
        bad(f"not a wav file: {_describe_magic(head)}")
    if len(head) < 12:  # a file cut inside its magic too
        bad(f"truncated: {size} byte{'s' if size != 1 else ''}, too short for a wav header")
    if head[8:12] != b"WAVE":
        bad(f"not a wav file: RIFF form type is {_show(head[8:12])}, not 'WAVE'")
    e = ">" if magic == b"RIFX" else "<"

    fmt = None
    ds64_data_size = None
    pos = 12
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > size:
            break
        fh.seek(pos)
        header = _read(fh, 8, path)
        if len(header) < 8:
            break
        chunk_id = header[:4]
        (chunk_size,) = struct.unpack(e + "I", header[4:])
        body = pos + 8
        available = size - body
        if chunk_id == b"ds64" and magic == b"RF64":
            if chunk_size < 24 or chunk_size > available:
                bad("damaged RF64 header: ds64 chunk is truncated")
            _riff_size, ds64_data_size = struct.unpack("<QQ", _read(fh, 16, path))
        elif chunk_id == b"fmt ":
            if chunk_size < 16:
                bad(f"damaged header: fmt chunk of {chunk_size} bytes, at least 16 expected")
            if chunk_size > available:
                bad(f"truncated: the fmt chunk declares {chunk_size} bytes but only {available} follow")
            fmt = _parse_fmt(_read(fh, min(chunk_size, 40), path), e, path)
        elif chunk_id == b"data":
            if fmt is None:
                bad("damaged header: the data chunk comes before the fmt chunk")
            if magic == b"RF64" and chunk_size == 0xFFFFFFFF:
                if ds64_data_size is None:
                    bad("damaged RF64 header: no ds64 chunk with the data size")
                chunk_size = ds64_data_size
            elif chunk_size == 0xFFFFFFFF:
                # A writer that could not seek back (ffmpeg to a pipe) leaves the size unknown:
                # the samples run to the end of the file, as libsndfile and scipy read them.
                chunk_size = available
            return _layout(fmt, e == ">", body, chunk_size, available, path)
        elif chunk_size > available:
            bad(
                f"truncated: chunk {_show(chunk_id)} declares {chunk_size} bytes but only "
                f"{available} follow, and no audio data was found before it"
            )
        pos = body + chunk_size + (chunk_size & 1)  # chunks are padded to even sizes
    else:
        bad(f"damaged header: more than {_MAX_CHUNKS} chunks before the audio data")
    if fmt is None:
        bad("damaged header: no fmt chunk (truncated or not audio)")
    bad("no data chunk: the file holds no audio (truncated?)")


def _parse_fmt(raw: bytes, e: str, path: str) -> tuple:
    """``(encoding, channels, rate, container_bytes, bits)`` from a fmt chunk body."""

    def bad(reason):
        raise AudioError(path, reason)

    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack(e + "HHIIHH", raw[:16])
    if tag == _EXTENSIBLE:
        if len(raw) < 40:
            bad("damaged header: WAVE_FORMAT_EXTENSIBLE fmt chunk shorter than 40 bytes")
        guid = raw[24:40]
        if guid[4:] != _GUID_TAIL[e]:
            bad(f"unsupported WAVE_FORMAT_EXTENSIBLE sub-format {guid.hex()}; only PCM and IEEE float can be read")
        tag = struct.unpack(e + "I", guid[:4])[0]
    if tag not in (_PCM, _IEEE_FLOAT):
        name = _CODEC_NAMES.get(tag, "an unknown encoding")
        bad(
            f"compressed or unsupported encoding: {name} (format tag {tag:#06x}); only PCM and "
            "IEEE float wav can be read: convert it, e.g. ffmpeg -i IN -c:a pcm_s16le OUT.wav"
        )
    if channels == 0:
        bad("damaged header: 0 channels")
    if block_align == 0 or block_align % channels:
        bad(f"damaged header: {block_align} bytes per frame cannot hold {channels} equal sample(s)")
    container = block_align // channels
    if bits == 0:
        bad("damaged header: 0 bits per sample")
    if bits > 8 * container:
        bad(f"damaged header: {bits} bits per sample do not fit {container}-byte samples")
    if tag == _PCM and container > 8:
        bad(f"unsupported {bits}-bit integer samples in {container}-byte containers (at most 64 bits)")
    if tag == _IEEE_FLOAT and (container, bits) not in ((4, 32), (8, 64)):
        bad(f"unsupported {bits}-bit float samples; only 32- and 64-bit float can be read")
    check_rate(path, rate)
    return ("pcm" if tag == _PCM else "float"), channels, rate, container, bits


def _layout(fmt: tuple, big_endian: bool, offset: int, data_size: int, available: int, path: str) -> WavInfo:
    encoding, channels, rate, container, bits = fmt
    block = channels * container
    if data_size > available:
        raise AudioError(
            path,
            f"truncated: the header declares {data_size // block} frames ({data_size} bytes) "
            f"but the file holds {available // block} ({available} bytes)",
        )
    frames = data_size // block  # a trailing partial frame is ignored
    if frames == 0:
        raise AudioError(path, "no audio samples (0 frames)")
    return WavInfo(rate, channels, encoding, bits, container, big_endian, offset, frames)


class WavSource:
    """An open, checked wav file whose samples are read by frame range.

    Parameters
    ----------
    path : str or path-like

    Attributes
    ----------
    path : str
    info : WavInfo
    sample_rate : int
        In Hz.
    frames : int
        Frames (one sample per channel) in the file.

    Raises
    ------
    AudioError
        As :func:`wav_info`, or if the samples cannot be mapped.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        with _open_regular(self.path) as fh:
            self.info = _inspect(fh, self.path)
            self._scipy = _scipy_map(self.path, self.info)
            self._raw = None if self._scipy is not None else _byte_map(fh, self.info, self.path)

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    @property
    def frames(self) -> int:
        return self.info.frames

    def samples(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames ``[start, stop)`` as stored: shape (n,) or (n, channels), scipy's dtypes."""
        if self._scipy is not None:
            return self._scipy[start:stop]
        return samples_from_bytes(self._raw[start:stop], self.info)

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames ``[start, stop)`` as a mono float64 signal in [-1, 1], at :attr:`sample_rate`.

        Raises
        ------
        AudioError
            If the samples hold NaN or infinity, or do not fit in memory.
        """
        stop = self.frames if stop is None else stop
        try:
            with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf are reported just below
                signal = to_mono(to_float(self.samples(start, stop)))
        except MemoryError:
            raise AudioError(self.path, f"too large to decode in memory ({stop - start} frames)") from None
        if not np.all(np.isfinite(signal)):
            where = f" (at {start / self.sample_rate:.1f} s)" if start or stop < self.frames else ""
            raise AudioError(self.path, f"samples contain NaN or infinity{where}")
        return signal

    def close(self) -> None:
        self._scipy = self._raw = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _scipy_map(path: str, info: WavInfo):
    """scipy's memory map of the samples, or None where scipy cannot map this layout.

    scipy maps only files it opens by name (given an open file it reads
    everything). :func:`wav_info` has already checked every size against
    the file, so scipy only ever maps what is there; a layout that differs
    from the checked one (another frame count or sample type) falls back to
    the checked layout.
    """
    with warnings.catch_warnings():
        # scipy's warnings are about chunks it skips (bext, LIST, ...).
        warnings.simplefilter("ignore", wavfile.WavFileWarning)
        try:
            _, data = wavfile.read(path, mmap=True)
        except Exception:  # noqa: BLE001 - scipy trips on some valid headers; the own decoder reads them
            return None
    width = data.dtype.itemsize
    same = len(data) == info.frames and width == info.container_bytes and data.size == info.frames * info.channels
    return data if same else None


def _byte_map(fh, info: WavInfo, path: str) -> np.ndarray:
    """A read-only map of the data chunk, shape (frames, block_align) bytes."""
    try:
        return np.memmap(fh, dtype=np.uint8, mode="r", offset=info.data_offset, shape=(info.frames, info.block_align))
    except (OSError, ValueError) as exc:
        raise AudioError(path, f"cannot map the samples: {exc}") from None


def samples_from_bytes(raw, info: WavInfo) -> np.ndarray:
    """Decode whole frames of sample bytes, laid out as scipy lays them out.

    Parameters
    ----------
    raw : bytes or uint8 ndarray
        ``k * info.block_align`` bytes from the data chunk.
    info : WavInfo

    Returns
    -------
    ndarray of shape (k,) or (k, channels)
        uint8, int16, int32 or int64 (24-bit and other odd widths
        left-justified), or float32/float64.
    """
    raw = np.frombuffer(raw, dtype=np.uint8) if isinstance(raw, (bytes, bytearray)) else np.ascontiguousarray(raw).reshape(-1)
    e = ">" if info.big_endian else "<"
    width = info.container_bytes
    if info.encoding == "float":
        data = raw.view(f"{e}f{width}")
    elif width == 1:
        data = raw  # 8-bit wav is unsigned
    elif width in (2, 4, 8):
        data = raw.view(f"{e}i{width}")
    else:
        # 3, 5, 6 or 7 bytes: left-justify into the next integer size, as scipy does.
        wide = 4 if width == 3 else 8
        samples = raw.reshape(-1, width)
        grid = np.zeros((len(samples), wide), dtype=np.uint8)
        if info.big_endian:
            grid[:, :width] = samples
        else:
            grid[:, wide - width :] = samples
        data = grid.view(f"{e}i{wide}").reshape(-1)
    data = data.astype(data.dtype.newbyteorder("="), copy=False)
    if info.channels > 1:
        data = data.reshape(-1, info.channels)
    return data


def _describe_magic(head: bytes) -> str:
    kind, description = identify(head)
    if kind is None:
        return f"starts with {_show(head[:4])}, not 'RIFF'"
    return f"starts with {_show(head[:4])}, {description}"


_show = show
