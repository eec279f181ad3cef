"""Evaluation: protocols, scoring, reports.

- :mod:`~knn_genre.evaluation.splits`: seeded cross-validation, random splits, split files;
- :mod:`~knn_genre.evaluation.scoring`: runs models on folds, returns numbers, prints nothing;
- :mod:`~knn_genre.evaluation.report`: the text report and the JSON;
- :mod:`~knn_genre.evaluation.record`: the evaluation a model file records (``train --evaluate``);
- :mod:`~knn_genre.evaluation.plots`: confusion matrices (optional matplotlib).
"""
