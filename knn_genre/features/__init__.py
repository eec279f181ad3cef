"""Features: what is computed from audio, and the Gaussian data layout.

- :mod:`~knn_genre.features.params`: ``MFCCParams`` and ``TableParams`` (pure Python);
- :mod:`~knn_genre.features.gaussian`: packed rows, Gaussian validity and
  regularisation (pure numpy: the classifiers and the store import it
  without any DSP library);
- :mod:`~knn_genre.features.mfcc`: MFCC frames, python_speech_features-exact;
- :mod:`~knn_genre.features.table`: the table family, GTZAN's published columns;
- :mod:`~knn_genre.features.spectrum`: STFT, inverse STFT and filter banks as librosa defines them;
- :mod:`~knn_genre.features.median`: the running median of the harmonic/percussive separation;
- :mod:`~knn_genre.features.families`: the feature families behind one interface;
- :mod:`~knn_genre.features.analysis`: **the one path** file -> features,
  used by building and by predicting.

Nothing is imported here, so that ``knn_genre.features.gaussian`` loads
without python_speech_features.
"""
