"""Opening and reading audio files safely, shared by every format's reader.

A file is opened without blocking and checked with ``fstat`` before any
byte is read, so a FIFO or device named ``x.flac`` is refused instead of
hanging the reader; every failure of the operating system is an
:class:`~knn_genre.errors.AudioError` with a one-line reason.
"""

from __future__ import annotations

import os
import stat

from ..errors import AudioError

__all__ = ["MISSING_REASONS", "open_regular", "read_bytes", "read_at", "file_size", "show"]

#: The reasons of a file that is not there (as opposed to one that is there but bad).
NO_SUCH_FILE = "no such file"
BROKEN_LINK = "broken symbolic link"
MISSING_REASONS = (NO_SUCH_FILE, BROKEN_LINK)


def open_regular(path: str, kind: str = "an audio file"):
    """Open a regular file for binary reading, with every failure an AudioError.

    Parameters
    ----------
    path : str
    kind : str
        What the file should be, for the message about a directory
        (``"a wav file"`` gives "is a directory, not a wav file").
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except IsADirectoryError:
        raise AudioError(path, f"is a directory, not {kind}") from None
    except PermissionError:
        raise AudioError(path, "permission denied") from None
    except FileNotFoundError:
        reason = BROKEN_LINK if os.path.islink(path) else NO_SUCH_FILE
        raise AudioError(path, reason) from None
    except OSError as exc:
        raise AudioError(path, f"cannot open: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise AudioError(path, f"is a directory, not {kind}")
        if not stat.S_ISREG(mode):
            raise AudioError(path, "not a regular file (a pipe, socket or device)")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(fh, n: int, path: str) -> bytes:
    """Up to ``n`` bytes from an open file, a failure being an AudioError."""
    try:
        return fh.read(n)
    except OSError as exc:
        raise AudioError(path, f"cannot read: {exc.strerror or exc}") from None


def read_at(fh, offset: int, n: int, path: str) -> bytes:
    """Up to ``n`` bytes at byte ``offset``."""
    try:
        fh.seek(offset)
    except OSError as exc:
        raise AudioError(path, f"cannot read: {exc.strerror or exc}") from None
    return read_bytes(fh, n, path)


def file_size(fh) -> int:
    """Size in bytes of an open file."""
    return os.fstat(fh.fileno()).st_size


def show(raw: bytes) -> str:
    """Bytes from a header as a short quoted text, unprintable ones escaped.

    >>> from knn_genre.audio.files import show
    >>> show(b"fLaC"), show(b"\\xff\\xfb")
    ("'fLaC'", "'\\\\xff\\\\xfb'")
    """
    return "'" + "".join(chr(b) if 32 <= b < 127 and b != 39 else f"\\x{b:02x}" for b in raw) + "'"
