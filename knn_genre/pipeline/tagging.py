"""Tagging a whole library: one row per audio file, streamed to a CSV or JSON-lines file.

:func:`tag_library` walks files and folders (recursively), predicts each
file with :func:`~knn_genre.pipeline.apply.predict_file` in local worker
processes or on a Dask cluster, and appends one row per file to the output
as soon as it is known: ``path, genre, probability, top, windows, error``.
Nothing is held per file but what the output already says:

- **resumable**: files already in the output are skipped, so an
  interrupted run is continued by running it again; each row is one
  ``write`` of a whole line, and a last line left incomplete by a crash is
  cut off before appending;
- **bounded memory**: files are walked lazily and sent in chunks; the
  files already done are remembered as 16-byte digests of their paths.

A task is a pure function of (model file, audio file, windows): workers load
the model from its file once per process and read the audio by path, so on
a cluster every worker must see both under the same paths.
"""

from __future__ import annotations

import csv
import functools
import gc
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import is_audio_name
from ..audio.files import NO_SUCH_FILE
from ..errors import KnnGenreError, ParameterError
from .apply import predict_file
from .cluster import check_seen
from .workers import run_tasks

__all__ = ["FORMATS", "output_format", "iter_audio_files", "count_audio_files", "TagReport", "TagOutput", "tag_file", "tag_library"]

#: Output formats, by file suffix.
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}

#: Columns of a CSV output. ``top`` is ``genre=probability`` pairs separated by ``;``.
CSV_COLUMNS = ("path", "genre", "probability", "top", "windows", "error")

# Files handed to the workers at once: enough that the pool or the
# cluster is never idle for long between chunks, few enough that neither
# the task list nor the results in flight grow with the library.
_CHUNK = 2048


def output_format(path: str | os.PathLike) -> str:
    """``"csv"`` or ``"jsonl"`` for an output file, from its suffix; a ParameterError otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ParameterError(f"{path}: the output must end in .csv or .jsonl (JSON lines), not {suffix or 'no suffix'!r}")
    return FORMATS[suffix]


# -- finding the files -----------------------------------------------------------


def iter_audio_files(paths: Iterable[str | os.PathLike]) -> Iterator[tuple[str, str | None]]:
    """``(path, problem)`` for every file to tag, lazily, in a fixed order.

    A path that is not a folder is yielded as given (whatever its suffix:
    it was asked for, and its row will say if it cannot be read). A folder
    is walked recursively, sorted by name; its audio files are yielded,
    hidden files and folders are skipped, links to folders are not
    followed. A folder that cannot be listed is yielded with the reason as
    ``problem`` (None otherwise).
    """
    for given in paths:
        given = os.fspath(given)
        if not os.path.isdir(given):
            yield given, None
            continue
        yield from _walk(given)


def _walk(folder: str) -> Iterator[tuple[str, str | None]]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        yield folder, f"cannot list the folder: {exc.strerror or exc}"
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_folder = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_folder = False
        if is_folder:
            yield from _walk(entry.path)
        elif is_audio_name(entry.name):
            yield entry.path, None


def count_audio_files(paths: Iterable[str | os.PathLike], skip: Callable[[str], bool] = lambda path: False) -> int:
    """How many items :func:`iter_audio_files` yields that ``skip`` does not reject (a walk, nothing kept)."""
    return sum(1 for path, _ in iter_audio_files(paths) if not skip(path))


# -- one file ---------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _model(path: str, size: int, mtime_ns: int):
    """The model at ``path``, loaded once per worker process (keyed by size and mtime, so never stale)."""
    from ..classifiers.model import load_model

    return load_model(path)


def tag_file(model_path: str, path: str, window: float | None = None, hop: float | None = None, top: int = 3) -> dict:
    """The row of one file: a worker's task; never raises.

    Parameters
    ----------
    model_path : str
        A model file from ``train`` (loaded once per process).
    path : str
        The audio file.
    window, hop : float, optional
        As :func:`~knn_genre.pipeline.apply.predict_file`.
    top : int
        Genres listed in ``top``.

    Returns
    -------
    dict
        ``path``, ``genre`` and ``probability`` (None on error), ``top``
        (list of ``[genre, probability]``), ``windows`` (int, 0 on error),
        ``error`` (None, or the one-line reason).
    """
    try:
        st = os.stat(model_path)
        model = _model(model_path, st.st_size, st.st_mtime_ns)
        pred = predict_file(model, path, window_seconds=window, hop_seconds=hop)
    except KnnGenreError as exc:
        return _error_row(path, getattr(exc, "reason", str(exc)))
    except FileNotFoundError:  # the model file went away, or a cluster worker does not see it
        return _error_row(path, _missing_model(model_path))
    except OSError as exc:
        return _error_row(path, f"cannot read the model {model_path}: {exc.strerror or exc}")
    except Exception as exc:  # noqa: BLE001 - reported per file: one bad file must not stop the others
        return _error_row(path, f"unexpected {type(exc).__name__}: {exc}")
    ranked = pred.top(top)
    return {
        "path": path,
        "genre": pred.genre,
        "probability": float(ranked[0][1]),
        "top": [[g, float(p)] for g, p in ranked],
        "windows": len(pred.windows),
        "error": None,
    }


def _missing_model(model_path: str) -> str:
    """The reason of a row whose worker found no model file (one line, as rows keep it)."""
    return " ".join(f"{NO_SUCH_FILE}: the model {model_path}".split())


def _error_row(path: str, reason: str) -> dict:
    return {"path": path, "genre": None, "probability": None, "top": [], "windows": 0, "error": " ".join(str(reason).split())}


# -- the output file ------------------------------------------------------------------


def _digest(path: str) -> bytes:
    return hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=16).digest()


class TagOutput:
    """An output file opened for appending rows, knowing which paths it already has.

    Parameters
    ----------
    path : str or path-like
        ``.csv`` or ``.jsonl``. Created (with the CSV header) if missing.

    Attributes
    ----------
    format : {"csv", "jsonl"}
    rows_before : int
        Rows already in the file when it was opened.

    Raises
    ------
    ParameterError
        For an unknown suffix; FeatureFileError-like ``KnnGenreError`` for
        a file that is not an output of this command (wrong header, a line
        that does not parse).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.format = output_format(self.path)
        self._done = np.empty(0, dtype="S16")
        self.rows_before = 0
        self._fd = None

    def __enter__(self) -> "TagOutput":
        return self if self._fd is not None else self.open()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def open(self) -> "TagOutput":
        """Read the rows already there (repairing a cut last line) and open for appending."""
        digests = bytearray()
        self.rows_before = 0
        if self.path.exists():
            self._repair_tail()
            for path in self._existing_paths():
                digests += _digest(path)
                self.rows_before += 1
        self._done = np.sort(np.frombuffer(bytes(digests), dtype="S16"))
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if fresh and self.format == "csv":
            self._write_line(_csv_line(CSV_COLUMNS))
        return self

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def has(self, path: str) -> bool:
        """Whether the file already has a row for ``path``."""
        if not len(self._done):
            return False
        key = np.array(_digest(path), dtype="S16")
        i = np.searchsorted(self._done, key)
        return bool(i < len(self._done) and self._done[i] == key)

    def write(self, row: dict) -> None:
        """Append one row, whole (one ``write`` of one line)."""
        if self.format == "csv":
            top = ";".join(f"{g}={p:.6g}" for g, p in row["top"])
            probability = "" if row["probability"] is None else f"{row['probability']:.6g}"
            line = _csv_line([row["path"], row["genre"] or "", probability, top, row["windows"], row["error"] or ""])
        else:
            row = {**row, "top": [{"genre": g, "probability": p} for g, p in row["top"]]}
            line = json.dumps(row, ensure_ascii=False) + "\n"
        self._write_line(line)

    def _write_line(self, line: str) -> None:
        data = line.encode("utf-8", "surrogateescape")
        while data:  # a regular file takes it in one write; a short write is retried
            try:
                written = os.write(self._fd, data)
            except OSError as exc:  # a full disk: the next run cuts the partial line off and goes on
                raise KnnGenreError(f"cannot write {self.path}: {exc.strerror or exc}") from None
            data = data[written:]

    def _repair_tail(self) -> None:
        """Cut off a last line without its newline: a row being written when a run was killed."""
        with open(self.path, "rb+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return
            # Find the last newline from the end, in blocks.
            end = size
            while end > 0:
                start = max(0, end - 65536)
                fh.seek(start)
                block = fh.read(end - start)
                cut = block.rfind(b"\n")
                if cut >= 0:
                    fh.truncate(start + cut + 1)
                    return
                end = start
            fh.truncate(0)

    def _existing_paths(self) -> Iterator[str]:
        with open(self.path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            if self.format == "csv":
                reader = csv.reader(fh)
                header = next(reader, None)
                if header is None:
                    return
                if tuple(header) != CSV_COLUMNS:
                    raise KnnGenreError(
                        f"{self.path}: not a tagging output (its first line is not {','.join(CSV_COLUMNS)}); "
                        "give a new file or one written by an earlier run"
                    )
                for number, record in enumerate(reader, start=2):
                    if len(record) != len(CSV_COLUMNS):
                        raise KnnGenreError(f"{self.path}: line {number} does not have the {len(CSV_COLUMNS)} columns of a row")
                    yield record[0]
            else:
                for number, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        yield json.loads(line)["path"]
                    except (ValueError, KeyError, TypeError):
                        raise KnnGenreError(f"{self.path}: line {number} is not a JSON row with a path") from None


def _csv_line(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


# -- the whole library ------------------------------------------------------------------


@dataclass
class TagReport:
    """What a tagging run did."""

    tagged: int = 0
    failed: int = 0
    already: int = 0
    seconds: float = 0.0
    failures: list = field(default_factory=list)  # the first few (path, reason), for the summary

    @property
    def done(self) -> int:
        return self.tagged + self.failed


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def tag_library(
    model_path: str | os.PathLike,
    paths: Iterable[str | os.PathLike],
    output: TagOutput,
    *,
    window: float | None = None,
    hop: float | None = None,
    top: int = 3,
    n_jobs: int = -1,
    cluster=None,
    on_progress: Callable[[int, int], None] | None = None,
    total: int | None = None,
    chunk: int = _CHUNK,
) -> TagReport:
    """Tag every file under ``paths`` not yet in ``output``, appending a row per file.

    Parameters
    ----------
    model_path : str or path-like
        A model file; read by every worker.
    paths : iterable of str or path-like
        Files and folders, see :func:`iter_audio_files`. Walked again if it
        is a list (a generator is walked once).
    output : TagOutput
        Open; rows are appended to it as files finish, in the order they finish.
    window, hop : float, optional
    top : int, default=3
    n_jobs : int, default=-1
        Local worker processes (-1: all cores); ignored with ``cluster``.
    cluster : knn_genre.pipeline.cluster.Cluster, optional
        Run on this Dask cluster instead.
    on_progress : callable(done, total), optional
        After each file of this run; ``total`` counts the files not yet in
        the output (None if ``total`` was not given).
    total : int, optional
        The number of files to tag, for progress (see :func:`count_audio_files`).
    chunk : int
        Files handed to the workers at once.

    Returns
    -------
    TagReport

    A ``KeyboardInterrupt`` (or any error) stops the run; every row written
    so far is whole, so the next run goes on from there.
    """
    start = time.perf_counter()
    model_path = os.path.abspath(os.fspath(model_path))
    report = TagReport(already=output.rows_before)
    if cluster is None:
        # Loaded here once: forked workers start with it.
        st = os.stat(model_path)
        _model(model_path, st.st_size, st.st_mtime_ns)

    def record(row):
        output.write(row)
        if row["error"] is None:
            report.tagged += 1
        else:
            report.failed += 1
            if len(report.failures) < 20:
                report.failures.append((row["path"], row["error"]))
        if on_progress:
            on_progress(report.done, total)

    todo = ((path, problem) for path, problem in iter_audio_files(paths) if not output.has(path))
    for part in _chunks(todo, chunk):
        tasks = []
        for path, problem in part:
            if problem is not None:
                record(_error_row(path, problem))
            else:
                # Absolute paths for the workers, which may run elsewhere; the row keeps the path as found.
                tasks.append((model_path, os.path.abspath(path), window, hop, top))
        names = [path for path, problem in part if problem is None]
        if cluster is None:
            jobs = run_tasks(tag_file, tasks, n_jobs)
        else:
            jobs = cluster.run(tag_file, tasks, on_failure=_killed_row)
        try:
            for i, row in jobs:
                if cluster is not None and row["error"] is not None:
                    check_seen(tasks[i][1], row["error"])
                    if row["error"] == _missing_model(model_path):
                        check_seen(model_path, NO_SUCH_FILE)
                record({**row, "path": names[i]})
        finally:
            jobs.close()
        # The pool of a chunk (its futures and their results) is held in
        # reference cycles: free it now, not after several chunks.
        gc.collect()
    report.seconds = time.perf_counter() - start
    return report


def _killed_row(exc: BaseException) -> dict:
    """The row of a file whose prediction killed every cluster worker that tried it (path filled in by the caller)."""
    return _error_row("", f"its analysis killed the Dask workers that ran it (out of memory?): {' '.join(str(exc).split())[:200]}")
