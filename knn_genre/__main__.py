"""``knn-genre COMMAND ...`` and ``python -m knn_genre COMMAND ...``: every command under one name.

``knn-genre build DATA_DIR`` is ``python -m knn_genre.build_features
DATA_DIR``, and so on; each command keeps its own options and ``--help``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .cli import EXIT_USAGE, entry

PROG = "knn-genre"

#: Subcommand -> (module, one line of help).
COMMANDS = {
    "build": ("build_features", "a music collection (DATA_DIR/<genre>/<track>) to a feature file"),
    "evaluate": ("evaluate", "compare the models on a feature file or table, on seeded folds"),
    "train": ("train", "train a model on a feature file and save it"),
    "predict": ("predict", "the genre of audio files, with a saved model"),
    "similar": ("similar", "the tracks of a KNN model's library nearest to audio files"),
    "serve": ("serve", "the web page and JSON API of a saved model"),
    "demo": ("demo", "the whole pipeline on a generated collection"),
}
#: Other names users may type.
ALIASES = {"build_features": "build", "build-features": "build"}


def build_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Music genre classification with MFCC Gaussians, symmetric-KL k-NN and SVMs.",
        epilog=f"commands:\n{lines}\n\n'{PROG} COMMAND --help' describes each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"knn_genre {__version__}")
    parser.add_argument("command", metavar="COMMAND", choices=list(COMMANDS) + list(ALIASES), help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0].startswith("-"):
        parser.parse_args(argv or ["--help"])  # --version, --help (exit here)
        return EXIT_USAGE
    name = ALIASES.get(argv[0], argv[0])
    if name not in COMMANDS:
        parser.error(f"unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}")
    module = importlib.import_module(f".{COMMANDS[name][0]}", __package__)
    return module.main(argv[1:], prog=f"{PROG} {name}")


def console_script() -> int:
    """Entry point of the ``knn-genre`` console script."""
    return entry(main)


if __name__ == "__main__":
    raise SystemExit(console_script())
