"""knn_genre: music genre classification with Gaussian MFCC models.

Each track is summarised by one Gaussian over its MFCC frames and classified
by a k-nearest-neighbour vote under the symmetric Kullback-Leibler divergence,
or by an SVM; every classifier is a scikit-learn estimator on packed rows
``[mean, cov[triu]]`` (see :mod:`knn_genre.features`).
"""

import importlib

__version__ = "0.1.0"

# Public names and the module that defines each. They are imported on first
# use (PEP 562): feature-extraction workers then start without importing
# scikit-learn, which takes about a second.
_EXPORTS = {
    "store": None,
    "FeatureSet": "store",
    "MFCCParams": "features",
    "pack": "features",
    "unpack": "features",
    "KLKNNClassifier": "knn",
    "KLSVMClassifier": "svm",
    "GaussianVectorizer": "svm",
    "FeatureScaler": "svm",
    "make_svm_pipeline": "svm",
    "make_svm_search": "svm",
    "make_table_svm_search": "svm",
    "make_klsvm_search": "svm",
    "FeatureTable": "tabular",
    "read_feature_table": "tabular",
    "KnnGenreError": "errors",
    "ParameterError": "errors",
    "AudioError": "errors",
    "FeatureError": "errors",
    "FeatureFileError": "errors",
    "DatasetError": "errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _EXPORTS[name]
    if module is None:
        return importlib.import_module(f".{name}", __name__)
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
