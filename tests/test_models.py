"""The registry's vector models, the vote, the KL-SVM's probabilities and class weights, the MLP."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

from knn_genre.classifiers.cv import InnerStratifiedKFold
from knn_genre.classifiers.neural import EarlyStoppingMLPClassifier
from knn_genre.classifiers.probability import fit_sigmoid, sigmoid_probabilities
from knn_genre.classifiers.registry import VOTE_CANDIDATES, VoteClassifier, get_spec, make_model, model_names
from knn_genre.classifiers.svm import KLSVMClassifier, search_klsvm
from knn_genre.errors import ParameterError

from test_knn import make_tracks

VECTOR_MODELS = ["logreg", "rf", "hgb", "mlp", "gnb"]


@pytest.fixture(scope="module")
def tracks():
    """3 genres x 12 packed 4-d Gaussians."""
    return make_tracks(np.random.default_rng(1), 12, d=4, spread=1.5)


@pytest.fixture(scope="module")
def vectors():
    """3 genres x 15 plain 6-d vectors, overlapping a little."""
    rng = np.random.default_rng(2)
    centres = rng.normal(0, 2.0, (3, 6))
    X = np.concatenate([c + rng.normal(0, 1.0, (15, 6)) for c in centres])
    return X, np.repeat(["blues", "jazz", "rock"], 15)


def test_every_vector_model_accepts_both_families_and_names_its_features():
    for name in VECTOR_MODELS + ["vote"]:
        assert set(get_spec(name).families) >= {"gaussian", "table"}
    assert "vectorised Gaussians" in get_spec("logreg").description("gaussian")
    assert "standardised features" in get_spec("logreg").description("table")
    assert model_names("gaussian")[-2:] == ["dummy-most-frequent", "dummy-stratified"]


#: Smaller grids than the defaults, to keep the tests fast.
SMALL_GRIDS = {"logreg": {"logreg__C": [0.1, 10.0]}, "mlp": {"mlp__alpha": [3.0]}}


@pytest.mark.parametrize("name", VECTOR_MODELS)
def test_vector_models_are_seeded_and_learn(name, vectors, tracks):
    for family, (X, y) in (("table", vectors), ("gaussian", tracks)):
        model = make_model(name, family=family, seed=3).set_params(param_grid=SMALL_GRIDS.get(name)).fit(X, y)
        again = make_model(name, family=family, seed=3).set_params(param_grid=SMALL_GRIDS.get(name)).fit(X, y)
        np.testing.assert_array_equal(model.predict_proba(X), again.predict_proba(X))
        assert model.searched_params_ == again.searched_params_
        np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)
        assert model.score(X, y) > 0.8, (name, family)


@pytest.mark.parametrize("name", ["rf", "mlp"])
def test_randomised_models_follow_the_seed(name, vectors):
    X, y = vectors
    a = make_model(name, family="table", seed=0, search=False).fit(X, y).predict_proba(X)
    b = make_model(name, family="table", seed=1, search=False).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, b)


def test_searched_models_report_their_inner_choice(vectors):
    X, y = vectors
    logreg = make_model("logreg", family="table").fit(X, y)
    assert set(logreg.searched_params_) == {"logreg__C"} and logreg.searched_params_["logreg__C"] in (0.01, 0.1, 1.0, 10.0)
    assert 0 < logreg.search_score_ <= 1
    mlp = make_model("mlp", family="table").fit(X, y)
    assert set(mlp.searched_params_) == {"mlp__alpha"}


# -- the vote --------------------------------------------------------------------------------------


def test_the_vote_keeps_the_best_kl_model_and_the_best_vector_models(tracks):
    X, y = tracks
    model = make_model("vote", k=3, seed=0).fit(X, y)
    vote = model.base_estimator_
    members = model.searched_params_["members"]
    candidates = VOTE_CANDIDATES["gaussian"]
    assert len(members) == 3 and members[0] in candidates["kl"] and set(members[1:]) <= set(candidates["vector"])
    # The KL member is the best-scoring KL candidate, the vector members the two best vector candidates.
    scores = vote.inner_scores_
    assert set(scores) == set(candidates["kl"]) | set(candidates["vector"])
    assert scores[members[0]] == max(scores[n] for n in candidates["kl"])
    assert sorted((scores[n] for n in members[1:]), reverse=True) == sorted((scores[n] for n in candidates["vector"]), reverse=True)[:2]
    # Soft vote: the mean of the members' probabilities.
    mean = np.mean([m.predict_proba(X) for _, m in vote.members_], axis=0)
    np.testing.assert_allclose(model.predict_proba(X), mean)
    assert model.best_params_["member_params"][members[0]] == dict(vote.members_[0][1].best_params_)


def test_a_saved_vote_is_rebuilt_without_choosing_again(tracks):
    X, y = tracks
    fitted = make_model("vote", k=3, seed=0).fit(X, y)
    rebuilt = make_model("vote", k=3, seed=0, params=fitted.best_params_, search=False).fit(X, y)
    assert rebuilt.base_estimator_.inner_scores_ == {}  # nothing was chosen
    np.testing.assert_array_equal(rebuilt.predict_proba(X), fitted.predict_proba(X))


def test_the_table_vote_has_only_vector_members(vectors):
    X, y = vectors
    model = make_model("vote", family="table", k=3).fit(X, y)
    assert len(model.searched_params_["members"]) == VOTE_CANDIDATES["table"]["n_vector"]
    assert set(model.searched_params_["members"]) <= set(VOTE_CANDIDATES["table"]["vector"])



def test_the_vote_on_both_families_fuses_the_kernels_and_adds_vector_models(tracks, vectors):
    (G, y), (T, _) = tracks, vectors
    X = np.hstack([G, T[: len(G)]])  # Gaussians, then table columns
    model = make_model("vote", family="gaussian+table", k=3, gaussian_columns=G.shape[1]).fit(X, y)
    members = model.searched_params_["members"]
    assert members[0] == "fusion" and set(members[1:]) <= set(VOTE_CANDIDATES["gaussian+table"]["vector"])
    assert len(members) == 1 + VOTE_CANDIDATES["gaussian+table"]["n_vector"]
    # Every member was told where the Gaussians end.
    widths = [v for params in model.searched_params_["member_params"].values() for k, v in params.items() if k.endswith("gaussian_columns")]
    assert widths == [G.shape[1]] * len(members)
    rebuilt = make_model("vote", family="gaussian+table", k=3, params=model.best_params_, search=False).fit(X, y)
    np.testing.assert_array_equal(rebuilt.predict_proba(X), model.predict_proba(X))

# -- the KL-SVM ------------------------------------------------------------------------------------


def test_klsvm_probabilities_are_calibrated_on_inner_folds(tracks):
    X, y = tracks
    clf = KLSVMClassifier(C=10.0, probability=True, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert clf.calibrated_ and clf.sigmoids_.shape == (3, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    # Larger decision values mean the genre: every sigmoid rises with them.
    assert np.all(clf.sigmoids_[:, 0] < 0)
    again = KLSVMClassifier(C=10.0, probability=True, random_state=0).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), proba)
    other_folds = KLSVMClassifier(C=10.0, probability=True, random_state=1).fit(X, y)
    assert not np.array_equal(other_folds.predict_proba(X), proba)
    # Without probability=True there is no predict_proba, as for SVC.
    assert not hasattr(KLSVMClassifier().fit(X, y), "predict_proba")


def test_klsvm_probabilities_of_two_genres(tracks):
    X, y = tracks
    two = y != y[-1]
    clf = KLSVMClassifier(probability=True).fit(X[two], y[two])
    assert clf.sigmoids_.shape == (1, 2)
    assert clf.predict_proba(X[two]).shape == (two.sum(), 2)


def test_klsvm_class_weight_favours_a_small_genre():
    rng = np.random.default_rng(5)
    X, y = make_tracks(rng, 30, d=3, spread=0.6)
    # Keep 4 tracks of the last genre: the penalty of the others outweighs them.
    rows = np.r_[0:60, 60:64]
    X, y = X[rows], y[rows]
    small = y == y[-1]
    plain = KLSVMClassifier(C=1.0).fit(X, y)
    balanced = KLSVMClassifier(C=1.0, class_weight="balanced").fit(X, y)
    assert (balanced.predict(X) == y)[small].mean() > (plain.predict(X) == y)[small].mean()
    with pytest.raises(ParameterError, match="class_weight='heavy' must be None, 'balanced' or a dict"):
        KLSVMClassifier(class_weight="heavy").fit(X, y)


def test_the_shared_work_search_chooses_what_a_grid_search_chooses(tracks):
    X, y = tracks
    grid = {"C": [0.1, 1.0, 10.0], "gamma": [0.1, 1.0, 10.0]}
    folds = list(InnerStratifiedKFold(3, random_state=2).split(X, y))
    params, score = search_klsvm(KLSVMClassifier(), grid, X, y, folds)
    reference = GridSearchCV(KLSVMClassifier(), grid, cv=folds).fit(X, y)
    assert params == reference.best_params_
    assert score == pytest.approx(reference.best_score_)
    assert search_klsvm(KLSVMClassifier(), {"scale": ["mean"]}, X, y, folds) is None


def test_a_genre_with_too_few_tracks_is_named(tracks):
    X, y = tracks
    # Two genres, one with a single track: an inner fold would train on the other alone.
    rows = np.r_[0:12, 12]
    lonely = str(y[12])
    with pytest.raises(ParameterError, match=rf"genre '{lonely}' \(1 track\) has too few training tracks for the inner folds of klsvm's search"):
        make_model("klsvm").fit(X[rows], y[rows])
    with pytest.raises(ParameterError, match=f"genre '{lonely}'"):
        make_model("svm").fit(X[rows], y[rows])


# -- calibration and the MLP -----------------------------------------------------------------------


def test_platt_sigmoid_fits_the_decision_values():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(-1, 1, 200), rng.normal(1, 1, 200)])
    positive = np.r_[np.zeros(200, bool), np.ones(200, bool)]
    a, b = fit_sigmoid(scores, positive)
    # Two unit-variance Gaussians at -1 and +1: the log-odds are 2s, so a = -2, b = 0.
    assert a == pytest.approx(-2.0, abs=0.4) and b == pytest.approx(0.0, abs=0.3)
    proba = sigmoid_probabilities(np.column_stack([-scores, scores]), np.array([[-a, b], [a, b]]))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_mlp_stops_on_held_out_loss_and_trains_on_everything(vectors):
    # Two overlapping genres: the held-out loss has a minimum, after which the network overfits.
    rng = np.random.default_rng(0)
    X2 = np.concatenate([rng.normal(0, 1, (150, 4)), rng.normal(1, 1, (150, 4))])
    y2 = np.repeat(["a", "b"], 150)
    clf = EarlyStoppingMLPClassifier(hidden_units=32, alpha=0.0, random_state=0).fit(X2, y2)
    assert clf.early_stopping_ and 1 <= clf.n_epochs_ < clf.max_iter
    assert clf.mlp_.t_ == clf.n_epochs_ * len(y2)  # the final network saw every track, that many epochs
    assert clf.score(X2, y2) > 0.65
    X, y = vectors
    # A genre of one track: nothing to hold out for it, the training loss decides.
    rows = np.r_[0:30, 30]
    single = EarlyStoppingMLPClassifier(hidden_units=32, random_state=0).fit(X[rows], y[rows])
    assert not single.early_stopping_


def _segments(rng, n_tracks=8, n_segments=4):
    """3 genres x ``n_tracks`` tracks x ``n_segments`` segments of 6-d vectors, and the track of each row."""
    centres = rng.normal(0, 2.0, (3, 6))
    tracks = np.repeat(centres, n_tracks, axis=0) + rng.normal(0, 1.0, (3 * n_tracks, 6))
    X = np.repeat(tracks, n_segments, axis=0) + rng.normal(0, 0.3, (3 * n_tracks * n_segments, 6))
    y = np.repeat(["blues", "jazz", "rock"], n_tracks * n_segments)
    groups = np.repeat([f"t{i:02d}" for i in range(3 * n_tracks)], n_segments)
    return X, y, groups


@pytest.fixture
def held_out_splits(monkeypatch):
    """The (train, test) rows of every epoch search, recorded as the network runs it."""
    splits = []
    search = EarlyStoppingMLPClassifier._best_epochs

    def recording(self, X, y, classes, train, test):
        splits.append((np.asarray(train), np.asarray(test)))
        return search(self, X, y, classes, train, test)

    monkeypatch.setattr(EarlyStoppingMLPClassifier, "_best_epochs", recording)
    return splits


def _assert_tracks_whole(splits, groups, n_rows):
    assert splits
    for train, test in splits:
        assert len(train) + len(test) == n_rows and len(test) > 0
        assert not set(groups[train]) & set(groups[test])


def test_mlp_holds_out_whole_tracks_of_segments(held_out_splits):
    X, y, groups = _segments(np.random.default_rng(4))
    clf = EarlyStoppingMLPClassifier(hidden_units=16, random_state=0).fit(X, y, groups=groups)
    assert clf.early_stopping_ and clf.n_iter_ == clf.n_epochs_
    _assert_tracks_whole(held_out_splits, groups, len(y))
    (train, test), = held_out_splits
    # ceil(0.2 * 24) = 5 whole tracks held out, every genre among them.
    assert len(set(groups[test])) == 5 and set(y[test]) == set(y)
    # A track of a single row is a row: the same split and network as without groups.
    rows = np.arange(0, len(y), 4)
    alone = EarlyStoppingMLPClassifier(hidden_units=16, random_state=0).fit(X[rows], y[rows], groups=groups[rows])
    plain = EarlyStoppingMLPClassifier(hidden_units=16, random_state=0).fit(X[rows], y[rows])
    np.testing.assert_array_equal(held_out_splits[1][1], held_out_splits[2][1])
    np.testing.assert_array_equal(alone.predict_proba(X), plain.predict_proba(X))
    with pytest.raises(ParameterError, match="groups"):
        EarlyStoppingMLPClassifier().fit(X, y, groups=groups[:-1])


def test_the_registry_mlp_holds_out_whole_tracks_of_segments(held_out_splits):
    X, y, groups = _segments(np.random.default_rng(5))
    make_model("mlp", family="table", search=False, params={"mlp__hidden_units": 16}).fit(X, y, groups=groups)
    _assert_tracks_whole(held_out_splits, groups, len(y))
    # The inner search's fits, on a fold's tracks, hold out whole tracks too.
    held_out_splits.clear()
    model = make_model("mlp", family="table", params={"mlp__hidden_units": 16}).set_params(param_grid={"mlp__alpha": [0.3, 3.0]})
    model.fit(X, y, groups=groups)
    assert len(held_out_splits) > 1
    for train, test in held_out_splits[:-1]:
        assert len(train) + len(test) < len(y)  # an inner fold: a subset of the rows
    for train, test in held_out_splits:
        assert not set(groups[train]) & set(groups[test])


@pytest.mark.parametrize(
    "estimator",
    [KLSVMClassifier(probability=True), KLSVMClassifier(), EarlyStoppingMLPClassifier(), VoteClassifier()],
    ids=["klsvm-probability", "klsvm", "mlp", "vote"],
)
def test_predicting_before_fit_raises_not_fitted(estimator):
    X = np.zeros((2, 14))
    for method in ("predict", "predict_proba"):
        if hasattr(estimator, method):
            with pytest.raises(NotFittedError):
                getattr(estimator, method)(X)


def test_the_mlp_refuses_one_genre_as_the_svms_do():
    from sklearn.utils.estimator_checks import check_classifiers_one_label

    X = np.random.default_rng(0).normal(size=(20, 3))
    # A network of one output unit would give two probability columns for the one class, and
    # predict would index past classes_ (it did for most seeds of a small network).
    with pytest.raises(ParameterError, match="at least 2 genres; got 1 class \\('a'\\)"):
        EarlyStoppingMLPClassifier(hidden_units=8, max_iter=30).fit(X, ["a"] * 20)
    check_classifiers_one_label("EarlyStoppingMLPClassifier", EarlyStoppingMLPClassifier(hidden_units=8, max_iter=30))
