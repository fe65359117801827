"""Declared parameter constraints of the public functions of fairskl.metrics, fairskl.inspection
and fairskl.experiments (validate_params)."""

import inspect

import numpy as np
import pandas as pd
import pytest
from sklearn.utils._param_validation import InvalidParameterError

import fairskl.experiments
import fairskl.inspection
import fairskl.metrics
from fairskl.metrics import group_report, operating_threshold, tpr_difference

#: parameters checked in the function body instead of declared, with why
UNDECLARED = {
    # an int >= 1 that is not a bool: Interval(Integral, 1, None) would take True for 1
    "neuron_incidence": {"top_k"},
}
PUBLIC_FUNCTIONS = [
    getattr(module, name)
    for module in (fairskl.metrics, fairskl.inspection, fairskl.experiments)
    for name in module.__all__
    if inspect.isfunction(getattr(module, name))
]


@pytest.mark.parametrize("function", PUBLIC_FUNCTIONS, ids=lambda f: f.__name__)
def test_every_parameter_of_the_public_functions_is_declared(function):
    declared = set(function._skl_parameter_constraints)
    parameters = {name for name, p in inspect.signature(function).parameters.items()
                  if p.kind is not p.VAR_KEYWORD}
    assert declared <= parameters  # validate_params skips a misspelt name silently
    assert parameters - declared == UNDECLARED.get(function.__name__, set())


def _report_data(n=80):
    rng = np.random.RandomState(0)
    return rng.randint(0, 2, n), rng.uniform(size=n), rng.choice(["f", "m"], n)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_bootstrap": 1}, r"'n_bootstrap' .* Got 1 instead"),  # one resample has no spread
    ({"n_bootstrap": -1}, r"'n_bootstrap' .* Got -1 instead"),
    ({"n_bootstrap": 10.0}, r"'n_bootstrap' .* Got 10\.0 instead"),
    ({"ci": 1.0}, r"'ci' .* Got 1\.0 instead"),
    ({"random_state": "0"}, r"'random_state' .* Got '0' instead"),
    ({"threshold": "0.5"}, r"'threshold' .* Got '0\.5' instead"),
    ({"n_bins": 0}, r"'n_bins' .* Got 0 instead"),
    ({"metrics": 3}, r"'metrics' .* Got 3 instead"),
    ({"sensitive_features": 3}, r"'sensitive_features' .* Got 3 instead"),
])
def test_group_report_rejects_bad_parameters(kwargs, match):
    y, score, sex = _report_data()
    kwargs = {"sensitive_features": sex, **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        group_report(y, score, **kwargs)


def test_group_report_takes_two_resamples_numpy_scalars_and_pandas():
    y, score, sex = _report_data()
    report = group_report(y, score, sensitive_features=sex, n_bootstrap=2, random_state=0)
    assert report[["ci_low", "ci_high"]].notna().any().all()
    plain = group_report(y, score, sensitive_features=sex, metrics=["tpr", "auc"], n_bins=5,
                         n_bootstrap=20, stratify=True, ci=0.9, random_state=0)
    numpy_kinds = group_report(
        pd.Series(y), pd.Series(score), sensitive_features=pd.Series(sex),
        metrics=("tpr", "auc"), threshold=np.float32(0.5), n_bins=np.int32(5),
        n_bootstrap=np.int64(20), stratify=np.bool_(True), ci=np.float64(0.9),
        random_state=np.random.RandomState(0),
    )
    pd.testing.assert_frame_equal(plain, numpy_kinds)


@pytest.mark.parametrize("pos_label", ["mal", np.str_("mal")])
def test_metrics_take_pandas_lists_dicts_and_numpy_labels(pos_label):
    y = ["ben", "mal", "mal", "ben", "mal", "mal"]
    y_pred = ["ben", "mal", "ben", "ben", "mal", "mal"]
    A = pd.DataFrame({"sex": ["a", "a", "a", "b", "b", "b"]})
    # TPR: a 1 of 2, b 2 of 2
    assert tpr_difference(y, y_pred, sensitive_features=A, pos_label=pos_label,
                          expected_groups={"sex": ["a", "b"]}) == 0.5
    assert tpr_difference(np.array([0, 1, 1, 0, 1, 1]), [0, 1, 0, 0, 1, 1], pos_label=np.int64(1),
                          sensitive_features=list(A["sex"]), expected_groups=("a", "b")) == 0.5
    with pytest.raises(InvalidParameterError, match=r"'pos_label' .* Got \['mal'\] instead"):
        tpr_difference(y, y_pred, sensitive_features=A, pos_label=["mal"])


def test_operating_threshold_declares_its_arrays_and_checks_the_point_itself():
    assert operating_threshold(pd.Series([0, 1]), pd.Series([0.2, 0.8]), ("tpr", 1.0)) == 0.8
    with pytest.raises(InvalidParameterError, match=r"'y_score' .* Got 0\.5 instead"):
        operating_threshold(None, 0.5, ("rate", 0.5))
    with pytest.raises(ValueError, match="operating_point must be a threshold"):
        operating_threshold(None, [0.2, 0.8], "rate")
