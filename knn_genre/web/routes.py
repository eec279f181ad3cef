"""The routes: the page (``GET /``, ``POST /``), the JSON API, the health check, and errors in words.

=====================  ======================================================
``GET /``              the page: upload form and model panel
``POST /``             multipart field ``file`` (one or more): the result page
``POST /api/predict``  the same files: ``predict --json``'s list, plus ``similar``
``GET /api/model``     the model's description (:func:`~knn_genre.web.views.describe_model`)
``GET /healthz``       ``{"status": "ok", ...}``
=====================  ======================================================

Every error is answered in words, never with a stack trace: JSON
``{"error": ..., "file": ...}`` under ``/api/`` and ``/healthz``, the page
with the message elsewhere. Statuses: 400 a request that cannot be used
(malformed multipart, no file, an empty file, audio too short or silent),
405 a wrong method (with ``Allow``), 413 too large (refused from the
declared length, before the body is read), 415 not audio (no audio suffix,
a format not decoded here, a file not readable as audio), 503 over the time
limit; 500 only for a fault of the server itself.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..audio import AUDIO_SUFFIXES
from .predictor import FileResult
from .views import file_view

__all__ = ["bp"]

log = logging.getLogger(__name__)

bp = Blueprint("knn_genre", __name__)

#: Sent with every response: only this server's own scripts, styles and images run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class InputError(Exception):
    """A request that cannot be answered with results: status and words."""

    def __init__(self, status: int, message: str, file: str | None = None):
        super().__init__(message)
        self.status, self.message, self.file = status, message, file


def _state():
    return current_app.extensions["knn_genre"]


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def _results() -> list[FileResult]:
    """Analyse the request's files; an InputError if there is nothing to analyse."""
    state = _state()
    if request.mimetype != "multipart/form-data":
        raise InputError(415, f"send the files as multipart/form-data in the field 'file' (got {request.mimetype or 'no content type'})")
    if (request.content_length or 0) > state.config.max_bytes:
        raise InputError(413, _too_large_message(state.config))
    try:
        uploads = request.uploads("file")
    except ValueError:
        # The parser's own words name its internals; say what a valid body is.
        raise InputError(400, "malformed multipart body: send multipart/form-data with its boundary, "
                              "each file a part of the field 'file' with a UTF-8 file name") from None
    if not uploads:
        raise InputError(400, f"no file: choose one or more audio files ({', '.join(AUDIO_SUFFIXES)}) in the field 'file'")
    if len(uploads) > state.config.max_files:
        raise InputError(400, f"{len(uploads)} files in one request; send at most {state.config.max_files}")
    return state.predictor.run(uploads)


def _status(results: list[FileResult]) -> int:
    """200 if any file was predicted, else the status of the first problem."""
    return 200 if any(r.ok for r in results) else results[0].status


def _page(status: int = 200, results=None, message: str | None = None):
    state = _state()
    views = [file_view(r, state.model.genres) for r in results or ()]
    html = render_template(
        "index.html", info=state.info, results=views, message=message, suffixes=AUDIO_SUFFIXES,
        max_bytes=state.config.max_bytes, max_mb=state.config.max_upload_mb, max_files=state.config.max_files,
    )
    return html, status


@bp.get("/")
def index():
    return _page()


@bp.post("/")
def predict_page():
    results = _results()
    return _page(_status(results), results)


@bp.post("/api/predict")
def predict_api():
    n_genres = len(_state().model.genres)
    text = request.args.get("top", str(_state().config.top))
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= n_genres):
        raise InputError(400, f"top must be an integer from 1 to {n_genres}")
    top = int(text)
    results = _results()
    status = _status(results)
    records = [r.to_json(top) for r in results]
    if status != 200:
        first = results[0]
        return jsonify({"error": first.error, "file": first.name, "results": records}), status
    return jsonify(records), status


@bp.get("/api/model")
def model_api():
    return jsonify(_state().info)


@bp.get("/healthz")
def healthz():
    state = _state()
    return jsonify({"status": "ok", "model": state.model.name, "genres": len(state.model.genres)})


@bp.after_app_request
def security_headers(response):
    response.headers.update(SECURITY_HEADERS)
    return response


def _error(status: int, message: str, file: str | None = None):
    if _wants_json():
        return jsonify({"error": message, "file": file}), status
    return _page(status, message=message)


@bp.app_errorhandler(InputError)
def input_error(exc: InputError):
    return _error(exc.status, exc.message, exc.file)


def _too_large_message(config) -> str:
    return f"the upload is larger than this server's limit of {config.max_upload_mb:g} MB per request"


@bp.app_errorhandler(RequestEntityTooLarge)
def too_large(exc):
    config = _state().config
    # A body sent without a declared length (chunked) is refused when it fills the capped stream.
    undeclared_and_full = request.content_length is None and getattr(request.stream, "is_exhausted", False)
    if (request.content_length or 0) > config.max_bytes or undeclared_and_full:
        return _error(413, _too_large_message(config))
    # Werkzeug's other limits: the number of parts, the size of the form's text fields.
    return _error(413, f"the multipart body has too many parts or too large form fields; send at most {config.max_files} files")


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException):
    body, status = _error(exc.code or 500, f"{exc.name.lower()}: {exc.description}" if exc.description else exc.name.lower())
    allowed = getattr(exc, "valid_methods", None)  # a 405 must say which methods are (RFC 9110)
    return body, status, {"Allow": ", ".join(allowed)} if allowed else {}


@bp.app_errorhandler(Exception)
def internal_error(exc: Exception):
    log.exception("request failed: %s %s", request.method, request.path)
    return _error(500, "internal error of the server; the failure has been logged")
