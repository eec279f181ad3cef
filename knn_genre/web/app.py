"""The Flask application factory: :func:`create_app` ``(model, config) -> Flask``.

Everything the application needs is passed in: the trained model (loaded
once by the caller, shared read-only by every request) and a
:class:`WebConfig`. The application keeps them, with its
:class:`~knn_genre.web.predictor.Predictor`, in ``app.extensions["knn_genre"]``;
there is no module-level state. Routes are in :mod:`knn_genre.web.routes`,
templates and static files in this package's ``templates/`` and ``static/``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from ..classifiers.model import GenreModel
from ..errors import ParameterError, check_integer, check_number
from .predictor import Predictor
from .uploads import UploadRequest
from .views import describe_model

__all__ = ["WebConfig", "AppState", "create_app"]


@dataclass(frozen=True)
class WebConfig:
    """Limits and defaults of the web application.

    Attributes
    ----------
    max_upload_mb : float, default=50
        Largest request body, in MB (10**6 bytes); larger ones get 413
        before their body is read.
    timeout : float, default=120
        Seconds a request may spend analysing its files; then 503.
    threads : int, default=4
        Files analysed at once (the server's worker threads should be as many).
    top : int, default=3
        Genres per file in ``/api/predict`` when the request does not say (``?top=``).
    similar : int, default=5
        Library tracks listed per file, for models that keep them.
    max_files : int, default=20
        Files per request.
    upload_folder : str, optional
        Where uploads are written while they are analysed; default the
        system's temporary folder. Every upload is removed with its request.
    model_name : str, default=""
        The model file's name, shown in the model panel.
    """

    max_upload_mb: float = 50.0
    timeout: float = 120.0
    threads: int = 4
    top: int = 3
    similar: int = 5
    max_files: int = 20
    upload_folder: str | None = None
    model_name: str = ""

    def __post_init__(self):
        check_number("max_upload_mb", self.max_upload_mb, minimum=0, strict=True, unit="MB")
        check_number("timeout", self.timeout, minimum=0, strict=True, unit="seconds")
        for name in ("threads", "top", "similar", "max_files"):
            check_integer(name, getattr(self, name))
        if self.upload_folder is not None and not os.path.isdir(self.upload_folder):
            raise ParameterError(f"upload_folder={self.upload_folder!r} must be an existing folder")

    @property
    def max_bytes(self) -> int:
        """``max_upload_mb`` in bytes."""
        return int(self.max_upload_mb * 1_000_000)


@dataclass(frozen=True)
class AppState:
    """What the routes share: the model, the configuration, the predictor, the model's description."""

    model: GenreModel
    config: WebConfig
    predictor: Predictor
    info: dict


def create_app(model: GenreModel, config: WebConfig | None = None) -> Flask:
    """The web page and JSON API of ``model``.

    Parameters
    ----------
    model : GenreModel
        From :func:`knn_genre.classifiers.model.load_model`.
    config : WebConfig, optional

    Returns
    -------
    flask.Flask
        A WSGI application. Serve it with :func:`knn_genre.web.server.run`
        (waitress, one BLAS thread: see :mod:`knn_genre.web.predictor`);
        tests use ``app.test_client()``.
    """
    from .routes import bp

    config = config or WebConfig()
    here = Path(__file__).parent
    app = Flask(__name__, template_folder=str(here / "templates"), static_folder=str(here / "static"))
    app.request_class = UploadRequest
    app.config.update(
        # One byte of headroom: a server that terminates the input itself (waitress) is read through
        # a stream capped at this length, and Werkzeug refuses a body that fills the cap exactly.
        # Declared lengths are held to the limit itself by the routes.
        MAX_CONTENT_LENGTH=config.max_bytes + 1,
        # Parts are bounded by the file count (fields other than files keep Flask's 500 kB limit).
        MAX_FORM_PARTS=config.max_files + 16,
        UPLOAD_FOLDER=config.upload_folder or tempfile.gettempdir(),
        SEND_FILE_MAX_AGE_DEFAULT=3600,
    )
    app.json.sort_keys = False  # keep predict --json's key order
    predictor = Predictor(model, threads=config.threads, timeout=config.timeout, n_similar=config.similar)
    app.extensions["knn_genre"] = AppState(model, config, predictor, describe_model(model, config.model_name))
    app.register_blueprint(bp)
    return app
