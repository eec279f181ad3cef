"""Discovering tracks in a ``DATA_DIR/<genre>/<track>.wav`` collection."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError

__all__ = ["Track", "Discovery", "discover"]

AUDIO_SUFFIXES = (".wav",)


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
    """What :func:`discover` found: tracks to analyse and files it ignored."""

    tracks: tuple[Track, ...]
    ignored: tuple[str, ...]

    @property
    def genres(self) -> tuple[str, ...]:
        """Sorted genre names that have at least one track."""
        return tuple(sorted({t.genre for t in self.tracks}))


def discover(data_dir: str | os.PathLike) -> Discovery:
    """Find ``<genre>/*.wav`` files under ``data_dir``, sorted by path.

    The genre of a track is the name of the folder it sits in; genres are
    sorted by name, never by ``os.listdir`` order, so labels do not depend on
    the file system. Files that are not ``.wav`` (``.DS_Store``, notes, ...)
    and files directly in ``data_dir`` are ignored and listed in
    ``Discovery.ignored``. Hidden folders are skipped.

    Parameters
    ----------
    data_dir : str or path-like

    Returns
    -------
    Discovery

    Raises
    ------
    DatasetError
        If ``data_dir`` is not a folder.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetError(root, "not a folder; expected DATA_DIR/<genre>/<track>.wav")
    tracks, ignored = [], []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            ignored.append(entry.name)
            continue
        for item in sorted(entry.rglob("*"), key=lambda p: p.as_posix()):
            rel = item.relative_to(root).as_posix()
            if any(part.startswith(".") for part in item.relative_to(root).parts[1:]):
                ignored.append(rel)
            elif item.suffix.lower() in AUDIO_SUFFIXES:
                # A folder named x.wav is kept: the reader reports it as bad input.
                tracks.append(Track(rel, entry.name))
            elif not item.is_dir():
                ignored.append(rel)
    return Discovery(tuple(tracks), tuple(ignored))
