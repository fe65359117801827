"""The mitigation family on the shared base: CVaR-DRO, JTT, spectral decoupling, group balance.

Every loss is recomputed by hand in NumPy from the network's logits (``lr=0`` and one full
batch, so that the network does not move and the epoch's loss is that one batch's loss).
"""

import math
import pickle

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch.helper import SliceDict

from fairskl import (
    CVaRDROClassifier,
    FairnessWarning,
    GroupBalancedClassifier,
    JTTClassifier,
    NIRClassifier,
    SpectralDecouplingClassifier,
)
from fairskl._base import _RegularizedClassifier
from fairskl.metrics import TradeoffRefit, make_fairness_scorer, tpr_difference

SKORCH_INIT = (
    "skorch's NeuralNet.__init__ sets history_, initialized_ and virtual_params_; every skorch "
    "estimator fails this check"
)
FAST = dict(backbone="mlp", lr=1e-2, max_epochs=5, random_state=0, verbose=0)


def _tabular(n=300, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    group = np.where(rng.rand(n) < 0.75, "major", "minor")
    y = (X[:, 0] + X[:, 1] * (group == "minor") + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, y, group


def _frozen(cls, X, y, **params):
    """Fit with lr=0 on one full batch: the epoch's loss is the initial network's, by hand."""
    clf = cls(backbone="mlp", lr=0.0, max_epochs=1, batch_size=len(y), random_state=0,
              verbose=0, **params).fit(X, y)
    logits = clf.forward(X if not isinstance(X, dict) else X["X"], training=False)[0]
    return clf, logits.numpy().astype(float)


def _ce(logits, y):
    """Per-sample softmax cross-entropy, from the definition."""
    top = logits.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return log_norm - logits[np.arange(len(y)), y]


# -- the equations, by hand ----------------------------------------------------------------------

@pytest.mark.parametrize("alpha", [0.1, 0.25, 1.0])
def test_cvar_loss_is_the_mean_of_the_largest_losses(alpha):
    X, y, _ = _tabular(90)
    clf, logits = _frozen(CVaRDROClassifier, X, y, alpha=alpha)
    ce = _ce(logits, y)
    k = math.ceil(alpha * len(y))
    expected = np.sort(ce)[::-1][:k].mean()
    row = clf.history[-1]
    assert row["train_loss"] == pytest.approx(expected, rel=1e-5)
    assert row["train_cvar"] == pytest.approx(expected, rel=1e-5)
    assert row["train_ce"] == pytest.approx(ce.mean(), rel=1e-5)
    if alpha < 1:
        assert expected > ce.mean()


def test_spectral_decoupling_adds_half_lambda_mean_squared_logits():
    X, y, _ = _tabular(90)
    clf, logits = _frozen(SpectralDecouplingClassifier, X, y, lambda_sd=0.7)
    ce = _ce(logits, y).mean()
    penalty = 0.5 * np.mean(logits ** 2)  # over the batch and the two logits
    row = clf.history[-1]
    assert row["train_sd"] == pytest.approx(penalty, rel=1e-5)
    assert row["train_loss"] == pytest.approx(ce + 0.7 * penalty, rel=1e-5)


@pytest.mark.parametrize("balance", ["group", "group_label"])
def test_group_balanced_weights_and_loss_by_hand(balance):
    X, y, group = _tabular(120)
    clf, logits = _frozen(GroupBalancedClassifier, SliceDict(X=X, groups=group), y,
                          balance=balance)
    cells = group if balance == "group" else np.char.add(np.char.add(group, "|"), y.astype(str))
    names, counts = np.unique(cells, return_counts=True)
    weight_of = {name: len(y) / (len(names) * count)
                 for name, count in zip(names, counts, strict=True)}
    w = np.array([weight_of[c] for c in cells])
    for name in names:  # each cell carries the same total weight
        assert w[cells == name].sum() == pytest.approx(len(y) / len(names))
    assert clf.group_weights_.to_dict() == pytest.approx(weight_of)
    ce = _ce(logits, y)
    row = clf.history[-1]
    assert row["train_loss"] == pytest.approx((w * ce).sum() / w.sum(), rel=1e-5)
    assert row["train_ce"] == pytest.approx(ce.mean(), rel=1e-5)


def test_jtt_error_set_and_second_training_by_hand():
    X, y, _ = _tabular(120)
    # lr=0: the first network is the initial one, so its errors are the initial logits' errors
    clf, logits = _frozen(JTTClassifier, X, y, identification_epochs=1, upweight=4.0)
    wrong = logits.argmax(axis=1) != y
    assert 0 < wrong.sum() < len(y)
    np.testing.assert_array_equal(clf.error_set_, wrong)
    w = np.where(wrong, 4.0, 1.0)
    ce = _ce(logits, y)
    assert clf.history[-1]["train_loss"] == pytest.approx((w * ce).sum() / w.sum(), rel=1e-5)
    first = clf.identification_history_[-1]
    assert first["train_loss"] == pytest.approx(ce.mean(), rel=1e-5)  # plain ERM first


def test_jtt_trains_twice_from_the_same_start_and_the_error_set_matters():
    X, y, _ = _tabular(300)
    clf = JTTClassifier(identification_epochs=2, upweight=20.0, **FAST).fit(X, y)
    assert len(clf.identification_history_) == 2 and len(clf.history) == 5
    assert clf.error_set_.dtype == bool and 0 < clf.error_set_.mean() < 0.5
    plain = JTTClassifier(identification_epochs=2, upweight=1.0, **FAST).fit(X, y)
    erm = NIRClassifier(lambda_nir=0.0, **FAST).fit(X, y)  # same net, same seed, plain CE
    np.testing.assert_allclose(plain.predict_proba(X), erm.predict_proba(X), atol=1e-5)
    assert not np.allclose(clf.predict_proba(X), erm.predict_proba(X), atol=1e-3)


def test_nir_loss_through_the_shared_base_is_unchanged():
    from fairskl import nir_penalty

    X, y, _ = _tabular(90)
    clf, logits = _frozen(NIRClassifier, X, y, lambda_nir=2.0)
    import torch

    h = torch.tensor(clf.penultimate(X))
    p = torch.softmax(torch.tensor(logits), dim=1)
    nir = float(nir_penalty(h, p))
    assert clf.history[-1]["train_loss"] == pytest.approx(_ce(logits, y).mean() + 2 * nir,
                                                          rel=1e-5)


# -- the family's API ----------------------------------------------------------------------------

ESTIMATORS = [
    CVaRDROClassifier(alpha=0.5, **FAST),
    JTTClassifier(identification_epochs=1, upweight=5.0, **FAST),
    SpectralDecouplingClassifier(lambda_sd=0.1, **FAST),
    GroupBalancedClassifier(**FAST),
]


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: {"check_no_attributes_set_in_init": SKORCH_INIT},
)
def test_sklearn_estimator_checks(estimator, check):
    import warnings

    with warnings.catch_warnings():  # sklearn's arrays carry no groups: plain ERM, as warned
        warnings.simplefilter("ignore", FairnessWarning)
        check(estimator)


def test_every_method_shares_the_base():
    for estimator in ESTIMATORS + [NIRClassifier()]:
        assert isinstance(estimator, _RegularizedClassifier)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_images_pickle_and_clone(estimator):
    from fairskl.datasets import make_skin_lesions

    data = make_skin_lesions(160, 16, random_state=0)
    X = SliceDict(X=data.images, groups=data.sensitive["sex"].astype(str).to_numpy())
    clf = clone(estimator).set_params(backbone="small_cnn", max_epochs=1).fit(X, data.target)
    proba = clf.predict_proba(data.images)  # no groups needed to predict
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=1e-6)
    assert clf.penultimate(data.images).shape == (160, 64)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(again.predict_proba(data.images), proba, rtol=1e-6)
    assert clone(clf).get_params()["backbone"] == "small_cnn"


@pytest.mark.parametrize("estimator, grid", [
    (CVaRDROClassifier(**FAST), {"alpha": [0.2, 1.0]}),
    (JTTClassifier(identification_epochs=1, **FAST), {"upweight": [1.0, 10.0],
                                                      "identification_epochs": [1]}),
    (SpectralDecouplingClassifier(**FAST), {"lambda_sd": [0.0, 1.0]}),
    (GroupBalancedClassifier(**FAST), {"balance": ["group", "group_label"]}),
    (NIRClassifier(**FAST), {"lambda_nir": [0.0, 1.0]}),
], ids=lambda p: type(p).__name__ if not isinstance(p, dict) else "")
def test_grid_search_with_routed_fairness_scorers(estimator, grid):
    X, y, group = _tabular(300)
    data = SliceDict(X=X, groups=group)  # every method takes the same X; only one uses groups
    with sklearn.config_context(enable_metadata_routing=True):
        scoring = {"auc": "roc_auc", "tpr_difference": make_fairness_scorer("tpr_difference")}
        search = GridSearchCV(estimator, grid, scoring=scoring, cv=StratifiedKFold(3),
                              refit=TradeoffRefit("auc", "tpr_difference", max_disparity=1.0),
                              error_score="raise")
        search.fit(data, y, sensitive_features=group)
    assert len(search.cv_results_["params"]) == np.prod([len(v) for v in grid.values()])
    assert (search.cv_results_["mean_test_tpr_difference"] <= 0).all()
    assert search.best_estimator_.predict(data).shape == (300,)


def test_group_balance_changes_the_model_and_warns_without_groups():
    X, y, group = _tabular(300)
    balanced = GroupBalancedClassifier(**FAST).fit(SliceDict(X=X, groups=group), y)
    with pytest.warns(FairnessWarning, match="no groups.*plain ERM"):
        plain = GroupBalancedClassifier(**FAST).fit(X, y)
    erm = NIRClassifier(lambda_nir=0.0, **FAST).fit(X, y)
    np.testing.assert_allclose(plain.predict_proba(X), erm.predict_proba(X), atol=1e-5)
    assert not np.allclose(balanced.predict_proba(X), erm.predict_proba(X), atol=1e-3)
    assert plain.group_weights_.tolist() == [1.0]


def test_label_free_methods_ignore_groups_in_X():
    X, y, group = _tabular(200)
    for cls in (CVaRDROClassifier, SpectralDecouplingClassifier, NIRClassifier):
        a = cls(**FAST).fit(X, y).predict_proba(X)
        b = cls(**FAST).fit({"X": X, "groups": group}, y).predict_proba(X)
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("estimator, message", [
    (CVaRDROClassifier(alpha=0.0), r"'alpha' .* range \(0\.0, 1\.0\]\. Got 0\.0"),
    (CVaRDROClassifier(alpha=1.5), r"'alpha' .* Got 1\.5"),
    (JTTClassifier(upweight=0.5), r"'upweight' .* range \[1\.0, inf\)\. Got 0\.5"),
    (JTTClassifier(identification_epochs=0), r"'identification_epochs' .* \[1, inf\)\. Got 0"),
    (JTTClassifier(identification_epochs=1.5), r"'identification_epochs' .* an int .* Got 1\.5"),
    (SpectralDecouplingClassifier(lambda_sd=-1), r"'lambda_sd' .* range \[0\.0, inf\)\. Got -1"),
    (GroupBalancedClassifier(balance="label"), r"'balance' .* among \{.*\}\. Got 'label'"),
], ids=lambda p: p if isinstance(p, str) else type(p).__name__)
def test_parameter_errors_name_the_parameter(estimator, message):
    X, y, _ = _tabular(50)
    with pytest.raises(ValueError, match=message):
        estimator.set_params(backbone="mlp", verbose=0).fit(X, y)


def test_dict_X_errors_and_lengths():
    X, y, group = _tabular(50)
    with pytest.raises(ValueError, match=r"needs the key 'X'.*got keys \['images'\]"):
        CVaRDROClassifier(**FAST).fit({"images": X}, y)
    with pytest.raises(ValueError, match=r"keys \['X', 'group'\]"):
        CVaRDROClassifier(**FAST).fit({"X": X, "group": group}, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        GroupBalancedClassifier(**FAST).fit({"X": X, "groups": group[:10]}, y)


def test_jtt_partial_fit():
    X, y, _ = _tabular(100)
    clf = JTTClassifier(identification_epochs=1, **FAST).partial_fit(X, y, classes=[0, 1])
    assert hasattr(clf, "error_set_") and len(clf.history) == 5
    wrong = clf.predict(X) != y
    before = clf.predict_proba(X)
    clf.set_params(lr=0.0, max_epochs=1, batch_size=100).partial_fit(X, y)  # current errors
    ce = -np.log(before[np.arange(100), y])
    w = np.where(wrong, clf.upweight, 1.0)
    assert clf.history[-1]["train_loss"] == pytest.approx((w * ce).sum() / w.sum(), rel=1e-4)
    with pytest.raises(ValueError, match="expecting 6 features"):
        clf.partial_fit(X[:, :3], y)


# -- fairlearn's ThresholdOptimizer on a fitted fairskl classifier (the user guide's recipe) ------

def test_threshold_optimizer_prefit_on_a_validation_split():
    from fairlearn.postprocessing import ThresholdOptimizer

    rng = np.random.RandomState(0)
    n = 20000
    X = rng.normal(size=(n, 4)).astype(np.float32)
    group = np.where(rng.rand(n) < 0.5, "a", "b")
    # group b's positives have a weaker signal: a plain threshold under-diagnoses them
    y = (X[:, 0] * np.where(group == "a", 2.0, 0.7) + 0.5 * rng.normal(size=n) > 0).astype(int)
    X[:, 1] = (group == "b") + 0.1 * rng.normal(size=n)
    idx = np.arange(n)
    fit_idx, rest = train_test_split(idx, test_size=0.5, stratify=y, random_state=0)
    val_idx, test_idx = train_test_split(rest, test_size=0.6, stratify=y[rest], random_state=0)
    clf = NIRClassifier(lambda_nir=0.0, **{**FAST, "max_epochs": 10}).fit(X[fit_idx], y[fit_idx])
    post = ThresholdOptimizer(estimator=clf, constraints="true_positive_rate_parity",
                              objective="balanced_accuracy_score", prefit=True,
                              predict_method="predict_proba")
    post.fit(X[val_idx], y[val_idx], sensitive_features=group[val_idx])  # thresholds: validation
    test = test_idx
    before = tpr_difference(y[test], clf.predict(X[test]), sensitive_features=group[test])
    y_post = post.predict(X[test], sensitive_features=group[test], random_state=0)
    after = tpr_difference(y[test], y_post, sensitive_features=group[test])
    assert before > 0.1 and after < before / 3, (before, after)
    # its predictions need the groups, and they are randomised (but reproducible by seed)
    with pytest.raises(TypeError):
        post.predict(X[test])
    other = post.predict(X[test], sensitive_features=group[test], random_state=1)
    assert (other != y_post).any()
    np.testing.assert_array_equal(
        post.predict(X[test], sensitive_features=group[test], random_state=0), y_post)
    assert roc_auc_score(y[test], clf.predict_proba(X[test])[:, 1]) > 0.8
