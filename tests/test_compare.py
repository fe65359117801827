"""compare_methods: selection on training folds only, paired held-out audit, resume, figures."""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_positive_rate, true_positive_rate
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier
from skorch.helper import SliceDict

from fairskl.exceptions import FairnessWarning
from fairskl.experiments import _heldout, compare_methods, plot_method_comparison


def _data(n=400, seed=0):
    rng = np.random.RandomState(seed)
    sex = rng.choice(["female", "male"], n)
    age = rng.choice(["<40", "40-60", "60+"], n)
    X = rng.normal(size=(n, 4))
    X[:, 1] += (sex == "male")  # a shortcut feature
    y = (X[:, 0] + 0.8 * (sex == "male") + rng.normal(size=n) > 0.4).astype(int)
    return X, y, pd.DataFrame({"sex": sex, "age": age})


def _gap(metric, y, y_pred, groups):
    return MetricFrame(metrics=metric, y_true=y, y_pred=y_pred,
                       sensitive_features=groups).difference()


def _top(proba, n):
    """0/1 predictions flagging the ``n`` highest scores (ties: the first)."""
    pred = np.zeros(len(proba), int)
    pred[np.argsort(-proba, kind="stable")[:n]] = 1
    return pred


def test_selection_and_heldout_values_match_a_hand_computation():
    X, y, A = _data()
    grid = {"max_depth": [1, 2, 3, 6], "min_samples_leaf": [1, 20]}
    estimators = {"logistic": LogisticRegression(), "tree": DecisionTreeClassifier()}
    kwargs = dict(sensitive_features=A, param_grids={"tree": grid}, cv=3, seeds=(7,),
                  select_on="sex", n_bootstrap=50, random_state=0, verbose=0)
    first = compare_methods(estimators, X, y, max_disparity=1.0, max_auc_drop=1.0, **kwargs)
    test = first.heldout_index
    train = np.setdiff1d(np.arange(len(y)), test)
    assert len(test) == pytest.approx(0.3 * len(y), abs=2)

    # the selection, by hand: the same folds of the training part, scored by sklearn/fairlearn;
    # the tree read at 0.5 and where it flags as many rows of the fold as the logistic at 0.5
    strata = pd.Series(y[train]).astype(str) + "|" + A.sex.iloc[train].to_numpy()
    folds = StratifiedKFold(3, shuffle=True, random_state=0).split(train, strata)
    candidates = [dict(max_depth=d, min_samples_leaf=m) for d in grid["max_depth"]
                  for m in grid["min_samples_leaf"]]
    auc, gap, matched = (np.zeros((len(candidates), 3)) for _ in range(3))
    ref_auc, oof, ref_oof = np.zeros(3), np.zeros((len(candidates), len(train))), \
        np.zeros(len(train))
    for k, (fit_rows, score_rows) in enumerate(folds):
        positions = score_rows
        fit_rows, score_rows = train[fit_rows], train[score_rows]
        sex = A.sex.to_numpy()[score_rows]
        ref = LogisticRegression().fit(X[fit_rows], y[fit_rows]).predict_proba(
            X[score_rows])[:, 1]
        ref_auc[k], ref_oof[positions] = roc_auc_score(y[score_rows], ref), ref
        for c, params in enumerate(candidates):
            model = DecisionTreeClassifier(random_state=0, **params).fit(X[fit_rows], y[fit_rows])
            proba = model.predict_proba(X[score_rows])[:, 1]
            oof[c, positions] = proba
            auc[c, k] = roc_auc_score(y[score_rows], proba)
            gap[c, k] = _gap(true_positive_rate, y[score_rows], proba >= 0.5, sex)
            n_flagged = int((ref >= 0.5).sum())
            flagged = proba >= np.sort(proba)[::-1][n_flagged - 1]  # ties flagged together
            matched[c, k] = _gap(true_positive_rate, y[score_rows], flagged, sex)
    cv = first.cv_results.query("method == 'tree'").sort_values(["candidate", "fold"])
    np.testing.assert_allclose(cv.query("metric == 'auc'").value, auc.ravel(), rtol=1e-9)
    np.testing.assert_allclose(cv.query("metric == 'tpr_difference'").value, gap.ravel(),
                               rtol=1e-9)
    np.testing.assert_allclose(cv.query("metric == 'tpr_difference_matched'").value,
                               matched.ravel(), rtol=1e-9)
    # a bound that excludes the candidate of the best AUC, so that the rule matters; the floor
    # (the logistic's AUC minus the drop) excludes the worst candidate
    gaps = matched.mean(axis=1)
    top = gaps[auc.mean(axis=1).argmax()]
    max_disparity = float((top + gaps[gaps < top].max()) / 2)
    drop = ref_auc.mean() - auc.mean(axis=1).min() - 1e-9
    result = compare_methods(estimators, X, y, max_disparity=max_disparity, max_auc_drop=drop,
                             **kwargs)
    within = matched.mean(axis=1) <= max_disparity
    ok = within & (auc.mean(axis=1) >= ref_auc.mean() - drop)
    assert ok.any() and (within & ~ok).any()  # the floor matters too
    best = int(np.flatnonzero(ok)[np.argmax(auc.mean(axis=1)[ok])])
    # without group labels: the best mean AUC alone, here a candidate the bound excludes
    best_auc = int(auc.mean(axis=1).argmax())
    assert best_auc != best
    for selection, pick in [("group labels", best), ("no labels", best_auc)]:
        _check_by_hand(result, selection, pick, candidates, auc, matched, oof, ref_oof,
                       X, y, A, train, test)
    assert set(result.selection.selection) == {"group labels", "no labels"}
    # the logistic is chosen by both and refitted once: 2 methods' values + the tree's
    # changes per selection, 3 refits in all; the logistic is also read at the tree's rate
    # (one more operating point), and the tree's change against it there (the control)
    per_point = 3 + 3 * 5 + 2 * 2
    per_method = 1 + 5 + 2 + 2 * per_point
    assert len(result.summary) == 2 * (3 * per_method + 2 * per_point)
    assert set(result.results.seed) == {7}
    assert len(result.results) == 2 * (2 * per_method + per_point)


def _check_by_hand(result, selection, best, candidates, auc, matched, oof, ref_oof, X, y, A,
                   train, test):
    """One selection's choice, thresholds and held-out values against a hand computation."""
    chosen = result.selection.query("selection == @selection").set_index("method")
    assert chosen.loc["tree", "candidate"] == best
    assert chosen.loc["tree", "params_dict"] == candidates[best]
    assert chosen.loc["tree", "cv_auc"] == pytest.approx(auc[best].mean(), rel=1e-9)
    assert chosen.loc["tree", "cv_tpr_difference"] == pytest.approx(matched[best].mean(),
                                                                   rel=1e-9)
    assert chosen.loc["logistic", "params"] == "{}"

    # the operating points: the tree's matched threshold is the k-th largest of its out-of-fold
    # probabilities of the training part, k the number of rows the logistic flags at 0.5
    thresholds = result.thresholds.query("selection == @selection").set_index(
        ["method", "operating_point"]).threshold
    assert thresholds["logistic", "matched"] == thresholds["logistic", "0.5"] == 0.5
    t = thresholds["tree", "matched"]
    assert t == np.sort(oof[best])[::-1][int((ref_oof >= 0.5).sum()) - 1]
    # the control: the logistic where it flags as many out-of-fold rows as the tree at 0.5
    control = thresholds["logistic", "rate of tree"]
    assert control == np.sort(ref_oof)[::-1][int((oof[best] >= 0.5).sum()) - 1]

    # the held-out values, by hand: refit on the training part with the seed
    summary = result.summary.query("selection == @selection").set_index(
        ["method", "comparison", "attribute", "group", "metric", "operating_point"])
    by_hand = {}
    for name, model, points in [
            ("logistic", LogisticRegression(), [("matched", 0.5), ("rate of tree", control)]),
            ("tree", DecisionTreeClassifier(random_state=7, **candidates[best]),
             [("matched", t)])]:
        model.fit(X[train], y[train])
        proba = model.predict_proba(X[test])[:, 1]
        by_hand[name, "all", "all", "auc", "threshold-free"] = roc_auc_score(y[test], proba)
        for op, cut in [("0.5", 0.5), *points]:
            by_hand[name, "all", "all", "positive_rate", op] = np.mean(proba >= cut)
            for attribute in ("sex", "age"):
                groups = A[attribute].to_numpy()[test]
                for metric, rate in [("tpr_difference", true_positive_rate),
                                     ("fpr_difference", false_positive_rate)]:
                    by_hand[name, attribute, "all", metric, op] = _gap(
                        rate, y[test], proba >= cut, groups)
                male = groups == "male"
                if attribute == "sex":
                    by_hand[name, "sex", "male", "tpr", op] = np.mean(
                        proba[male & (y[test] == 1)] >= cut)
        auc_by_group = [roc_auc_score(y[test][A.sex.to_numpy()[test] == g],
                                      proba[A.sex.to_numpy()[test] == g])
                        for g in ("female", "male")]
        by_hand[name, "sex", "all", "auc_difference", "threshold-free"] = abs(
            auc_by_group[0] - auc_by_group[1])
    for (name, attribute, group, metric, op), value in by_hand.items():
        row = summary.loc[(name, "value", attribute, group, metric, op)]
        assert row.value == pytest.approx(value, rel=1e-9), (name, attribute, metric, op)
        assert row.ci_low <= row.value <= row.ci_high and row.n_seeds == 1
        if name == "tree":
            change = summary.loc[("tree", "change vs logistic", attribute, group, metric, op),
                                 "value"]
            assert change == pytest.approx(
                value - by_hand["logistic", attribute, group, metric, op], abs=1e-12)
        if name == "tree" and op == "0.5":
            change = summary.loc[("tree", "change vs logistic at the same rate", attribute,
                                  group, metric, op), "value"]
            assert change == pytest.approx(
                value - by_hand["logistic", attribute, group, metric, "rate of tree"],
                abs=1e-12)


def test_selection_never_chooses_a_collapsed_candidate():
    """A constant predictor has no gap; the AUC floor keeps the rule from choosing it."""
    X, y, A = _data()
    constant = DummyClassifier(strategy="constant", constant=0)
    estimators = {"logistic": LogisticRegression(),
                  "pipe": Pipeline([("clf", LogisticRegression())])}
    grid = {"pipe": {"clf": [constant, LogisticRegression()]}}
    with pytest.warns(FairnessWarning, match=r"compare_methods \('pipe'\): No candidate"):
        result = compare_methods(estimators, X, y, sensitive_features=A, param_grids=grid,
                                 select_on="sex", max_disparity=0.01, n_bootstrap=20,
                                 operating_point=0.5, verbose=0)
    cv = result.cv_results.query("method == 'pipe'")
    collapsed = cv.query("candidate == 0").set_index("metric").value
    assert (collapsed["positive_rate"] == 0).all() and (collapsed["tpr_difference"] == 0).all()
    assert (collapsed["auc"] == 0.5).all()
    assert (cv.query("candidate == 1 and metric == 'tpr_difference'").value.mean() > 0.01)
    # the old rule ("else the smallest gap") chose the constant predictor; the floor refuses it
    # with the group labels and without (the best AUC): the constant predictor never
    assert (result.selection.query("method == 'pipe'").candidate == 1).all()


def test_selection_averages_over_cv_seeds():
    X, y, A = _data()
    estimators = {"logistic": LogisticRegression(), "tree": DecisionTreeClassifier()}
    kwargs = dict(sensitive_features=A, param_grids={"tree": {"max_depth": [1, 3]}},
                  max_disparity=1.0, max_auc_drop=1.0, n_bootstrap=20, verbose=0)
    one = compare_methods(estimators, X, y, cv_seeds=(5,), **kwargs)
    two = compare_methods(estimators, X, y, cv_seeds=(5, 6), **kwargs)
    assert set(one.cv_results.seed) == {5} and set(two.cv_results.seed) == {5, 6}
    # the seed-5 folds are the same in both runs; seed 6 cuts other folds
    first = two.cv_results.query("seed == 5").reset_index(drop=True)
    pd.testing.assert_frame_equal(first, one.cv_results)
    assert not np.allclose(two.cv_results.query("seed == 6").value, first.value)
    # the rule reads the mean over every fold of both seeds
    tree = two.cv_results.query("method == 'tree' and metric == 'auc'")
    means = tree.groupby("candidate").value.mean()
    chosen = two.selection.query("selection == 'group labels'").set_index("method").loc["tree"]
    assert chosen.candidate == means.idxmax()
    assert chosen.cv_auc == pytest.approx(means.max())


def test_no_heldout_data_reaches_selection():
    X, y, A = _data()
    rng = np.random.RandomState(1)
    test = rng.permutation(len(y))[:120]
    train = np.setdiff1d(np.arange(len(y)), test)
    estimators = {"logistic": LogisticRegression(),
                  "tree": DecisionTreeClassifier(min_samples_leaf=10)}
    kwargs = dict(sensitive_features=A.iloc[train], param_grids={
        "tree": {"max_depth": [2, 4]}, "logistic": {"C": [0.01, 1.0]}}, max_disparity=1.0,
        max_auc_drop=1.0, n_bootstrap=30, verbose=0)
    A_test = A.iloc[test].reset_index(drop=True)
    real = compare_methods(estimators, X[train], y[train], heldout=(X[test], y[test], A_test),
                           **kwargs)
    shuffled = compare_methods(estimators, X[train], y[train],
                               heldout=(X[test], rng.permutation(y[test]), A_test), **kwargs)
    pd.testing.assert_frame_equal(real.selection, shuffled.selection)
    pd.testing.assert_frame_equal(real.cv_results, shuffled.cv_results)
    assert len(real.cv_results) == 2 * 2 * 3 * 8  # methods x candidates x folds x metrics
    auc = {name: r.summary.query("metric == 'auc' and comparison == 'value'").value.to_numpy()
           for name, r in [("real", real), ("shuffled", shuffled)]}
    assert (auc["real"] > 0.7).all() and (np.abs(auc["shuffled"] - 0.5) < 0.15).all()
    assert real.heldout_index is None


def test_several_heldout_sets_share_one_selection():
    X, y, A = _data()
    test = np.arange(300, 400)
    kwargs = dict(sensitive_features=A.iloc[:300], param_grids={"tree": {"max_depth": [2, 4]}},
                  max_disparity=1.0, max_auc_drop=1.0, n_bootstrap=30, verbose=0)
    estimators = {"logistic": LogisticRegression(), "tree": DecisionTreeClassifier()}
    A_test = A.iloc[test].reset_index(drop=True)
    flipped = (X[test] * [1, -1, 1, 1], y[test], A_test)  # a shifted scenario
    both = compare_methods(estimators, X[:300], y[:300], heldout={
        "default": (X[test], y[test], A_test), "shifted": flipped}, **kwargs)
    alone = compare_methods(estimators, X[:300], y[:300], heldout=flipped, **kwargs)
    pd.testing.assert_frame_equal(both.selection, alone.selection)
    assert set(both.summary.scenario) == {"default", "shifted"}
    mine = both.summary[both.summary.scenario == "shifted"].drop(columns="scenario")
    pd.testing.assert_frame_equal(mine.reset_index(drop=True),
                                  alone.summary.drop(columns="scenario"))
    assert set(alone.summary.scenario) == {"heldout"}
    ax = plot_method_comparison(both.summary, scenario="shifted", attribute="sex")
    assert len(ax.containers) == 2
    with pytest.raises(ValueError, match=r"heldout\['bad'\]'s y_test must have one label"):
        compare_methods(estimators, X[:300], y[:300],
                        heldout={"bad": (X[test], y[test][:5], A_test)}, **kwargs)


def test_groups_stay_on_one_side_of_the_heldout_split():
    X, y, A = _data()
    groups = np.arange(len(y)) // 4  # e.g. four images per lesion
    result = compare_methods({"logistic": LogisticRegression()}, X, y, sensitive_features=A,
                             groups=groups, max_disparity=1.0, n_bootstrap=10, verbose=0)
    test = result.heldout_index
    train = np.setdiff1d(np.arange(len(y)), test)
    assert not set(groups[test]) & set(groups[train])
    assert 0.2 < len(test) / len(y) < 0.4


class DictLogistic(ClassifierMixin, BaseEstimator):
    """A logistic regression on X["X"] of a SliceDict (the other keys are ignored)."""

    def __init__(self, C=1.0):
        self.C = C

    def fit(self, X, y):
        assert isinstance(X, SliceDict) and X["X"].shape[0] == len(X["groups"])
        self.model_ = LogisticRegression(C=self.C).fit(X["X"], y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X["X"])

    def predict(self, X):
        return self.model_.predict(X["X"])


def test_slicedict_X_gives_the_results_of_the_array():
    X, y, A = _data()
    codes = (A.sex == "male").to_numpy().astype(int)
    kwargs = dict(sensitive_features=A, param_grids={"m": {"C": [0.01, 1.0]}},
                  max_disparity=1.0, max_auc_drop=1.0, n_bootstrap=30, verbose=0)
    on_dict = compare_methods({"m": DictLogistic()}, SliceDict(X=X, groups=codes), y, **kwargs)
    on_array = compare_methods({"m": LogisticRegression()}, X, y, **kwargs)
    pd.testing.assert_frame_equal(on_dict.summary, on_array.summary)
    pd.testing.assert_frame_equal(on_dict.cv_results, on_array.cv_results)
    np.testing.assert_array_equal(on_dict.heldout_index, on_array.heldout_index)


FITS = {"n": 0, "fail_at": None}


class CountingLogistic(LogisticRegression):
    """Counts its fits in FITS; raises on fit number FITS["fail_at"] (an interruption)."""

    def fit(self, X, y, sample_weight=None):
        FITS["n"] += 1
        if FITS["n"] == FITS["fail_at"]:
            raise RuntimeError("interrupted")
        return super().fit(X, y, sample_weight)


def test_checkpoint_resumes_without_refitting_finished_units(tmp_path):
    X, y, A = _data(300)
    estimators = {"a": CountingLogistic(), "b": CountingLogistic(C=0.5)}
    kwargs = dict(sensitive_features=A, param_grids={"a": {"C": [0.1, 1.0]}}, seeds=(0, 1),
                  max_disparity=1.0, max_auc_drop=1.0, n_bootstrap=20, verbose=0)
    n_units = 2 * 3 + 3 + 2 * 2  # a's candidates x folds, b's folds, then (a, b) x seeds
    FITS.update(n=0, fail_at=None)
    expected = compare_methods(estimators, X, y, **kwargs)
    assert FITS["n"] == n_units

    folder = tmp_path / "ckpt"
    FITS.update(n=0, fail_at=3)
    with pytest.raises(RuntimeError, match="interrupted"):
        compare_methods(estimators, X, y, checkpoint_dir=folder, **kwargs)
    assert len(list(folder.glob("*.joblib"))) == 2
    FITS.update(n=0, fail_at=None)
    resumed = compare_methods(estimators, X, y, checkpoint_dir=folder, **kwargs)
    assert FITS["n"] == n_units - 2  # the two finished fold fits are loaded, not refitted
    for name in ("results", "summary", "selection", "cv_results"):
        pd.testing.assert_frame_equal(resumed[name], expected[name])
    FITS.update(n=0)
    again = compare_methods(estimators, X, y, checkpoint_dir=folder, reference="b", **kwargs)
    # no fold is refitted (the reference is not part of the fingerprint), but every operating
    # point is now matched to b's positive rate, so each (method, seed) is refitted and audited
    assert FITS["n"] == 2 * 2
    assert set(again.summary.comparison) == {"value", "change vs b",
                                             "change vs b at the same rate"}
    with pytest.raises(ValueError, match=r"other \['seeds'\]"):
        compare_methods(estimators, X, y, checkpoint_dir=folder, **{**kwargs, "seeds": (0, 2)})
    with pytest.raises(ValueError, match=r"other \['X'\]"):
        compare_methods(estimators, X + 1, y, checkpoint_dir=folder, **kwargs)
    with pytest.raises(ValueError, match="estimators"):
        compare_methods({**estimators, "b": CountingLogistic(C=2.0)}, X, y,
                        checkpoint_dir=folder, **kwargs)
    FITS.update(fail_at=None)


def test_audit_model_without_features_audits_auc_and_gaps_only():
    rng = np.random.RandomState(0)
    y, proba = rng.randint(0, 2, 300), rng.uniform(size=300)
    A = pd.DataFrame({"age": rng.choice(["60+", "<60"], 300)})
    weights = _heldout.resample_weights(300, 20, 0)
    full = _heldout.audit_model(y, proba, rng.gamma(2.0, size=(300, 5)), A, weights)
    bare = _heldout.audit_model(y, proba, None, A, weights)
    mechanism = {key for key in full if key[2].startswith(("coactivation", "concentration"))}
    assert mechanism and set(full) - set(bare) == mechanism
    for key, (value, reps) in bare.items():
        assert value == full[key][0]
        np.testing.assert_array_equal(reps, full[key][1])


@pytest.mark.parametrize("change, match", [
    (dict(estimators={}), "estimators must be a non-empty dict"),
    (dict(param_grids={"svm": {"C": [1]}}), r"grids for \['svm'\], which are not in estimators"),
    (dict(param_grids={"lr": {"depth": [1]}}), r"sets \['depth'\], which LogisticRegression"),
    (dict(disparity="auc_difference"), r"'disparity' parameter of compare_methods must be a "
                                       r"str among"),
    (dict(select_on="race"), r"select_on='race' is not a column.*\['sex', 'age'\]"),
    (dict(y="three"), "y must be binary"),
    (dict(reference="jtt"), "reference='jtt' is not a method"),
    (dict(sensitive_features="short"), "sensitive_features has 399 rows but X has 400"),
    (dict(groups=np.arange(10)), "groups has 10 values but X has 400"),
    (dict(cv=1), r"'cv' parameter of compare_methods must be an int in the range \[2, inf\)"),
    (dict(seeds=()), "seeds must be a non-empty"),
    (dict(cv_seeds=(1, 1)), "cv_seeds must be a non-empty sequence of distinct ints"),
    (dict(operating_point="best"), "operating_point must be 'matched'"),
    (dict(max_auc_drop=-0.1), r"'max_auc_drop' parameter .* in the range \[0(\.0)?, inf\)"),
    (dict(n_bootstrap=1), r"'n_bootstrap' parameter .* \[2, inf\) or .* \{0\}"),
    (dict(test_size=1.5), r"'test_size' parameter .* in the range \(0(\.0)?, 1(\.0)?\)"),
    (dict(heldout="short"), "heldout's y_test must have one label per row"),
    (dict(heldout="columns"), "heldout's sensitive_test has columns"),
])
def test_validation_errors_name_the_argument(change, match):
    X, y, A = _data()
    kwargs = dict(estimators={"lr": LogisticRegression()}, X=X, y=y, sensitive_features=A,
                  verbose=0)
    if change.get("y") == "three":
        change["y"] = y + (np.arange(len(y)) % 3 == 0)
    if change.get("sensitive_features") == "short":
        change["sensitive_features"] = A.iloc[1:]
    if change.get("heldout") == "short":
        change["heldout"] = (X[:20], y[:19], A.iloc[:20])
    if change.get("heldout") == "columns":
        change["heldout"] = (X[:20], y[:20], A[["sex"]].iloc[:20])
    with pytest.raises(ValueError, match=match):
        compare_methods(**{**kwargs, **change})
    with pytest.raises(TypeError, match="predict_proba"):
        compare_methods({"lr": clone(LogisticRegression()).fit(X, y).coef_}, X, y,
                        sensitive_features=A)


def test_misaligned_pandas_inputs_are_refused_not_paired_by_position():
    """sensitive_features (or a held-out sensitive_test) whose index differs from y's or X's
    would be paired with the wrong rows: compare_methods raises, as lambda_study does."""
    X, y, A = _data()
    kwargs = dict(estimators={"lr": LogisticRegression()}, verbose=0)
    shifted = pd.Series(y, index=np.arange(len(y)) + 100)
    with pytest.raises(ValueError, match="sensitive_features and y are pandas objects with "
                                         "different indexes"):
        compare_methods(X=X, y=shifted, sensitive_features=A, **kwargs)
    with pytest.raises(ValueError, match="sensitive_features and X are pandas objects"):
        compare_methods(X=pd.DataFrame(X, index=shifted.index), y=y, sensitive_features=A,
                        **kwargs)
    heldout = (X[:50], shifted.iloc[:50], A.iloc[:50])
    with pytest.raises(ValueError, match="heldout's sensitive_test and y are pandas objects"):
        compare_methods(X=X, y=y, sensitive_features=A, heldout=heldout, **kwargs)


def test_plot_method_comparison_draws_one_point_per_method(tmp_path):
    X, y, A = _data()
    result = compare_methods(
        {"logistic": LogisticRegression(), "tree": DecisionTreeClassifier(max_depth=3),
         "shallow tree": DecisionTreeClassifier(max_depth=1)},
        X, y, sensitive_features=A, seeds=(0, 1, 2), n_bootstrap=100, verbose=0)
    ax = plot_method_comparison(result.summary, attribute="sex")
    values = result.summary.query("comparison == 'value' and group == 'all' and "
                                  "selection == 'group labels'").set_index(
        ["method", "metric", "attribute", "operating_point"])
    names = ["logistic", "tree", "shallow tree"]
    assert len(ax.containers) == 3
    for name, bars in zip(names, ax.containers, strict=True):
        gap = values.loc[(name, "tpr_difference", "sex", "matched")]
        auc = values.loc[(name, "auc", "all", "threshold-free")]
        point = bars.lines[0]
        np.testing.assert_allclose([*point.get_xdata(), *point.get_ydata()],
                                   [gap.value, auc.value])
        x_bar, y_bar = (segments.get_segments()[0] for segments in bars.lines[2])
        np.testing.assert_allclose([x_bar[0][0], x_bar[1][0]], [gap.ci_low, gap.ci_high])
        np.testing.assert_allclose([y_bar[0][1], y_bar[1][1]], [auc.ci_low, auc.ci_high])
    assert [t.get_text() for t in ax.texts] == names
    assert ax.get_xlabel() == "held-out tpr_difference (sex, matched), 95% CI"
    assert plot_method_comparison(result.summary).get_xlabel().endswith(
        "(sex, matched), 95% CI")
    with pytest.raises(ValueError, match="attribute='race' is not in summary"):
        plot_method_comparison(result.summary, attribute="race")
    ax.figure.savefig(tmp_path / "compare.png", dpi=80)
    assert plot_method_comparison(result.summary, attribute="sex", operating_point="0.5")\
        .containers[0].lines[0].get_xdata()[0] == pytest.approx(
            values.loc[("logistic", "tpr_difference", "sex", "0.5")].value)
    # no grids: one candidate per method, its folds fitted for the operating points
    assert set(result.cv_results.candidate) == {0} and result.cv_results.value.dtype == float


def test_the_reference_is_fitted_once_per_seed_when_the_selections_differ(monkeypatch):
    # when a method's pick differs between the selections, the reference's threshold-only
    # control differs too: one refit per seed is audited at both, not refitted twice
    from fairskl.experiments import _compare

    both = _compare._both_selections

    def differing(chosen, p):
        picks, selection = both(chosen, p)
        picks[_compare.WITHOUT_LABELS]["a"] = 1 - picks[_compare.WITH_LABELS]["a"]
        return picks, selection

    monkeypatch.setattr(_compare, "_both_selections", differing)
    X, y, A = _data(300)
    FITS.update(n=0, fail_at=None)
    result = compare_methods(
        {"ref": CountingLogistic(), "a": LogisticRegression()}, X, y, sensitive_features=A,
        param_grids={"a": {"C": [0.001, 1.0]}}, seeds=(0, 1), max_disparity=1.0,
        max_auc_drop=1.0, n_bootstrap=20, verbose=0)
    assert FITS["n"] == 3 + 2  # the reference's fold fits, then one refit per seed
    control = result.thresholds.query("method == 'ref' and operating_point == 'rate of a'")
    assert control.threshold.nunique() == 2
    rows = result.results.query("method == 'ref' and operating_point == 'rate of a' "
                                "and metric == 'tpr' and group == 'all'")
    assert rows.groupby("selection").value.mean().nunique() == 2


def test_checkpoints_refuse_another_config_and_read_older_bare_pieces(tmp_path):
    from fairskl._io import write_joblib
    from fairskl.experiments._checkpoint import Checkpoints

    store = Checkpoints(tmp_path, {"X": "abc", "seeds": (0, 1)})
    store.save("fold", np.arange(3.0))
    store.save("refit", {"auc": 0.9}, stamp="C=1")
    again = Checkpoints(tmp_path, {"X": "abc", "seeds": [0, 1]})  # the JSON round trip
    np.testing.assert_array_equal(again.load("fold"), np.arange(3.0))
    assert again.load("refit", stamp="C=1") == {"auc": 0.9}
    assert again.load("refit", stamp="C=2") is None and again.load("missing") is None
    write_joblib(tmp_path / "old.joblib", np.ones(2))  # an older fairskl's unstamped piece
    np.testing.assert_array_equal(again.load("old"), np.ones(2))
    assert again.load("old", stamp="C=1") is None
    with pytest.raises(ValueError, match=r"holds a study with other \['X'\]"):
        Checkpoints(tmp_path, {"X": "xyz", "seeds": [0, 1]})


def test_test_size_none_needs_heldout():
    X, y, A = _data()
    with pytest.raises(ValueError, match="test_size=None needs heldout"):
        compare_methods({"lr": LogisticRegression()}, X, y, sensitive_features=A,
                        test_size=None, verbose=0)
