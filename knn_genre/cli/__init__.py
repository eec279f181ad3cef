"""Pieces shared by the commands: exit statuses, argument types, output checks, pipes.

Exit statuses are the same for every command: 0 success, 1 the run failed
on its data (or ``--strict`` refused skipped files, or some files could not
be read), 2 a usage error or no usable input, 141 the reader of the output
went away (``| head``), 128 + N when stopped by signal N.

This package serves the commands at the top of :mod:`knn_genre`; no stage
imports it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from ..errors import KnnGenreError, ParameterError, check_integer, check_number, printable

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_PIPE",
    "error",
    "note",
    "make_parser",
    "add_progress_options",
    "progress_enabled",
    "positive_int",
    "positive_float",
    "non_negative_float",
    "jobs_count",
    "checked",
    "output_problem",
    "check_outputs",
    "with_hint",
    "printable",
    "one_line",
    "entry",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PIPE = 128 + 13  # SIGPIPE, as a shell reports a command killed by it


def error(prog: str, message: str) -> None:
    """Print ``prog: error: message`` on stderr, as argparse does."""
    print(f"{prog}: error: {message}", file=sys.stderr)


def note(message: str) -> None:
    """Print ``note: message`` on stderr: something the user should know, not a failure."""
    print(f"note: {message}", file=sys.stderr)


def make_parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the package's ``--version``."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog)
    parser.add_argument("--version", action="version", version=f"knn_genre {__version__}")
    return parser


def add_progress_options(parser: argparse.ArgumentParser) -> None:
    """``-q/--quiet`` and ``--progress``: progress lines on stderr, by default only on a terminal."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    group.add_argument(
        "--progress", action="store_true",
        help="progress lines on stderr even when it is not a terminal (by default only on a terminal)",
    )


def progress_enabled(args, stream=None) -> bool:
    """Whether to print progress: not with ``-q``; with ``--progress``; else when ``stream`` is a terminal."""
    if getattr(args, "quiet", False):
        return False
    if getattr(args, "progress", False):
        return True
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


def _argument(check: Callable, text: str, convert: Callable):
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if convert is int else 'a number'}") from None
    try:
        return check(value)
    except ParameterError as exc:
        # "value=3 must be ..." -> "3 must be ...": argparse names the option.
        raise argparse.ArgumentTypeError(str(exc).split("=", 1)[1]) from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _argument(lambda v: check_integer("value", v), text, int)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _argument(lambda v: check_number("value", v, minimum=0, strict=True), text, float)


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _argument(lambda v: check_number("value", v, minimum=0), text, float)


def jobs_count(text: str) -> int:
    """argparse type: a number of worker processes, ``-1`` for all cores (joblib's convention); not 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value == 0:
        raise argparse.ArgumentTypeError("0 must be a positive number of processes or -1 for all cores")
    return value


def checked(check: Callable[[str], object]) -> Callable[[str], object]:
    """argparse type from a library check of the text: its ParameterError becomes argparse's message."""

    def convert(text: str):
        try:
            return check(text)
        except ParameterError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(check, "__name__", "value")  # what argparse calls the type
    return convert


def output_problem(path: str | os.PathLike, *, create_folder: bool = False) -> str | None:
    """Why the file ``path`` could not be written, or None; checked before any work starts.

    ``path`` must not be a folder, and its folder must exist and be
    writable; with ``create_folder`` (for the commands' default outputs under
    ``data/``) a missing folder is created instead.
    """
    path = Path(path)
    if path.is_dir():
        return f"{path}: is a directory; give the file to write"
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        return f"cannot write {path}: {folder} is a file, not a folder"
    if not folder.is_dir():
        if not create_folder:
            return f"cannot write {path}: the folder {folder} does not exist; create it first"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot write {path}: cannot create the folder {folder}: {exc.strerror or exc}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot write {path}: the folder {folder} is not writable"
    return None


def check_outputs(*paths) -> None:
    """Raise a KnnGenreError for the first of ``paths`` (None ignored) that cannot be written."""
    for path in paths:
        if path is not None:
            problem = output_problem(path)
            if problem:
                raise KnnGenreError(problem)


#: What a user can do about a library error, by a phrase of its reason.
_HINTS = (
    ("no such feature file", "build one with python -m knn_genre.build_features DATA_DIR -o FILE"),
    ("no such model file", "train one with python -m knn_genre.train --features FILE -o MODEL"),
    ("keeps no reference tracks", "train one with python -m knn_genre.train --model knn --features FILE -o MODEL"),
    ("not Gaussians; similarity", "train one with python -m knn_genre.train --model knn --family gaussian --features FILE -o MODEL"),
    ("pickle stream", "import it with python -m knn_genre.build_features --from-legacy FILE -o OUT.npz"),
    ("packages dask and distributed", "install them with pip install 'knn_genre[dask]'"),
    ("no Dask worker joined", "start workers with: dask worker ADDRESS"),
)


def with_hint(exc: BaseException) -> str:
    """The message of a library error, with the command that would help, if one does."""
    text = str(exc)
    for phrase, hint in _HINTS:
        if phrase in text:
            return f"{text}; {hint}"
    return text


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) made one space."""
    return " ".join(str(text).split())


def tolerate_unencodable_output() -> None:
    """Never fail on printing a file name the terminal cannot encode (escape it instead)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass


def entry(main: Callable[[], int]) -> int:
    """Run a command's ``main`` as a process does; a closed output pipe ends it quietly.

    When the reader of stdout goes away (``evaluate ... | head -1``), the
    next write raises ``BrokenPipeError``: the command stops with status
    141, as if killed by SIGPIPE, without a traceback. Python would also
    complain when flushing stdout at exit, so stdout is pointed at
    ``/dev/null`` first (what the Python documentation recommends).
    """
    tolerate_unencodable_output()
    try:
        status = main()
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE
