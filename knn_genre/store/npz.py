"""Files on disk: the hardened ``.npz`` reader and atomic writes.

Feature and model files are shared between people, so reading one treats it
as untrusted: :func:`read_npz` checks the zip directory and every array
header before numpy reads an array (no object arrays, so no pickles; no
array larger than the data present; no zip bombs).

Every file the package writes goes through :func:`atomic_write`: a
temporary file in the destination folder, flushed to disk, then renamed
over the target, so a reader never sees half a file and a killed write
leaves any previous file intact. The file gets the permissions of the
user's umask, like a file any other program creates.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import FeatureFileError

__all__ = ["read_npz", "read_meta", "atomic_write", "first_line"]

# save() stores arrays uncompressed. A compressed member may expand at most
# this much (floats hardly compress), beyond a small allowance: a zip bomb
# would otherwise claim gigabytes from a few kilobytes.
_MAX_EXPANSION = 100
_EXPANSION_ALLOWANCE = 2**26


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(file_object)`` on a temporary file, then rename it to ``path``.

    The temporary file sits in the destination folder (a rename is only
    atomic within one file system) and is removed if writing fails. It is
    created with mode ``0o666`` less the umask, as ``open()`` creates files
    (``tempfile.mkstemp`` would make it private to the user).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _create_temporary(path: Path) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {path}")


def read_npz(source: str, required, optional=(), *, what: str) -> dict:
    """The arrays of an untrusted ``.npz``, checked before and while numpy reads them.

    Parameters
    ----------
    source : str
        Path of the file.
    required, optional : sequence of str
        Array names that must, or may, be present.
    what : str
        What the file is, for messages ("feature file", "model file").

    Returns
    -------
    dict of name -> ndarray

    Raises
    ------
    FeatureFileError
        If the file is missing or a folder, not an ``.npz``, lacks a required
        array, holds object arrays, declares arrays larger than its data, or
        cannot be decoded.
    """
    if os.path.isdir(source):
        raise FeatureFileError(source, f"is a directory, not a {what}")
    if not os.path.isfile(source):
        if os.path.exists(source):
            raise FeatureFileError(source, f"not a regular file (a pipe, socket or device), not a {what}")
        raise FeatureFileError(source, f"no such {what}")
    try:
        _check_members(source, tuple(required), tuple(optional), what)
        with np.load(source, allow_pickle=False) as npz:
            return {k: npz[k] for k in tuple(required) + tuple(optional) if k in npz.files}
    except FeatureFileError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise FeatureFileError(source, "holds pickled Python objects, which are never loaded") from None
        raise FeatureFileError(source, f"not a readable .npz file: {first_line(exc)}") from None
    except MemoryError:
        raise FeatureFileError(source, "an array is too large for memory") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError, NotImplementedError) as exc:
        raise FeatureFileError(source, f"not a readable .npz file ({type(exc).__name__}: {first_line(exc)})") from None


def _check_members(source: str, required: tuple, optional: tuple, what: str) -> None:
    """Check the zip directory and each array header before numpy reads anything.

    np.load allocates what an array header declares before reading the
    data, so a tiny file declaring a (10**12,) array, or a zip bomb, would
    exhaust memory; an object array would only fail later. All of that is
    refused here, from headers alone.
    """

    def bad(reason):
        raise FeatureFileError(source, reason)

    with open(source, "rb") as fh:
        head = fh.read(8)
    if not head.startswith(b"PK\x03\x04"):
        bad(f"not a knn_genre {what} (.npz): {_describe_non_zip(head)}")
    with zipfile.ZipFile(source) as zf:
        members = {info.filename: info for info in zf.infolist()}
        missing = [k for k in required if f"{k}.npy" not in members]
        if missing:
            bad(f"not a knn_genre {what}: missing {', '.join(missing)}")
        for key in required + tuple(k for k in optional if f"{k}.npy" in members):
            info = members[f"{key}.npy"]
            if info.flag_bits & 0x1:
                bad(f"array {key} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                bad(f"array {key} uses zip compression method {info.compress_type}; only stored or deflated arrays are read")
            if info.compress_type != zipfile.ZIP_STORED and info.file_size > max(
                _EXPANSION_ALLOWANCE, _MAX_EXPANSION * info.compress_size
            ):
                bad(f"array {key} would expand from {info.compress_size} to {info.file_size} bytes (a zip bomb?)")
            with zf.open(info) as member:
                shape, dtype = _array_header(member, key, bad)
            if dtype.hasobject:
                bad(f"array {key} holds pickled Python objects, which are never loaded")
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if nbytes > info.file_size:
                bad(f"array {key} declares shape {shape} ({nbytes} bytes) but holds only {info.file_size} bytes")


def _array_header(member, key: str, bad) -> tuple:
    """``(shape, dtype)`` from a ``.npy`` header, which is parsed without executing anything."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(member)
        else:
            bad(f"array {key} uses .npy format version {version}, which is not read")
    except FeatureFileError:
        raise
    except (ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile, SyntaxError) as exc:
        bad(f"array {key} has a damaged header ({first_line(exc)})")
    return tuple(shape), dtype


def _describe_non_zip(head: bytes) -> str:
    if head.startswith(b"\x93NUMPY"):
        return "a single .npy array"
    if head[:1] in (b"\x80", b"("):
        return "it looks like a pickle stream, such as the tutorial's my.dat, which is imported, never loaded"
    if not head:
        return "empty file (0 bytes)"
    return "not a zip archive"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.splitlines()[0].split())


def read_meta(raw: np.ndarray, source: str, *, format_name: str, max_version: int, what: str) -> dict:
    """The JSON ``meta`` of a knn_genre ``.npz``, with its format and version checked.

    Raises
    ------
    FeatureFileError
        If ``meta`` is not a JSON object string, names another format, or
        has a format version this knn_genre cannot read (the message says to
        upgrade).
    """
    if raw.shape != () or raw.dtype.kind != "U":
        raise FeatureFileError(source, "metadata is not a JSON string")
    try:
        meta = json.loads(str(raw))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError; deep nesting recurses
        raise FeatureFileError(source, f"metadata is not valid JSON: {first_line(exc)}") from None
    if not isinstance(meta, dict) or meta.get("format") != format_name:
        raise FeatureFileError(source, f"not a knn_genre {what} (format is not {format_name!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FeatureFileError(source, f"invalid format_version {version!r}")
    if version > max_version:
        raise FeatureFileError(
            source,
            f"written by a newer knn_genre ({meta.get('package_version', '?')}, format version {version}); "
            f"this is {__version__}, which reads up to format version {max_version}: upgrade knn_genre",
        )
    return meta
