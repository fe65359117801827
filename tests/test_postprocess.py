"""ThresholdOptimizedClassifier: fairlearn's ThresholdOptimizer on rows the classifier did not see.

scikit-learn's ``parametrize_with_checks`` does not apply: its checks pass plain arrays as X, and
this estimator needs the groups inside X (a dict ``{"X": ..., "groups": ...}``) in ``fit`` *and*
in prediction — the thresholds are per group — so every check would fail on the missing groups
rather than test anything. What those checks cover is tested here by hand with dict X: clone,
``get_params`` / ``set_params``, pickling, a search, and the errors.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
import sklearn
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, StratifiedShuffleSplit
from skorch.helper import SliceDict

from fairskl import (
    GroupBalancedClassifier,
    NIRClassifier,
    ThresholdOptimizedClassifier,
)
from fairskl.experiments import compare_methods
from fairskl.metrics import TradeoffRefit, make_fairness_scorer, tpr_difference


def _tabular(n=600, seed=0, labels=(0, 1)):
    """Group b's positives have a weaker signal: one threshold under-diagnoses them."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 4))
    group = np.where(rng.rand(n) < 0.5, "a", "b")
    y = X[:, 0] * np.where(group == "a", 2.0, 0.7) + 0.5 * rng.normal(size=n) > 0
    X[:, 1] = (group == "b") + 0.1 * rng.normal(size=n)
    return X, np.asarray(labels)[y.astype(int)], group


def _post(**params):
    return ThresholdOptimizedClassifier(LogisticRegression(), random_state=0, **params)


# -- the estimator API, by hand (see the module docstring) ---------------------------------------

def test_clone_get_params_set_params_and_pickle():
    post = ThresholdOptimizedClassifier(LogisticRegression(C=0.5), constraints="equalized_odds",
                                        holdout_size=0.4, random_state=3)
    params = post.get_params()
    assert params["estimator__C"] == 0.5 and params["holdout_size"] == 0.4
    twin = clone(post)
    assert twin.estimator is not post.estimator
    assert twin.get_params(deep=False).keys() == post.get_params(deep=False).keys()
    assert twin.set_params(estimator__C=2.0, grid_size=50) is twin
    assert twin.estimator.C == 2.0 and twin.grid_size == 50 and post.estimator.C == 0.5

    X, y, group = _tabular()
    data = SliceDict(X=X, groups=group)
    post.fit(data, y)
    assert post.n_features_in_ == 4
    assert not hasattr(post.estimator, "coef_")  # fit clones the estimator
    again = pickle.loads(pickle.dumps(post))
    np.testing.assert_array_equal(again.predict_proba(data), post.predict_proba(data))
    np.testing.assert_array_equal(again.predict(data), post.predict(data))
    assert not hasattr(clone(post), "estimator_")


def test_predict_proba_and_predict_are_fairlearns_fitted_by_hand():
    X, y, group = _tabular(labels=("healthy", "sick"))
    post = _post(holdout_size=0.4, grid_size=200).fit({"X": X, "groups": group}, y)

    # the split by hand: stratified by (group, label), seeded by random_state
    cells = pd.Series(group) + "|" + pd.Series(y)
    train, held = next(StratifiedShuffleSplit(1, test_size=0.4, random_state=0)
                       .split(np.zeros((len(y), 1)), cells))
    np.testing.assert_array_equal(post.holdout_indices_, np.sort(held))
    inner = LogisticRegression().fit(X[train], y[train])
    np.testing.assert_allclose(post.estimator_.coef_, inner.coef_)
    by_hand = ThresholdOptimizer(estimator=inner, constraints="true_positive_rate_parity",
                                 objective="balanced_accuracy_score", grid_size=200,
                                 prefit=True, predict_method="predict_proba")
    by_hand.fit(X[held], (y[held] == "sick").astype(int), sensitive_features=group[held])

    X_new, _, group_new = _tabular(300, seed=1)
    data = {"X": X_new, "groups": group_new}
    proba = post.predict_proba(data)
    assert proba.dtype == np.float64 and proba.shape == (300, 2)
    np.testing.assert_allclose(proba, by_hand._pmf_predict(X_new, sensitive_features=group_new))
    assert list(post.classes_) == ["healthy", "sick"]
    expected = by_hand.predict(X_new, sensitive_features=group_new, random_state=0)
    np.testing.assert_array_equal(post.predict(data), post.classes_[expected])
    # a decision probability: at most three values per group (0, the weight between the two
    # thresholds, 1), not a score of the label
    for g in ("a", "b"):
        assert len(np.unique(proba[group_new == g, 1])) <= 3
    assert post.groups_.tolist() == ["a", "b"]


def test_predictions_are_randomised_and_reproducible_by_seed():
    X, y, group = _tabular(2000)
    data = SliceDict(X=X, groups=group)
    post = _post().fit(data, y)
    first = post.predict(data)
    np.testing.assert_array_equal(post.predict(data), first)
    other = clone(post).set_params(random_state=1).fit(data, y)
    proba = post.predict_proba(data)[:, 1]
    mixed = (proba > 0) & (proba < 1)
    assert mixed.any()  # some rows sit between a group's two thresholds
    # the same thresholds drawn with another seed differ only on those rows
    post.random_state = 1
    redrawn = post.predict(data)
    assert (redrawn != first).any() and (redrawn[~mixed] == first[~mixed]).all()
    assert other.holdout_indices_.tolist() != post.holdout_indices_.tolist()


def test_fairskl_classifiers_get_the_groups_and_the_seed():
    X, y, group = _tabular(300)
    inner = GroupBalancedClassifier("mlp", lr=1e-2, max_epochs=2, verbose=0, random_state=5)
    post = ThresholdOptimizedClassifier(inner, random_state=0).fit(
        SliceDict(X=X.astype(np.float32), groups=group), y)
    train = np.setdiff1d(np.arange(300), post.holdout_indices_)
    # the weights of the groups of the training rows, as GroupBalancedClassifier computes them
    counts = pd.Series(group[train]).value_counts()
    expected = len(train) / (2 * counts)
    np.testing.assert_allclose(post.estimator_.group_weights_[["a", "b"]],
                               expected[["a", "b"]])
    assert post.estimator_.random_state == 0 and inner.random_state == 5
    assert post.n_features_in_ == 4


# -- the gap it closes (the user guide's recipe, through the wrapper) ----------------------------

def test_heldout_tpr_gap_shrinks_against_the_inner_estimator():
    X, y, group = _tabular(20000)
    rows = np.arange(20000)
    fit_rows, test = rows[:12000], rows[12000:]
    post = _post().fit(SliceDict(X=X[fit_rows], groups=group[fit_rows]), y[fit_rows])
    before = tpr_difference(y[test], post.estimator_.predict(X[test]),
                            sensitive_features=group[test])
    y_post = post.predict(SliceDict(X=X[test], groups=group[test]))
    after = tpr_difference(y[test], y_post, sensitive_features=group[test])
    assert before > 0.1 and after < before / 3, (before, after)
    # the randomised classifier's expected TPR per group is the mean decision probability of
    # the group's positives: equal across the groups up to sampling noise
    proba = post.predict_proba(SliceDict(X=X[test], groups=group[test]))[:, 1]
    tpr = [proba[(group[test] == g) & (y[test] == 1)].mean() for g in ("a", "b")]
    assert abs(tpr[0] - tpr[1]) < before / 3, tpr
    assert roc_auc_score(y[test], post.estimator_.predict_proba(X[test])[:, 1]) > 0.8


# -- a search with the routed fairness scorers ---------------------------------------------------

def test_grid_search_with_routed_fairness_scorers():
    X, y, group = _tabular(600)
    data = SliceDict(X=X, groups=group)
    grid = {"constraints": ["true_positive_rate_parity", "demographic_parity"],
            "holdout_size": [0.3, 0.5]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        scoring = {"auc": "roc_auc", "tpr_difference": make_fairness_scorer("tpr_difference")}
        search = GridSearchCV(_post(), grid, scoring=scoring, cv=cv, error_score="raise",
                              refit=TradeoffRefit("auc", "tpr_difference", max_disparity=1.0))
        search.fit(data, y, sensitive_features=group)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.predict(data).shape == (600,)
    # one fold's scores by hand: the scorers got the dict X (predict and predict_proba need
    # its groups) and the fold's groups through routing
    c = search.cv_results_["params"].index({"constraints": "demographic_parity",
                                            "holdout_size": 0.5})
    fit_rows, score_rows = next(cv.split(X, y))
    model = _post(constraints="demographic_parity", holdout_size=0.5).fit(data[fit_rows],
                                                                           y[fit_rows])
    gap = tpr_difference(y[score_rows], model.predict(data[score_rows]),
                         sensitive_features=group[score_rows])
    auc = roc_auc_score(y[score_rows], model.predict_proba(data[score_rows])[:, 1])
    assert search.cv_results_["split0_test_tpr_difference"][c] == pytest.approx(-gap)
    assert search.cv_results_["split0_test_auc"][c] == pytest.approx(auc)


# -- errors that name the fix --------------------------------------------------------------------

@pytest.mark.parametrize("params, message", [
    ({"holdout_size": 1.5}, r"'holdout_size' parameter .* range \(0(\.0)?, 1(\.0)?\).* Got 1\.5"),
    ({"holdout_size": 0}, r"'holdout_size' parameter .* Got 0 instead"),
    ({"constraints": "parity"}, r"'constraints' parameter .* Got 'parity'"),
    ({"objective": "f1"}, r"'objective' parameter .* Got 'f1'"),
    ({"grid_size": 0}, r"'grid_size' parameter .* Got 0"),
    ({"constraints": "equalized_odds", "objective": "selection_rate"},
     r"objective='selection_rate' is not supported with constraints='equalized_odds'"),
], ids=lambda p: str(p) if isinstance(p, dict) else "")
def test_parameter_errors_name_the_parameter(params, message):
    X, y, group = _tabular(100)
    with pytest.raises(ValueError, match=message):
        _post(**params).fit(SliceDict(X=X, groups=group), y)


def test_groups_are_needed_in_fit_and_prediction():
    X, y, group = _tabular(200)
    with pytest.raises(ValueError, match=r"fit needs the groups inside X.*"
                                         r"SliceDict\(X=X, groups=groups\).*got ndarray"):
        _post().fit(X, y)
    with pytest.raises(ValueError, match=r"keys 'X' .* and 'groups'.*got keys \['X'\]\."):
        _post().fit({"X": X}, y)
    with pytest.raises(ValueError, match=r"got keys \['X', 'groups'\] with groups=None"):
        _post().fit({"X": X, "groups": None}, y)
    with pytest.raises(ValueError, match="missing values"):
        _post().fit({"X": X, "groups": np.where(group == "a", None, group)}, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        _post().fit({"X": X, "groups": group[:10]}, y)
    post = _post().fit(SliceDict(X=X, groups=group), y)
    for method in (post.predict, post.predict_proba):
        with pytest.raises(ValueError, match=rf"{method.__name__} needs the groups inside X"):
            method(X)


def test_unseen_group_at_prediction_is_named():
    X, y, group = _tabular(200)
    post = _post().fit(SliceDict(X=X, groups=group), y)
    new = group.copy()
    new[:3] = "c"
    # fairlearn itself would give group c a probability of 0 (never flagged), silently
    for method in (post.predict, post.predict_proba):
        with pytest.raises(ValueError, match=r"group\(s\) \['c'\], which have no thresholds; "
                                             r"it was fitted on the groups \['a', 'b'\]"):
            method(SliceDict(X=X, groups=new))


def test_labels_must_be_binary_and_cells_large_enough():
    X, y, group = _tabular(200)
    data = SliceDict(X=X, groups=group)
    with pytest.raises(ValueError, match=r"binary classification .* y has 3 classes: \[0, 1, 2\]"):
        _post().fit(data, np.arange(200) % 3)
    with pytest.raises(ValueError, match=r"y has 1 classes"):
        _post().fit(data, np.zeros(200, int))
    lonely = group.copy()
    lonely[np.flatnonzero(y == 1)[0]] = "c"
    lonely[np.flatnonzero(y == 0)[:20]] = "c"
    with pytest.raises(ValueError, match=r"cell, but \['c\|1'\] have a single row each"):
        _post().fit(SliceDict(X=X, groups=lonely), y)
    lonely[np.flatnonzero(y == 1)[1]] = "c"  # two positives of c, both in the training rows
    with pytest.raises(ValueError, match=r"group\(s\) \['c'\] have a single label.*raise "
                                         r"holdout_size \(now 0\.1\)"):
        _post(holdout_size=0.1).fit(SliceDict(X=X, groups=lonely), y)


# -- one comparison with the wrapper as a method -------------------------------------------------

def test_compare_methods_with_the_wrapper_as_a_method():
    X, y, group = _tabular(400)
    X = X.astype(np.float32)
    net = dict(lr=1e-2, max_epochs=2, verbose=0)
    estimators = {
        "erm": NIRClassifier("mlp", lambda_nir=0.0, **net),
        "balanced+thresholds": ThresholdOptimizedClassifier(GroupBalancedClassifier("mlp",
                                                                                     **net)),
    }
    result = compare_methods(estimators, SliceDict(X=X, groups=group), y,
                             sensitive_features=pd.Series(group, name="group"), cv=2,
                             max_disparity=1.0, max_auc_drop=1.0, n_bootstrap=20, verbose=0)
    labelled = result.selection.query("selection == 'group labels'")
    assert labelled.method.tolist() == ["erm", "balanced+thresholds"]
    held = result.heldout_index
    train = np.setdiff1d(np.arange(400), held)

    # the audit's held-out AUC and matched-point gap of the wrapper, by hand: refit with the
    # seed (0) on the training part, scored on the held-out rows at the fitted threshold
    model = clone(estimators["balanced+thresholds"]).set_params(random_state=0)
    model.fit(SliceDict(X=X[train], groups=group[train]), y[train])
    proba = model.predict_proba(SliceDict(X=X[held], groups=group[held]))[:, 1]
    values = result.results.query("method == 'balanced+thresholds' and "
                                  "selection == 'group labels'").set_index(
        ["attribute", "metric", "operating_point"]).value
    assert values["all", "auc", "threshold-free"] == pytest.approx(
        roc_auc_score(y[held], proba), abs=1e-6)
    threshold = result.thresholds.query(
        "method == 'balanced+thresholds' and operating_point == 'matched' and "
        "selection == 'group labels'").threshold.item()
    gap = tpr_difference(y[held], (proba >= threshold).astype(int), sensitive_features=group[held])
    assert values["group", "tpr_difference", "matched"] == pytest.approx(gap, abs=1e-6)
