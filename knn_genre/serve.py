"""``python -m knn_genre.serve --model model.npz``: the web page and JSON API of a model."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .classifiers.model import load_model
from .cli import EXIT_USAGE, entry, error, make_parser, positive_float, positive_int, printable, with_hint
from .errors import KnnGenreError

PROG = "python -m knn_genre.serve"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = make_parser(
        prog,
        (
            "Serve a web page where audio files are uploaded and their genre shown (probabilities, the genre "
            "along the song, the most similar library tracks for KNN models), and a JSON API: POST /api/predict "
            "(multipart field 'file'), GET /api/model, GET /healthz. Served by waitress; needs the web extra "
            "(pip install 'knn_genre[web]')."
        ),
        "Ctrl-C stops the server (exit status 130). Exit status 2: usage errors, an unreadable model, or an "
        "address that cannot be bound.",
    )
    parser.add_argument("--model", default="data/model.npz", help="model file from knn_genre.train (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0 picks a free one)")
    parser.add_argument("--threads", type=positive_int, default=4, help="worker threads: files analysed at once (default: %(default)s)")
    parser.add_argument("--max-upload-mb", type=positive_float, default=50.0, help="largest request, in MB (default: %(default)s)")
    parser.add_argument("--timeout", type=positive_float, default=120.0, help="seconds a request may spend analysing (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    args = build_parser(prog).parse_args(argv)
    if not 0 <= args.port <= 65535:
        error(prog, f"--port {args.port} must be from 0 to 65535")
        return EXIT_USAGE
    try:
        from .web import WebConfig, create_app
        from .web.server import run
    except ImportError as exc:
        error(prog, f"the web server needs Flask and waitress ({exc}); install them with pip install 'knn_genre[web]'")
        return EXIT_USAGE
    try:
        model = load_model(args.model)
    except KnnGenreError as exc:
        error(prog, with_hint(exc))
        return EXIT_USAGE
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="knn-genre-serve-") as uploads:
        config = WebConfig(
            max_upload_mb=args.max_upload_mb, timeout=args.timeout, threads=args.threads,
            upload_folder=uploads, model_name=Path(args.model).name,
        )
        app = create_app(model, config)

        def started(url):
            print(
                f"serving {printable(args.model)} ({model.name}, {len(model.genres)} genres) on {url}  (Ctrl-C stops)",
                flush=True,
            )

        try:
            signum = run(app, host=args.host, port=args.port, threads=args.threads, max_body=config.max_bytes, on_start=started)
        except KeyboardInterrupt:  # a stop signal before the server loop began
            signum = signal.SIGINT
        except OSError as exc:
            error(prog, f"cannot listen on {args.host} port {args.port}: {exc.strerror or exc}")
            return EXIT_USAGE
        finally:
            app.extensions["knn_genre"].predictor.close()
    print("stopped", file=sys.stderr, flush=True)
    return 128 + int(signum)


if __name__ == "__main__":
    raise SystemExit(entry(main))
