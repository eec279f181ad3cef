"""Uploaded files: streamed to temporary files that are always removed.

:class:`UploadRequest` is the application's Flask request class. While the
multipart body is parsed, each file part is written straight into a new
temporary file of the application's upload folder, named by
:mod:`tempfile` (``upload-XXXXXXXX.wav``): nothing the client sends becomes
part of a path. The suffix is the one audio suffix of
:data:`knn_genre.audio.AUDIO_SUFFIXES` that the client's file name ends
with (the readers pick the format by suffix), else ``.upload``, which no
reader opens. The client's name is kept for display only.

The files are removed when the request is closed, which Flask does at the
end of every request whatever happened (an error response, a parsing
error, a time limit, a client that went away). Malformed multipart bodies
raise instead of being silently read as an empty form.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import PurePath

from flask import Request, current_app

from ..audio import AUDIO_SUFFIXES

__all__ = ["Upload", "UploadRequest", "display_name", "name_suffix", "audio_suffix"]

#: Longest file name echoed back, in characters.
MAX_NAME = 200


def name_suffix(name: str) -> str:
    """The lower-case suffix of a client's file name, ``""`` if it has none.

    Unlike :attr:`pathlib.PurePath.suffix`, a name that is only a suffix
    counts: an upload named ``.wav`` is a WAV file, not a hidden file.

    >>> from knn_genre.web.uploads import name_suffix
    >>> name_suffix("Song.MP3"), name_suffix(".wav"), name_suffix("notes")
    ('.mp3', '.wav', '')
    """
    _, dot, suffix = PurePath(name).name.rpartition(".")
    return "." + suffix.lower() if dot else ""


def audio_suffix(name: str) -> str | None:
    """The audio suffix (from the allow-list, lower case) that ``name`` ends with, or None."""
    suffix = name_suffix(name)
    return suffix if suffix in AUDIO_SUFFIXES else None


def display_name(name: str | None) -> str:
    """The client's file name as shown back: control characters escaped, at most :data:`MAX_NAME` characters.

    It is only ever displayed (HTML-escaped by the templates, or in JSON).

    >>> from knn_genre.web.uploads import display_name
    >>> display_name("song\\n.wav")
    'song\\\\n.wav'
    """
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(name or ""))
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 1] + "…"


@dataclass(frozen=True)
class Upload:
    """One uploaded file.

    Attributes
    ----------
    name : str
        The client's file name, for display (see :func:`display_name`).
    path : str
        The temporary file holding the bytes (removed with the request).
    size : int
        Bytes received.
    suffix : str
        The lower-case suffix of the client's file name (:func:`name_suffix`).
    """

    name: str
    path: str
    size: int
    suffix: str

    @property
    def is_audio(self) -> bool:
        """Whether the name has the suffix of a format that is read."""
        return self.suffix in AUDIO_SUFFIXES


class UploadRequest(Request):
    """Flask's request, with file parts written to removable temporary files."""

    def make_form_data_parser(self):
        parser = super().make_form_data_parser()
        parser.silent = False  # a malformed body is an error (400), not an empty form
        return parser

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        # Werkzeug's hook for where a file part is written while parsing.
        folder = current_app.config["UPLOAD_FOLDER"]
        handle = tempfile.NamedTemporaryFile(
            mode="w+b", dir=folder, prefix="upload-", suffix=audio_suffix(filename or "") or ".upload", delete=False
        )
        self.__dict__.setdefault("_upload_files", []).append(handle)
        return handle

    def uploads(self, field: str = "file") -> list[Upload]:
        """The files of the form field ``field``, in the order sent (parts without a file name are skipped)."""
        found = []
        for storage in self.files.getlist(field):
            if not storage.filename:
                continue  # a form submitted with no file chosen
            stream = storage.stream
            stream.flush()
            found.append(Upload(display_name(storage.filename), stream.name, os.fstat(stream.fileno()).st_size, name_suffix(storage.filename)))
        return found

    def close(self) -> None:
        try:
            super().close()
        finally:
            for handle in self.__dict__.pop("_upload_files", ()):
                handle.close()
                try:
                    os.unlink(handle.name)
                except FileNotFoundError:
                    pass
