"""knn_genre: music genre classification with Gaussian MFCC models.

Each track is summarised by one Gaussian over its MFCC frames and classified
by a k-nearest-neighbour vote under the symmetric Kullback-Leibler divergence,
or by an SVM; every classifier is a scikit-learn estimator on packed rows
``[mean, cov[triu]]`` (see :mod:`knn_genre.features`).
"""

__version__ = "0.1.0"

from . import store  # noqa: E402
from .errors import (  # noqa: E402
    AudioError,
    DatasetError,
    FeatureError,
    FeatureFileError,
    KnnGenreError,
    ParameterError,
)
from .features import MFCCParams, pack, unpack  # noqa: E402
from .knn import KLKNNClassifier  # noqa: E402
from .store import FeatureSet  # noqa: E402

__all__ = [
    "__version__",
    "store",
    "FeatureSet",
    "MFCCParams",
    "KLKNNClassifier",
    "pack",
    "unpack",
    "KnnGenreError",
    "ParameterError",
    "AudioError",
    "FeatureError",
    "FeatureFileError",
    "DatasetError",
]
