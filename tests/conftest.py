import sys
from pathlib import Path

import pytest

# Test helpers (tests/wavs.py) import as a plain module.
sys.path.insert(0, str(Path(__file__).parent))

from knn_genre.audio.synth import write_collection  # noqa: E402


@pytest.fixture(scope="session")
def collection(tmp_path_factory):
    """A small synthetic GTZAN-style collection: 5 pure genres x 6 clips x 1.5 s."""
    root = tmp_path_factory.mktemp("collection")
    write_collection(root, n_per_genre=6, seconds=1.5, seed=0, bleed=0.0)
    return root
