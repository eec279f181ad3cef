"""Pipelines: whole collections and trained models applied to files.

- :mod:`~knn_genre.pipeline.discover`: the tracks of a ``DATA_DIR/<genre>/<track>`` folder;
- :mod:`~knn_genre.pipeline.build`: a collection to a feature file (reuse, checkpoints);
- :mod:`~knn_genre.pipeline.apply`: a trained model applied to audio files;
- :mod:`~knn_genre.pipeline.similar`: the library tracks of a KNN model nearest to a song;
- :mod:`~knn_genre.pipeline.workers`: the local worker pool.
"""
