"""What an evaluation computes once and every fold reuses: divergences, kernels, vectors.

An evaluation fits every model on many subsets of the same tracks (outer
folds, inner folds of the searches, calibration folds, one fit per grid
point). The symmetric KL between two tracks does not depend on the fold,
nor does the vector a track becomes; so :class:`DivergenceCache` holds, for
one set of packed Gaussians ``X`` (a whole feature file):

- the matrix of all divergences, computed once as one tiled product;
- the vectors of :class:`~knn_genre.classifiers.svm.GaussianVectorizer`,
  once per coordinate mode;
- the last few KL-SVM training kernels after the spectrum clip (which do not
  depend on ``C``), so a grid over ``C`` decomposes each kernel once.

An estimator given a ``cache`` looks its rows up in it (by their bytes) and
slices what it needs; rows that are not all there (new audio) are computed
as usual. Copying the cache (``clone`` deep-copies parameters) returns the
same object, so every clone of an evaluation shares one; pickling it (to a
worker process) sends only ``X``, and the worker computes the matrix again
when first asked (a few tens of milliseconds for a thousand tracks).

The divergences are computed with the origin of all the rows rather than
of each training fold: they differ from a fold's own computation only by
rounding (about 1e-13 of their value), far below any difference between
tracks, so the fits and predictions are the same.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from ..errors import ParameterError
from ..features.gaussian import DEFAULT_RIDGE, packed_dim

__all__ = ["DivergenceCache"]

#: Largest divergence matrix a cache holds (bytes): 8192 tracks.
MAX_MATRIX_BYTES = 512 * 2**20

# KL-SVM kernels kept: a grid of 4 gammas over 5 inner folds, plus the final fit.
_KERNELS = 32


class DivergenceCache:
    """Divergences and vectors of a fixed set of packed Gaussians, shared by the folds of an evaluation.

    Parameters
    ----------
    X : array-like of shape (n, d + d * (d + 1) / 2)
        Packed Gaussians: every row any fold will see.
    ridge : float, default=1e-8
        The regularisation the divergences are computed with; an estimator
        with another ``ridge`` does not use them.
    max_bytes : int, default=MAX_MATRIX_BYTES (512 MiB)
        The divergence matrix is only built when it fits; beyond, estimators
        compute their blocks as usual.

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.cache import DivergenceCache
    >>> from knn_genre.features.gaussian import pack
    >>> X = pack(np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]]), np.tile(np.eye(2), (3, 1, 1)))
    >>> cache = DivergenceCache(X)
    >>> cache.rows_of(X[[2, 0]]).tolist(), cache.rows_of(X[:1] + 1) is None
    ([2, 0], True)
    >>> cache.block([0], [1, 2]).round(6).tolist()
    [[1.0, 9.0]]
    """

    def __init__(self, X, *, ridge=DEFAULT_RIDGE, max_bytes=MAX_MATRIX_BYTES):
        X = np.array(X, dtype=np.float64)
        if X.ndim != 2:
            raise ParameterError(f"a cache needs packed Gaussians of shape (n, width), got shape {X.shape}")
        packed_dim(X.shape[1])
        X.setflags(write=False)
        self.X = X
        self.ridge = float(ridge)
        self.max_bytes = int(max_bytes)
        self._setup()

    def _setup(self):
        self._lock = threading.Lock()
        self._index = None
        self._matrix = None
        self._vectors = {}
        self._kernels = OrderedDict()

    # One shared object: clones and copies of estimators refer to the same cache.
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __getstate__(self):
        return {"X": self.X, "ridge": self.ridge, "max_bytes": self.max_bytes}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._setup()

    def __repr__(self) -> str:
        return f"DivergenceCache(<{len(self.X)} tracks>)"

    def __len__(self) -> int:
        return len(self.X)

    @property
    def usable(self) -> bool:
        """Whether the divergence matrix fits in ``max_bytes``."""
        return len(self.X) ** 2 * 8 <= self.max_bytes

    def serves(self, X, ridge) -> np.ndarray | None:
        """:meth:`rows_of` ``X`` if the cache can serve divergences regularised with ``ridge``, else None."""
        if not self.usable or self.ridge != ridge:
            return None
        return self.rows_of(X)

    def rows_of(self, X) -> np.ndarray | None:
        """Indices of the rows of ``X`` in the cache, or None if one of them is not there."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.X.shape[1]:
            return None
        index = self._row_index()
        rows = np.empty(len(X), dtype=np.intp)
        for i, row in enumerate(X):
            found = index.get(row.tobytes())
            if found is None:
                return None
            rows[i] = found
        return rows

    def _row_index(self) -> dict:
        with self._lock:
            if self._index is None:
                index = {}
                for i, row in enumerate(self.X):
                    index.setdefault(row.tobytes(), i)  # equal rows: the first, with the same divergences
                self._index = index
            return self._index

    def matrix(self) -> np.ndarray:
        """Symmetric KL between every pair of rows, shape (n, n), read-only; computed once.

        ``[i, j]`` is the divergence of row ``i`` (as a query) to row ``j``
        (as a reference), as the estimators compute it.
        """
        with self._lock:
            if self._matrix is None:
                if not self.usable:
                    raise ParameterError(f"a divergence matrix of {len(self.X)} tracks does not fit in {self.max_bytes} bytes")
                from .divergence import packed_gaussian_terms, symmetric_kl_from_terms

                d = packed_dim(self.X.shape[1])
                terms = packed_gaussian_terms(self.X, origin=self.X[:, :d].mean(axis=0), ridge=self.ridge)
                matrix = np.empty((len(self.X), len(self.X)))
                for start in range(0, len(self.X), 1024):  # tiles of rows: bounded temporaries
                    rows = slice(start, min(start + 1024, len(self.X)))
                    matrix[rows] = symmetric_kl_from_terms(terms, terms, rows)
                matrix.setflags(write=False)
                self._matrix = matrix
            return self._matrix

    def block(self, rows, cols) -> np.ndarray:
        """``matrix()[rows][:, cols]``, a new writeable array of shape (len(rows), len(cols))."""
        return self.matrix()[np.ix_(np.asarray(rows), np.asarray(cols))]

    def vectors(self, key, compute) -> np.ndarray:
        """``compute(X)`` for all rows, once per ``key``; read-only."""
        with self._lock:
            if key not in self._vectors:
                values = np.asarray(compute(self.X))
                values.setflags(write=False)
                self._vectors[key] = values
            return self._vectors[key]

    def kernel(self, key, compute):
        """``compute()`` once per ``key`` among the last few keys asked (a KL-SVM training kernel)."""
        with self._lock:
            if key in self._kernels:
                self._kernels.move_to_end(key)
                return self._kernels[key]
        value = compute()
        with self._lock:
            self._kernels[key] = value
            while len(self._kernels) > _KERNELS:
                self._kernels.popitem(last=False)
        return value
