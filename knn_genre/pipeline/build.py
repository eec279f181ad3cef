"""Turning a folder of tracks into a :class:`~knn_genre.store.FeatureSet`.

Each track goes through the one analysis path
(:func:`knn_genre.features.analysis.analyse_file`), independently, in worker
processes (see :mod:`knn_genre.pipeline.workers`); results are assembled in path order, so the
output is the same whatever the number of jobs. Unchanged tracks (same
relative path, genre, size and modification time, same feature parameters,
every requested family present) are copied from earlier feature files
instead of being analysed again. Each requested family (the Gaussians, the
table, or both) is computed from the same reading of each track.

A long build saves its finished tracks now and then through a ``checkpoint``
callback (an atomic write of a partial feature file), and once more when it
is interrupted, so a killed build loses at most the last interval of work:
the next run reuses the checkpoint like any earlier feature file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BuildError, KnnGenreError
from ..features.analysis import analyse_file
from ..features.families import GaussianFamily, TableFamily
from ..features.params import MFCCParams, TableParams
from ..store.featureset import FAMILY_ORDER, FeatureSet, load, save
from .cluster import check_seen
from .discover import Discovery, Track
from .workers import run_tasks

__all__ = ["BuildReport", "build_featureset", "reusable", "checkpoint_path", "CheckpointWriter", "load_previous"]

#: Suffix of the file a build into ``OUTPUT`` keeps its finished tracks in.
CHECKPOINT_SUFFIX = ".partial.npz"


@dataclass
class BuildReport:
    """What a build did, for the closing summary."""

    analysed: int = 0
    reused: int = 0
    skipped: list = field(default_factory=list)
    ignored: tuple = ()
    seconds: float = 0.0


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


#: Arrays of each family in a track's result (the FeatureSet's names).
_FAMILY_KEYS = {"gaussian": ("means", "covs"), "table": ("table", "table_lengths")}


def _families_of(names, params: MFCCParams, table_params: TableParams) -> list:
    return [GaussianFamily(params) if name == "gaussian" else TableFamily(table_params) for name in names]


def _analyse_safely(path: str, params: MFCCParams, segment_seconds: float | None = None,
                    families: tuple = ("gaussian",), table_params: TableParams | None = None):
    """Worker: ``("ok", arrays, spans)`` or ``("skip", reason)``; never raises.

    ``arrays`` maps the FeatureSet's array names (``means``, ``covs``,
    ``table``, ``table_lengths``) to one row per segment. One broken file
    must not stop the others, so even unexpected errors become a (one-line)
    reason that names their type.
    """
    try:
        analysis = analyse_file(path, _families_of(families, params, table_params or TableParams()), window_seconds=segment_seconds)
        arrays = dict(analysis.arrays)
        if "length" in arrays:
            arrays["table_lengths"] = arrays.pop("length").astype(np.int64)
        return ("ok", arrays, analysis.spans)
    except KnnGenreError as exc:
        return ("skip", _one_line(getattr(exc, "reason", exc)))
    except Exception as exc:  # noqa: BLE001 - reported per file, see docstring
        return ("skip", _one_line(f"unexpected {type(exc).__name__}: {exc}"))


def _killed_workers(exc: BaseException):
    """The outcome of a file whose analysis killed every cluster worker that tried it."""
    return ("skip", f"its analysis killed the Dask workers that ran it (out of memory?): {_one_line(exc)[:200]}")


def reusable(previous, params: MFCCParams, data_dir: str, segment_seconds: float | None = None,
             families: tuple = ("gaussian",), table_params: TableParams | None = None) -> dict:
    """Map ``path -> (genre, size, mtime_ns, arrays, spans)`` of reusable tracks.

    Parameters
    ----------
    previous : FeatureSet, iterable of FeatureSet, or None
        Earlier builds; a later one wins for a path found in several.
    params : MFCCParams
    data_dir : str
        The resolved data folder of this build.
    segment_seconds : float or None
        The segment length of this build (None: whole tracks).
    families : tuple of str
        The families this build computes.
    table_params : TableParams, optional

    Nothing is reusable from a file that lacks one of ``families``, was
    built with other parameters for them, other segments, or from another
    folder. ``arrays`` (the requested families' arrays only) and ``spans``
    hold one row per segment (one row for a whole track; ``spans`` then None).
    """
    if previous is None:
        return {}
    sets = [previous] if isinstance(previous, FeatureSet) else list(previous)
    table_params = table_params or TableParams()
    keys = [key for name in families for key in _FAMILY_KEYS[name]]
    out = {}
    for fs in sets:
        if fs is None or fs.data_dir != data_dir or fs.segment_seconds != segment_seconds or not set(families) <= set(fs.families):
            continue
        if ("gaussian" in families and fs.params != params) or ("table" in families and fs.table_params != table_params):
            continue
        paths = fs.paths.tolist()
        # Rows of one track are consecutive: the builder writes them so.
        starts = [i for i in range(len(paths)) if i == 0 or paths[i] != paths[i - 1]] + [len(paths)]
        for a, b in zip(starts[:-1], starts[1:]):
            spans = None if fs.segments is None else fs.segments[a:b]
            arrays = {key: getattr(fs, key)[a:b] for key in keys}
            out[paths[a]] = (fs.labels[a], int(fs.file_sizes[a]), int(fs.file_mtimes_ns[a]), arrays, spans)
    return out


def build_featureset(
    data_dir: str | os.PathLike,
    discovery: Discovery,
    params: MFCCParams = MFCCParams(),
    *,
    n_jobs: int = -1,
    previous: FeatureSet | Iterable[FeatureSet] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    checkpoint: Callable[[FeatureSet], None] | None = None,
    checkpoint_interval: float = 10.0,
    segment_seconds: float | None = None,
    families: tuple = ("gaussian",),
    table_params: TableParams | None = None,
    cluster=None,
) -> tuple[FeatureSet | None, BuildReport]:
    """Analyse every discovered track, reusing unchanged ones from ``previous``.

    Parameters
    ----------
    data_dir : str or path-like
        The folder the discovered paths are relative to.
    discovery : Discovery
        From :func:`knn_genre.pipeline.discover.discover`.
    params : MFCCParams
    n_jobs : int, default=-1
        Worker processes (joblib convention: -1 means all cores).
    previous : FeatureSet or iterable of FeatureSet, optional
        Earlier builds of the same folder (a feature file, a checkpoint) to
        reuse tracks from.
    on_progress : callable(done, total), optional
    checkpoint : callable(FeatureSet), optional
        Called with the tracks finished so far, at most every
        ``checkpoint_interval`` seconds (if positive, stretched to ten
        times the last call's duration, so saving never dominates) and when the build is
        interrupted by an exception (``KeyboardInterrupt``, ...), which is
        then re-raised. It should save atomically and not raise.
    checkpoint_interval : float, default=10.0
        Seconds between checkpoints; 0 saves after every analysed track.
    segment_seconds : float, optional
        Cut each track into segments of this length and store one row
        per segment, with the track's path as its id; None (default) stores
        one row per track.
    families : tuple of str, default=("gaussian",)
        Feature families to compute: ``gaussian``, ``table`` or both, from
        one reading of each track.
    table_params : TableParams, optional
        Parameters of the table family (default: the published definitions).
    cluster : knn_genre.pipeline.cluster.Cluster, optional
        Analyse on this Dask cluster instead of local worker processes
        (``n_jobs`` is then ignored); the output is the same.

    Returns
    -------
    featureset : FeatureSet or None
        None when no track could be built.
    report : BuildReport

    Raises
    ------
    BuildError
        If the worker pool fails (a worker process killed, ...); the
        finished tracks are passed to ``checkpoint`` first.
    """
    start = time.perf_counter()
    families = tuple(name for name in FAMILY_ORDER if name in families)
    if not families:
        raise KnnGenreError(f"no feature family to build; choose from {', '.join(FAMILY_ORDER)}")
    table_params = table_params or TableParams()
    root = Path(data_dir)
    data_dir_key = str(root.resolve())
    old = reusable(previous, params, data_dir_key, segment_seconds, families, table_params)
    report = BuildReport(ignored=discovery.ignored)
    tracks = discovery.tracks

    stats, results, todo = [], {}, []
    for i, track in enumerate(tracks):
        size, mtime = _stat(root / track.path)
        stats.append((size, mtime))
        hit = old.get(track.path)
        if hit is not None and hit[:3] == (track.genre, size, mtime) and size >= 0:
            results[i] = ("ok", *hit[3:])
        else:
            todo.append(i)
    report.reused = len(results)

    def assemble():
        return _assemble(tracks, results, stats, params, data_dir_key, discovery.unreadable, segment_seconds, table_params)

    total = len(tracks)
    if on_progress:
        on_progress(len(results), total)
    saver = _Checkpointer(checkpoint, checkpoint_interval)
    if todo:
        if cluster is None:
            tasks = [(str(root / tracks[i].path), params, segment_seconds, families, table_params) for i in todo]
            jobs = run_tasks(_analyse_safely, tasks, n_jobs)
        else:
            # Absolute paths: the workers may run in other folders, or on other machines.
            tasks = [(str(Path(data_dir_key) / tracks[i].path), params, segment_seconds, families, table_params) for i in todo]
            jobs = cluster.run(_analyse_safely, tasks, on_failure=_killed_workers)
        try:
            for j, outcome in jobs:
                if cluster is not None and outcome[0] == "skip":
                    check_seen(tasks[j][0], outcome[1])
                results[todo[j]] = outcome
                saver.dirty = True
                if on_progress:
                    on_progress(len(results), total)
                saver.maybe_save(assemble)
        except BuildError:  # the cluster failed, and said how
            jobs.close()
            saver.save(assemble)
            raise
        except Exception as exc:
            # Tasks never raise (see _analyse_safely): this is the pool
            # itself failing, e.g. a worker killed for lack of memory.
            jobs.close()
            saver.save(assemble)
            cause = f"{type(exc).__name__}: {_one_line(str(exc))[:200]}"
            if len(results) == report.reused:
                raise BuildError(f"the worker processes failed before finishing any track ({cause}); try --jobs 1") from None
            pending = next((tracks[i].path for i in todo if i not in results), "the last track")
            raise BuildError(
                f"the analysis stopped while {pending} or a track after it was being analysed "
                f"({cause}); a worker process may have run out of memory"
            ) from None
        except BaseException:
            jobs.close()  # stops handing out tasks before the last save
            saver.save(assemble)
            raise
    report.analysed = len(todo)

    fs, report.skipped = assemble()
    report.seconds = time.perf_counter() - start
    return fs, report


class _Checkpointer:
    """Calls ``checkpoint`` when enough time has passed and there is new work."""

    def __init__(self, checkpoint, interval):
        self.checkpoint = checkpoint
        self.base_interval = self.interval = max(float(interval), 0.0)
        self.last = time.monotonic()
        self.dirty = False

    def maybe_save(self, assemble):
        if self.checkpoint is not None and time.monotonic() - self.last >= self.interval:
            self.save(assemble)

    def save(self, assemble):
        if self.checkpoint is None or not self.dirty:
            return
        began = time.monotonic()
        fs, _ = assemble()
        if fs is not None:
            self.checkpoint(fs)
        self.dirty = False
        self.last = time.monotonic()
        # A big collection takes a while to save: keep saving under ~10% of
        # the time, unless asked to save after every track (interval 0).
        if self.base_interval > 0:
            self.interval = max(self.base_interval, 10 * (self.last - began))


def _assemble(tracks: tuple[Track, ...], results: dict, stats: list, params: MFCCParams, data_dir_key: str, unreadable=(),
              segment_seconds=None, table_params=None):
    """The FeatureSet of the finished tracks (None if none) and the skipped ``(path, reason)`` list."""
    done = sorted(results)
    kept = [i for i in done if results[i][0] == "ok"]
    skipped = [(tracks[i].path, results[i][1]) for i in done if results[i][0] != "ok"]
    skipped = sorted(skipped + [tuple(u) for u in unreadable])
    if not kept:
        return None, skipped
    first = results[kept[0]][1]
    rows = [len(next(iter(results[i][1].values()))) for i in kept]  # rows (segments) per track

    def repeat(values):
        return [v for v, k in zip(values, rows) for _ in range(k)]

    def stacked(key):
        return np.concatenate([results[i][1][key] for i in kept]) if key in first else None

    fs = FeatureSet(
        means=stacked("means"),
        covs=stacked("covs"),
        table=stacked("table"),
        table_lengths=stacked("table_lengths"),
        table_params=table_params if "table" in first else None,
        labels=repeat([tracks[i].genre for i in kept]),
        paths=repeat([tracks[i].path for i in kept]),
        params=params,
        file_sizes=repeat([stats[i][0] for i in kept]),
        file_mtimes_ns=repeat([stats[i][1] for i in kept]),
        skipped=tuple(skipped),
        data_dir=data_dir_key,
        segments=None if segment_seconds is None else np.concatenate([results[i][2] for i in kept]),
        segment_seconds=segment_seconds,
    )
    return fs, skipped


def _stat(path: Path) -> tuple[int, int]:
    """Size and mtime in ns, or (-1, -1) when the file cannot be stat'ed."""
    try:
        st = path.stat()
    except OSError:
        return -1, -1
    return int(st.st_size), int(st.st_mtime_ns)


def checkpoint_path(output: str | os.PathLike) -> Path:
    """Where a build into ``output`` keeps its finished tracks: ``<output>.partial.npz``."""
    output = Path(output)
    return output.with_name(output.name + CHECKPOINT_SUFFIX)


class CheckpointWriter:
    """Saves partial builds atomically; a failure is reported once and does not stop the build.

    Parameters
    ----------
    path : Path
    on_note : callable(str), optional
        Told, once, why a checkpoint could not be written.
    """

    def __init__(self, path: Path, on_note: Callable[[str], None] | None = None):
        self.path = Path(path)
        self.on_note = on_note
        self.saved = False
        self.failed = False

    def __call__(self, fs: FeatureSet) -> None:
        try:
            save(fs, self.path)
            self.saved = True
        except OSError as exc:
            if not self.failed and self.on_note:
                self.on_note(f"cannot write the checkpoint {self.path}: {exc.strerror or exc}")
            self.failed = True

    def remove(self) -> None:
        """Remove the checkpoint (the build's output is written)."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            if self.on_note:
                self.on_note(f"cannot remove the checkpoint {self.path}: {exc.strerror or exc}")


def load_previous(paths, on_note: Callable[[str], None] | None = None) -> list[FeatureSet]:
    """The earlier feature files among ``paths`` that exist and load, to reuse tracks from."""
    found = []
    for path in paths:
        if not Path(path).exists():
            continue
        try:
            found.append(load(path))
        except KnnGenreError as exc:
            if on_note:
                on_note(f"not reusing {path}: {getattr(exc, 'reason', exc)}")
    return found
