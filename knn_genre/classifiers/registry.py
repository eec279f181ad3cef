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
estimator, if it is new). A vector model (``logreg``, ``rf``, ``hgb``,
``mlp``, ``gnb``) is one estimator behind each vector family's front steps
(:data:`_VECTOR_FRONTS`: the vectorised Gaussians, the table, both), so it
accepts every vector family at once. ``vote`` averages the probabilities
of registry models that it chooses on inner folds (:class:`VoteClassifier`).

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
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import GridSearchCV
from sklearn.utils import get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import KnnGenreError, ParameterError, check_choice
from .cv import InnerStratifiedKFold, check_groups
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
    "fit_groups_key",
    "fit_groups_kwargs",
]

#: Feature families a model can be trained on: ``gaussian`` (packed MFCC
#: Gaussians), ``table`` (plain feature vectors: the table family of a feature
#: file, or a published table) and ``gaussian+table`` (both, side by side).
FAMILY_NAMES = ("gaussian", "table", "gaussian+table")

#: Inner folds of the searches and of the probability calibration (fewer
#: when a genre of the training tracks is smaller).
INNER_FOLDS = 5

#: The candidates of the ``vote`` model, per feature family: models over
#: divergences between Gaussians (KL), and models over vectors. In each
#: outer training fold the best ``n_kl`` KL and ``n_vector`` vector
#: candidates by inner-fold accuracy vote. On real GTZAN clips these were
#: the strongest and most different models; the slower forests and boosting
#: added no accuracy to the vote.
VOTE_CANDIDATES = {
    "gaussian": {"kl": ("knn", "knn-mp", "klsvm"), "vector": ("svm", "logreg", "gnb"), "n_kl": 1, "n_vector": 2},
    "table": {"kl": (), "vector": ("svm", "logreg", "hgb", "rf"), "n_kl": 0, "n_vector": 3},
    # Both families: the fused kernel (KL or RBF on the Gaussians times an RBF on the table) and vector models.
    "gaussian+table": {"kl": ("fusion",), "vector": ("logreg", "mlp", "gnb"), "n_kl": 1, "n_vector": 2},
}


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
    search : callable(estimator, grid, X, y, folds) -> (params, score) or None, optional
        A faster search than ``GridSearchCV`` for this estimator, choosing
        as it does (mean accuracy over the folds, ties to the first point);
        it may return None to leave a grid it cannot search to ``GridSearchCV``.
    """

    make: Callable
    grid: dict | list | None = None
    k_param: str | None = None
    description: str = ""
    layout_param: str | None = None
    search: Callable | None = None


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
    chance : {"stratified", "most_frequent"} or None
        For a baseline, the guessing rule whose expected accuracy reports
        print beside it.
    """

    name: str
    variants: dict
    calibrate: bool = False
    keeps_references: bool = False
    baseline: bool = False
    chance: str | None = None

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

    # A k-d tree, not the brute-force search: neighbours at exactly equal distances (copied rows) are
    # then ordered the same way whatever the number of OpenMP threads, so the votes do not depend on the machine.
    return Pipeline([("scale", StandardScaler()), ("knn", KNeighborsClassifier(n_neighbors=5, algorithm="kd_tree"))])


def _gaussian_svm(seed):
    from .svm import make_svm_pipeline

    return make_svm_pipeline()


def _table_svm(seed):
    from .svm import make_table_svm_pipeline

    return make_table_svm_pipeline()


def _klsvm(seed):
    from .svm import KLSVMClassifier

    return KLSVMClassifier(probability=True, random_state=seed)


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


def _search_klsvm(estimator, grid, X, y, folds):
    from .svm import search_klsvm

    return search_klsvm(estimator, grid, X, y, folds)


# -- vector models: the same estimator behind each family's front steps ------


def _gaussian_front():
    from sklearn.preprocessing import StandardScaler

    from .svm import GaussianVectorizer

    return [("vectorize", GaussianVectorizer(covariance="log-euclidean")), ("scale", StandardScaler())]


def _table_front():
    from .svm import FeatureScaler

    return [("scale", FeatureScaler(method="standard"))]


def _combined_front():
    from sklearn.preprocessing import StandardScaler

    from .fusion import CombinedVectorizer

    return [("vectorize", CombinedVectorizer()), ("scale", StandardScaler())]


#: For each family a vector model accepts: the steps that turn its rows into
#: standardised vectors, how descriptions name those vectors, and the
#: ``set_params`` key of the Gaussian block's width (``gaussian+table``). A
#: new family of vectors is one line here, for every vector model at once.
_VECTOR_FRONTS = {
    "gaussian": (_gaussian_front, "vectorised Gaussians (log-Euclidean coordinates, standardised)", None),
    "table": (_table_front, "standardised features", None),
    "gaussian+table": (_combined_front, "vectorised Gaussians and table columns, standardised", "vectorize__gaussian_columns"),
}


def _vector_variants(step: str, make_estimator: Callable, grid: dict | None, description: str) -> dict:
    """One :class:`Variant` per vector family: front steps, then ``make_estimator(seed)`` as ``step``.

    ``grid`` keys are the estimator's own parameters; ``{features}`` in
    ``description`` names the family's vectors.
    """

    def variant(front, words, layout):
        def make(seed):
            from sklearn.pipeline import Pipeline

            return Pipeline(front() + [(step, make_estimator(seed))])

        step_grid = None if grid is None else {f"{step}__{key}": list(values) for key, values in grid.items()}
        return Variant(make, step_grid, None, description.format(features=words), layout_param=layout)

    return {family: variant(*front) for family, front in _VECTOR_FRONTS.items()}


def _logreg(seed):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=5000)  # lbfgs: deterministic, no seed needed


def _forest(seed):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=300, max_features="sqrt", random_state=seed, n_jobs=1)


def _boosting(seed):
    from .boosting import SerialHistGradientBoostingClassifier

    # Small trees, an L2 penalty and no held-out early stopping: on real
    # GTZAN clips these scored 0.73-0.76 against the defaults' 0.68 (six
    # genres, 10-fold). Leaves of 10 tracks rather than 20 let a collection
    # of a few dozen tracks be split at all.
    return SerialHistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.1, max_leaf_nodes=8, min_samples_leaf=10, l2_regularization=1.0,
        early_stopping=False, random_state=seed,
    )


def _mlp(seed):
    from .neural import EarlyStoppingMLPClassifier

    return EarlyStoppingMLPClassifier(random_state=seed)


def _gnb(seed):
    from sklearn.naive_bayes import GaussianNB

    return GaussianNB()


#: Grid of ``logreg``: the inverse L2 penalty in decades.
LOGREG_GRID = {"C": [0.01, 0.1, 1.0, 10.0]}
#: Grid of ``mlp``: the L2 penalty (256 hidden units; 64 scored lower on
#: real GTZAN clips and was never chosen).
MLP_GRID = {"alpha": [0.3, 3.0]}


_VOTE_WORDS = {
    "gaussian": "KL model and the best vector models",
    "table": "vector models",
    "gaussian+table": "fused-kernel SVM and the best vector models on both families",
}


def _vote(family):
    def make(seed):
        return VoteClassifier(family=family, random_state=seed)

    return make


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
                    _klsvm, klsvm_grid, None,
                    "SVM with the kernel exp(-gamma * sKL / median sKL), C and gamma grid-searched, Platt-calibrated",
                    search=_search_klsvm,
                ),
            },
        ),
        ModelSpec("logreg", _vector_variants("logreg", _logreg, LOGREG_GRID, "logistic regression on {features}, C searched")),
        ModelSpec("rf", _vector_variants("rf", _forest, None, "random forest of 300 trees on {features}")),
        ModelSpec(
            "hgb",
            _vector_variants("hgb", _boosting, None, "histogram gradient boosting, 100 rounds of 8-leaf trees, on {features}"),
        ),
        ModelSpec(
            "mlp",
            _vector_variants(
                "mlp", _mlp, MLP_GRID, "neural network, 256 hidden units, early stopping, on {features}; L2 penalty searched"
            ),
        ),
        ModelSpec("gnb", _vector_variants("gnb", _gnb, None, "Gaussian naive Bayes on {features}")),
        ModelSpec(
            "vote",
            {
                family: Variant(
                    _vote(family), None, "k",
                    "soft vote of the best " + _VOTE_WORDS[family] + ", members and their settings chosen on inner folds",
                    layout_param="gaussian_columns" if family == "gaussian+table" else None,
                )
                for family in VOTE_CANDIDATES
            },
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
            chance="most_frequent",
        ),
        ModelSpec(
            "dummy-stratified",
            {family: Variant(_dummy("stratified"), description=dummy.format("stratified")) for family in FAMILY_NAMES},
            baseline=True,
            chance="stratified",
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
        as they are (a saved model is rebuilt so; a vote whose ``params``
        name no members still chooses them).
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
        What the search chose (None without a search); for the vote, also
        its members and their settings.
    search_score_ : float or None
        The search's best mean inner-fold accuracy (None without a search).
    estimator_ : estimator
        The fitted final estimator (a ``CalibratedClassifierCV``, or a
        ``SoftmaxClassifier``, for the calibrated models).
    base_estimator_ : estimator
        The fitted estimator of the entry itself (inside the calibration).

    Examples
    --------
    >>> import numpy as np
    >>> from knn_genre.classifiers.registry import make_model
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            inner = get_tags(self._base())
        except (KnnGenreError, ValueError):
            return tags  # an unknown name or family: fit says what is wrong
        # A baseline stays a baseline when it is a registry model: scikit-learn's checks expect no accuracy of it.
        tags.classifier_tags.poor_score = inner.classifier_tags.poor_score
        return tags

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

        Raises
        ------
        ParameterError
            If an inner fold of the search would train on a single genre:
            the message names the genres with too few tracks.
        """
        if y is None:
            raise ParameterError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        if groups is not None:  # checked for every model, those that do not use them too
            groups = check_groups(groups, len(y))
        inner = InnerStratifiedKFold(INNER_FOLDS, random_state=self.random_state)
        params = dict(self.params or {})
        variant = self.spec.variant(self.family)
        layout = variant.layout_param
        if layout is not None and layout not in params:
            raise ParameterError(
                f"model {self.name!r} on {self.family!r} rows needs the width of their Gaussian block "
                f"(params {{{layout!r}: ...}}, make_model(..., gaussian_columns=...))"
            )
        base = self._base().set_params(**params)
        grid = variant.grid if self.param_grid is None else self.param_grid
        self.searched_params_ = None
        self.search_score_ = None
        # With a single genre there is nothing to search: the fit below says so.
        if self.search and grid and len(np.unique(y)) > 1:
            folds = list(inner.split(X, y, groups))
            _check_inner_folds(self.name, y, folds)
            found = variant.search(base, _copy_grid(grid), X, y, folds) if variant.search else None
            if found is None:
                search = GridSearchCV(
                    base,
                    _copy_grid(grid),
                    cv=folds,
                    scoring="accuracy",
                    n_jobs=self.n_jobs,
                    refit=False,  # the final fit below is the one that is kept
                    error_score="raise",  # a failing fit is a bug to see, not a NaN to skip
                ).fit(X, y, **_routed_to_steps(fit_groups_kwargs(base, groups)))
                found = search.best_params_, search.best_score_
            self.searched_params_ = {key: _plain(v) for key, v in found[0].items()}
            self.search_score_ = float(found[1])
            params.update(self.searched_params_)
            base = self._base().set_params(**params)
        if self.spec.calibrate:
            if len(np.unique(y)) < 2:  # said here: the calibration would hand the SVM encoded labels
                raise ParameterError(
                    f"model {self.name!r} is an SVM, which needs at least 2 genres to separate; got 1 class ({str(y[0])!r})"
                )
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
            self.estimator_ = base.fit(X, y, **fit_groups_kwargs(base, groups))
            self.base_estimator_ = self.estimator_
        chosen = getattr(self.base_estimator_, "searched_params_", None)
        if chosen is not None:
            # A model that chooses its own settings (the vote): record them,
            # so that a refit without search rebuilds exactly this model.
            self.searched_params_ = {**(self.searched_params_ or {}), **chosen}
            params.update(chosen)
        self.best_params_ = params
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


def fit_groups_key(estimator) -> str | None:
    """The ``fit`` keyword that gives ``estimator`` the track of each row; None if it takes none.

    A pipeline hands ``step__groups`` to its final step (scikit-learn's
    ``step__param`` fit parameters).
    """
    import inspect

    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        name, last = estimator.steps[-1]
        inner = fit_groups_key(last)
        return None if inner is None else f"{name}__{inner}"
    return "groups" if "groups" in inspect.signature(estimator.fit).parameters else None


def _routed_to_steps(kwargs: dict) -> dict:
    """``kwargs`` for ``GridSearchCV.fit``: a bare ``groups`` would go to its splitter, whose folds are given."""
    return {} if "groups" in kwargs else kwargs


def fit_groups_kwargs(estimator, groups) -> dict:
    """The ``fit`` keyword arguments that hand ``estimator`` the track of each row (none without ``groups``)."""
    key = None if groups is None else fit_groups_key(estimator)
    return {} if key is None else {key: groups}


def _check_inner_folds(name: str, y: np.ndarray, folds) -> None:
    """A ParameterError naming the genres with too few tracks if an inner fold trains on one genre."""
    genres = np.unique(y)
    if len(genres) < 2:
        return  # one genre in all: the estimator says so itself
    for train, _ in folds:
        present = np.unique(y[train])
        if len(present) < 2:
            missing = [str(g) for g in genres if g not in present]
            counts = {g: int(np.sum(y == g)) for g in missing}
            listed = ", ".join(f"{g!r} ({n} track{'s' if n != 1 else ''})" for g, n in counts.items())
            which = "genre" if len(missing) == 1 else "genres"
            raise ParameterError(
                f"{which} {listed} {'has' if len(missing) == 1 else 'have'} too few training tracks for the inner folds of {name}'s search: "
                f"one fold would train on {str(present[0])!r} alone; give every genre at least 2 tracks, or add a genre"
            )


def _copy_grid(grid):
    # Copies, so that a search never edits the module's default grids.
    if isinstance(grid, dict):
        return {key: list(values) for key, values in grid.items()}
    return [{key: list(values) for key, values in part.items()} for part in grid]


def _plain(value):
    """numpy scalars to Python scalars, for JSON."""
    return value.item() if isinstance(value, np.generic) else value


class VoteClassifier(ClassifierMixin, BaseEstimator):
    """Soft vote of the best KL model and the best vector models, chosen on inner folds.

    ``fit`` fits every candidate of :data:`VOTE_CANDIDATES` for ``family``
    as its registry model (each running its own seeded inner search), ranks
    them by their inner-fold accuracy (their search's best mean accuracy;
    for a model without a grid, its accuracy on the same inner folds), and
    keeps the best ``n_kl`` models over KL divergences and the best
    ``n_vector`` models over vectors. Their probabilities are averaged;
    the most probable genre wins. Everything is chosen from the training
    tracks alone, so in an evaluation no test track influences the choice.

    With ``members`` (and ``member_params``) given, nothing is chosen: those
    models are fitted with those settings. That is how a saved vote is
    rebuilt exactly.

    Parameters
    ----------
    family : {"gaussian", "table", "gaussian+table"}, default="gaussian"
    k : int, optional
        Neighbours of the KNN candidates.
    gaussian_columns : int, optional
        For ``gaussian+table``: the width of the Gaussian block of the rows,
        passed to the members.
    members : list of str, optional
        Registry names of fixed members.
    member_params : dict of str -> dict, optional
        Fixed settings of the members (no inner search).
    random_state : int, default=0
        Seed of every member's inner folds and randomness.
    n_jobs : int, optional
        Parallel fits of the members' searches.

    Attributes
    ----------
    members_ : list of (str, RegisteredModel)
        The fitted members.
    inner_scores_ : dict of str -> float
        Inner-fold accuracy of every candidate (empty with fixed ``members``).
    searched_params_ : dict
        ``{"members": [...], "member_params": {...}}``: what was chosen.
    classes_ : ndarray of shape (n_classes,)
    """

    def __init__(self, family="gaussian", *, k=None, gaussian_columns=None, members=None, member_params=None,
                 random_state=0, n_jobs=None):
        self.family = family
        self.k = k
        self.gaussian_columns = gaussian_columns
        self.members = members
        self.member_params = member_params
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _member(self, name, params=None, search=True):
        return make_model(
            name, family=self.family, k=self.k, params=params, search=search, seed=self.random_state, n_jobs=self.n_jobs,
            gaussian_columns=self.gaussian_columns,
        )

    def fit(self, X, y, groups=None):
        """Choose (unless ``members`` is given) and fit the members.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,), optional
            Track of each row, for segments (inner folds keep tracks whole).
        """
        check_choice("family", self.family, tuple(VOTE_CANDIDATES))
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        if groups is not None:
            groups = check_groups(groups, len(y))
        self.inner_scores_ = {}
        if self.members is not None:
            fixed = dict(self.member_params or {})
            fitted = [(name, self._member(name, fixed.get(name), search=name not in fixed).fit(X, y, groups=groups)) for name in self.members]
        else:
            fitted = self._choose(X, y, groups)
        self.members_ = fitted
        self.classes_ = fitted[0][1].classes_
        self.searched_params_ = {
            "members": [name for name, _ in fitted],
            "member_params": {name: dict(model.best_params_) for name, model in fitted},
        }
        return self

    def _choose(self, X, y, groups):
        candidates = VOTE_CANDIDATES[self.family]
        ranked = {}
        for kind in ("kl", "vector"):
            scored = []
            for name in candidates[kind]:
                model = self._member(name).fit(X, y, groups=groups)
                score = model.search_score_ if model.search_score_ is not None else self._inner_accuracy(name, X, y, groups)
                self.inner_scores_[name] = score
                scored.append((score, name, model))
            # Highest score first; equal scores keep the candidates' order.
            scored.sort(key=lambda item: -item[0])
            ranked[kind] = scored[: candidates[f"n_{kind}"]]
        return [(name, model) for kind in ("kl", "vector") for _, name, model in ranked[kind]]

    def _inner_accuracy(self, name, X, y, groups) -> float:
        """Mean accuracy of a model without a grid on the inner folds the searches use."""
        inner = InnerStratifiedKFold(INNER_FOLDS, random_state=self.random_state)
        scores = []
        for train, test in inner.split(X, y, groups):
            model = self._member(name, search=False).fit(X[train], y[train], groups=None if groups is None else np.asarray(groups)[train])
            scores.append(float(np.mean(model.predict(X[test]) == y[test])))
        return float(np.mean(scores))

    def predict_proba(self, X):
        """Mean of the members' probabilities, shape (n_samples, n_classes)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return np.mean([model.predict_proba(X) for _, model in self.members_], axis=0)

    def predict(self, X):
        """The most probable genre of each row."""
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
