"""Fairness scorers in cross_validate and GridSearchCV, with metadata routing."""

import itertools
import pickle
import re
import warnings

import fairlearn.metrics as flm
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import Pipeline

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
    # the refit rule, by hand on the same table: fair enough and within 0.01 of the best AUC
    gap, auc = -res["mean_test_tpr_difference"], res["mean_test_auc"]
    ok = np.flatnonzero((gap <= bound) & (auc >= auc.max() - 0.01))
    assert 0 < len(ok) < len(Cs)  # the bound binds
    assert np.argmax(auc) not in ok  # ... and excludes the best AUC
    expected_best = ok[np.argmax(auc[ok])]
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
        with pytest.raises(ValueError, match=r"'metric' .* str among .* Got 'tpr_gap'"):
            make_fairness_scorer("tpr_gap")
        with pytest.raises(TypeError, match=r"'metric' .* or a callable\. Got 3"):
            make_fairness_scorer(3)


def test_scorer_without_sensitive_features_tells_how_to_route(routing):
    X, y, _ = _data(seed=5)
    with pytest.raises(ValueError, match="enable metadata routing"):
        cross_validate(LogisticRegression(), X, y, cv=3, error_score="raise",
                       scoring={"gap": make_fairness_scorer("tpr_difference")})


def test_tradeoff_refit_rules():
    results = {"mean_test_auc": np.array([0.9, 0.85, 0.8, np.nan]),
               "mean_test_tpr_difference": np.array([-0.2, -0.05, -0.01, -0.0])}
    assert TradeoffRefit(max_disparity=0.05, max_drop=0.1)(results) == 1
    assert TradeoffRefit(max_disparity=0.5)(results) == 0
    # none within the bound: the best AUC (the reference), no longer the smallest gap (3)
    with pytest.warns(FairnessWarning, match="No candidate"):
        assert TradeoffRefit(max_disparity=0.001)(
            {**results, "mean_test_auc": np.array([0.9, 0.85, 0.8, 0.7]),
             "mean_test_tpr_difference": np.array([-0.2, -0.05, -0.01, -0.002])}
        ) == 0
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


# --- TradeoffRefit: a floor on performance keeps collapsed models out ---------------------------


def _results(auc, gap, params=None):
    """A cv_results table from mean AUCs and (positive) gaps."""
    out = {"mean_test_auc": np.asarray(auc, float),
           "mean_test_tpr_difference": -np.asarray(gap, float)}
    return out if params is None else {**out, "params": params}


def _pick_by_hand(auc, gap, max_disparity, floor, reference):
    """The specified rule by a plain loop: best AUC among the candidates within the bound and
    at or above the floor (lowest index on ties), else the reference."""
    best = None
    for i, (a, g) in enumerate(zip(auc, gap, strict=True)):
        if g <= max_disparity and a >= floor and not np.isnan(a):
            if best is None or a > auc[best]:
                best = i
    return (reference, True) if best is None else (best, False)


def test_tradeoff_refit_never_picks_a_constant_predictor_in_a_search(routing):
    X, y, A = _data(seed=10)
    sex = A["sex"].to_numpy()
    constant = DummyClassifier(strategy="constant", constant=0)
    pipe = Pipeline([("clf", LogisticRegression())])
    grid = {"clf": [LogisticRegression(C=0.01), LogisticRegression(C=1.0), constant]}
    cv = KFold(3, shuffle=True, random_state=0)

    def search(refit):
        return GridSearchCV(pipe, grid, scoring=_scoring(), refit=refit, cv=cv,
                            error_score="raise").fit(X, y, sensitive_features=sex)

    table = search(False).cv_results_
    auc, gap = table["mean_test_auc"], -table["mean_test_tpr_difference"]
    # the constant predictor, by hand: AUC 0.5 and no gap, as every TPR is 0
    Xa, ya = X.to_numpy(), y.to_numpy()
    for k, (_, test) in enumerate(cv.split(Xa, ya)):
        assert table[f"split{k}_test_auc"][2] == roc_auc_score(ya[test], np.zeros(len(test)))
    assert auc[2] == 0.5 and gap[2] == 0.0
    assert (gap[:2] > 0.01).all()  # the logistic models have a gap above the tight bound
    tight = 0.01
    old_rule = np.flatnonzero(gap <= tight)  # best among fair enough: only the constant one
    assert list(old_rule) == [2]
    with pytest.warns(FairnessWarning, match=r"candidate\(s\) \[2\] within max_disparity all "
                                             r"score below the floor"):
        chosen = search(TradeoffRefit("auc", "tpr_difference", max_disparity=tight))
    assert chosen.best_index_ == np.argmax(auc) != 2
    assert isinstance(chosen.best_estimator_["clf"], LogisticRegression)
    assert len(np.unique(chosen.best_estimator_.predict(X))) == 2
    # a loose bound: the best AUC among the logistic models within it, without a warning
    loose = float(gap[:2].max())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chosen = search(TradeoffRefit("auc", "tpr_difference", max_disparity=loose,
                                      max_drop=1.0))
    assert chosen.best_index_ == np.argmax(auc[:2])


def test_tradeoff_refit_absolute_min_score():
    results = _results([0.9, 0.85, 0.8, 0.7], [0.2, 0.05, 0.01, 0.0])
    refit = TradeoffRefit(max_disparity=0.02, min_score=0.75)
    assert refit(results) == 2
    assert (refit.floor_, refit.reference_index_, refit.fallback_) == (0.75, 0, False)
    refit = TradeoffRefit(max_disparity=0.02, min_score=0.75, max_drop=0.0)  # max_drop ignored
    assert refit(results) == 2
    refit = TradeoffRefit(max_disparity=0.02, min_score=0.82)
    with pytest.warns(FairnessWarning, match=r">= 0\.82 \(the floor: min_score=0\.82\)"):
        assert refit(results) == 0
    assert refit.fallback_ and refit.floor_ == 0.82
    # a floor above every candidate: the reference is refitted, and the warning says it is low
    with pytest.warns(FairnessWarning, match="below the floor itself: lower min_score"):
        assert TradeoffRefit(max_disparity=0.5, min_score=0.95)(results) == 0


def test_tradeoff_refit_reference_by_index_and_by_params():
    params = [{"lambda_nir": 0.5, "seed": 0}, {"lambda_nir": 0.0, "seed": 0},
              {"lambda_nir": 0.1, "seed": 0}, {"lambda_nir": 1.0, "seed": 0}]
    results = _results([0.9, 0.85, 0.8, 0.7], [0.2, 0.05, 0.01, 0.0], params)
    # from candidate 1: floor 0.85 - 0.06 = 0.79, so candidate 2 (0.8, gap 0.01) qualifies
    for reference in (1, np.int64(1), {"lambda_nir": 0.0}, {"lambda_nir": 0, "seed": 0}):
        refit = TradeoffRefit(max_disparity=0.02, max_drop=0.06, reference=reference)
        assert refit(results) == 2
        assert refit.reference_index_ == 1 and refit.floor_ == pytest.approx(0.79)
    # from the best (0.9): floor 0.84, nothing qualifies, the best is refitted
    with pytest.warns(FairnessWarning, match="reference candidate 0"):
        assert TradeoffRefit(max_disparity=0.02, max_drop=0.06)(results) == 0
    # from candidate 1 with a smaller drop: nothing qualifies, candidate 1 is refitted
    refit = TradeoffRefit(max_disparity=0.02, reference={"lambda_nir": 0.0})
    with pytest.warns(FairnessWarning, match=r"candidate 1's 0\.85 minus max_drop=0\.01"):
        assert refit(results) == 1
    assert refit.fallback_ and refit.floor_ == pytest.approx(0.84)
    with pytest.raises(ValueError, match=r"reference=\{'lambda_nir': 2\.0\} must match exactly "
                                         r"one candidate .* no candidate"):
        TradeoffRefit(reference={"lambda_nir": 2.0})(results)
    with pytest.raises(ValueError, match=r"candidates \[0, 1, 2, 3\] match"):
        TradeoffRefit(reference={"seed": 0})(results)
    with pytest.raises(ValueError, match="cv_results has no 'params'"):
        TradeoffRefit(reference={"lambda_nir": 0.0})(_results([0.9], [0.0]))
    with pytest.raises(ValueError, match=r"reference=4 is not a candidate index: .* 4 "
                                         r"candidates \(0 to 3\)"):
        TradeoffRefit(reference=4)(results)
    with pytest.raises(ValueError, match="reference=-1 is not a candidate index"):
        TradeoffRefit(reference=-1)(results)
    with pytest.raises(ValueError, match="reference candidate 3 has a NaN"):
        TradeoffRefit(reference=3)(_results([0.9, 0.8, 0.7, np.nan], [0.1] * 4))


def test_tradeoff_refit_falls_back_to_the_reference_and_never_below_the_floor():
    rng = np.random.RandomState(0)
    n_fallback = 0
    for _ in range(300):
        n = rng.randint(1, 8)
        auc = rng.uniform(0.4, 1.0, n).round(2)
        gap = rng.uniform(0.0, 0.3, n).round(2)
        auc[rng.uniform(size=n) < 0.15] = np.nan
        gap[rng.uniform(size=n) < 0.15] = np.nan
        if np.isnan(gap).all() or np.isnan(auc).all():
            continue
        max_disparity, max_drop = rng.choice([0.0, 0.05, 0.1, 0.3]), rng.choice([0.0, 0.02, 0.1])
        kind = rng.randint(3)
        min_score = rng.choice([0.5, 0.7, 0.9]) if kind == 2 else None
        reference = None
        if kind == 1:
            reference = int(rng.choice(np.flatnonzero(~np.isnan(auc))))
        expected_reference = np.nanargmax(auc) if reference is None else reference
        floor = min_score if min_score is not None else auc[expected_reference] - max_drop
        refit = TradeoffRefit(max_disparity=max_disparity, max_drop=max_drop,
                              min_score=min_score, reference=reference)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            chosen = refit(_results(auc, gap))
        expected, fallback = _pick_by_hand(auc, gap, max_disparity, floor, expected_reference)
        assert chosen == expected and refit.fallback_ == fallback
        assert refit.reference_index_ == expected_reference
        assert refit.floor_ == pytest.approx(floor)
        assert auc[chosen] >= floor or chosen == expected_reference
        if fallback:
            n_fallback += 1
            assert [w.category for w in caught] == [FairnessWarning]
        else:
            assert gap[chosen] <= max_disparity and not caught
    assert 30 < n_fallback < 270  # both branches were exercised


@pytest.mark.parametrize("params, chosen, warns", [
    ([{"C": 0.01}, {"C": 0.1}, {"C": 1.0}], 2, True),
    ([{"C": 1.0}, {"C": 0.1}, {"C": 0.01}], 0, True),  # grid order does not matter
    ([{"C": 1, "penalty": "l2"}, {"C": 0.1, "penalty": "l2"}, {"C": 3, "penalty": "l2"}], 2,
     True),
    ([{"C": 0.01}, {"C": 0.1}, {"C": 1.0}], 1, False),  # not the largest value
    ([{"C": 0.01}, {"C": 0.01}, {"C": 1.0}], 2, False),  # two distinct values
    ([{"C": 0.01, "tol": 1}, {"C": 0.1, "tol": 2}, {"C": 1.0, "tol": 3}], 2, False),  # 2-D
    ([{"C": 0.01}, {"C": 0.1}, {"tol": 1.0}], 2, False),  # a list of grids
    ([{"s": "a"}, {"s": "b"}, {"s": "c"}], 2, False),  # not numeric
    ([{"b": False}, {"b": True}, {"b": 0.5}], 1, False),  # a bool is not a grid value
    (None, 2, False),  # no params
])
def test_tradeoff_refit_warns_at_the_edge_of_a_one_dimensional_grid(params, chosen, warns):
    auc = np.full(3, 0.8)
    auc[chosen] = 0.9
    results = _results(auc, [0.01, 0.01, 0.01], params)
    refit = TradeoffRefit(max_disparity=0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert refit(results) == chosen and not refit.fallback_
    messages = [str(w.message) for w in caught if w.category is FairnessWarning]
    assert len(caught) == len(messages) == int(warns)
    if warns:
        name = next(iter(params[0]))
        assert f"largest {name} of the grid" in messages[0] and "Widen the grid" in messages[0]


def test_tradeoff_refit_checks_its_parameters():
    results = _results([0.9, 0.8], [0.1, 0.0])
    for value in (-0.1, "0.01", None, True, np.nan):
        with pytest.raises(ValueError, match=rf"max_drop must be a real number >= 0 .* got "
                                             rf"{re.escape(repr(value))}\. Pass e\.g\."):
            TradeoffRefit(max_drop=value)(results)
    for value in ("high", np.nan, np.inf, False):
        with pytest.raises(ValueError, match=rf"min_score must be None or a finite real number "
                                             rf".* got {re.escape(repr(value))}\."):
            TradeoffRefit(min_score=value)(results)
    for value in (1.0, "0", [0], True):
        with pytest.raises(ValueError, match=rf"reference must be None .* got "
                                             rf"{re.escape(repr(value))}\."):
            TradeoffRefit(reference=value)(results)
    with pytest.raises(ValueError, match="Every candidate has a NaN mean_test_auc"):
        TradeoffRefit()(_results([np.nan, np.nan], [0.1, 0.0]))
    with pytest.raises(ValueError, match="Every candidate has a NaN tpr_difference"):
        TradeoffRefit(reference=0)(_results([0.9, 0.8], [np.nan, np.nan]))
    refit = TradeoffRefit("auc", "fpr_difference", 0.1, max_drop=0.02, min_score=0.7,
                          reference={"C": 1.0})
    assert repr(refit) == ("TradeoffRefit(performance='auc', disparity='fpr_difference', "
                           "max_disparity=0.1, max_drop=0.02, min_score=0.7, "
                           "reference={'C': 1.0})")
    with pytest.raises(TypeError):
        TradeoffRefit("auc", "tpr_difference", 0.05, 0.01)  # max_drop is keyword-only


def test_fairness_scorer_at_an_operating_point():
    """At ("rate", r) the scorer flags the top r of the fold's scores; a model that shrinks
    every probability (fewer cases flagged at 0.5) has the same gap there as before."""
    rng = np.random.RandomState(0)
    n = 600
    A = rng.randint(0, 2, n)
    X = np.c_[rng.normal(size=n), A]
    y = (X[:, 0] + 0.8 * A + rng.normal(size=n) > 0.5).astype(int)
    model = LogisticRegression().fit(X, y)

    class Shrunk(LogisticRegression):  # the same ranking, every probability x 0.3
        def predict_proba(self, X):
            p = super().predict_proba(X)[:, 1] * 0.3
            return np.c_[1 - p, p]

        def predict(self, X):
            return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    shrunk = Shrunk().fit(X, y)
    with sklearn.config_context(enable_metadata_routing=True):
        at_half = make_fairness_scorer("fpr_difference")
        at_rate = make_fairness_scorer("fpr_difference", operating_point=("rate", 0.3))
        score = model.predict_proba(X)[:, 1]
        flagged = score >= np.sort(score)[::-1][int(round(0.3 * n)) - 1]
        by_hand = abs(np.mean(flagged[(y == 0) & (A == 1)]) - np.mean(flagged[(y == 0) & (A == 0)]))
        assert -at_rate(model, X, y, sensitive_features=A) == pytest.approx(by_hand)
        assert -at_rate(shrunk, X, y, sensitive_features=A) == pytest.approx(by_hand)
        assert -at_half(shrunk, X, y, sensitive_features=A) < -at_half(model, X, y,
                                                                      sensitive_features=A)
        with pytest.raises(ValueError, match="operating_point must be a threshold"):
            make_fairness_scorer("tpr_difference", operating_point=("top", 0.3))
        with pytest.raises(ValueError, match="needs no threshold"):
            make_fairness_scorer("auc_difference", operating_point=0.5)
