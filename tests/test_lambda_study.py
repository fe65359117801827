"""The λ study: folds, per-fold numbers checked by hand, the choice of λ, its figure."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from fairskl import NIRClassifier
from fairskl.exceptions import FairnessWarning
from fairskl.experiments import lambda_study, plot_lambda_tradeoff


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    A = pd.Series(rng.choice(["a", "b"], n), name="group")
    y = rng.integers(0, 2, n)
    X = (rng.normal(size=(n, 6)) + y[:, None] * (1 + (A == "a").to_numpy()[:, None])).astype(
        np.float32)
    patients = np.arange(n) // 2  # two rows per patient
    return X, y, A, patients


def _tpr(y, pred):
    return np.mean(pred[y == 1] == 1)


def test_lambda_study_numbers_folds_and_choice():
    X, y, A, patients = _data()
    net = NIRClassifier("mlp", hidden_sizes=(16,), max_epochs=3, verbose=0)
    study = lambda_study(net, X, y, sensitive_features=A, lambdas=[0, 0.5], cv=3,
                         groups=patients, seeds=[0, 1], max_disparity=1.0, verbose=0)
    assert set(study.folds) == {0, 1}
    for folds in study.folds.values():
        tests = np.concatenate([test for _, test in folds])
        assert np.array_equal(np.sort(tests), np.arange(len(y)))
        for train, test in folds:
            assert not np.isin(patients[test], patients[train]).any()
    # 2 lambdas x 2 seeds x 3 folds x 8 metrics, gaps reported as positive numbers.
    assert len(study.results) == 96
    assert set(study.results.metric) == {
        "auc", "equity_scaled_auc", "auc_difference", "positive_rate", "tpr_difference",
        "fpr_difference", "tpr_difference_matched", "fpr_difference_matched"}
    gaps = study.results[study.results.metric.str.endswith("difference")]["value"]
    assert (gaps >= 0).all()
    # One fold recomputed by hand.
    train, test = study.folds[1][2]
    model = clone(net).set_params(lambda_nir=0.5, random_state=1).fit(X[train], y[train])
    pred = model.predict(X[test])
    by_group = [_tpr(y[test][A[test] == g], pred[A[test] == g]) for g in ["a", "b"]]
    got = study.results.query("lambda_nir == 0.5 and seed == 1 and fold == 2 and "
                              "metric == 'tpr_difference'")["value"].item()
    assert got == pytest.approx(abs(by_group[0] - by_group[1]))
    # The matched gap of that fold: λ=0.5 read where it flags as many rows as λ=0 at 0.5.
    reference = clone(net).set_params(lambda_nir=0.0, random_state=1).fit(X[train], y[train])
    n_flagged = int((reference.predict_proba(X[test])[:, 1] >= 0.5).sum())
    proba = model.predict_proba(X[test])[:, 1]
    pred = np.zeros(len(test), int)
    pred[np.argsort(-proba, kind="stable")[:n_flagged]] = 1  # the top n_flagged rows
    by_group = [_tpr(y[test][A[test] == g], pred[A[test] == g]) for g in ["a", "b"]]
    got = study.results.query("lambda_nir == 0.5 and seed == 1 and fold == 2 and "
                              "metric == 'tpr_difference_matched'")["value"].item()
    assert got == pytest.approx(abs(by_group[0] - by_group[1]))
    assert np.allclose(study.oof[0.5, 1][test], proba, atol=1e-6)
    summary = study.summary.set_index(["lambda_nir", "metric"])
    expected = study.results.groupby(["lambda_nir", "metric"])["value"].agg(["mean", "std"])
    np.testing.assert_allclose(summary[["mean", "std"]], expected)
    assert (summary["n"] == 6).all()
    # max_disparity=1.0 accepts every λ: the best mean AUC wins.
    means = summary["mean"].xs("auc", level="metric")
    assert study.best_lambda == means.idxmax()
    assert set(study.estimators) == {0.0, study.best_lambda}
    assert all(hasattr(est, "module_") for est in study.estimators.values())

    ax = plot_lambda_tradeoff(study.summary, best_lambda=study.best_lambda)
    star = ax.get_lines()[-1]
    assert star.get_xdata()[0] == pytest.approx(
        summary.loc[(study.best_lambda, "tpr_difference"), "mean"])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(lambdas=[-1]), ValueError, "numbers >= 0"),
    (dict(lambdas=[0.1, 1.0]), ValueError, "must include 0"),
    (dict(operating_point=("rate", 0.2)), ValueError, "operating_point must be 'matched'"),
    (dict(cv=1), ValueError, r"'cv' parameter of lambda_study must be an int in the range "
                             r"\[2, inf\)"),
    (dict(disparity="auc"), ValueError, "'disparity' parameter of lambda_study must be"),
    (dict(estimator=LogisticRegression()), TypeError, "lambda_nir parameter"),
])
def test_bad_input(kwargs, error, match):
    X, y, A, _ = _data(40)
    args = dict(estimator=NIRClassifier("mlp", verbose=0), X=X, y=y, sensitive_features=A,
                verbose=0)
    with pytest.raises(error, match=match):
        lambda_study(**{**args, **kwargs})


def test_the_floor_refuses_a_lambda_that_flags_nobody():
    """A λ whose gaps vanish because it flags (almost) nobody is below λ=0's AUC floor or has
    a matched gap like λ=0's; the rule falls back to λ=0 and says so."""
    X, y, A, _ = _data()
    net = NIRClassifier("mlp", hidden_sizes=(16,), max_epochs=3, verbose=0)
    with pytest.warns(FairnessWarning, match="lambda_study: No candidate"):
        study = lambda_study(net, X, y, sensitive_features=A, lambdas=[0, 1e4], cv=3,
                             max_disparity=0.0, refit=False, verbose=0)
    assert study.best_lambda == 0.0


def test_misaligned_pandas_inputs_are_refused_not_paired_by_position():
    """A sensitive_features whose index differs from y's (or X's) would be paired with the
    wrong rows; lambda_study raises, as compare_methods does."""
    from fairskl import NIRClassifier
    from fairskl.experiments import lambda_study

    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3)).astype("float32")
    y = pd.Series(np.arange(40) % 2, index=np.arange(40) + 100)
    sex = pd.Series(np.where(np.arange(40) % 3, "m", "f"))
    net = NIRClassifier("mlp", max_epochs=1, verbose=0)
    with pytest.raises(ValueError, match="sensitive_features and y are pandas objects with "
                                         "different indexes"):
        lambda_study(net, X, y, sensitive_features=sex, lambdas=[0, 1], cv=2)
    frame = pd.DataFrame(X, index=np.arange(40) + 100)
    with pytest.raises(ValueError, match="sensitive_features and X are pandas objects"):
        lambda_study(net, frame, y.to_numpy(), sensitive_features=sex, lambdas=[0, 1], cv=2)


def test_the_choice_without_group_labels_is_the_best_mean_auc():
    from fairskl.datasets import make_skin_lesions

    data = make_skin_lesions(240, 16, bias=2.0, random_state=0)
    net = NIRClassifier("small_cnn", max_epochs=1, verbose=0)
    with pytest.warns(FairnessWarning, match="No candidate"):  # the rule falls back to λ=0
        study = lambda_study(net, data.images, data.target,
                             sensitive_features=data.sensitive["age_group"],
                             lambdas=[0, 1, 10], cv=2, refit=False, max_disparity=0.0,
                             verbose=0)
    auc = study.summary.query("metric == 'auc'").set_index("lambda_nir")["mean"]
    assert study.best_lambda == 0.0
    assert study.best_lambda_without_labels == auc.idxmax()
