"""compare_methods: selection on training folds only, paired held-out audit, resume, figures."""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_positive_rate, true_positive_rate
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.tree import DecisionTreeClassifier
from skorch.helper import SliceDict

from fairskl.experiments import _nir_audit, compare_methods, plot_method_comparison
from fairskl.metrics import TradeoffRefit


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


def test_selection_and_heldout_values_match_a_hand_computation():
    X, y, A = _data()
    grid = {"max_depth": [1, 2, 3, 6], "min_samples_leaf": [1, 20]}
    estimators = {"logistic": LogisticRegression(), "tree": DecisionTreeClassifier()}
    kwargs = dict(sensitive_features=A, param_grids={"tree": grid}, cv=3, seeds=(7,),
                  select_on="sex", n_bootstrap=50, random_state=0, verbose=0)
    first = compare_methods(estimators, X, y, max_disparity=1.0, **kwargs)
    test = first.heldout_index
    train = np.setdiff1d(np.arange(len(y)), test)
    assert len(test) == pytest.approx(0.3 * len(y), abs=2)

    # the selection, by hand: the same folds of the training part, scored by sklearn/fairlearn
    strata = pd.Series(y[train]).astype(str) + "|" + A.sex.iloc[train].to_numpy()
    folds = StratifiedKFold(3, shuffle=True, random_state=0).split(train, strata)
    candidates = [dict(max_depth=d, min_samples_leaf=m) for d in grid["max_depth"]
                  for m in grid["min_samples_leaf"]]
    auc, gap = np.zeros((len(candidates), 3)), np.zeros((len(candidates), 3))
    for k, (fit_rows, score_rows) in enumerate(folds):
        fit_rows, score_rows = train[fit_rows], train[score_rows]
        for c, params in enumerate(candidates):
            model = DecisionTreeClassifier(random_state=0, **params).fit(X[fit_rows], y[fit_rows])
            auc[c, k] = roc_auc_score(y[score_rows], model.predict_proba(X[score_rows])[:, 1])
            gap[c, k] = _gap(true_positive_rate, y[score_rows], model.predict(X[score_rows]),
                             A.sex.to_numpy()[score_rows])
    cv = first.cv_results.query("method == 'tree'").sort_values(["candidate", "fold"])
    np.testing.assert_allclose(cv.query("metric == 'auc'").value, auc.ravel(), rtol=1e-9)
    np.testing.assert_allclose(cv.query("metric == 'tpr_difference'").value, gap.ravel(),
                               rtol=1e-9)
    # a bound that excludes the candidate of the best AUC, so that the rule matters
    max_disparity = float(np.sort(gap.mean(axis=1))[2])
    assert gap.mean(axis=1)[auc.mean(axis=1).argmax()] > max_disparity
    result = compare_methods(estimators, X, y, max_disparity=max_disparity, **kwargs)
    best = TradeoffRefit("auc", "tpr_difference", max_disparity)(
        {"mean_test_auc": auc.mean(axis=1), "mean_test_tpr_difference": -gap.mean(axis=1)})
    chosen = result.selection.set_index("method").loc["tree"]
    assert chosen.candidate == best and chosen.params_dict == candidates[best]
    assert chosen.cv_auc == pytest.approx(auc[best].mean(), rel=1e-9)
    assert chosen.cv_tpr_difference == pytest.approx(gap[best].mean(), rel=1e-9)
    assert result.selection.set_index("method").loc["logistic", "params"] == "{}"

    # the held-out values, by hand: refit on the training part with the seed
    summary = result.summary.set_index(["method", "comparison", "attribute", "metric"])
    by_hand = {}
    for name, model in [("logistic", LogisticRegression()),
                        ("tree", DecisionTreeClassifier(random_state=7, **candidates[best]))]:
        model.fit(X[train], y[train])
        proba = model.predict_proba(X[test])[:, 1]
        by_hand[name, "all", "auc"] = roc_auc_score(y[test], proba)
        for attribute in ("sex", "age"):
            for metric, rate in [("tpr_difference", true_positive_rate),
                                 ("fpr_difference", false_positive_rate)]:
                by_hand[name, attribute, metric] = _gap(rate, y[test], proba >= 0.5,
                                                        A[attribute].to_numpy()[test])
    for (name, attribute, metric), value in by_hand.items():
        row = summary.loc[(name, "value", attribute, metric)]
        assert row.value == pytest.approx(value, rel=1e-9)
        assert row.ci_low < row.value < row.ci_high and row.n_seeds == 1
        if name == "tree":
            change = summary.loc[("tree", "change vs logistic", attribute, metric), "value"]
            assert change == pytest.approx(value - by_hand["logistic", attribute, metric],
                                           rel=1e-9)
    assert len(summary) == 2 * 5 + 5  # 2 methods x (auc + 2 x 2 gaps) + the tree's changes
    assert set(result.results.seed) == {7} and len(result.results) == 10


def test_no_heldout_data_reaches_selection():
    X, y, A = _data()
    rng = np.random.RandomState(1)
    test = rng.permutation(len(y))[:120]
    train = np.setdiff1d(np.arange(len(y)), test)
    estimators = {"logistic": LogisticRegression(),
                  "tree": DecisionTreeClassifier(min_samples_leaf=10)}
    kwargs = dict(sensitive_features=A.iloc[train], param_grids={
        "tree": {"max_depth": [2, 4]}, "logistic": {"C": [0.01, 1.0]}}, max_disparity=1.0,
        n_bootstrap=30, verbose=0)
    A_test = A.iloc[test].reset_index(drop=True)
    real = compare_methods(estimators, X[train], y[train], heldout=(X[test], y[test], A_test),
                           **kwargs)
    shuffled = compare_methods(estimators, X[train], y[train],
                               heldout=(X[test], rng.permutation(y[test]), A_test), **kwargs)
    pd.testing.assert_frame_equal(real.selection, shuffled.selection)
    pd.testing.assert_frame_equal(real.cv_results, shuffled.cv_results)
    assert len(real.cv_results) == 2 * 2 * 3 * 2  # methods x candidates x folds x metrics
    auc = {name: r.summary.query("metric == 'auc' and comparison == 'value'").value.to_numpy()
           for name, r in [("real", real), ("shuffled", shuffled)]}
    assert (auc["real"] > 0.7).all() and (np.abs(auc["shuffled"] - 0.5) < 0.15).all()
    assert real.heldout_index is None


def test_several_heldout_sets_share_one_selection():
    X, y, A = _data()
    test = np.arange(300, 400)
    kwargs = dict(sensitive_features=A.iloc[:300], param_grids={"tree": {"max_depth": [2, 4]}},
                  max_disparity=1.0, n_bootstrap=30, verbose=0)
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
                  max_disparity=1.0, n_bootstrap=30, verbose=0)
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
                  max_disparity=1.0, n_bootstrap=20, verbose=0)
    n_units = 2 * 3 + 2 * 2  # a's candidates x folds, then (a, b) x seeds
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
    assert FITS["n"] == 0  # all loaded; the reference is not part of the fingerprint
    assert set(again.summary.comparison) == {"value", "change vs b"}
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
    weights = _nir_audit.resample_weights(300, 20, 0)
    full = _nir_audit.audit_model(y, proba, rng.gamma(2.0, size=(300, 5)), A, weights)
    bare = _nir_audit.audit_model(y, proba, None, A, weights)
    assert set(bare) == {("all", "auc"), ("age", "tpr_difference"), ("age", "fpr_difference")}
    assert len(full) > len(bare)
    for key, (value, reps) in bare.items():
        assert value == full[key][0]
        np.testing.assert_array_equal(reps, full[key][1])


@pytest.mark.parametrize("change, match", [
    (dict(estimators={}), "estimators must be a non-empty dict"),
    (dict(param_grids={"svm": {"C": [1]}}), r"grids for \['svm'\], which are not in estimators"),
    (dict(param_grids={"lr": {"depth": [1]}}), r"sets \['depth'\], which LogisticRegression"),
    (dict(disparity="auc_difference"), "disparity must be 'tpr_difference'"),
    (dict(select_on="race"), r"select_on='race' is not a column.*\['sex', 'age'\]"),
    (dict(y="three"), "y must be binary"),
    (dict(reference="jtt"), "reference='jtt' is not a method"),
    (dict(sensitive_features="short"), "sensitive_features has 399 rows but X has 400"),
    (dict(groups=np.arange(10)), "groups has 10 values but X has 400"),
    (dict(cv=1), "cv must be an int >= 2"),
    (dict(seeds=()), "seeds must be a non-empty"),
    (dict(n_bootstrap=1), "n_bootstrap must be an int >= 2"),
    (dict(test_size=1.5), r"test_size must be a fraction in \(0, 1\)"),
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


def test_plot_method_comparison_draws_one_point_per_method(tmp_path):
    X, y, A = _data()
    result = compare_methods(
        {"logistic": LogisticRegression(), "tree": DecisionTreeClassifier(max_depth=3),
         "shallow tree": DecisionTreeClassifier(max_depth=1)},
        X, y, sensitive_features=A, seeds=(0, 1, 2), n_bootstrap=100, verbose=0)
    ax = plot_method_comparison(result.summary, attribute="sex")
    values = result.summary.query("comparison == 'value'").set_index(["method", "metric",
                                                                      "attribute"])
    names = ["logistic", "tree", "shallow tree"]
    assert len(ax.containers) == 3
    for name, bars in zip(names, ax.containers, strict=True):
        gap, auc = values.loc[(name, "tpr_difference", "sex")], values.loc[(name, "auc", "all")]
        point = bars.lines[0]
        np.testing.assert_allclose([*point.get_xdata(), *point.get_ydata()],
                                   [gap.value, auc.value])
        x_bar, y_bar = (segments.get_segments()[0] for segments in bars.lines[2])
        np.testing.assert_allclose([x_bar[0][0], x_bar[1][0]], [gap.ci_low, gap.ci_high])
        np.testing.assert_allclose([y_bar[0][1], y_bar[1][1]], [auc.ci_low, auc.ci_high])
    assert [t.get_text() for t in ax.texts] == names
    assert ax.get_xlabel() == "held-out tpr_difference (sex), 95% CI"
    assert plot_method_comparison(result.summary).get_xlabel().endswith("(sex), 95% CI")
    with pytest.raises(ValueError, match="attribute='race' is not in summary"):
        plot_method_comparison(result.summary, attribute="race")
    ax.figure.savefig(tmp_path / "compare.png", dpi=80)
    assert result.cv_results.empty and result.cv_results.value.dtype == float  # no grids
