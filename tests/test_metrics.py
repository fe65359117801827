"""fairskl.metrics against independent computations (NumPy by hand, fairlearn)."""

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
    plot_group_report,
    tpr_difference,
    worst_group_auc,
)
from fairskl.metrics._report import _replicates, _resample_weights


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
    with pytest.raises(ValueError, match="agg must be 'worst_case' .* got 'max'"):
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
    with pytest.raises(ValueError, match="n_bins must be an integer >= 1.*got 0"):
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
    got = _replicates(weights, y, y_hat, score, codes, 2, metrics)
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
    with pytest.raises(ValueError, match="ci must be"):
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
    weights = _resample_weights(np.random.RandomState(0), 200, 500, strata)
    per_group = np.stack([weights[:, codes == g].sum(axis=1) for g in range(3)], axis=1)
    assert (per_group == [3, 50, 147]).all()
    assert len(np.unique(weights[:, :3], axis=0)) > 5  # the small group is resampled too
    plain = _resample_weights(np.random.RandomState(0), 200, 500)
    assert plain.sum(axis=1).tolist() == [200] * 500
    absent = (plain[:, codes == 0].sum(axis=1) == 0).mean()
    assert absent == pytest.approx((1 - 3 / 200) ** 200, abs=0.03)  # about 5%


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
    with pytest.raises(ValueError, match="stratify must be True or False"):
        group_report(y, y_hat, sensitive_features=group, stratify="group")


def test_group_report_stratify_keeps_a_tiny_group_in_every_resample(monkeypatch):
    rng = np.random.RandomState(13)
    n = 300
    group = np.r_[["small"] * 4, ["large"] * (n - 4)]
    y = np.r_[[1, 1, 0, 0], rng.binomial(1, 0.5, n - 4)]
    score = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    seen = []
    original = _report._replicates

    def spy(weights, *args, **kwargs):  # the resample weights group_report evaluates
        seen.append(weights[:, :4].sum(axis=1))
        return original(weights, *args, **kwargs)

    monkeypatch.setattr(_report, "_replicates", spy)
    group_report(y, score, sensitive_features=group, n_bootstrap=300, stratify=True,
                 random_state=0)
    assert (np.concatenate(seen) == 4).all() and len(np.concatenate(seen)) == 300
