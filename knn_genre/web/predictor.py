"""Predicting uploads for the web application: fixed threads, a time limit, answers in words.

A :class:`Predictor` owns a fixed pool of threads that analyse uploads with
the shared, read-only model. Each file is analysed once
(:func:`~knn_genre.pipeline.apply.analyse_for_model`) and its windows give
both the prediction (:func:`~knn_genre.pipeline.apply.predict_rows`, what
``predict`` prints) and, for a model that keeps reference tracks, its
nearest library tracks (:func:`~knn_genre.pipeline.similar.similar_tracks`).

Threads: the fitted estimators of :data:`THREAD_SAFE_MODELS` only read
their fitted attributes when they predict, so they run in parallel; any
other model is applied by one thread at a time. The analysis limits BLAS
to one thread per call through threadpoolctl, a setting of the whole
process, so a server must run with BLAS at one thread throughout
(:func:`knn_genre.web.server.run` does): concurrent calls then never
change it under each other, and every window is computed as ``predict``
computes it.

Each request has a deadline. A file still being analysed when the
deadline passes is answered with status 503, and its analysis is told to
stop: it ends before its next window, so abandoned work does not keep the
pool's threads from the requests that follow.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from ..audio import AUDIO_SUFFIXES, UNSUPPORTED
from ..audio.source import unsupported_reason
from ..classifiers.model import GenreModel
from ..errors import AudioError, FeatureError, KnnGenreError, ParameterError
from ..pipeline.apply import Prediction, analyse_for_model, predict_rows
from ..pipeline.similar import SimilarTrack, similar_tracks
from .uploads import Upload

__all__ = ["THREAD_SAFE_MODELS", "FileResult", "Predictor"]

log = logging.getLogger(__name__)

#: Registry models whose fitted estimators may predict from several threads
#: at once (tests/test_web_threads.py checks each of them).
THREAD_SAFE_MODELS = frozenset({"knn", "knn-mp", "svm", "klsvm", "dummy-most-frequent", "dummy-stratified"})


@dataclass(frozen=True)
class FileResult:
    """What became of one uploaded file.

    Attributes
    ----------
    name : str
        The client's file name (display only).
    status : int
        200, or the HTTP status of the problem: 400 unusable audio (too
        short, silent, empty), 415 not audio, 503 over the time limit,
        500 an internal error.
    error : str or None
        The problem in words.
    prediction : Prediction or None
    similar : list of SimilarTrack or None
        None for a model that keeps no reference tracks.
    """

    name: str
    status: int = 200
    error: str | None = None
    prediction: Prediction | None = None
    similar: list | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.status == 200

    def to_json(self, top: int = 3) -> dict:
        """``predict --json``'s object for the file (``path`` is the client's name), plus ``similar``."""
        if not self.ok:
            return {"path": self.name, "error": self.error, "status": self.status}
        out = self.prediction.to_dict(top)
        out["path"] = self.name
        if self.similar is not None:
            out["similar"] = [t.to_dict() for t in self.similar]
        return out


class Predictor:
    """Applies one model to uploaded files on a fixed number of threads.

    Parameters
    ----------
    model : GenreModel
        Shared read-only by every thread.
    threads : int
        Files analysed at once.
    timeout : float
        Seconds a request may take.
    n_similar : int
        Library tracks listed per file, for models that keep them.
    """

    def __init__(self, model: GenreModel, *, threads: int, timeout: float, n_similar: int):
        self.model = model
        self.timeout = timeout
        self.n_similar = n_similar
        self.references = model.keeps_references and model.family == "gaussian"
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="knn-genre-predict")
        self._serial = None if model.name in THREAD_SAFE_MODELS else threading.Lock()

    def _apply(self, path: str, stop: threading.Event) -> tuple[Prediction, list[SimilarTrack] | None]:
        analysis, X = analyse_for_model(self.model, path, should_stop=stop.is_set)
        if self._serial is None:
            return self._decide(analysis, X)
        with self._serial:
            return self._decide(analysis, X)

    def _decide(self, analysis, X):
        similar = similar_tracks(self.model, X, self.n_similar) if self.references else None
        return predict_rows(self.model, analysis, X), similar

    def run(self, uploads: list[Upload]) -> list[FileResult]:
        """The result of every upload, in order, within the time limit of one request."""
        deadline = time.monotonic() + self.timeout
        return [self._one(upload, deadline) for upload in uploads]

    def _one(self, upload: Upload, deadline: float) -> FileResult:
        if upload.suffix in UNSUPPORTED:
            return FileResult(upload.name, 415, unsupported_reason(upload.suffix))
        if not upload.is_audio:
            return FileResult(upload.name, 415, f"not an audio file: the name does not end in {', '.join(AUDIO_SUFFIXES)}")
        if upload.size == 0:
            return FileResult(upload.name, 400, "the file is empty")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return FileResult(upload.name, 503, self._late())
        stop = threading.Event()
        future = self._pool.submit(self._apply, upload.path, stop)
        try:
            prediction, similar = future.result(timeout=remaining)
        except FutureTimeout:
            stop.set()  # a started analysis ends before its next window
            future.cancel()  # one still queued never starts
            return FileResult(upload.name, 503, self._late())
        except AudioError as exc:
            return FileResult(upload.name, 415, f"not readable as audio: {_without(exc.reason, upload)}")
        except (FeatureError, ParameterError) as exc:
            return FileResult(upload.name, 400, _without(getattr(exc, "reason", str(exc)), upload))
        except KnnGenreError as exc:
            return FileResult(upload.name, 400, _without(str(exc), upload))
        except Exception:  # a bug, not the client's input: logged, never shown
            log.exception("prediction of an upload failed")
            return FileResult(upload.name, 500, "internal error while analysing the file")
        return FileResult(upload.name, prediction=prediction, similar=similar)

    def _late(self) -> str:
        return f"the analysis took longer than the server's limit of {self.timeout:g} s per request"

    def close(self) -> None:
        """Stop taking work; files being analysed finish."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _without(reason: str, upload: Upload) -> str:
    """``reason`` with the temporary file's path replaced by the client's name."""
    return str(reason).replace(upload.path, upload.name)
