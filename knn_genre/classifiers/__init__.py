"""Classifiers: scikit-learn estimators on track features, and the model registry.

- :mod:`~knn_genre.classifiers.divergence`: symmetric KL algebra, tiled top-k search;
- :mod:`~knn_genre.classifiers.hubness`: hubness and mutual proximity;
- :mod:`~knn_genre.classifiers.knn`: ``KLKNNClassifier``;
- :mod:`~knn_genre.classifiers.svm`: ``GaussianVectorizer``, ``FeatureScaler``, ``KLSVMClassifier``;
- :mod:`~knn_genre.classifiers.baselines`: seeded chance-level baselines;
- :mod:`~knn_genre.classifiers.cv`: the inner folds of searches and calibration;
- :mod:`~knn_genre.classifiers.registry`: **the model registry** (name -> estimator);
- :mod:`~knn_genre.classifiers.model`: trained models, saved and loaded.

Imports the features (packed Gaussians) and the store, never audio, DSP or
evaluation code.
"""
