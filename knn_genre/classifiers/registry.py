"""The model registry: every classifier the commands know, in one table.

``evaluate``, ``train``, ``predict``, the benchmarks and everything later
look models up here by name. An entry (:class:`ModelSpec`) says, for each
feature family it accepts, how to make the unfitted estimator and which
grid its inner search explores, plus a one-line description, whether it
calibrates probabilities and whether it keeps reference tracks (for
``similar``).

:func:`make_model` turns an entry into a :class:`RegisteredModel`, an
ordinary scikit-learn estimator that does the *whole* fit: the seeded inner
grid search if the entry has one, then the final fit with the chosen
parameters, then the sigmoid calibration of the SVMs' probabilities.
``evaluate`` fits one per outer fold and ``train`` fits one on every track;
both therefore produce the same kind of fitted object, with the same
probabilities and the same decision rule (:meth:`RegisteredModel.predict_groups`),
so the accuracy ``evaluate`` reports is the accuracy of what ``predict``
applies.

Adding a model is one :class:`ModelSpec` in :data:`REGISTRY` (and its
estimator, if it is new).

Feature families (:data:`FAMILY_NAMES`) and what ``X`` holds for each:

- ``gaussian``: packed MFCC Gaussians ``[mean, cov[triu]]`` (104 columns for 13 MFCCs);
- ``table``: plain feature vectors, e.g. the 57 columns of GTZAN's table;
- ``gaussian+table``: ``np.hstack([packed Gaussians, table columns])``, the
  Gaussian block first. An estimator for it must know where the block ends:
  it takes that width as a parameter, and its :class:`Variant` names the
  parameter (``layout_param``). :func:`make_model` sets it from
  ``gaussian_columns`` (``FeatureSet.layout()["gaussian"]``, the packed width
  of the MFCC parameters), so it is one of the fitted ``best_params_`` and is
  recorded in the model file's settings with the search's choices; a loaded
  model is rebuilt with it like any other parameter.
  :func:`knn_genre.classifiers.fusion.split_columns` splits such rows. A new
  model on both families is one line: ``"gaussian+table": Variant(make, grid,
  layout_param="gaussian_columns", description=...)`` (``layout_param="step__gaussian_columns"``
  for a pipeline whose step takes it).

Examples
--------
>>> from knn_genre.classifiers.registry import REGISTRY, make_model
>>> REGISTRY["svm"].families, REGISTRY["fusion"].families
(('gaussian', 'table'), ('gaussian+table',))
>>> make_model("knn", k=3).get_params()["params"]
{'n_neighbors': 3}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import GridSearchCV
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import ParameterError, check_choice
from .cv import InnerStratifiedKFold
from .probability import SoftmaxClassifier

__all__ = [
    "FAMILY_NAMES",
    "Variant",
    "ModelSpec",
    "REGISTRY",
    "ALIASES",
    "get_spec",
    "model_names",
    "expand_names",
    "make_model",
    "RegisteredModel",
    "decide_groups",
]

#: Feature families a model can be trained on: ``gaussian`` (packed MFCC
#: Gaussians), ``table`` (plain feature vectors: the table family of a feature
#: file, or a published table) and ``gaussian+table`` (both, side by side).
FAMILY_NAMES = ("gaussian", "table", "gaussian+table")

#: Inner folds of the searches and of the probability calibration (fewer
#: when a genre of the training tracks is smaller).
INNER_FOLDS = 5


@dataclass(frozen=True)
class Variant:
    """How a model is built for one feature family.

    Attributes
    ----------
    make : callable(seed) -> estimator
        The unfitted estimator with its default parameters.
    grid : dict or list of dict, optional
        ``set_params`` keys and values of the inner search; None: no search.
    k_param : str, optional
        The ``set_params`` key that ``--k`` sets (neighbour models).
    description : str
        One line for reports.
    layout_param : str, optional
        For ``gaussian+table``: the ``set_params`` key that receives the
        width of the Gaussian block (see the module docstring).
    """

    make: Callable
    grid: dict | list | None = None
    k_param: str | None = None
    description: str = ""
    layout_param: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes
    ----------
    name : str
    variants : dict of family -> Variant
        The feature families it accepts.
    calibrate : bool
        Whether probabilities come from a seeded sigmoid calibration
        (Platt scaling) on inner folds, for models without their own (the
        softmax of the decision values when a genre has a single track, see
        :mod:`~knn_genre.classifiers.probability`).
    keeps_references : bool
        Whether the fitted model holds its training tracks and can name the
        nearest ones (``similar``).
    baseline : bool
        A chance-level baseline (reports compare every model with the best).
    """

    name: str
    variants: dict
    calibrate: bool = False
    keeps_references: bool = False
    baseline: bool = False

    @property
    def families(self) -> tuple:
        return tuple(self.variants)

    def variant(self, family: str) -> Variant:
        if family not in self.variants:
            raise ParameterError(
                f"model {self.name!r} does not accept {family!r} features; it accepts {', '.join(self.variants)}"
            )
        return self.variants[family]

    def description(self, family: str, k: int | None = None) -> str:
        text = self.variant(family).description
        return text.replace("k-nearest", f"{k}-nearest") if k is not None else text


# -- the estimators of each entry (imported when first made: the SVMs and
# -- pipelines pull in more of scikit-learn than a KNN needs) ----------------


def _kl_knn(hubness=None):
    def make(seed):
        from .knn import KLKNNClassifier

        return KLKNNClassifier(n_neighbors=5, hubness=hubness)

    return make


def _table_knn(seed):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("knn", KNeighborsClassifier(n_neighbors=5))])


def _gaussian_svm(seed):
    from .svm import make_svm_pipeline

    return make_svm_pipeline()


def _table_svm(seed):
    from .svm import make_table_svm_pipeline

    return make_table_svm_pipeline()


def _klsvm(seed):
    from .svm import KLSVMClassifier

    return KLSVMClassifier()


def _dummy(strategy):
    def make(seed):
        from .baselines import RowSeededDummyClassifier

        return RowSeededDummyClassifier(strategy=strategy, random_state=seed)

    return make


def _fusion(seed):
    from .fusion import FusionSVMClassifier

    return FusionSVMClassifier()


def _grids():
    from .fusion import FUSION_PARAM_GRID
    from .svm import KLSVM_PARAM_GRID, SVM_PARAM_GRID, TABLE_SVM_PARAM_GRID

    return SVM_PARAM_GRID, TABLE_SVM_PARAM_GRID, KLSVM_PARAM_GRID, FUSION_PARAM_GRID


def _registry() -> dict:
    svm_grid, table_svm_grid, klsvm_grid, fusion_grid = _grids()
    dummy = "DummyClassifier, {} strategy (guesses seeded per track)"
    specs = [
        ModelSpec(
            "knn",
            {
                "gaussian": Variant(_kl_knn(), None, "n_neighbors", "k-nearest neighbours, symmetric KL between track Gaussians"),
                "table": Variant(_table_knn, None, "knn__n_neighbors", "k-nearest neighbours, Euclidean on standardised features"),
            },
            keeps_references=True,
        ),
        ModelSpec(
            "knn-mp",
            {
                "gaussian": Variant(
                    _kl_knn("mutual_proximity"), None, "n_neighbors",
                    "the same KNN on mutual-proximity distances (hubness reduction)",
                ),
            },
            keeps_references=True,
        ),
        ModelSpec(
            "svm",
            {
                "gaussian": Variant(
                    _gaussian_svm, svm_grid, None,
                    "RBF SVM on vectorised Gaussians, C, gamma and covariance coordinates grid-searched",
                ),
                "table": Variant(_table_svm, table_svm_grid, None, "RBF SVM on standardised features, scaling, C and gamma grid-searched"),
            },
            calibrate=True,
        ),
        ModelSpec(
            "klsvm",
            {
                "gaussian": Variant(
                    _klsvm, klsvm_grid, None, "SVM with the kernel exp(-gamma * sKL / median sKL), C and gamma grid-searched"
                ),
            },
            calibrate=True,
        ),
        ModelSpec(
            "fusion",
            {
                "gaussian+table": Variant(
                    _fusion, fusion_grid, None,
                    "SVM on the product of a Gaussian kernel (KL or log-Euclidean RBF, searched) and an RBF "
                    "on the standardised table, both widths and C grid-searched",
                    layout_param="gaussian_columns",
                ),
            },
            calibrate=True,
        ),
        ModelSpec(
            "dummy-most-frequent",
            {family: Variant(_dummy("most_frequent"), description=dummy.format("most-frequent")) for family in FAMILY_NAMES},
            baseline=True,
        ),
        ModelSpec(
            "dummy-stratified",
            {family: Variant(_dummy("stratified"), description=dummy.format("stratified")) for family in FAMILY_NAMES},
            baseline=True,
        ),
    ]
    return {spec.name: spec for spec in specs}


#: Every model, by name.
REGISTRY = _registry()

#: Names that stand for several models in ``--models``.
ALIASES = {"dummy": ("dummy-most-frequent", "dummy-stratified")}


def get_spec(name: str) -> ModelSpec:
    """The registry entry called ``name``."""
    if name not in REGISTRY:
        raise ParameterError(f"unknown model {name!r}; choose from {', '.join(model_names())}")
    return REGISTRY[name]


def model_names(family: str | None = None) -> list[str]:
    """Names of the models (that accept ``family``), in registry order."""
    return [name for name, spec in REGISTRY.items() if family is None or family in spec.variants]


def expand_names(names: Sequence[str], family: str | None = None) -> list[str]:
    """Registry names for a list of names and aliases, checked, in order, without repeats.

    Raises
    ------
    ParameterError
        For unknown names, or models that do not accept ``family``.
    """
    unknown = [name for name in names if name not in REGISTRY and name not in ALIASES]
    if unknown:
        choices = ", ".join(model_names() + list(ALIASES))
        raise ParameterError(f"unknown model(s) {', '.join(unknown)}; choose from {choices}")
    out = list(dict.fromkeys(member for name in names for member in ALIASES.get(name, (name,))))
    if family is not None:
        refused = [name for name in out if family not in REGISTRY[name].variants]
        if refused:
            raise ParameterError(
                f"model(s) {', '.join(refused)} do not accept {family!r} features; "
                f"the models that do are {', '.join(model_names(family))}"
            )
    return out


def make_model(name: str, *, family: str = "gaussian", k: int | None = None, params: dict | None = None,
               search: bool = True, seed: int = 0, n_jobs: int | None = None,
               gaussian_columns: int | None = None, cache=None) -> "RegisteredModel":
    """An unfitted :class:`RegisteredModel` for the registry entry ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`REGISTRY`.
    family : {"gaussian", "table", "gaussian+table"}, default="gaussian"
    k : int, optional
        Neighbours, for the models that have a ``k``.
    params : dict, optional
        Fixed ``set_params`` values; the search, if any, explores the rest.
    search : bool, default=True
        Run the entry's inner grid search in ``fit``. False fits ``params``
        as they are (a saved model is rebuilt so).
    seed : int, default=0
        Seed of the inner folds, of the calibration folds and of the
        randomised baseline.
    n_jobs : int, optional
        Parallel fits of the search (joblib).
    gaussian_columns : int, optional
        For ``gaussian+table``: the width of the Gaussian block of the rows,
        set as the variant's ``layout_param``.
    cache : knn_genre.classifiers.cache.DivergenceCache, optional
        See :class:`RegisteredModel`.
    """
    variant = get_spec(name).variant(family)
    params = dict(params or {})
    if k is not None and variant.k_param is not None:
        params[variant.k_param] = k
    if gaussian_columns is not None and variant.layout_param is not None:
        params[variant.layout_param] = int(gaussian_columns)
    return RegisteredModel(name, family=family, params=params, search=search, random_state=seed, n_jobs=n_jobs, cache=cache)


def decide_groups(proba: np.ndarray, row_predictions: np.ndarray, index: np.ndarray, n_groups: int, classes: np.ndarray) -> np.ndarray:
    """The genre of each group of rows (the windows or segments of one track).

    The genre with the largest summed (equivalently, mean) probability over
    the group's rows wins. Among genres tied for it, the one the rows
    predict most often wins, then the one predicted by the group's earliest
    row. For a group of one row this is the estimator's own ``predict``
    (which, for the KNN, breaks vote ties by the nearest neighbour).

    Parameters
    ----------
    proba : ndarray of shape (n_rows, n_classes)
    row_predictions : ndarray of shape (n_rows,)
        ``predict`` of each row, labels from ``classes``.
    index : ndarray of shape (n_rows,)
        Group number of each row, in ``range(n_groups)``.
    n_groups : int
    classes : ndarray of shape (n_classes,)

    Returns
    -------
    ndarray of shape (n_groups,)
        Labels from ``classes``.
    """
    sums = np.zeros((n_groups, proba.shape[1]))
    np.add.at(sums, index, proba)
    best = sums.max(axis=1, keepdims=True)
    tied = sums == best
    winners = sums.argmax(axis=1)
    row_class = np.searchsorted(classes, row_predictions)
    for g in np.flatnonzero(tied.sum(axis=1) > 1):
        rows = np.flatnonzero(index == g)
        candidates = [c for c in row_class[rows] if tied[g, c]]
        if not candidates:
            continue  # the rows predict none of the tied genres: keep the first
        counts = np.bincount(candidates, minlength=len(classes))
        top = np.flatnonzero(counts == counts.max())
        winners[g] = next(c for c in candidates if c in top)
    return classes[winners]


class RegisteredModel(ClassifierMixin, BaseEstimator):
    """A registry model as one scikit-learn estimator: search, fit, calibration.

    Parameters
    ----------
    name : str, default="knn"
        Registry entry.
    family : {"gaussian", "table", "gaussian+table"}, default="gaussian"
        The features ``X`` holds: packed Gaussians, plain vectors, or both
        side by side (see the module docstring).
    params : dict, optional
        Fixed ``set_params`` values of the entry's estimator.
    search : bool, default=True
        Whether ``fit`` first runs the grid search on seeded inner
        stratified folds of the training tracks.
    param_grid : dict or list of dict, optional
        The search's grid; None: the registry entry's.
    random_state : int, default=0
    n_jobs : int, optional
        Parallel fits of the search.
    cache : knn_genre.classifiers.cache.DivergenceCache, optional
        Given to the estimators that can use it (the KL models, the
        vectoriser of the Gaussian SVM): an evaluation computes divergences
        and vectors once for all its folds.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    best_params_ : dict
        The parameters fitted: ``params`` and what the search chose.
    searched_params_ : dict or None
        What the search chose (None without a search).
    estimator_ : estimator
        The fitted final estimator (a ``CalibratedClassifierCV``, or a
        ``SoftmaxClassifier``, for the calibrated models).
    base_estimator_ : estimator
        The fitted estimator of the entry itself (inside the calibration).

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.features.gaussian import pack
    >>> rng = np.random.default_rng(0)
    >>> X = pack(np.concatenate([rng.normal(0, 1, (6, 2)), rng.normal(5, 1, (6, 2))]), np.tile(np.eye(2), (12, 1, 1)))
    >>> y = np.array(["jazz"] * 6 + ["rock"] * 6)
    >>> model = make_model("knn", k=3).fit(X, y)
    >>> model.predict(X[:1]).tolist(), model.predict_groups(X, np.repeat([0, 1], 6))[1].tolist()
    (['jazz'], ['jazz', 'rock'])
    """

    def __init__(self, name="knn", *, family="gaussian", params=None, search=True, param_grid=None, random_state=0, n_jobs=None,
                 cache=None):
        self.name = name
        self.family = family
        self.params = params
        self.search = search
        self.param_grid = param_grid
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.cache = cache

    @property
    def spec(self) -> ModelSpec:
        return get_spec(self.name)

    def _base(self):
        check_choice("family", self.family, FAMILY_NAMES)
        base = self.spec.variant(self.family).make(self.random_state)
        if self.cache is not None:
            # Every estimator (or pipeline step) that can use the cache gets it.
            keys = [key for key in base.get_params(deep=True) if key == "cache" or key.endswith("__cache")]
            base.set_params(**dict.fromkeys(keys, self.cache))
        return base

    def fit(self, X, y, groups=None):
        """Search (if the entry has a grid and ``search``), fit, calibrate.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Packed Gaussians or feature vectors, as ``family`` says.
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,), optional
            Track of each row when rows are segments of tracks: the inner
            folds of the search and of the calibration then keep each
            track's rows together.

        Returns
        -------
        self
        """
        if y is None:
            raise ParameterError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        inner = InnerStratifiedKFold(INNER_FOLDS, random_state=self.random_state)
        params = dict(self.params or {})
        layout = self.spec.variant(self.family).layout_param
        if layout is not None and layout not in params:
            raise ParameterError(
                f"model {self.name!r} on {self.family!r} rows needs the width of their Gaussian block "
                f"(params {{{layout!r}: ...}}, make_model(..., gaussian_columns=...))"
            )
        base = self._base().set_params(**params)
        grid = self.spec.variant(self.family).grid if self.param_grid is None else self.param_grid
        self.searched_params_ = None
        if self.search and grid:
            search = GridSearchCV(
                base,
                _copy_grid(grid),
                cv=list(inner.split(X, y, groups)),
                scoring="accuracy",
                n_jobs=self.n_jobs,
                refit=False,  # the final fit below is the one that is kept
                error_score="raise",  # a failing fit is a bug to see, not a NaN to skip
            ).fit(X, y)
            self.searched_params_ = {key: _plain(v) for key, v in search.best_params_.items()}
            params.update(self.searched_params_)
            base = self._base().set_params(**params)
        self.best_params_ = params
        if self.spec.calibrate:
            _, counts = np.unique(inner.units(y, groups)[0], return_counts=True)
            if counts.min() >= 2:
                # An SVC gives decision values, not probabilities: a sigmoid
                # fitted to seeded cross-validated decision values turns them
                # into probabilities, while the SVM itself is fitted once on
                # all the tracks (ensemble=False).
                folds = list(inner.split(X, y, groups))
                self.estimator_ = CalibratedClassifierCV(base, method="sigmoid", cv=folds, ensemble=False).fit(X, y)
                self.base_estimator_ = self.estimator_.calibrated_classifiers_[0].estimator
            else:
                # A genre of one track cannot be calibrated (see SoftmaxClassifier).
                self.estimator_ = SoftmaxClassifier(base).fit(X, y)
                self.base_estimator_ = self.estimator_.estimator_
        else:
            self.estimator_ = base.fit(X, y)
            self.base_estimator_ = self.estimator_
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X):
        """Genre probabilities, shape (n_samples, n_classes), columns as ``classes_``."""
        check_is_fitted(self)
        return self.estimator_.predict_proba(validate_data(self, X, reset=False, dtype=np.float64))

    def predict(self, X):
        """Genre of each row: the final estimator's ``predict``."""
        check_is_fitted(self)
        return self.estimator_.predict(validate_data(self, X, reset=False, dtype=np.float64))

    def predict_groups(self, X, groups):
        """One genre per group of rows (the windows or segments of a track).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        groups : array-like of shape (n_samples,)
            Group (track) of each row.

        Returns
        -------
        names : ndarray
            The distinct groups, sorted.
        genres : ndarray
            The genre of each, by :func:`decide_groups`.
        """
        check_is_fitted(self)
        names, index = np.unique(np.asarray(groups), return_inverse=True)
        proba = self.predict_proba(X)
        return names, decide_groups(proba, self.predict(X), index, len(names), self.classes_)


def _copy_grid(grid):
    # Copies, so that a search never edits the module's default grids.
    if isinstance(grid, dict):
        return {key: list(values) for key, values in grid.items()}
    return [{key: list(values) for key, values in part.items()} for part in grid]


def _plain(value):
    """numpy scalars to Python scalars, for JSON."""
    return value.item() if isinstance(value, np.generic) else value
