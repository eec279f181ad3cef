"""Every format but WAV: the header checked here, the samples decoded by libsndfile.

Reading happens in two steps, as for WAV:

1. The container module (:mod:`~knn_genre.audio.au`,
   :mod:`~knn_genre.audio.aiff`, :mod:`~knn_genre.audio.flac`,
   :mod:`~knn_genre.audio.ogg`, :mod:`~knn_genre.audio.mpeg`) checks the
   header against the file before the decoder sees a byte, so a damaged,
   truncated or misnamed file gets a one-line reason of this package, never
   libsndfile's.
2. :class:`DecodedSource` decodes with the ``soundfile`` package
   (libsndfile, with libFLAC, libvorbis, libopus and mpg123 inside its
   wheels), :data:`BLOCK_FRAMES` frames at a time, each block scaled and
   mixed to mono at once: memory is bounded by the window read, whatever
   the file's length or channel count.

Integer PCM is read as left-justified int32 and scaled by
:func:`~knn_genre.audio.signal.to_float` (``/ 2**31``), which is exactly
WAV's scaling (int16 ``/ 2**15``, 8-bit ``/ 2**7``, ...): the same samples in
``.wav``, ``.au``, ``.aiff`` and ``.flac`` give bit-identical signals.

Seeking is exact in the lossless formats, and their decoding is exact
integer arithmetic. Not so for lossy streams: libsndfile's seeks in MP3 and
Vorbis land near, not on, the decoder state of a straight decode, and
mpg123's float output even depends on how the samples are asked for (reads
of 9000 frames give other last bits than reads of 65536). Lossy streams are
therefore decoded only forwards from the start, in blocks of
:data:`BLOCK_FRAMES` on a fixed grid of the file: a window is cut from the
blocks it covers; the blocks of the previous window are kept for an
overlapping next one, a later window continues the decoding (the blocks
between are decoded and dropped) and an earlier one reopens the file. Every
window is then exactly the same stretch of the one decoding of the whole
file, whatever order windows are read in.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

import numpy as np

from ..errors import AudioError
from .aiff import aiff_info
from .au import au_info
from .files import open_regular
from .flac import flac_info
from .mpeg import mpeg_info
from .ogg import ogg_info
from .signal import to_float, to_mono

__all__ = ["BLOCK_FRAMES", "DecodedSource", "AuSource", "AiffSource", "FlacSource", "OggSource", "Mp3Source"]

#: Frames decoded per call to libsndfile.
BLOCK_FRAMES = 1 << 16

# Samples of an MPEG-1 Layer III frame: the decoder's length of a stream
# without a Xing/VBRI count may be off by about this much.
_MP3_FRAME = 1152

# Frames a file can hold per byte, in any format read here: a FLAC frame of constant
# subframes codes at most 65535 samples in about ten bytes, an Ogg packet at most 4096
# (Vorbis) or 5760 (Opus, 120 ms at 48 kHz) in two. A header declaring more is damaged,
# and trusting it would plan windows (and memory) for a stream that is not there.
_MAX_FRAMES_PER_BYTE = 8192


class DecodedSource:
    """An open, checked audio file decoded by libsndfile, read by frame range.

    Subclasses set :attr:`check` (the container's header check) and
    :attr:`kind`; the interface is :class:`~knn_genre.audio.wav.WavSource`'s.

    Parameters
    ----------
    path : str or path-like

    Attributes
    ----------
    path : str
    info : StreamInfo
        What the header declares.
    sample_rate : int
        In Hz.
    frames : int
        Frames (one sample per channel) in the file.

    Raises
    ------
    AudioError
        As the container's header check, or if libsndfile cannot open the
        stream or disagrees with its header.
    """

    #: The container's header check: ``(open file, path) -> StreamInfo``.
    check = None
    #: What the file should be, for messages.
    kind = "an audio file"
    #: Frames the decoder may yield fewer than its length, at the end of the file.
    length_slack = 0
    #: Whether the decoder writes warnings on the standard error (mpg123 does).
    noisy = False

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._fd = self._decoder = None
        fh = open_regular(self.path, self.kind)
        try:
            self.info = type(self).check(fh, self.path)
            self._fd = os.dup(fh.fileno())
        finally:
            fh.close()
        self._blocks = {}  # lossy streams: grid block index -> mono signal, for the last window
        try:
            self._open_decoder()
            self.frames = self._checked_frames()
        except BaseException:
            self.close()
            raise

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames ``[start, stop)`` as a mono float64 signal in [-1, 1], at :attr:`sample_rate`.

        At the very end of a lossy stream the decoder may yield up to
        :attr:`length_slack` frames fewer than asked for; the signal is then
        that much shorter.

        Raises
        ------
        AudioError
            If the data there cannot be decoded (damaged or truncated), the
            samples hold NaN or infinity, or do not fit in memory.
        """
        stop = self.frames if stop is None else min(stop, self.frames)
        start = max(0, min(start, stop))
        if start == stop:
            return np.empty(0)
        try:
            out = np.empty(stop - start)
        except MemoryError:
            raise AudioError(self.path, f"too large to decode in memory ({stop - start} frames)") from None
        done = self._read_grid(start, stop, out) if not self.info.lossless else self._read_exact(start, out)
        out = out[:done]
        if not np.all(np.isfinite(out)):
            where = f" (at {start / self.sample_rate:.1f} s)" if start or stop < self.frames else ""
            raise AudioError(self.path, f"samples contain NaN or infinity{where}")
        return out

    def close(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._blocks = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # A source left open (not used as a context manager) still gives its descriptor back.
        if getattr(self, "_fd", None) is not None:
            self.close()

    # -- decoding ---------------------------------------------------------

    def _open_decoder(self) -> None:
        """(Re)open libsndfile on the file, at frame 0."""
        import soundfile  # imported here: reading WAV never needs it, and workers start faster

        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None
        os.lseek(self._fd, 0, os.SEEK_SET)
        # From the first frame on where that is not the start (tags, padding): libsndfile opened
        # on a descriptor recognises an MP3 by what it starts with, and some tag layouts it does not.
        source = self._fd if not self.info.data_offset else _Slice(self._fd, self.info.data_offset)
        try:
            with self._quiet():
                self._decoder = soundfile.SoundFile(source, closefd=False)
        except soundfile.SoundFileError as exc:
            raise AudioError(self.path, f"cannot decode this {self.info.format} file: {_reason(exc)}") from None
        self._pos = 0

    def _checked_frames(self) -> int:
        """The frames to read, once libsndfile's view of the stream agrees with the header."""
        decoder, info = self._decoder, self.info
        if abs(decoder.samplerate - info.sample_rate) > 1 or decoder.channels != info.channels:
            raise AudioError(
                self.path,
                f"inconsistent header: {info.channels} channel(s) at {info.sample_rate} Hz declared, "
                f"the decoder finds {decoder.channels} at {decoder.samplerate} Hz",
            )
        frames = decoder.frames
        if info.stream_frames is not None and frames < info.stream_frames - max(2 * _MP3_FRAME, info.stream_frames // 100):
            # The decoder stops at its length: without a Xing count that is an estimate from the
            # first frame's bitrate and the file's size, which a variable bitrate puts too low (and
            # the decoder reads no VBRI header). Too high an estimate is harmless: reading stops
            # at the last frame, and the frames counted here are what is read.
            rate = info.sample_rate
            why = ("an MP3 with a VBRI header, which the decoder does not read" if info.length_header == "VBRI"
                   else "variable-bitrate MP3 without a Xing or VBRI header")
            raise AudioError(
                self.path,
                f"{why}: the decoder would read only {frames / rate:.1f} s of its {info.stream_frames / rate:.1f} s; "
                "rewrite the file with a Xing header (as LAME and ffmpeg write)",
            )
        # The header's count where there is one; for an MP3, its frames hold what the
        # decoder will give at most (the decoder's own length may be an estimate from the file size).
        for declared in (info.frames, info.stream_frames):
            if declared is not None:
                frames = min(frames, declared)
        if frames <= 0:
            raise AudioError(self.path, "no audio samples (0 frames)")
        size = os.fstat(self._fd).st_size
        if frames > _MAX_FRAMES_PER_BYTE * size:
            raise AudioError(
                self.path,
                f"damaged: it declares {frames} frames ({frames / info.sample_rate / 3600:.3g} hours), "
                f"more than a file of {size} bytes can hold",
            )
        return int(frames)

    def _read_exact(self, start: int, out: np.ndarray) -> int:
        """Lossless: seek to ``start`` and decode ``len(out)`` frames into ``out``; the frames written."""
        if start != self._pos:
            try:
                self._decoder.seek(start)
            except Exception as exc:  # noqa: BLE001 - libsndfile's seek errors are RuntimeError or its own
                raise AudioError(self.path, f"cannot seek to {start / self.sample_rate:.1f} s: {_reason(exc)}") from None
            self._pos = start
        done = 0
        while done < len(out):
            block = self._block(min(BLOCK_FRAMES, len(out) - done))
            if len(block) == 0:
                break
            out[done : done + len(block)] = block
            done += len(block)
        self._check_complete(start + done, start + len(out))
        return done

    def _read_grid(self, start: int, stop: int, out: np.ndarray) -> int:
        """Lossy: cut ``[start, stop)`` out of the grid blocks covering it; the frames written."""
        kept, done = {}, 0
        for k in range(start // BLOCK_FRAMES, (stop - 1) // BLOCK_FRAMES + 1):
            block = self._blocks.get(k)
            if block is None:
                block = self._grid_block(k)
            kept[k] = block
            first = k * BLOCK_FRAMES
            a, b = max(start, first), min(stop, first + len(block))
            if b > a:
                out[a - start : b - start] = block[a - first : b - first]
                done = b - start
            if len(block) < BLOCK_FRAMES:
                break  # the end of the stream
        self._blocks = kept  # the next window may overlap this one
        self._check_complete(start + done, stop)
        return done

    def _grid_block(self, k: int) -> np.ndarray:
        """Grid block ``k`` of a lossy stream, decoding forwards (from the start if need be)."""
        target = k * BLOCK_FRAMES
        if self._pos > target:
            self._open_decoder()
        while self._pos < target:
            if len(self._block(BLOCK_FRAMES)) < BLOCK_FRAMES:
                return np.empty(0)
        return self._block(BLOCK_FRAMES)

    def _check_complete(self, reached: int, wanted: int) -> None:
        """A decoder that stops before the declared length, by more than the slack, is an error."""
        if reached < wanted and self.frames - reached > self.length_slack:
            raise AudioError(
                self.path,
                f"truncated or damaged: decoding stops at {reached / self.sample_rate:.1f} s "
                f"but the header declares {self.frames / self.sample_rate:.1f} s",
            )

    def _block(self, n: int) -> np.ndarray:
        """The next ``n`` (or fewer, at the end) frames, mono float64."""
        import soundfile

        dtype = "int32" if self.info.integer else "float64"
        try:
            with self._quiet():
                data = self._decoder.read(n, dtype=dtype, always_2d=True)
        except soundfile.SoundFileError as exc:
            remaining = getattr(self, "frames", 0) - self._pos
            if self.info.stream_frames is not None and 0 < remaining < n:
                # mpg123 went on past the last frame, into bytes after it (zero padding), and failed
                # there: decode the tail again, asking for no more than the frames counted.
                return self._tail(remaining)
            a, b = self._pos / self.sample_rate, (self._pos + n) / self.sample_rate
            raise AudioError(self.path, f"damaged or truncated {self.info.format} data between {a:.1f} and {b:.1f} s: {_reason(exc)}") from None
        except MemoryError:
            raise AudioError(self.path, f"too large to decode in memory ({n} frames)") from None
        self._pos += len(data)
        with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf are reported by read()
            return to_float(data[:, 0]) if data.shape[1] == 1 else to_mono(to_float(data))

    def _tail(self, n: int) -> np.ndarray:
        """The last ``n`` frames, decoded forwards from the start again as the grid decodes them."""
        target = self._pos
        self._open_decoder()
        while self._pos < target:
            self._block(min(BLOCK_FRAMES, target - self._pos))
        return self._block(n)

    def _quiet(self):
        return _SILENCER.silenced() if self.noisy else _nothing()


@contextmanager
def _nothing():
    yield


class _Slice:
    """The bytes of a file from ``start`` on, as a read-only file object (for libsndfile's virtual I/O)."""

    def __init__(self, fd: int, start: int):
        self._fd, self._start, self._pos = fd, start, 0
        self._size = max(0, os.fstat(fd).st_size - start)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        n = self._size - self._pos if n is None or n < 0 else n
        data = os.pread(self._fd, max(0, n), self._start + self._pos)
        self._pos += len(data)
        return data


class _StderrSilencer:
    """Sends file descriptor 2 to the null device while any thread decodes MP3.

    mpg123 prints its notes on damaged or unusual streams ("Illegal
    Audio-MPEG-Header", "Trying to resync") on the process's standard
    error, and libsndfile offers no way to quiet it; this package reports
    what is wrong itself. Descriptor 2 belongs to the whole process, so the
    count of threads decoding is kept once per process, under a lock.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = None

    @contextmanager
    def silenced(self):
        self._enter()
        try:
            yield
        finally:
            self._exit()

    def _enter(self) -> None:
        with self._lock:
            if self._depth == 0:
                try:
                    sys.stderr.flush()
                except (AttributeError, OSError, ValueError):
                    pass
                try:
                    saved = os.dup(2)
                except OSError:
                    saved = None  # no standard error to protect
                if saved is not None:
                    null = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(null, 2)
                    os.close(null)
                self._saved = saved
            self._depth += 1

    def _exit(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._saved is not None:
                os.dup2(self._saved, 2)
                os.close(self._saved)
                self._saved = None


_SILENCER = _StderrSilencer()


# libsndfile messages about its own workings, not the file (it was opened by descriptor, so it
# exists and is regular): what they mean for the file.
_INTERNAL = {
    "psf_fseek": "the stream ends before the length its header declares",
    "not a regular file": "its stream cannot be parsed (damaged)",
}


def _reason(exc: Exception) -> str:
    """libsndfile's message, as a clause: ``"flac decoder lost sync"``."""
    text = getattr(exc, "error_string", None) or str(exc)
    text = text.strip().removeprefix("Error :").strip().rstrip(".")
    meaning = next((m for key, m in _INTERNAL.items() if key in text), None)
    if meaning is not None:
        return meaning
    return (text[:1].lower() + text[1:]) or "the decoder failed"


class AuSource(DecodedSource):
    """A Sun/NeXT ``.au``/``.snd`` file (see :mod:`~knn_genre.audio.au`)."""

    check = staticmethod(au_info)
    kind = "an .au file"


class AiffSource(DecodedSource):
    """An AIFF or AIFF-C file (see :mod:`~knn_genre.audio.aiff`)."""

    check = staticmethod(aiff_info)
    kind = "an AIFF file"


class FlacSource(DecodedSource):
    """A FLAC file (see :mod:`~knn_genre.audio.flac`)."""

    check = staticmethod(flac_info)
    kind = "a FLAC file"


class OggSource(DecodedSource):
    """An Ogg Vorbis or Ogg Opus file (see :mod:`~knn_genre.audio.ogg`)."""

    check = staticmethod(ogg_info)
    kind = "an Ogg file"


class Mp3Source(DecodedSource):
    """An MP3 (or MPEG Layer I/II) file (see :mod:`~knn_genre.audio.mpeg`)."""

    check = staticmethod(mpeg_info)
    kind = "an MP3 file"
    length_slack = 2 * _MP3_FRAME
    noisy = True
