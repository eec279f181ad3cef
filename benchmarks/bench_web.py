"""The web server under load: latency of one upload, and many uploads at once.

Usage::

    python benchmarks/bench_web.py --model MODEL.npz SONG [SONG ...] [--clients 20] [--threads 4]

Starts ``python -m knn_genre.serve`` on a free port of 127.0.0.1 (the real
waitress server in its own process), then

1. uploads each song alone to ``/api/predict``, one after the other (median
   and worst seconds per upload);
2. starts ``--clients`` uploads at once, cycling through the songs, and
   reports the seconds until the last answer, the slowest answer, the
   statuses, and the server's peak resident memory before and after.

Every answer's genre is checked against ``predict_file`` of the same song.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from webtools import Server  # noqa: E402

from knn_genre.classifiers.model import load_model  # noqa: E402
from knn_genre.pipeline.apply import predict_file  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("songs", nargs="+", type=Path)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    model = load_model(args.model)
    expected = {p: predict_file(model, p).genre for p in args.songs}
    bodies = {p: p.read_bytes() for p in args.songs}
    with tempfile.TemporaryDirectory() as tmp, Server(args.model, Path(tmp) / "server", "--threads", str(args.threads)) as server:
        alone = []
        for path, body in bodies.items():
            start = time.perf_counter()
            status, records = server.upload([(path.name, body)])
            alone.append(time.perf_counter() - start)
            assert status == 200 and records[0]["genre"] == expected[path], (status, records)
        before = server.memory_kb()
        songs = list(bodies)
        barrier = threading.Barrier(args.clients)
        answers = [None] * args.clients

        def client(i):
            path = songs[i % len(songs)]
            barrier.wait()
            start = time.perf_counter()
            status, records = server.upload([(path.name, bodies[path])], timeout=600)
            answers[i] = (status, records[0]["genre"] == expected[path] if status == 200 else False, time.perf_counter() - start)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        after = server.memory_kb()
        left = server.leftovers()
    total_mb = sum(len(bodies[songs[i % len(songs)]]) for i in range(args.clients)) / 1e6
    print(f"model {args.model.name}: {model.name}, {model.data.n_tracks} tracks; server threads {args.threads}")
    print(f"one upload at a time ({len(alone)} songs): median {statistics.median(alone):.2f} s, worst {max(alone):.2f} s")
    statuses = sorted({a[0] for a in answers})
    print(
        f"{args.clients} uploads at once ({total_mb:.0f} MB): all answered in {wall:.2f} s, slowest {max(a[2] for a in answers):.2f} s, "
        f"statuses {statuses}, genres as predict: {sum(a[1] for a in answers)}/{args.clients}"
    )
    print(
        f"server memory: peak {before['VmHWM'] / 1000:.0f} MB before, {after['VmHWM'] / 1000:.0f} MB after "
        f"(resident {after['VmRSS'] / 1000:.0f} MB); temporary files left: {len(left)}"
    )
    return 0 if statuses == [200] and not left else 1


if __name__ == "__main__":
    raise SystemExit(main())
