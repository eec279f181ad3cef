"""The feature store: every file the package reads or writes besides audio.

- :mod:`~knn_genre.store.featureset`: ``FeatureSet``, the feature file (``.npz``);
- :mod:`~knn_genre.store.models`: model files (plain arrays and JSON, no pickles);
- :mod:`~knn_genre.store.npz`: the hardened ``.npz`` reader and atomic writes;
- :mod:`~knn_genre.store.legacy`: the original tutorial's pickled ``my.dat``;
- :mod:`~knn_genre.store.tables`: published feature tables (CSV).

Imports the features stage (for ``MFCCParams`` and the packed layout) and
nothing above it.
"""

from .featureset import FORMAT_NAME, FORMAT_VERSION, FeatureSet, load, save
from .npz import atomic_write, read_npz

__all__ = ["FeatureSet", "load", "save", "atomic_write", "read_npz", "FORMAT_NAME", "FORMAT_VERSION"]
