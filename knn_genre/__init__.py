"""knn_genre: music genre classification with classical machine learning on a CPU.

Each track is summarised by one Gaussian over its MFCC frames and classified
by a k-nearest-neighbour vote under the symmetric Kullback-Leibler divergence,
or by SVMs; every classifier is a scikit-learn estimator on packed rows
``[mean, cov[triu]]`` (see :mod:`knn_genre.features.gaussian`), and every
model the commands know is one entry of :mod:`knn_genre.classifiers.registry`.

The package is organised as one subpackage per stage, each importing only
the stages before it: ``audio`` -> ``features`` -> ``store`` ->
``classifiers`` -> ``evaluation``, with ``pipeline`` (collections and
trained models applied to files) on top; the commands (``build_features``,
``evaluate``, ``train``, ``predict``, ``similar``, ``serve``, ``demo``, and
``knn-genre``) sit above them all; ``web`` is the application ``serve`` runs.
"""

import importlib

__version__ = "0.2.0"

# Public names and the module that defines each. They are imported on first
# use (PEP 562): feature-extraction workers then start without importing
# scikit-learn, which takes about a second.
_EXPORTS = {
    "FeatureSet": "store.featureset",
    "load_features": ("store.featureset", "load"),
    "save_features": ("store.featureset", "save"),
    "MFCCParams": "features.params",
    "TableParams": "features.params",
    "TableFamily": "features.table",
    "table_features": "features.table",
    "pack": "features.gaussian",
    "unpack": "features.gaussian",
    "analyse_file": "features.analysis",
    "GaussianFamily": "features.families",
    "open_audio": "audio.source",
    "KLKNNClassifier": "classifiers.knn",
    "KLSVMClassifier": "classifiers.svm",
    "GaussianVectorizer": "classifiers.svm",
    "FeatureScaler": "classifiers.svm",
    "FusionSVMClassifier": "classifiers.fusion",
    "EarlyStoppingMLPClassifier": "classifiers.neural",
    "VoteClassifier": "classifiers.registry",
    "RegisteredModel": "classifiers.registry",
    "REGISTRY": "classifiers.registry",
    "make_model": "classifiers.registry",
    "GenreModel": "classifiers.model",
    "train_on_featureset": "classifiers.model",
    "train_on_table": "classifiers.model",
    "load_model": "classifiers.model",
    "save_model": "classifiers.model",
    "predict_file": "pipeline.apply",
    "similar_file": "pipeline.similar",
    "FeatureTable": "store.tables",
    "read_feature_table": "store.tables",
    "write_feature_table": "store.tables",
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
    module, attribute = _EXPORTS[name] if isinstance(_EXPORTS[name], tuple) else (_EXPORTS[name], name)
    return getattr(importlib.import_module(f".{module}", __name__), attribute)


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
