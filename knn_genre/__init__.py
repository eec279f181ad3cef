"""knn_genre: music genre classification with Gaussian MFCC models."""

__version__ = "0.1.0"
