"""``python -m knn_genre.build_features DATA_DIR``: a folder of wavs to a feature file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import store
from .builder import build_featureset
from .cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, error, positive_float, positive_int
from .dataset import discover
from .errors import KnnGenreError
from .features import MFCCParams
from .progress import Progress

PROG = "python -m knn_genre.build_features"
DEFAULT_OUTPUT = "data/features.npz"


def build_parser() -> argparse.ArgumentParser:
    defaults = MFCCParams()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Read DATA_DIR/<genre>/<track>.wav, compute MFCCs and store one Gaussian "
            "(mean and full covariance) per track in a feature file (.npz)."
        ),
        epilog=(
            "Exit status: 0 when at least one track was built (skipped files are listed), "
            "1 with --strict when any file was skipped (nothing is written), "
            "2 for usage errors or when no usable track exists."
        ),
    )
    parser.add_argument("data_dir", metavar="DATA_DIR", help="folder with one sub-folder of .wav files per genre")
    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT, help=f"feature file to write (default: {DEFAULT_OUTPUT})")
    parser.add_argument("--jobs", type=int, default=-1, help="worker processes; -1 uses all cores (default: -1)")
    mfcc = parser.add_argument_group("MFCC parameters (recorded in the feature file)")
    mfcc.add_argument("--sample-rate", type=positive_int, default=defaults.sample_rate, help="resample all audio to this rate in Hz (default: %(default)s)")
    mfcc.add_argument("--winlen", type=positive_float, default=defaults.winlen, help="frame length in seconds (default: %(default)s)")
    mfcc.add_argument("--winstep", type=positive_float, default=defaults.winstep, help="hop between frames in seconds (default: %(default)s)")
    mfcc.add_argument("--numcep", type=positive_int, default=defaults.numcep, help="cepstral coefficients, the Gaussian's dimension (default: %(default)s)")
    mfcc.add_argument("--nfilt", type=positive_int, default=defaults.nfilt, help="mel filters (default: %(default)s)")
    mfcc.add_argument("--nfft", type=positive_int, default=None, help="FFT size (default: smallest power of two >= one frame)")
    parser.add_argument("--no-reuse", action="store_true", help="analyse every track even if the output file already has it")
    parser.add_argument("--strict", action="store_true", help="fail (exit 1, write nothing) if any file is skipped")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.jobs == 0:
        parser.error("--jobs must be a positive number of processes or -1 for all cores, not 0")
    try:
        params = MFCCParams(
            sample_rate=args.sample_rate, winlen=args.winlen, winstep=args.winstep,
            numcep=args.numcep, nfilt=args.nfilt, nfft=args.nfft,
        )
        discovery = discover(args.data_dir)
    except KnnGenreError as exc:
        error(PROG, str(exc))
        return EXIT_USAGE
    if not discovery.tracks:
        error(PROG, f"{args.data_dir}: no .wav files found; expected DATA_DIR/<genre>/<track>.wav")
        return EXIT_USAGE

    previous = None if args.no_reuse else _previous(args.output)
    progress = None if args.quiet else Progress(len(discovery.tracks), "files")
    fs, report = build_featureset(
        args.data_dir, discovery, params, n_jobs=args.jobs, previous=previous,
        on_progress=(lambda done, total: progress.update(done)) if progress else None,
    )
    if progress:
        progress.close()

    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if fs is None:
        error(PROG, f"no usable track in {args.data_dir}: all {len(report.skipped)} .wav file(s) were skipped")
        return EXIT_USAGE
    if args.strict and report.skipped:
        error(PROG, f"--strict: {len(report.skipped)} file(s) skipped; {args.output} not written")
        return EXIT_FAILED
    try:
        store.save(fs, args.output)
    except OSError as exc:
        error(PROG, f"cannot write {args.output}: {exc.strerror or exc}")
        return EXIT_FAILED
    print(_summary(fs, report, args.output))
    return EXIT_OK


def _previous(path: str):
    """The existing output file to reuse tracks from, or None (with a note why)."""
    if not Path(path).exists():
        return None
    try:
        return store.load(path)
    except KnnGenreError as exc:
        print(f"note: not reusing {path}: {exc.reason if hasattr(exc, 'reason') else exc}", file=sys.stderr)
        return None


def _summary(fs, report, output) -> str:
    lines = [
        f"wrote {output}: {len(fs)} tracks, {len(fs.genres)} genres ({', '.join(fs.genres)})",
        f"  analysed {report.analysed}, reused {report.reused} unchanged, "
        f"skipped {len(report.skipped)}, ignored {len(report.ignored)} non-audio file(s), "
        f"{report.seconds:.1f} s",
    ]
    lines += [f"  skipped {path}: {reason}" for path, reason in report.skipped]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
