"""Fairness scorers in cross_validate and GridSearchCV, with metadata routing."""

import itertools
import pickle
import warnings

import fairlearn.metrics as flm
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from fairskl import FairnessWarning
from fairskl.metrics import TradeoffRefit, make_fairness_scorer


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


def _data(n=400, seed=0, index=None):
    rng = np.random.RandomState(seed)
    sex = rng.choice(["female", "male"], n)
    age = rng.choice(["<60", "60+"], n)
    X = np.c_[rng.normal(size=(n, 3)), (sex == "male") + 0.0]
    y = (X[:, 0] + 0.8 * (sex == "male") + rng.normal(size=n) > 0.5).astype(int)
    index = np.arange(n) if index is None else index
    return (
        pd.DataFrame(X, index=index, columns=list("abcd")),
        pd.Series(y, index=index, name="y"),
        pd.DataFrame({"sex": sex, "age": age}, index=index),
    )


def _gap(values):
    return max(values) - min(values)


def _ece(y, p, n_bins=10):
    """Expected calibration error over equal-width bins (lo, hi] of [0, 1], by a loop."""
    edges = np.linspace(0, 1, n_bins + 1)
    bins = [(p > lo) & (p <= hi) | ((lo == 0) & (p == 0)) for lo, hi in itertools.pairwise(edges)]
    return sum(m.mean() * abs(y[m].mean() - p[m].mean()) for m in bins if m.any())


def _expected_fold_scores(estimator, X, y, groups, cv):
    """Every fairness score per fold, by hand: fit on train, group-wise NumPy on test."""
    X, y = np.asarray(X), np.asarray(y)
    out = {name: [] for name in ["auc", *SCORING_NAMES]}
    for train, test in cv.split(X, y):
        est = clone(estimator).fit(X[train], y[train])
        y_hat, score = est.predict(X[test]), est.predict_proba(X[test])[:, 1]
        yt, g = y[test], groups[test]
        keys = np.unique(g)
        tpr = [y_hat[(g == k) & (yt == 1)].mean() for k in keys]
        fpr = [y_hat[(g == k) & (yt == 0)].mean() for k in keys]
        sel = [y_hat[g == k].mean() for k in keys]
        aucs = np.array([roc_auc_score(yt[g == k], score[g == k]) for k in keys])
        auc = roc_auc_score(yt, score)
        out["auc"].append(auc)
        out["tpr_difference"].append(-_gap(tpr))
        out["fpr_difference"].append(-_gap(fpr))
        out["equalized_odds_difference"].append(-max(_gap(tpr), _gap(fpr)))
        out["demographic_parity_difference"].append(-_gap(sel))
        out["auc_difference"].append(-_gap(aucs))
        out["worst_group_auc"].append(aucs.min())  # higher is better: not negated
        out["equity_scaled_auc"].append(auc / (1 + np.abs(aucs - auc).sum()))
        eces = [_ece(yt[g == k], score[g == k]) for k in keys]
        out["ece_difference"].append(-_gap(eces))
    return {k: np.array(v) for k, v in out.items()}


SCORING_NAMES = [
    "tpr_difference",
    "fpr_difference",
    "equalized_odds_difference",
    "demographic_parity_difference",
    "auc_difference",
    "worst_group_auc",
    "equity_scaled_auc",
    "ece_difference",
]


def _scoring():
    return {"auc": "roc_auc", **{name: make_fairness_scorer(name) for name in SCORING_NAMES}}


def _sensitive(A, kind):
    """A as the given kind of input, and the group of each row as one string."""
    if kind == "array":
        return A["sex"].to_numpy(), A["sex"].to_numpy()
    if kind == "series":
        return A["sex"], A["sex"].to_numpy()
    return A, (A["sex"] + "|" + A["age"]).to_numpy()


@pytest.mark.parametrize("a_kind", ["array", "series", "frame"])
def test_cross_validate_matches_by_hand(routing, a_kind):
    X, y, A = _data(index=np.arange(400) * 3 + 1000)  # a non-default index everywhere
    A_in, groups = _sensitive(A, a_kind)
    cv = KFold(4, shuffle=True, random_state=0)
    got = cross_validate(
        LogisticRegression(), X, y, cv=cv, scoring=_scoring(),
        params={"sensitive_features": A_in}, error_score="raise",
    )
    expected = _expected_fold_scores(LogisticRegression(), X, y, groups, cv)
    for name, values in expected.items():
        np.testing.assert_allclose(got[f"test_{name}"], values)
    assert (got["test_tpr_difference"] < 0).all()  # disparities are negated for search


@pytest.mark.parametrize("a_kind", ["array", "series", "frame"])
def test_grid_search_per_fold_scores_and_tradeoff_refit(routing, a_kind):
    X, y, A = _data(seed=1, index=np.arange(400)[::-1] + 10)
    A_in, groups = _sensitive(A, a_kind)
    cv = KFold(3, shuffle=True, random_state=1)
    Cs = [1e-3, 1e-1, 10.0]
    bound = 0.3 if a_kind == "frame" else 0.2  # intersectional groups have larger gaps
    refit = TradeoffRefit("auc", "tpr_difference", max_disparity=bound)
    search = GridSearchCV(
        LogisticRegression(), {"C": Cs}, scoring=_scoring(), refit=refit, cv=cv,
        error_score="raise",
    ).fit(X, y, sensitive_features=A_in)
    res = search.cv_results_
    for i, C in enumerate(Cs):
        expected = _expected_fold_scores(LogisticRegression(C=C), X, y, groups, cv)
        for name, values in expected.items():
            got = [res[f"split{k}_test_{name}"][i] for k in range(3)]
            np.testing.assert_allclose(got, values)
    # the refit rule, by hand on the same table
    gap, auc = -res["mean_test_tpr_difference"], res["mean_test_auc"]
    ok = np.flatnonzero(gap <= bound)
    assert 0 < len(ok) < len(Cs)  # the bound binds
    expected_best = ok[np.argmax(auc[ok])] if len(ok) else np.argmin(gap)
    assert search.best_index_ == expected_best
    assert search.best_estimator_.C == Cs[expected_best]
    pickle.loads(pickle.dumps(search))


def test_fairlearn_metrics_without_name_in_a_dict_of_scorers(routing):
    X, y, A = _data(seed=2)
    derived = flm.make_derived_metric(metric=flm.true_positive_rate, transform="difference")
    assert not hasattr(derived, "__name__")
    scoring = {"fl_tpr": make_fairness_scorer(derived),
               "fl_eo": make_fairness_scorer(flm.equalized_odds_difference),
               "ours": make_fairness_scorer("tpr_difference")}
    got = cross_validate(LogisticRegression(), X, y, cv=3, scoring=scoring,
                         params={"sensitive_features": A["sex"]}, error_score="raise")
    np.testing.assert_allclose(got["test_fl_tpr"], got["test_ours"])
    assert (got["test_fl_eo"] <= got["test_ours"] + 1e-12).all()
    assert "true_positive_rate" in repr(scoring["fl_tpr"])


def test_misaligned_indexes_raise_inside_cross_validate(routing):
    X, y, A = _data(seed=3)
    A_shuffled = A["sex"].sample(frac=1, random_state=0)  # same values, other row order
    with pytest.raises(ValueError, match="different indexes"):
        cross_validate(LogisticRegression(), X, y, cv=3, scoring=_scoring(),
                       params={"sensitive_features": A_shuffled}, error_score="raise")


def test_absent_group_in_fold_is_nan_with_warning(routing):
    X, y, A = _data(seed=4)
    sex = pd.Series(pd.Categorical(A["sex"]), index=A.index)
    females = np.flatnonzero(sex == "female")
    only_females = (np.setdiff1d(np.arange(len(y)), females[:50]), females[:50])
    mixed = (np.arange(200, 400), np.arange(200))
    with pytest.warns(FairnessWarning, match=r"\['male'\]\} of the categorical .* no sample here"):
        got = cross_validate(LogisticRegression(), X, y, cv=[only_females, mixed],
                             scoring=_scoring(), params={"sensitive_features": sex},
                             error_score="raise")
    assert np.isnan(got["test_tpr_difference"][0]) and np.isnan(got["test_auc_difference"][0])
    assert np.isfinite(got["test_tpr_difference"][1]) and np.isfinite(got["test_auc"][0])


def test_scorer_needs_routing_and_known_metric():
    with sklearn.config_context(enable_metadata_routing=False):
        with pytest.raises(RuntimeError, match="enable_metadata_routing=True"):
            make_fairness_scorer("tpr_difference")
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(ValueError, match="Unknown fairness metric 'tpr_gap'"):
            make_fairness_scorer("tpr_gap")
        with pytest.raises(TypeError, match="name or a callable"):
            make_fairness_scorer(3)


def test_scorer_without_sensitive_features_tells_how_to_route(routing):
    X, y, _ = _data(seed=5)
    with pytest.raises(ValueError, match="enable metadata routing"):
        cross_validate(LogisticRegression(), X, y, cv=3, error_score="raise",
                       scoring={"gap": make_fairness_scorer("tpr_difference")})


def test_tradeoff_refit_rules():
    results = {"mean_test_auc": np.array([0.9, 0.85, 0.8, np.nan]),
               "mean_test_tpr_difference": np.array([-0.2, -0.05, -0.01, -0.0])}
    assert TradeoffRefit(max_disparity=0.05)(results) == 1
    assert TradeoffRefit(max_disparity=0.5)(results) == 0
    with pytest.warns(FairnessWarning, match="No candidate"):
        assert TradeoffRefit(max_disparity=0.001)(
            {**results, "mean_test_auc": np.array([0.9, 0.85, 0.8, 0.7]),
             "mean_test_tpr_difference": np.array([-0.2, -0.05, -0.01, -0.002])}
        ) == 3
    with pytest.raises(ValueError, match="scorer 'fpr_difference'"):
        TradeoffRefit(disparity="fpr_difference")(results)
    with pytest.raises(ValueError, match="not a negated"):
        TradeoffRefit(disparity="auc")(results)
    with pytest.raises(ValueError, match="max_disparity"):
        TradeoffRefit(max_disparity=-1)(results)
    with pytest.raises(ValueError, match="NaN"):
        TradeoffRefit()({"mean_test_auc": np.array([0.9]),
                         "mean_test_tpr_difference": np.array([np.nan])})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "max_disparity=0.05" in repr(TradeoffRefit())


def test_fold_without_positives_in_a_group_is_nan_with_warning(routing):
    X, y, A = _data(seed=6)
    sex = A["sex"].to_numpy()
    test = np.flatnonzero((sex == "female") & (y.to_numpy() == 0))[:30]
    test = np.r_[test, np.flatnonzero(sex == "male")[:30]]  # females in it: negatives only
    split = [(np.setdiff1d(np.arange(len(y)), test), test)]
    with pytest.warns(FairnessWarning, match=r"tpr is undefined for group\(s\) \['female'\]"):
        got = cross_validate(LogisticRegression(), X, y, cv=split, error_score="raise",
                             scoring={"tpr": make_fairness_scorer("tpr_difference"),
                                      "fpr": make_fairness_scorer("fpr_difference")},
                             params={"sensitive_features": sex})
    assert np.isnan(got["test_tpr"][0]) and np.isfinite(got["test_fpr"][0])


def test_expected_groups_through_the_scorer_for_plain_arrays(routing):
    X, y, A = _data(seed=7)
    sex = A["sex"].to_numpy()
    only_females = np.flatnonzero(sex == "female")[:40]
    split = [(np.setdiff1d(np.arange(len(y)), only_females), only_females)]
    scorer = make_fairness_scorer("tpr_difference", expected_groups=["female", "male"])
    with pytest.warns(FairnessWarning, match=r"\['male'\]"):
        got = cross_validate(LogisticRegression(), X, y, cv=split, error_score="raise",
                             scoring={"gap": scorer}, params={"sensitive_features": sex})
    assert np.isnan(got["test_gap"][0])


def test_routing_disabled_at_fit_time_fails_loudly():
    # scikit-learn hands sensitive_features to the estimator's fit when routing is off; the
    # search must not run silently without them (documented in the user guide).
    X, y, A = _data(seed=8)
    with sklearn.config_context(enable_metadata_routing=True):
        scoring = {"gap": make_fairness_scorer("tpr_difference")}
    with pytest.raises(ValueError, match="fits failed"):
        GridSearchCV(LogisticRegression(), {"C": [1.0]}, scoring=scoring, refit=False,
                     cv=3).fit(X, y, sensitive_features=A["sex"])


def test_equalized_odds_scorer_passes_agg_on(routing):
    X, y, A = _data(seed=9)
    sex = A["sex"].to_numpy()
    cv = KFold(3, shuffle=True, random_state=0)
    scoring = {agg: make_fairness_scorer("equalized_odds_difference", agg=agg)
               for agg in ["worst_case", "mean"]}
    got = cross_validate(LogisticRegression(), X, y, cv=cv, scoring=scoring,
                         params={"sensitive_features": sex}, error_score="raise")
    Xa, ya = X.to_numpy(), y.to_numpy()
    for k, (train, test) in enumerate(cv.split(Xa, ya)):
        y_hat = LogisticRegression().fit(Xa[train], ya[train]).predict(Xa[test])
        yt, g = ya[test], sex[test]
        tpr = [y_hat[(g == s) & (yt == 1)].mean() for s in ["female", "male"]]
        fpr = [y_hat[(g == s) & (yt == 0)].mean() for s in ["female", "male"]]
        gaps = [abs(tpr[0] - tpr[1]), abs(fpr[0] - fpr[1])]
        assert got["test_worst_case"][k] == pytest.approx(-max(gaps))
        assert got["test_mean"][k] == pytest.approx(-np.mean(gaps))
