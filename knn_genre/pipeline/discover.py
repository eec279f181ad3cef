"""Discovering tracks in a ``DATA_DIR/<genre>/<track>`` collection (the GTZAN layout)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..audio import is_audio_name
from ..errors import DatasetError

__all__ = ["Track", "Discovery", "discover"]


@dataclass(frozen=True)
class Track:
    """One audio file of a collection.

    Attributes
    ----------
    path : str
        Path relative to the data folder, with ``/`` separators: ``"jazz/jazz.00054.wav"``.
    genre : str
        Name of the genre folder.
    """

    path: str
    genre: str


@dataclass(frozen=True)
class Discovery:
    """What :func:`discover` found.

    Attributes
    ----------
    tracks : tuple of Track
        Audio files to analyse, sorted by path.
    ignored : tuple of str
        Files that are not audio, relative paths.
    unreadable : tuple of (str, str)
        Folders that could not be listed, with the reason: the tracks in
        them are unknown, so a build reports them as skipped.
    outside : tuple of str
        Audio files directly in ``data_dir``, in no genre folder: not
        tracks (they have no genre), but not to be passed over in silence.
    """

    tracks: tuple[Track, ...]
    ignored: tuple[str, ...]
    unreadable: tuple[tuple[str, str], ...] = ()
    outside: tuple[str, ...] = ()

    @property
    def genres(self) -> tuple[str, ...]:
        """Sorted genre names that have at least one track."""
        return tuple(sorted({t.genre for t in self.tracks}))


def discover(data_dir: str | os.PathLike) -> Discovery:
    """Find the audio files under ``data_dir/<genre>/``, sorted by path.

    The genre of a track is the name of the folder it sits in; genres are
    sorted by name, never by ``os.listdir`` order, so labels do not depend on
    the file system. Files with the suffix of an audio format are tracks,
    both those read (:data:`knn_genre.audio.AUDIO_SUFFIXES`: WAV, AU, AIFF,
    FLAC, Ogg, MP3) and those only recognised
    (:data:`knn_genre.audio.source.UNSUPPORTED`: M4A, WMA, ...), which a
    build then skips with their reason. Other files (``.DS_Store``, notes,
    covers, ...) are ignored and listed in ``Discovery.ignored``; audio files
    directly in ``data_dir`` are listed in ``Discovery.outside``, other files
    there in ``ignored`` (``.DS_Store`` too). Hidden folders at the top (``.git``) are skipped. Links to folders
    are not followed; sub-folders that cannot be listed (permissions) are
    reported in ``Discovery.unreadable``.

    Parameters
    ----------
    data_dir : str or path-like

    Returns
    -------
    Discovery

    Raises
    ------
    DatasetError
        If ``data_dir`` is not a folder or cannot be listed.
    """
    root = Path(data_dir)
    if not root.is_dir():
        found = "no such folder" if not root.exists() else "not a folder"
        raise DatasetError(root, f"{found}; expected DATA_DIR/<genre>/<track>")
    try:
        entries = sorted(root.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise DatasetError(root, f"cannot list the folder: {exc.strerror or exc}") from None
    tracks, ignored, unreadable, outside = [], [], [], []
    for entry in entries:
        if entry.name.startswith(".") and entry.is_dir():
            continue  # .git, .Trash: not part of the collection
        if not entry.is_dir():
            hidden = entry.name.startswith(".")  # ._song.wav is macOS metadata, not a song
            (outside if is_audio_name(entry.name) and not hidden else ignored).append(entry.name)
            continue
        for rel, is_dir in _walk(entry, root, unreadable):
            if any(part.startswith(".") for part in rel.split("/")[1:]):
                ignored.append(rel)
            elif is_audio_name(rel):
                # A folder named x.wav is kept: the reader reports it as bad input.
                tracks.append(Track(rel, entry.name))
            elif not is_dir:
                ignored.append(rel)
    return Discovery(tuple(tracks), tuple(ignored), tuple(unreadable), tuple(outside))


def _walk(folder: Path, root: Path, unreadable: list) -> list[tuple[str, bool]]:
    """``(relative path, is a folder)`` of everything under ``folder``, sorted.

    Symbolic links to folders are listed but not followed (no loops); a
    folder that cannot be listed is recorded in ``unreadable``.
    """

    def failed(exc: OSError):
        rel = Path(exc.filename).relative_to(root).as_posix() if exc.filename else folder.name
        unreadable.append((rel + "/", f"cannot list the folder: {exc.strerror or exc}"))

    items = []
    for parent, dirs, files in os.walk(folder, onerror=failed):
        base = Path(parent).relative_to(root).as_posix()
        items += [(f"{base}/{name}", True) for name in dirs]
        items += [(f"{base}/{name}", False) for name in files]
        # os.walk lists links to folders among dirs and does not enter them.
    return sorted(items)
