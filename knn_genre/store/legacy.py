"""The original tutorial's ``my.dat``: import with a restricted unpickler, and export.

The tutorial appends one pickle per track to a single file::

    pickle.dump((mean, covariance, label_index), f)

where ``mean`` is ``mfcc_feat.mean(0)`` (shape ``(d,)``), ``covariance`` is
``np.cov(mfcc_feat.T)`` (shape ``(d, d)``) and ``label_index`` is the 1-based
number of the genre folder. The file holds no genre names and no track
paths: names are given by the caller (in index order) or made up as
``genre1``, ``genre2``, ...; records are named ``my.dat#1``, ``my.dat#2``, ...

A pickle can run any code on loading, so :func:`load_legacy` never uses
:func:`pickle.load`. Its unpickler admits only the few numpy functions that
rebuild arrays and scalars (``_reconstruct``, ``ndarray``, ``dtype``,
``scalar``, ``_frombuffer``, and a latin-1-only ``_codecs.encode`` for
Python 2 era pickles). Any other global (``os.system``, ``builtins.eval``,
...) stops the import with a :class:`~knn_genre.errors.FeatureFileError`
before anything is called.
"""

from __future__ import annotations

import os
import pickle
import pickletools
from collections.abc import Sequence

import numpy as np

from ..errors import FeatureFileError, ParameterError
from ..features.gaussian import gaussian_problems
from ..features.params import MFCCParams
from .featureset import FeatureSet
from .npz import atomic_write

__all__ = ["load_legacy", "save_legacy", "legacy_genre_names", "PICKLE_PROTOCOL"]

#: Protocol of exported files: readable by every Python 3 and by Python 2.
PICKLE_PROTOCOL = 2


def _latin1_encode(text, encoding="latin1", errors="strict"):
    """``_codecs.encode`` as numpy's protocol 0-2 pickles use it, and nothing else."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() not in ("latin1", "iso88591") or errors != "strict":
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


def _allowed_globals() -> dict:
    """``(module, name) -> object`` for every global a numpy array pickle may name.

    The objects are taken from numpy itself, so no module is ever imported
    by name from the file.
    """
    reconstruct = np.empty(0).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    frombuffer = np.empty(1).__reduce_ex__(5)[0]
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): _latin1_encode}
    for core in ("numpy.core", "numpy._core"):  # numpy 1.x and 2.x spellings
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


class _Refused(pickle.UnpicklingError):
    def __init__(self, what: str):
        self.what = what
        super().__init__(what)


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can build numpy arrays, numbers, strings and tuples, nothing else."""

    _allowed = None

    def find_class(self, module, name):
        if _RestrictedUnpickler._allowed is None:
            _RestrictedUnpickler._allowed = _allowed_globals()
        try:
            return _RestrictedUnpickler._allowed[(module, name)]
        except (KeyError, TypeError):
            raise _Refused(f"the Python object {_short(module)}.{_short(name)}") from None

    def persistent_load(self, pid):
        raise _Refused("a persistent object reference")


def _short(text, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def legacy_genre_names(indices: Sequence[int], genres: Sequence[str] | None = None) -> dict:
    """Map 1-based label indices to genre names.

    Parameters
    ----------
    indices : sequence of int
        The label indices found in the file.
    genres : sequence of str, optional
        Names in index order: ``genres[0]`` is index 1. By default indices
        are named ``genre1``, ``genre2``, ... (zero-padded when there are 10
        or more, so that names sort like indices).

    Returns
    -------
    dict of int to str

    Raises
    ------
    ParameterError
        If ``genres`` has empty or repeated names, or too few names.
    """
    top = max(indices, default=0)
    if genres is None:
        width = len(str(top))
        return {i: f"genre{i:0{width}d}" for i in set(indices)}
    genres = [str(g).strip() for g in genres]
    if any(not g for g in genres) or len(set(genres)) != len(genres):
        raise ParameterError(f"genre names {genres} must be non-empty and distinct")
    if top > len(genres):
        raise ParameterError(
            f"the file uses label index {top} but only {len(genres)} genre name(s) were given; "
            "give one name per index, in index order"
        )
    return {i: genres[i - 1] for i in set(indices)}


def load_legacy(path: str | os.PathLike, genres: Sequence[str] | None = None) -> FeatureSet:
    """Import a tutorial ``my.dat`` stream of ``(mean, covariance, label_index)`` pickles.

    Parameters
    ----------
    path : str or path-like
    genres : sequence of str, optional
        Genre names in label-index order (index 1 first); see
        :func:`legacy_genre_names`.

    Returns
    -------
    FeatureSet
        One track per valid record, named ``<file name>#<record number>``,
        with the default MFCC parameters at the record dimension. Records
        that are not usable Gaussians (wrong shapes, NaN, asymmetric or
        indefinite covariance, bad label) are listed in ``skipped`` with the
        reason. If the file ends inside a record (an interrupted write), the
        records before it are kept and the rest is listed as skipped.

    Raises
    ------
    FeatureFileError
        If the file cannot be read, holds no usable record, or refers to any
        Python object other than numpy arrays: nothing in the file is
        executed, and nothing is imported from such a file.
    ParameterError
        If ``genres`` does not name every label index.
    """
    source = os.fspath(path)
    name = os.path.basename(source)
    records, skipped = [], []
    try:
        with open(source, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            _check_start(fh.read(4), size, source)
            fh.seek(0)
            number = 0
            while fh.tell() < size:
                number += 1
                start = fh.tell()
                try:
                    record = _RestrictedUnpickler(fh, encoding="latin1").load()
                except _Refused as exc:
                    raise FeatureFileError(
                        source,
                        f"refused: record {number} asks for {exc.what}; a legacy feature file may hold only "
                        "numpy arrays and numbers, so nothing was loaded or executed",
                    ) from None
                except Exception as exc:  # noqa: BLE001 - any decoding failure of untrusted bytes
                    if not records:
                        raise FeatureFileError(
                            source, f"not a legacy feature file (pickled tuples): {_decode_failure(exc)}"
                        ) from None
                    skipped.append((f"{name}#{number}", f"unreadable from byte {start} on ({_decode_failure(exc)}); "
                                    f"the {len(records)} record(s) before it were imported"))
                    break
                mean, cov, label, problem = _check_record(record, records[0][0].shape[0] if records else None)
                if problem:
                    skipped.append((f"{name}#{number}", problem))
                else:
                    records.append((mean, cov, label, f"{name}#{number}"))
    except FileNotFoundError:
        raise FeatureFileError(source, "no such file") from None
    except IsADirectoryError:
        raise FeatureFileError(source, "is a directory, not a legacy feature file") from None
    except PermissionError:
        raise FeatureFileError(source, "permission denied") from None
    except OSError as exc:
        raise FeatureFileError(source, f"cannot read: {exc.strerror or exc}") from None
    if not records:
        reasons = f"; first problem: {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise FeatureFileError(source, f"no usable record in the legacy feature file{reasons}")
    names = legacy_genre_names([r[2] for r in records], genres)
    d = records[0][0].shape[0]
    return FeatureSet(
        means=np.stack([r[0] for r in records]),
        covs=np.stack([r[1] for r in records]),
        labels=[names[r[2]] for r in records],
        paths=[r[3] for r in records],
        params=MFCCParams(numcep=d, nfilt=max(d, MFCCParams().nfilt)),
        skipped=tuple(skipped),
    )


def _check_start(head: bytes, size: int, source: str) -> None:
    """Refuse at once what is plainly not a pickle stream, with a useful hint."""
    if size == 0:
        raise FeatureFileError(source, "empty file (0 bytes)")
    if head.startswith(b"PK\x03\x04"):
        raise FeatureFileError(
            source, "a zip archive, not a legacy feature file (a .npz feature file? convert it with --from-features)"
        )
    # Protocol 2+ pickles start with PROTO (0x80); protocols 0-1 tuples with MARK '('.
    if head[:1] not in (b"\x80", b"("):
        shown = "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in head)
        raise FeatureFileError(source, f"not a legacy feature file: starts with '{shown}', not a pickle")


def _article(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" or noun.startswith("nd") else "a ") + noun


def _decode_failure(exc: BaseException) -> str:
    if isinstance(exc, EOFError) or "truncated" in str(exc):
        return "the file ends inside a record (an interrupted write?)"
    return _short(f"{type(exc).__name__}: {exc}", 120)


def _check_record(record, d_expected):
    """``(mean, cov, label, problem)``; ``problem`` is None for a usable record."""

    def bad(problem):
        return None, None, None, problem

    if type(record) not in (tuple, list) or len(record) != 3:
        size = f" of length {len(record)}" if type(record) in (tuple, list) else ""
        return bad(f"{_article(type(record).__name__)}{size}, not a (mean, covariance, label_index) tuple")
    mean, cov, label = record
    for what, value, ndim in (("mean", mean, 1), ("covariance", cov, 2)):
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu" or value.ndim != ndim:
            kind = f"{value.dtype} array of shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
            return bad(f"{what} must be a {ndim}-d array of real numbers, got {kind}")
    d = mean.shape[0]
    if d == 0 or cov.shape != (d, d):
        return bad(f"covariance of shape {cov.shape} does not match a mean of length {d}")
    if d_expected is not None and d != d_expected:
        return bad(f"dimension {d}, but the first record has dimension {d_expected}")
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
        return bad(f"label index must be an integer, got {type(label).__name__}")
    if label < 1:
        return bad(f"label index {label}; legacy files number genres from 1")
    mean = mean.astype(np.float64)
    cov = cov.astype(np.float64)
    problem = gaussian_problems(mean[None], cov[None])[0]
    if problem:
        return bad(problem)
    return mean, 0.5 * (cov + cov.T), int(label), None


def save_legacy(fs: FeatureSet, path: str | os.PathLike) -> dict:
    """Write ``fs`` as a tutorial-style stream of ``(mean, covariance, label_index)`` pickles.

    Label indices are 1-based positions in the sorted ``fs.genres``. Track
    paths, MFCC parameters and skipped files are not part of the format and
    are lost. Records use pickle protocol 2 and numpy 1.x module names, so
    old scripts (Python 2 or 3, numpy 1.x or 2.x) can read them. The write
    is atomic.

    Returns
    -------
    dict of int to str
        The genre name of each label index, to pass on to users of the file.

    Raises
    ------
    ParameterError
        If ``fs`` holds no Gaussians (a table-only feature file).
    """
    if not fs.has_gaussians:
        raise ParameterError("the tutorial's my.dat holds Gaussians; these features hold only the table family")
    index = {g: i + 1 for i, g in enumerate(fs.genres)}

    def write(fh):
        for mean, cov, label in zip(fs.means, fs.covs, fs.labels.tolist()):
            record = pickle.dumps((np.array(mean), np.array(cov), index[label]), protocol=PICKLE_PROTOCOL)
            fh.write(_numpy1_names(record))

    atomic_write(path, write)
    return {i: g for g, i in index.items()}


def _numpy1_names(record: bytes) -> bytes:
    """Rename ``numpy._core.*`` globals (numpy 2) to ``numpy.core.*``, which every numpy imports.

    Only GLOBAL opcodes are rewritten; they are newline-terminated text, so
    nothing else in the stream moves out of place.
    """
    out, last = [], 0
    for op, arg, pos in pickletools.genops(record):
        if op.name == "GLOBAL" and arg.startswith("numpy._core."):
            module, name = arg.split(" ")
            out += [record[last:pos], b"c" + module.replace("numpy._core.", "numpy.core.", 1).encode() + b"\n" + name.encode() + b"\n"]
            last = pos + len(arg) + 2
    return b"".join(out) + record[last:]
