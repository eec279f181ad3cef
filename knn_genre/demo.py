"""``python -m knn_genre.demo``: the whole pipeline on a generated collection.

Writes a deterministic synthetic collection (see :mod:`knn_genre.audio.synth`)
under ``data/demo/``, builds its feature file, evaluates the models on it and
trains the KNN model that ``predict`` can then apply, so the package can be
tried on a machine with no music.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from . import build_features, evaluate, train
from .audio.synth import GENRES, write_collection
from .cli import EXIT_OK, EXIT_USAGE, entry, error, jobs_count, make_parser, output_problem, positive_float, positive_int

PROG = "python -m knn_genre.demo"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = make_parser(
        prog, "Generate a synthetic collection, build its features, evaluate the classifiers on it and train a model."
    )
    parser.add_argument("--dir", default="data/demo", help="where the clips go (default: %(default)s)")
    parser.add_argument("-o", "--output", default="data/demo-features.npz", help="feature file (default: %(default)s)")
    parser.add_argument("--model-output", default="data/demo-model.npz", help="model file trained on it (default: %(default)s)")
    parser.add_argument("--clips", type=positive_int, default=20, help="clips per genre (default: %(default)s)")
    parser.add_argument("--seconds", type=positive_float, default=4.0, help="length of each clip (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the collection and of the evaluation (default: %(default)s)")
    parser.add_argument("--k", type=positive_int, default=5, help="neighbours for the KNN (default: %(default)s)")
    parser.add_argument("--jobs", type=jobs_count, default=-1, help="worker processes for feature extraction (default: all cores)")
    return parser


def _prepare(folder: Path, spec: dict) -> None:
    """Write the collection, replacing one generated with other settings."""
    marker = folder / ".demo.json"
    if folder.exists() and (not marker.exists() or json.loads(marker.read_text()) != spec):
        for genre in GENRES:
            shutil.rmtree(folder / genre, ignore_errors=True)
    write_collection(folder, n_per_genre=spec["clips"], seconds=spec["seconds"], seed=spec["seed"])
    marker.write_text(json.dumps(spec))


def _problem(args, parser) -> str | None:
    """Why the demo could not write where it was told, found before any clip is generated."""
    folder = Path(args.dir)
    if folder.exists() and not folder.is_dir():
        return f"--dir {folder}: is a file; give a folder for the clips (it is created if missing)"
    for option, dest in (("-o", "output"), ("--model-output", "model_output")):
        path = getattr(args, dest)
        # The default folder (data/) is created, as the commands do; a folder the user names must exist.
        problem = output_problem(path, create_folder=path == parser.get_default(dest))
        if problem:
            return f"{option}: {problem}"
    return None


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    problem = _problem(args, parser)
    if problem:
        error(prog, problem)
        return EXIT_USAGE
    folder = Path(args.dir)
    spec = {"clips": args.clips, "seconds": args.seconds, "seed": args.seed}
    print(f"== generating {len(GENRES)} genres x {args.clips} clips x {args.seconds:g} s in {folder}", flush=True)
    _prepare(folder, spec)
    print(f"== python -m knn_genre.build_features {folder} -o {args.output}", flush=True)
    status = build_features.main([str(folder), "-o", args.output, "--jobs", str(args.jobs)], prog=prog)
    if status != EXIT_OK:
        return status
    print(f"\n== python -m knn_genre.evaluate --features {args.output} --k {args.k} --seed {args.seed}", flush=True)
    status = evaluate.main(["--features", args.output, "--k", str(args.k), "--seed", str(args.seed)], prog=prog)
    if status != EXIT_OK:
        return status
    print(
        f"\n== python -m knn_genre.train --features {args.output} --model knn --k {args.k} --evaluate --seed {args.seed} "
        f"-o {args.model_output}",
        flush=True,
    )
    status = train.main(
        ["--features", args.output, "--model", "knn", "--k", str(args.k), "--evaluate", "--seed", str(args.seed), "-o", args.model_output],
        prog=prog,
    )
    if status == EXIT_OK:
        example = sorted((folder / GENRES[0]).glob("*.wav"))[0]
        print(f"\nNext: python -m knn_genre.predict {example} --model {args.model_output}")
        print(f"  or: python -m knn_genre.serve --model {args.model_output}   (the web page; needs pip install 'knn_genre[web]', which make serve has)")
    return status


if __name__ == "__main__":
    raise SystemExit(entry(main))
