"""fairskl.metrics against independent computations (NumPy by hand, fairlearn)."""

import itertools
import warnings

import fairlearn.metrics as flm
import numpy as np
import pandas as pd
import pytest
import sklearn
from fairlearn.metrics import MetricFrame
from sklearn.metrics import roc_auc_score

from fairskl import FairnessWarning
from fairskl.metrics import (
    _report,
    auc_by_group,
    auc_difference,
    demographic_parity_difference,
    ece_by_group,
    ece_difference,
    equalized_odds_difference,
    equity_scaled_auc,
    fpr_difference,
    group_report,
    mse_by_group,
    mse_difference,
    operating_threshold,
    plot_group_report,
    tpr_difference,
    worst_group_auc,
)
from fairskl.metrics._bootstrap import bootstrap_weights, replicates
from fairskl.metrics._report import _max_abs_interval, _spread_interval


def _data(n=600, seed=0):
    rng = np.random.RandomState(seed)
    sex = rng.choice(["female", "male"], n)
    age = rng.choice(["<60", "60+", "80+"], n, p=[0.5, 0.3, 0.2])
    y = rng.binomial(1, np.where(sex == "male", 0.5, 0.3))
    score = np.clip(0.3 * y + 0.1 * (age == "60+") + rng.uniform(0, 0.7, n), 0, 1)
    return y, score, (score >= 0.5).astype(int), sex, age


def _ece_by_hand(y, p, n_bins=10):
    """ECE over equal-width bins (lo, hi] of [0, 1], the first also holding 0: a loop."""
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        m = (p > edges[b]) & (p <= edges[b + 1]) | ((b == 0) & (p == 0))
        if m.any():
            total += m.sum() / len(p) * abs(y[m].mean() - p[m].mean())
    return total


def _by_hand(y, y_hat, score, groups):
    """Per-group TPR, FPR, selection rate, AUC and ECE, written without fairskl or fairlearn."""
    out = {}
    for g in np.unique(groups):
        m = groups == g
        yt, yp, s = y[m], y_hat[m], score[m]
        pos, neg = s[yt == 1], s[yt == 0]
        pairs = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        out[g] = {
            "tpr": yp[yt == 1].mean(),
            "fpr": yp[yt == 0].mean(),
            "selection_rate": yp.mean(),
            "accuracy": (yp == yt).mean(),
            "auc": pairs.mean(),
            "ece": _ece_by_hand(yt, s),
        }
    return pd.DataFrame(out).T


def _spread(col):
    return col.max() - col.min()


@pytest.mark.parametrize("kind", ["array", "series", "frame"])
def test_disparities_match_numpy(kind):
    y, score, y_hat, sex, age = _data()
    if kind == "frame":
        groups = np.char.add(np.char.add(sex.astype(str), "|"), age.astype(str))
        A = pd.DataFrame({"sex": sex, "age": age}, index=np.arange(len(y)) * 7 + 3)
        y_in = pd.Series(y, index=A.index)
    else:
        groups = sex
        A = pd.Series(sex, name="sex", index=np.arange(len(y))[::-1]) if kind == "series" else sex
        y_in = pd.Series(y, index=A.index) if kind == "series" else y
    ref = _by_hand(y, y_hat, score, groups)
    assert tpr_difference(y_in, y_hat, sensitive_features=A) == pytest.approx(_spread(ref.tpr))
    assert fpr_difference(y_in, y_hat, sensitive_features=A) == pytest.approx(_spread(ref.fpr))
    assert equalized_odds_difference(y_in, y_hat, sensitive_features=A) == pytest.approx(
        max(_spread(ref.tpr), _spread(ref.fpr))
    )
    assert demographic_parity_difference(y_in, y_hat, sensitive_features=A) == pytest.approx(
        _spread(ref.selection_rate)
    )
    assert auc_difference(y_in, score, sensitive_features=A) == pytest.approx(_spread(ref.auc))
    assert worst_group_auc(y_in, score, sensitive_features=A) == pytest.approx(ref.auc.min())
    overall = roc_auc_score(y, score)
    es = overall / (1 + np.abs(ref.auc - overall).sum())
    assert equity_scaled_auc(y_in, score, sensitive_features=A) == pytest.approx(es)
    auc_all, auc_groups = auc_by_group(y_in, score, sensitive_features=A)
    assert auc_all == pytest.approx(overall)
    labels = ["|".join(map(str, k)) if isinstance(k, tuple) else k for k in auc_groups.index]
    assert dict(zip(labels, auc_groups, strict=True)) == pytest.approx(ref.auc.to_dict())


def test_disparities_agree_with_fairlearn_when_defined():
    y, _, y_hat, sex, age = _data(seed=1)
    A = pd.DataFrame({"sex": sex, "age": age})
    for ours, theirs in [
        (tpr_difference, flm.true_positive_rate_difference),
        (fpr_difference, flm.false_positive_rate_difference),
        (equalized_odds_difference, flm.equalized_odds_difference),
        (demographic_parity_difference, flm.demographic_parity_difference),
    ]:
        assert ours(y, y_hat, sensitive_features=A) == pytest.approx(
            theirs(y, y_hat, sensitive_features=A)
        )


@pytest.mark.parametrize("agg", ["worst_case", "mean"])
def test_equalized_odds_agg_matches_fairlearn_and_numpy(agg):
    y, _, y_hat, sex, age = _data(seed=8)
    A = pd.DataFrame({"sex": sex, "age": age})
    got = equalized_odds_difference(y, y_hat, sensitive_features=A, agg=agg)
    assert got == pytest.approx(flm.equalized_odds_difference(y, y_hat, sensitive_features=A,
                                                              agg=agg))
    groups = np.char.add(np.char.add(sex.astype(str), "|"), age.astype(str))
    ref = _by_hand(y, y_hat, y_hat, groups)
    gaps = [_spread(ref.tpr), _spread(ref.fpr)]
    assert got == pytest.approx(max(gaps) if agg == "worst_case" else np.mean(gaps))
    assert gaps[0] != pytest.approx(gaps[1])  # so that the two aggregations differ


def test_equalized_odds_agg_is_checked():
    with pytest.raises(ValueError, match=r"'agg' .* str among .* Got 'max'"):
        equalized_odds_difference([1, 0], [1, 0], sensitive_features=[0, 1], agg="max")


def _medfair_ece(y, p):
    """MEDFAIR's and FairMedFM's ECE: pandas.cut into 10 equal-width bins of the data's range."""
    frame = pd.DataFrame({"p": p, "y": y, "bin": pd.cut(p, 10, labels=False)})
    per_bin = frame.groupby("bin").agg(p=("p", "mean"), y=("y", "mean"), n=("p", "size"))
    return np.average(np.abs(per_bin.p - per_bin.y), weights=per_bin.n / len(frame))


@pytest.mark.parametrize("n_bins", [10, 4])
def test_ece_by_group_matches_numpy(n_bins):
    y, score, _, sex, age = _data(seed=9)
    A = pd.DataFrame({"sex": sex, "age": age})
    groups = np.char.add(np.char.add(sex.astype(str), "|"), age.astype(str))
    expected = {g: _ece_by_hand(y[groups == g], score[groups == g], n_bins)
                for g in np.unique(groups)}
    overall, by_group = ece_by_group(y, score, sensitive_features=A, n_bins=n_bins)
    assert overall == pytest.approx(_ece_by_hand(y, score, n_bins))
    assert {"|".join(k): v for k, v in by_group.items()} == pytest.approx(expected)
    assert ece_difference(y, score, sensitive_features=A, n_bins=n_bins) == pytest.approx(
        max(expected.values()) - min(expected.values()))
    assert 0.01 < min(expected.values())  # the scores are miscalibrated: not a trivial 0


def test_ece_equals_medfair_when_each_group_spans_zero_to_one():
    # MEDFAIR bins each group's own score range; on [0, 1] that is fairskl's fixed binning
    rng = np.random.RandomState(10)
    p = rng.uniform(size=400)
    y = rng.binomial(1, p ** 2)
    A = np.repeat(["a", "b"], 200)
    p[[0, 1, 200, 201]] = [0.0, 1.0, 0.0, 1.0]
    _, by_group = ece_by_group(y, p, sensitive_features=A)
    assert by_group.tolist() == pytest.approx([_medfair_ece(y[A == g], p[A == g])
                                               for g in ["a", "b"]])


def test_ece_input_checks_and_report_rows():
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*from -1 to 2"):
        ece_by_group([0, 1], [-1.0, 2.0], sensitive_features=[0, 1])
    with pytest.raises(ValueError, match=r"'n_bins' .* range \[1, inf\)\. Got 0"):
        ece_difference([0, 1], [0.1, 0.9], sensitive_features=[0, 1], n_bins=0)
    y, score, _, sex, _ = _data(seed=11)
    decision = np.log(score + 0.01) - np.log(1.01 - score)
    report = group_report(y, decision, sensitive_features=sex, threshold=0, n_bootstrap=0)
    assert "auc" in set(report.metric) and "ece" not in set(report.metric)
    with pytest.raises(ValueError, match="needs probabilities in"):
        group_report(y, decision, sensitive_features=sex, metrics=["ece"], n_bootstrap=0)
    with pytest.raises(ValueError, match="needs scores"):
        group_report(y, score >= 0.5, sensitive_features=sex, metrics=["ece"])
    report = group_report(y, score, sensitive_features=sex, n_bins=5, n_bootstrap=0)
    gap = report.query("metric == 'ece_difference'").value.item()
    assert gap == pytest.approx(abs(_ece_by_hand(y[sex == "male"], score[sex == "male"], 5)
                                    - _ece_by_hand(y[sex == "female"], score[sex == "female"],
                                                   5)))


def test_string_labels_need_pos_label():
    y = np.array(["benign", "malignant", "malignant", "benign"])
    y_hat = np.array(["benign", "malignant", "benign", "benign"])
    A = [0, 0, 1, 1]
    with pytest.raises(ValueError, match="pos_label"):
        tpr_difference(y, y_hat, sensitive_features=A)
    assert tpr_difference(y, y_hat, sensitive_features=A, pos_label="malignant") == 1.0


def test_group_without_positives_is_nan_with_warning():
    # fairlearn says TPR = 0 for group "b" (no positives); we refuse to make up a number.
    y, y_hat, A = [1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 1, 0], ["a", "a", "a", "b", "b", "b"]
    with pytest.warns(FairnessWarning, match=r"tpr is undefined for group\(s\) \['b'\]"):
        assert np.isnan(tpr_difference(y, y_hat, sensitive_features=A))
    with pytest.warns(FairnessWarning, match="one class"):
        assert np.isnan(auc_difference(y, [0.9, 0.1, 0.2, 0.3, 0.4, 0.5], sensitive_features=A))
    # the FPR is defined in both groups, so no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fpr_difference(y, y_hat, sensitive_features=A) == pytest.approx(1 / 3)


def test_single_group_and_absent_category_are_nan_with_warning():
    with pytest.warns(FairnessWarning, match="only one group"):
        assert np.isnan(tpr_difference([1, 0, 1], [1, 0, 0], sensitive_features=["a"] * 3))
    A = pd.Series(pd.Categorical(["a", "a", "b", "b"], categories=["a", "b", "c"]))
    with pytest.warns(FairnessWarning, match=r"\{'sensitive_feature_0': \['c'\]\}"):
        assert np.isnan(fpr_difference([0, 1, 0, 1], [1, 1, 0, 1], sensitive_features=A))


@pytest.mark.parametrize(
    "y_kind, a_kind", [("series", "series"), ("series", "frame"), ("frame", "series")]
)
def test_misaligned_pandas_indexes_raise(y_kind, a_kind):
    y = pd.Series([1, 0, 1, 0], index=[0, 1, 2, 3])
    A = pd.Series(["a", "a", "b", "b"], index=[3, 2, 1, 0])
    if a_kind == "frame":
        A = A.to_frame("sex")
    if y_kind == "frame":
        y = y.to_frame("y")
    with pytest.raises(ValueError, match="different indexes"):
        tpr_difference(y, [1, 0, 1, 0], sensitive_features=A)


def test_bad_inputs_have_clear_errors():
    with pytest.raises(ValueError, match="sensitive_features is required"):
        tpr_difference([1, 0], [1, 0])
    with pytest.raises(ValueError, match=r"missing values in column\(s\) \['sex'\]"):
        tpr_difference([1, 0], [1, 0], sensitive_features=pd.Series(["a", None], name="sex"))
    with pytest.raises(ValueError, match="binary labels"):
        tpr_difference([0, 1, 2], [0, 1, 1], sensitive_features=[0, 1, 1])
    with pytest.raises(ValueError, match="NaN or infinite"):
        auc_difference([0, 1], [0.1, np.nan], sensitive_features=[0, 1])
    with pytest.raises(ValueError, match="positive class only"):
        auc_difference([0, 1], [[0.9, 0.1], [0.2, 0.8]], sensitive_features=[0, 1])
    y, y_hat = pd.Series([1, 0, 1, 0]), pd.Series([1, 0, 1, 0], index=[3, 2, 1, 0])
    with pytest.raises(ValueError, match="y_true and y_pred are pandas objects"):
        tpr_difference(y, y_hat, sensitive_features=np.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="pos_label='mal' is not one of the labels"):
        tpr_difference(["ben", "malignant"], ["ben", "ben"], sensitive_features=[0, 1],
                       pos_label="mal")
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        tpr_difference([1, 0, 1], [1, 0], sensitive_features=[0, 1])


def test_mse_by_group_matches_numpy():
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(50, 3, 4, 4))
    X_rec = X + rng.normal(scale=0.1, size=X.shape)
    A = rng.choice(["light", "dark", "medium"], 50)
    per_sample = ((X - X_rec) ** 2).mean(axis=(1, 2, 3))
    expected = {g: per_sample[A == g].mean() for g in np.unique(A)}
    got = mse_by_group(X, X_rec, sensitive_features=A)
    assert got.to_dict() == pytest.approx(expected)
    assert mse_difference(X, X_rec, sensitive_features=A) == pytest.approx(
        max(expected.values()) - min(expected.values())
    )
    with pytest.raises(ValueError, match="same shape"):
        mse_by_group(X, X_rec[:, :2], sensitive_features=A)


# --- group_report -------------------------------------------------------------------------


def test_group_report_point_values_match_numpy():
    y, score, y_hat, sex, age = _data(seed=2)
    A = pd.DataFrame({"sex": sex, "age": age})
    report = group_report(y, score, sensitive_features=A, n_bootstrap=0)
    groups = np.array([f"sex={s}, age={a}" for s, a in zip(sex, age, strict=True)])
    ref = _by_hand(y, y_hat, score, groups)
    rows = report[report.kind == "group"].set_index(["metric", "group"])
    for metric in ["tpr", "fpr", "selection_rate", "accuracy", "auc", "ece"]:
        for g in ref.index:
            assert rows.loc[(metric, g), "value"] == pytest.approx(ref.loc[g, metric])
            assert rows.loc[(metric, g), "n"] == (groups == g).sum()
    overall = report[report.kind == "overall"].set_index("metric")["value"]
    assert overall["auc"] == pytest.approx(roc_auc_score(y, score))
    assert overall["ece"] == pytest.approx(_ece_by_hand(y, score))
    disparity = report[report.kind == "disparity"].set_index("metric")["value"]
    expected = {
        "tpr_difference": _spread(ref.tpr),
        "fpr_difference": _spread(ref.fpr),
        "equalized_odds_difference": max(_spread(ref.tpr), _spread(ref.fpr)),
        "demographic_parity_difference": _spread(ref.selection_rate),
        "accuracy_difference": _spread(ref.accuracy),
        "auc_difference": _spread(ref.auc),
        "worst_group_auc": ref.auc.min(),
        "equity_scaled_auc": overall["auc"] / (1 + np.abs(ref.auc - overall["auc"]).sum()),
        "ece_difference": _spread(ref.ece),
    }
    assert disparity.to_dict() == pytest.approx(expected)
    assert report[["ci_low", "ci_high"]].isna().all().all()


def test_bootstrap_replicates_equal_metricframe_on_each_resample():
    y, score, y_hat, sex, _ = _data(n=300, seed=3)
    score = np.round(score, 1)  # ties, to check they count one half as in roc_auc_score
    codes = (sex == "male").astype(int)
    rng = np.random.RandomState(0)
    idx = rng.randint(0, len(y), size=(5, len(y)))
    weights = np.stack([np.bincount(i, minlength=len(y)) for i in idx]).astype(float)
    metrics = ["tpr", "fpr", "selection_rate", "accuracy", "auc", "ece"]
    got = replicates(weights, y, y_hat, score, codes, 2, metrics)
    fns = {
        "tpr": flm.true_positive_rate,
        "fpr": flm.false_positive_rate,
        "selection_rate": flm.selection_rate,
        "accuracy": sklearn.metrics.accuracy_score,
    }
    for b, i in enumerate(idx):
        mf = MetricFrame(metrics=fns, y_true=y[i], y_pred=y_hat[i], sensitive_features=sex[i])
        for name in fns:
            np.testing.assert_allclose(got[name][b, :2], mf.by_group[name].to_numpy())
            assert got[name][b, 2] == pytest.approx(mf.overall[name])
        for g, code in [("female", 0), ("male", 1)]:
            m = sex[i] == g
            assert got["auc"][b, code] == pytest.approx(roc_auc_score(y[i][m], score[i][m]))
        assert got["auc"][b, 2] == pytest.approx(roc_auc_score(y[i], score[i]))
        for g, code in [("female", 0), ("male", 1)]:
            m = sex[i] == g
            assert got["ece"][b, code] == pytest.approx(_ece_by_hand(y[i][m], score[i][m]))
        assert got["ece"][b, 2] == pytest.approx(_ece_by_hand(y[i], score[i]))


def test_group_report_intervals_are_reproducible_and_cover_the_estimate():
    y, score, _, sex, _ = _data(n=2000, seed=4)
    a = group_report(y, score, sensitive_features=sex, n_bootstrap=300, random_state=0)
    b = group_report(y, score, sensitive_features=sex, n_bootstrap=300, random_state=0)
    pd.testing.assert_frame_equal(a, b)
    rows = a[a.kind != "disparity"]
    assert (rows.ci_low <= rows.value).all() and (rows.value <= rows.ci_high).all()
    # the interval of the overall TPR has about the binomial width
    tpr = rows[(rows.metric == "tpr") & (rows.kind == "overall")].iloc[0]
    p, n_pos = tpr.value, y.sum()
    assert tpr.ci_high - tpr.ci_low == pytest.approx(2 * 1.96 * np.sqrt(p * (1 - p) / n_pos),
                                                     rel=0.25)


def test_group_report_labels_only_and_validation():
    y, _, y_hat, sex, _ = _data(seed=5)
    report = group_report(y, y_hat, sensitive_features=sex, n_bootstrap=10, random_state=0)
    assert "auc" not in set(report.metric)
    with pytest.raises(ValueError, match="needs scores"):
        group_report(y, y_hat, sensitive_features=sex, metrics=["auc"])
    with pytest.raises(ValueError, match="Unknown metric"):
        group_report(y, y_hat, sensitive_features=sex, metrics=["recall"])
    with pytest.raises(ValueError, match="n_bootstrap"):
        group_report(y, y_hat, sensitive_features=sex, n_bootstrap=-1)
    with pytest.raises(ValueError, match=r"'ci' .* range \(0\.0, 1\.0\)\. Got 95"):
        group_report(y, y_hat, sensitive_features=sex, ci=95)


def test_group_report_warns_on_undefined_group_metric():
    y = np.array([1, 1, 0, 0, 0, 0])
    with pytest.warns(FairnessWarning, match="group_report"):
        report = group_report(
            y, np.array([0.9, 0.2, 0.1, 0.3, 0.6, 0.2]), sensitive_features=list("aaabbb"),
            n_bootstrap=20, random_state=0,
        )
    disparity = report[report.kind == "disparity"].set_index("metric")["value"]
    assert np.isnan(disparity["tpr_difference"]) and np.isnan(disparity["auc_difference"])
    assert disparity["fpr_difference"] == pytest.approx(1 / 3)


def test_plot_group_report_draws_bars_and_whiskers():
    import matplotlib

    matplotlib.use("Agg")
    y, score, _, sex, _ = _data(seed=6)
    report = group_report(y, score, sensitive_features=sex, n_bootstrap=50, random_state=0)
    axes = plot_group_report(report, metrics=["tpr", "auc"])
    assert len(axes) == 2
    assert len(axes[0].patches) == 3  # female, male, overall
    assert "gap" in axes[0].get_title()
    with pytest.raises(ValueError, match="not in the report"):
        plot_group_report(report, metrics=["ppv"])


def test_empty_intersection_of_categories_is_nan_with_warning():
    # every (sex, site) combination of the categories is a group; ("male", "B") has no sample
    A = pd.DataFrame({
        "sex": pd.Categorical(["female", "female", "male", "male", "female", "female"]),
        "site": pd.Categorical(["A", "B", "A", "A", "A", "B"]),
    })
    X = np.arange(6.0)[:, None]
    with pytest.warns(FairnessWarning, match=r"mse is undefined .*'male', 'B'.* no sample"):
        assert np.isnan(mse_difference(X, X + 0.1, sensitive_features=A))
    with pytest.warns(FairnessWarning, match="selection_rate is undefined .* no sample"):
        assert np.isnan(demographic_parity_difference(
            [0, 1, 0, 1, 1, 0], [0, 1, 1, 1, 0, 0], sensitive_features=A))


def test_expected_groups_detect_a_group_missing_from_plain_values():
    y, y_hat, A = [1, 0, 1, 0], [1, 0, 0, 0], np.array(["a", "a", "b", "b"])
    assert tpr_difference(y, y_hat, sensitive_features=A, expected_groups=["a", "b"]) == 1.0
    with pytest.warns(FairnessWarning, match=r"\['c'\]"):
        assert np.isnan(tpr_difference(y, y_hat, sensitive_features=A,
                                       expected_groups=["a", "b", "c"]))
    frame = pd.DataFrame({"sex": ["f", "f", "m", "m"], "site": ["A", "B", "A", "B"]})
    with pytest.warns(FairnessWarning, match=r"'site': \['C'\]"):
        assert np.isnan(group_report(
            y, y_hat, sensitive_features=frame, n_bootstrap=0,
            expected_groups={"site": ["A", "B", "C"]},
        ).query("kind == 'disparity'").value).all()
    with pytest.raises(ValueError, match=r"holds \['b'\], which expected_groups does not list"):
        tpr_difference(y, y_hat, sensitive_features=A, expected_groups=["a"])
    with pytest.raises(ValueError, match="must be a dict"):
        tpr_difference(y, y_hat, sensitive_features=frame, expected_groups=["f", "m"])
    with pytest.raises(ValueError, match=r"columns \['age'\]"):
        tpr_difference(y, y_hat, sensitive_features=frame, expected_groups={"age": [1]})


def test_group_report_scores_with_string_labels_and_pos_label():
    y = np.array(["benign", "malignant"] * 50)
    score = np.where(y == "malignant", 0.7, 0.3) + np.linspace(-0.25, 0.25, 100)
    A = np.repeat(["a", "b"], 50)
    report = group_report(y, score, sensitive_features=A, pos_label="malignant", n_bootstrap=0)
    auc = report.query("metric == 'auc' and kind == 'overall'").value.item()
    assert auc == pytest.approx(roc_auc_score(y == "malignant", score))


def test_nan_disparity_has_no_interval():
    A = pd.Series(pd.Categorical(list("aabbaabb"), categories=["a", "b", "c"]))
    with pytest.warns(FairnessWarning):
        report = group_report([1, 0, 1, 0, 1, 0, 1, 0], [0.9, 0.2, 0.4, 0.3, 0.8, 0.1, 0.6, 0.7],
                              sensitive_features=A, n_bootstrap=50, random_state=0)
    disparity = report.query("kind == 'disparity'")
    assert disparity[["value", "ci_low", "ci_high"]].isna().all().all()


def test_group_report_takes_plus_minus_one_predictions_as_labels():
    # regression: -1/1 predictions were taken as scores, reporting the AUC of hard labels
    y, _, y_hat, sex, _ = _data(seed=7)
    signed = 2 * y_hat - 1
    report = group_report(y, signed, sensitive_features=sex, n_bootstrap=20, random_state=0)
    assert "auc" not in set(report.metric)
    expected = group_report(y, y_hat, sensitive_features=sex, n_bootstrap=20, random_state=0)
    pd.testing.assert_frame_equal(report, expected)
    tpr = report.query("metric == 'tpr' and group == 'male'").value.item()
    assert tpr == pytest.approx(y_hat[(sex == "male") & (y == 1)].mean())
    # -1/1 in both, and a prediction vector holding only -1
    assert tpr_difference(2 * y - 1, signed, sensitive_features=sex) == pytest.approx(
        tpr_difference(y, y_hat, sensitive_features=sex))
    assert tpr_difference([1, 1, 0, 1], [-1, -1, -1, -1], sensitive_features=[0, 0, 1, 1]) == 0


@pytest.mark.parametrize("metric", [tpr_difference, auc_by_group, mse_by_group, group_report])
def test_empty_inputs_say_so(metric):
    # regression: NumPy's "need at least one array to stack"
    with pytest.raises(ValueError, match=r"are empty \(0 samples\)"):
        metric([], [], sensitive_features=[])


def test_stratified_resamples_keep_every_group_at_its_size():
    codes = np.repeat([0, 1, 2], [3, 50, 147])  # a group of 3 rows in 200
    strata = [np.flatnonzero(codes == g) for g in range(3)]
    weights = bootstrap_weights(np.random.RandomState(0), 200, 500, strata)
    per_group = np.stack([weights[:, codes == g].sum(axis=1) for g in range(3)], axis=1)
    assert (per_group == [3, 50, 147]).all()
    assert len(np.unique(weights[:, :3], axis=0)) > 5  # the small group is resampled too
    plain = bootstrap_weights(np.random.RandomState(0), 200, 500)
    assert plain.sum(axis=1).tolist() == [200] * 500
    absent = (plain[:, codes == 0].sum(axis=1) == 0).mean()
    assert absent == pytest.approx((1 - 3 / 200) ** 200, abs=0.03)  # about 5%


def test_bootstrap_weights_count_the_draws_in_their_order():
    # all rows: one (size, n) block of draws; strata: each stratum's block after the previous
    n, size = 7, 4
    draws = np.random.RandomState(1).randint(0, n, size=(size, n))
    by_hand = np.array([np.bincount(row, minlength=n) for row in draws], dtype=float)
    np.testing.assert_array_equal(bootstrap_weights(np.random.RandomState(1), n, size), by_hand)
    strata = [np.array([0, 3, 5]), np.array([1, 2, 4, 6])]
    rng = np.random.RandomState(2)
    first = strata[0][rng.randint(0, 3, size=(size, 3))]
    second = strata[1][rng.randint(0, 4, size=(size, 4))]
    by_hand = np.array([np.bincount(np.r_[a, b], minlength=n) for a, b in zip(first, second,
                                                                               strict=True)])
    np.testing.assert_array_equal(
        bootstrap_weights(np.random.RandomState(2), n, size, strata), by_hand)

def test_stratified_bootstrap_intervals_differ_sensibly_from_plain():
    rng = np.random.RandomState(12)
    n = 1000
    group = np.where(rng.uniform(size=n) < 0.4, "a", "b")
    y = rng.binomial(1, 0.5, n)
    y_hat = np.where(group == "a", 1, 0)  # a: all predicted positive, b: none
    y_hat[group == "b"] = rng.binomial(1, 0.1, (group == "b").sum())
    kwargs = dict(sensitive_features=group, n_bootstrap=400, random_state=0)
    plain = group_report(y, y_hat, **kwargs).set_index(["metric", "group"])
    strat = group_report(y, y_hat, stratify=True, **kwargs).set_index(["metric", "group"])
    pd.testing.assert_series_equal(plain.value, strat.value)  # the same point estimates
    width_plain = plain.ci_high - plain.ci_low
    width_strat = strat.ci_high - strat.ci_low
    # within a group the interval is about the same...
    assert width_strat[("fpr", "b")] == pytest.approx(width_plain[("fpr", "b")], rel=0.25)
    # ...overall the selection rate varies only within group b: the group mix is fixed
    n_b = (group == "b").sum()
    p_b = y_hat[group == "b"].mean()
    by_hand = 2 * 1.96 * np.sqrt(p_b * (1 - p_b) / n_b) * n_b / n  # binomial width, by hand
    assert width_strat[("selection_rate", "overall")] == pytest.approx(by_hand, rel=0.25)
    sr = y_hat.mean()
    assert width_plain[("selection_rate", "overall")] == pytest.approx(
        2 * 1.96 * np.sqrt(sr * (1 - sr) / n), rel=0.25)
    assert width_strat[("selection_rate", "overall")] < 0.5 * width_plain[
        ("selection_rate", "overall")]
    with pytest.raises(ValueError, match=r"'stratify' .* instance of 'bool'"):
        group_report(y, y_hat, sensitive_features=group, stratify="group")


def test_group_report_stratify_keeps_a_tiny_group_in_every_resample(monkeypatch):
    rng = np.random.RandomState(13)
    n = 300
    group = np.r_[["small"] * 4, ["large"] * (n - 4)]
    y = np.r_[[1, 1, 0, 0], rng.binomial(1, 0.5, n - 4)]
    score = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    seen = []
    original = _report.replicates

    def spy(weights, *args, **kwargs):  # the resample weights group_report evaluates
        seen.append(weights[:, :4].sum(axis=1))
        return original(weights, *args, **kwargs)

    monkeypatch.setattr(_report, "replicates", spy)
    group_report(y, score, sensitive_features=group, n_bootstrap=300, stratify=True,
                 random_state=0)
    assert (np.concatenate(seen) == 4).all() and len(np.concatenate(seen)) == 300


# --- intervals of the gaps between groups ----------------------------------------------------


def test_zero_gap_interval_holds_its_estimate_and_zero():
    # the reported case: y and scores independent of a random 2-level group. With this seed the
    # percentile interval of the replicates of |TPR_b - TPR_a| was [0.0018, 0.137], excluding
    # the estimate 0.0010.
    rng = np.random.RandomState(5)
    y, score, group = rng.randint(0, 2, 500), rng.uniform(size=500), rng.choice(["a", "b"], 500)
    report = group_report(y, score, sensitive_features=group, n_bootstrap=1000, random_state=0)
    tpr = report.query("metric == 'tpr_difference'").iloc[0]
    y_hat = score >= 0.5
    by_hand = abs(y_hat[(group == "a") & (y == 1)].mean() - y_hat[(group == "b") & (y == 1)].mean())
    assert tpr.value == pytest.approx(by_hand) and by_hand < 0.002
    assert tpr.ci_low == 0 <= tpr.value <= tpr.ci_high
    gaps = report.query("kind == 'disparity'")
    assert ((gaps.ci_low <= gaps.value) & (gaps.value <= gaps.ci_high)).all()


def _capture_weights(monkeypatch):
    """The resample weights group_report evaluates, collected into a list of (B, n) blocks."""
    seen = []
    original = _report.replicates

    def spy(weights, *args, **kwargs):
        seen.append(weights)
        return original(weights, *args, **kwargs)

    monkeypatch.setattr(_report, "replicates", spy)
    return seen


def _rates_by_hand(weights, numerator, denominator, group, labels):
    """(B, G) weighted rates sum(w * numerator) / sum(w * denominator) within each group."""
    member = [group == g for g in labels]
    return np.stack([(weights @ (numerator * m)) / (weights @ (denominator * m)) for m in member],
                    axis=1)


def _bonferroni_by_hand(estimates, replicates, ci=0.95):
    """Interval of max_k |D_k| from estimates (K,) and replicates (B, K) of D_k: a loop.

    Each D_k gets the percentile interval [l, h] at the level 1 - (1 - ci) / K, the interval of
    |D_k| it gives ([0, max(|l|, |h|)] if it holds 0, else [min, max] of |l|, |h|), widened to
    hold |estimate|; the interval of the max is [max of the lows, max of the highs].
    """
    tail = (1 - ci) / 2 / len(estimates)
    lows, highs = [], []
    for k, estimate in enumerate(estimates):
        low, high = np.quantile(replicates[:, k], [tail, 1 - tail])
        if low <= 0 <= high:
            low, high = 0.0, max(-low, high)
        else:
            low, high = sorted((abs(low), abs(high)))
        lows.append(min(low, abs(estimate)))
        highs.append(max(high, abs(estimate)))
    return max(lows), max(highs)


def _pairs_by_hand(*per_group):
    """Differences m_j - m_i over the pairs i < j of the groups, of each (..., G) array in turn."""
    return np.stack([m[..., j] - m[..., i] for m in per_group
                     for i, j in itertools.combinations(range(m.shape[-1]), 2)], axis=-1)


def test_two_group_intervals_by_hand(monkeypatch):
    y, score, y_hat, sex, _ = _data(n=300, seed=8)
    seen = _capture_weights(monkeypatch)
    report = group_report(y, score, sensitive_features=sex, metrics=["tpr", "fpr", "auc"],
                          n_bootstrap=200, random_state=0).set_index("metric")
    weights = np.concatenate(seen)
    labels = ["female", "male"]
    ones = np.ones((1, len(y)))  # the data themselves: the point estimates
    tpr, tpr_hat = (_rates_by_hand(w, y * y_hat, y, sex, labels) for w in (weights, ones))
    fpr, fpr_hat = (_rates_by_hand(w, (1 - y) * y_hat, 1 - y, sex, labels)
                    for w in (weights, ones))
    auc, auc_hat = (np.array([[roc_auc_score(np.repeat(y[m], w[m].astype(int)),
                                             np.repeat(score[m], w[m].astype(int)))
                               for m in (sex == g for g in labels)] for w in w_])
                    for w_ in (weights, ones))

    def absolute(signed):  # interval of |D| from the percentile interval of D
        low, high = np.quantile(signed, [0.025, 0.975])
        if low <= 0 <= high:
            return 0.0, max(-low, high)
        return min(abs(low), abs(high)), max(abs(low), abs(high))

    def bounds(name):
        return tuple(report.loc[name, ["ci_low", "ci_high"]])

    assert bounds("tpr_difference") == pytest.approx(absolute(tpr[:, 1] - tpr[:, 0]))
    assert bounds("fpr_difference") == pytest.approx(absolute(fpr[:, 1] - fpr[:, 0]))
    assert bounds("auc_difference") == pytest.approx(absolute(auc[:, 1] - auc[:, 0]))
    for name, hat, boot in [("tpr_difference", tpr_hat, tpr), ("auc_difference", auc_hat, auc)]:
        # one pair: the Bonferroni interval is the two-group one (here no widening was needed)
        assert bounds(name) == pytest.approx(
            _bonferroni_by_hand(_pairs_by_hand(hat)[0], _pairs_by_hand(boot)))
    # equalized odds: the TPR and the FPR differences, 2 pairs, each at 1 - 0.05 / 2
    assert bounds("equalized_odds_difference") == pytest.approx(
        _bonferroni_by_hand(_pairs_by_hand(tpr_hat, fpr_hat)[0], _pairs_by_hand(tpr, fpr)))
    assert bounds("worst_group_auc") == pytest.approx(
        tuple(np.quantile(auc.min(axis=1), [0.025, 0.975])))  # still a percentile interval


def test_more_than_two_groups_have_pairwise_bonferroni_intervals(monkeypatch):
    y, score, y_hat, _, age = _data(n=900, seed=9)
    seen = _capture_weights(monkeypatch)
    report = group_report(y, y_hat, sensitive_features=age, n_bootstrap=300,
                          random_state=0).set_index("metric")
    weights = np.concatenate(seen)
    labels, ones = ["60+", "80+", "<60"], np.ones((1, len(y)))
    tpr, tpr_hat = (_rates_by_hand(w, y * y_hat, y, age, labels) for w in (weights, ones))
    fpr, fpr_hat = (_rates_by_hand(w, (1 - y) * y_hat, 1 - y, age, labels)
                    for w in (weights, ones))
    sr, sr_hat = (_rates_by_hand(w, y_hat, np.ones_like(y), age, labels)
                  for w in (weights, ones))

    def bounds(name):
        return tuple(report.loc[name, ["ci_low", "ci_high"]])

    # 3 groups: 3 pairs, each at the level 1 - 0.05 / 3
    assert _pairs_by_hand(tpr_hat).shape == (1, 3)
    assert bounds("tpr_difference") == pytest.approx(
        _bonferroni_by_hand(_pairs_by_hand(tpr_hat)[0], _pairs_by_hand(tpr)))
    assert bounds("fpr_difference") == pytest.approx(
        _bonferroni_by_hand(_pairs_by_hand(fpr_hat)[0], _pairs_by_hand(fpr)))
    assert bounds("demographic_parity_difference") == pytest.approx(
        _bonferroni_by_hand(_pairs_by_hand(sr_hat)[0], _pairs_by_hand(sr)))
    # equalized odds: 6 pairs, each at the level 1 - 0.05 / 6
    assert bounds("equalized_odds_difference") == pytest.approx(
        _bonferroni_by_hand(_pairs_by_hand(tpr_hat, fpr_hat)[0], _pairs_by_hand(tpr, fpr)))
    gaps = report[report.kind == "disparity"]
    assert (gaps.ci_low >= 0).all()
    assert ((gaps.ci_low <= gaps.value) & (gaps.value <= gaps.ci_high)).all()


def test_pairwise_interval_is_widened_to_hold_its_estimate():
    # replicates of D all in [0.01, 0.1] but an estimate of 0.3 (a skewed bootstrap, made up):
    # the percentile interval [0.0105, 0.0995] misses it, so it is widened to [0.0105, 0.3]
    replicates = np.linspace(0.01, 0.1, 1001)[:, None]
    low, high = _max_abs_interval(np.array([0.3]), replicates, 0.025)
    assert (low, high) == pytest.approx((np.quantile(replicates, 0.025), 0.3))
    # and below: an estimate of -0.001 outside [0.0105, 0.0995] lowers the bound to 0.001
    low, high = _max_abs_interval(np.array([-0.001]), replicates, 0.025)
    assert (low, high) == pytest.approx((0.001, np.quantile(replicates, 0.975)))
    # with two differences, the max of the lows and the max of the highs
    both = np.c_[replicates, -replicates - 0.2]  # D_2 in [-0.3, -0.21]: |D_2| in [0.21, 0.3]
    low, high = _max_abs_interval(np.array([0.05, -0.25]), both, 0.025)
    tail = 0.025 / 2
    assert (low, high) == pytest.approx(
        (-np.quantile(both[:, 1], 1 - tail), -np.quantile(both[:, 1], tail)))


def _simulated_tpr_intervals(tprs, n_sets, n=400, n_bootstrap=400, seed=0):
    """True gap, estimates, _spread_interval bounds and the old percentile bounds of the TPR gap.

    ``n_sets`` data sets of ``n`` rows: one of ``G = len(tprs)`` groups (probability 1/G each),
    a label (prevalence 1/2) and a prediction drawn with probability ``tprs[g]`` for a positive.
    The plain bootstrap of the rows is drawn as what it is, a multinomial of the counts of the
    cells (true positives and false negatives of each group, and the rest), for all data sets
    at once.
    """
    n_groups = len(tprs)
    rng = np.random.default_rng(seed)
    group = rng.integers(0, n_groups, (n_sets, n))
    positive = rng.random((n_sets, n)) < 0.5
    flagged = rng.random((n_sets, n)) < np.asarray(tprs)[group]
    cells = [(group == g) & positive & hit for g in range(n_groups) for hit in (flagged, ~flagged)]
    counts = np.stack([c.sum(axis=1) for c in cells], axis=1)
    counts = np.c_[counts, n - counts.sum(axis=1)]  # (n_sets, 2 G + 1)
    resampled = rng.multinomial(n, counts[:, None, :] / n, size=(n_sets, n_bootstrap))

    def tpr(c):  # (..., 2 G + 1) counts -> (..., G) TPR of each group
        with np.errstate(invalid="ignore", divide="ignore"):
            return c[..., 0:-1:2] / (c[..., 0:-1:2] + c[..., 1::2])

    estimate, replicates = tpr(counts), tpr(resampled)
    value = estimate.max(axis=-1) - estimate.min(axis=-1)
    spread = replicates.max(axis=-1) - replicates.min(axis=-1)
    low, high = _spread_interval(estimate, replicates, 0.025)
    old_low, old_high = np.nanquantile(spread, [0.025, 0.975], axis=-1)
    return max(tprs) - min(tprs), value, (low, high), (old_low, old_high)


@pytest.mark.parametrize("tprs", [(0.7, 0.7), (0.7, 0.8)], ids=["no-gap", "gap-10-points"])
def test_two_group_interval_covers_the_true_gap(tprs):
    # 4000 data sets, so that the coverage is known to about +-0.4%: the interval of a
    # difference of two proportions with about 100 positives per group covers 94-98% here.
    truth, value, (low, high), (old_low, old_high) = _simulated_tpr_intervals(tprs, 4000)
    coverage = np.mean((low <= truth) & (truth <= high))
    assert coverage >= 0.93
    assert ((low <= value) & (value <= high)).all()
    assert (low >= 0).all()
    if truth == 0:  # the check can fail: the old percentile interval never held a zero gap
        assert np.mean((old_low <= truth) & (truth <= old_high)) < 0.05


@pytest.mark.parametrize("tprs", [(0.7, 0.7, 0.7), (0.7, 0.75, 0.8)],
                         ids=["no-gap", "gap-10-points"])
def test_three_group_interval_covers_the_true_gap(tprs):
    # 4000 data sets of 600 rows, about 100 positives per group: the pairwise Bonferroni
    # interval covers 94.5% (no gap) and 98.6% (10 points) here; the basic bootstrap interval
    # it replaced covered 89% and 83%.
    truth, value, (low, high), (old_low, old_high) = _simulated_tpr_intervals(tprs, 4000, n=600)
    coverage = np.mean((low <= truth) & (truth <= high))
    assert coverage >= 0.93
    assert ((low <= value) & (value <= high)).all()
    assert (low >= 0).all()
    if truth == 0:
        assert np.mean((old_low <= truth) & (truth <= old_high)) < 0.05


# --- operating_threshold ---------------------------------------------------------------------


def _candidates(score):
    """Every threshold that makes a difference, and the ones just above: a brute-force grid."""
    return np.unique(np.r_[score, np.nextafter(score, np.inf), np.inf])


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.25, 0.3, 0.5, 0.72, 0.9, 1.0])
def test_operating_threshold_matches_a_brute_force_search(fraction, ties):
    rng = np.random.RandomState(10)
    y = rng.binomial(1, 0.4, 203)
    score = rng.uniform(size=203) + 0.3 * y
    if ties:
        score = np.round(score, 1)
    pos, neg = score[y == 1], score[y == 0]
    grid = _candidates(score)

    def flagged(s, t):
        return int((s >= t).sum())

    # rate: the largest threshold flagging at least round(r * n) rows
    k = int(np.round(fraction * len(score)))
    rate = max(t for t in grid if flagged(score, t) >= k)
    # tpr: the largest threshold flagging at least a fraction t of the positives
    tpr = max(t for t in grid if flagged(pos, t) >= fraction * len(pos) - 1e-9)
    # fpr: the smallest threshold flagging at most a fraction f of the negatives
    fpr = min(t for t in grid if flagged(neg, t) <= fraction * len(neg) + 1e-9)
    assert operating_threshold(None, score, ("rate", fraction)) == rate
    assert operating_threshold(y, score, ("tpr", fraction)) == tpr
    assert operating_threshold(y, score, ["fpr", fraction]) == fpr
    if not ties:  # every fraction is then reached as closely as the counts allow
        assert flagged(score, rate) == k
        assert flagged(pos, tpr) == int(np.ceil(fraction * len(pos) - 1e-9))
        assert flagged(neg, fpr) == int(np.floor(fraction * len(neg) + 1e-9))


def test_operating_threshold_extremes_and_ties():
    score = np.array([0.2, 0.5, 0.5, 0.5, 0.9])
    y = np.array([0, 1, 0, 1, 1])
    assert operating_threshold(None, score, ("rate", 0)) == np.inf  # flags none
    assert operating_threshold(None, score, ("rate", 1)) == 0.2  # flags all
    assert operating_threshold(y, score, ("tpr", 0)) == np.inf
    assert operating_threshold(y, score, ("tpr", 1)) == 0.5  # the lowest positive
    assert operating_threshold(y, score, ("fpr", 1)) == 0.2  # the lowest negative
    fpr0 = operating_threshold(y, score, ("fpr", 0))
    assert 0.5 < fpr0 < 0.5 + 1e-12  # just above the highest negative
    # a tie is flagged together: 2 of 5 asked for, 4 flagged
    assert operating_threshold(None, score, ("rate", 0.4)) == 0.5
    assert (score >= 0.5).sum() == 4
    # a fixed threshold is returned as it is, without labels or scores being looked at
    assert operating_threshold(None, score, 0.35) == 0.35
    assert operating_threshold(None, score, np.float32(0.25)) == 0.25
    assert isinstance(operating_threshold(None, score, 1), float)


@pytest.mark.parametrize("point", [
    ("rate", 1.5), ("rate", -0.1), ("auc", 0.5), ("rate",), ("rate", 0.1, 2), "0.5", True,
    np.nan, np.inf, None, ("rate", True), ("tpr", "0.5"),
])
def test_operating_threshold_rejects_bad_operating_points(point):
    with pytest.raises(ValueError, match="operating_point must be"):
        operating_threshold([0, 1], [0.2, 0.8], point)


def test_operating_threshold_bad_labels_and_scores_name_the_argument():
    with pytest.raises(ValueError, match=r"needs y_true"):
        operating_threshold(None, [0.2, 0.8], ("tpr", 0.5))
    with pytest.raises(ValueError, match=r"y_true has 3 rows but y_score has 2"):
        operating_threshold([0, 1, 1], [0.2, 0.8], ("fpr", 0.5))
    with pytest.raises(ValueError, match=r"needs positive rows in y_true"):
        operating_threshold([0, 0], [0.2, 0.8], ("tpr", 0.5))
    with pytest.raises(ValueError, match=r"needs negative rows in y_true"):
        operating_threshold([1, 1], [0.2, 0.8], ("fpr", 0.5))
    with pytest.raises(ValueError, match=r"y_true must hold binary labels"):
        operating_threshold(["a", "b"], [0.2, 0.8], ("tpr", 0.5))
    with pytest.raises(ValueError, match=r"y_score contains NaN"):
        operating_threshold(None, [0.2, np.nan], ("rate", 0.5))
    with pytest.raises(ValueError, match=r"y_score has two columns"):
        operating_threshold(None, [[0.8, 0.2], [0.3, 0.7]], ("rate", 0.5))
