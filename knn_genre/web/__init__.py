"""The web page and JSON API of a trained model, run by ``python -m knn_genre.serve``.

- :mod:`~knn_genre.web.app`: :func:`create_app` ``(model, config) -> Flask``, the app factory;
- :mod:`~knn_genre.web.routes`: the page, ``/api/predict``, ``/api/model``, ``/healthz``, errors in words;
- :mod:`~knn_genre.web.uploads`: uploads streamed to temporary files that are always removed;
- :mod:`~knn_genre.web.predictor`: fixed threads, a time limit, one analysis per file for genre and similar tracks;
- :mod:`~knn_genre.web.views`: the model's description and each result, as plain data;
- :mod:`~knn_genre.web.server`: serving with waitress;
- ``templates/`` and ``static/``: the page, its stylesheet and its small script (no external resources).

This package needs the ``web`` extra (Flask, waitress); nothing else in
knn_genre imports it.
"""

from .app import AppState, WebConfig, create_app

__all__ = ["create_app", "WebConfig", "AppState"]
