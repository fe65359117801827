"""The group-robustness baselines on the shared base: group DRO, DFR and LfF.

Each method's step is recomputed by hand in NumPy / scikit-learn from the networks' outputs
(``lr=0`` and one full batch where the epoch's recorded loss must be that batch's, or a batch
handed to ``get_loss`` directly). The small helpers repeat those of test_mitigations.py: the
tests folder is not a package, and one test module importing another would tie them together.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, StratifiedShuffleSplit
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch.helper import SliceDict

from fairskl import (
    DFRClassifier,
    FairnessWarning,
    GroupDROClassifier,
    LfFClassifier,
    NIRClassifier,
)
from fairskl._base import _RegularizedClassifier
from fairskl.metrics import TradeoffRefit, make_fairness_scorer

SKORCH_INIT = (
    "skorch's NeuralNet.__init__ sets history_, initialized_ and virtual_params_; every skorch "
    "estimator fails this check"
)
FAST = dict(backbone="mlp", lr=1e-2, max_epochs=5, random_state=0, verbose=0)


def _tabular(n=300, seed=0, n_groups=2):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    names = np.array(["major", "minor", "rare"][:n_groups])
    shares = np.array([0.6, 0.3, 0.1][:n_groups])
    group = names[rng.choice(n_groups, size=n, p=shares / shares.sum())]
    y = (X[:, 0] + X[:, 1] * (group != "major") + 0.5 * rng.normal(size=n) > 0).astype(int)
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


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# -- group DRO ----------------------------------------------------------------------------------

def test_group_dro_weights_and_loss_of_one_batch_by_hand():
    X, y, group = _tabular(120)
    eta, C = 0.5, 2.0
    clf, logits = _frozen(GroupDROClassifier, SliceDict(X=X, groups=group), y, step_size=eta,
                          generalization_adjustment=C)
    ce = _ce(logits, y)
    names, counts = np.unique(group, return_counts=True)
    L = np.array([ce[group == g].mean() for g in names])
    q = np.full(len(names), 1 / len(names)) * np.exp(eta * (L + C / np.sqrt(counts)))
    q /= q.sum()
    assert clf.group_weights_.index.tolist() == names.tolist()
    np.testing.assert_allclose(clf.group_weights_.to_numpy(), q, rtol=1e-5)
    assert clf.group_counts_.to_dict() == dict(zip(names, counts, strict=True))
    row = clf.history[-1]
    assert row["train_loss"] == pytest.approx((q * L).sum(), rel=1e-5)  # with the moved q
    assert row["train_group_dro"] == pytest.approx((q * L).sum(), rel=1e-5)
    assert row["train_ce"] == pytest.approx(ce.mean(), rel=1e-5)


def test_group_dro_moves_q_on_training_batches_only_and_keeps_absent_groups():
    X, y, group = _tabular(150, n_groups=3)
    clf, logits = _frozen(GroupDROClassifier, SliceDict(X=X, groups=group), y, step_size=0.3)
    names = clf.group_weights_.index.to_numpy()
    codes = np.searchsorted(names, group)  # the codes of the sorted group names
    rows = np.flatnonzero(group != "rare")  # a batch without the rare group
    batch = {"X": torch.tensor(X[rows]), "groups": torch.tensor(codes[rows])}
    y_pred = clf.infer(batch)
    before = clf.group_weights_.copy()

    loss = clf.get_loss(y_pred, torch.tensor(y[rows]), X=batch, training=False)
    pd.testing.assert_series_equal(clf.group_weights_, before)  # validation: q stays
    ce = _ce(logits[rows], y[rows])
    L = np.array([ce[group[rows] == g].mean() if g != "rare" else 0.0 for g in names])
    assert loss.item() == pytest.approx((before.to_numpy() * L).sum(), rel=1e-5)

    loss = clf.get_loss(y_pred, torch.tensor(y[rows]), X=batch, training=True)
    q = before.to_numpy().copy()
    present = names != "rare"
    moved = q[present] * np.exp(0.3 * L[present])
    q[present] = moved / moved.sum() * q[present].sum()
    np.testing.assert_allclose(clf.group_weights_.to_numpy(), q, rtol=1e-6)
    assert clf.group_weights_["rare"] == before["rare"]  # absent: unchanged
    assert clf.group_weights_.sum() == pytest.approx(1.0)
    assert loss.item() == pytest.approx((q * L).sum(), rel=1e-5)


def test_group_dro_without_groups_is_erm_and_warns():
    X, y, group = _tabular(300)
    with pytest.warns(FairnessWarning, match="no groups.*plain ERM"):
        plain = GroupDROClassifier(step_size=0.5, **FAST).fit(X, y)
    erm = NIRClassifier(lambda_nir=0.0, **FAST).fit(X, y)
    np.testing.assert_allclose(plain.predict_proba(X), erm.predict_proba(X), atol=1e-5)
    assert plain.group_weights_.tolist() == [1.0]
    robust = GroupDROClassifier(step_size=0.5, **FAST).fit(SliceDict(X=X, groups=group), y)
    assert not np.allclose(robust.predict_proba(X), erm.predict_proba(X), atol=1e-3)


def test_group_dro_q_restarts_with_fit_and_carries_on_with_partial_fit():
    X, y, group = _tabular(200)
    data = SliceDict(X=X, groups=group)
    clf = GroupDROClassifier(step_size=1.0, **FAST).fit(data, y)
    after_fit = clf.group_weights_.copy()
    assert not np.allclose(after_fit, 0.5)
    clf.partial_fit(data, y)
    assert not np.allclose(clf.group_weights_, after_fit)  # moved on from where it was
    again = clf.fit(data, y).group_weights_  # a new fit starts from uniform q again
    np.testing.assert_allclose(again, after_fit, rtol=1e-6)


# -- DFR ----------------------------------------------------------------------------------------

def _balanced(n=200, seed=0):
    """Tabular data with exactly n/2 rows of each class (so a stratified half is balanced)."""
    X, _, group = _tabular(n, seed)
    y = (np.argsort(np.argsort(X[:, 0] + 0.3 * X[:, 2])) >= n // 2).astype(int)
    return X, y, group


@pytest.mark.parametrize("penalty", ["l2", "l1"])
def test_dfr_head_is_a_logistic_regression_on_held_out_features(penalty):
    X, y, _ = _balanced(200)
    clf = DFRClassifier(C=0.5, penalty=penalty, n_repeats=1, **FAST).fit(X, y)
    # the held-out rows: a stratified shuffle split, seeded by random_state
    hold = np.sort(next(StratifiedShuffleSplit(1, test_size=0.5, random_state=0).split(
        np.zeros((200, 1)), y))[1])
    np.testing.assert_array_equal(clf.holdout_indices_, hold)
    train = np.setdiff1d(np.arange(200), hold)
    # the network is plain ERM on the other rows
    erm = NIRClassifier(lambda_nir=0.0, **FAST).fit(X[train], y[train])
    np.testing.assert_allclose(clf.penultimate(X), erm.penultimate(X), rtol=1e-5, atol=1e-6)
    # the held-out classes are balanced (50/50): the subsample is every held-out row, in the
    # order drawn (class by class, seeded by random_state), which liblinear's result follows
    assert clf.n_balanced_ == 100
    rng = np.random.RandomState(0)
    rows = np.concatenate([rng.choice(np.flatnonzero(y[hold] == c), 50, replace=False)
                           for c in (0, 1)])
    features = erm.penultimate(X[hold]).astype(np.float64)
    scaler = StandardScaler().fit(features)
    solver = "lbfgs" if penalty == "l2" else "liblinear"
    head = LogisticRegression(C=0.5, l1_ratio=1.0 if penalty == "l1" else 0.0, solver=solver,
                              max_iter=10_000, random_state=0)
    head.fit(scaler.transform(features)[rows], y[hold][rows])
    np.testing.assert_allclose(clf.last_layer_.coef_, head.coef_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(clf.last_layer_.intercept_, head.intercept_, rtol=1e-4,
                               atol=1e-5)
    expected = head.predict_proba(scaler.transform(erm.penultimate(X).astype(np.float64)))
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-4, atol=1e-5)
    if penalty == "l1":  # an L1 head drops features
        assert (clf.last_layer_.coef_ == 0).any()


def test_dfr_averages_the_heads_of_balanced_subsamples():
    X, y, group = _tabular(300)
    data = SliceDict(X=X, groups=group)
    clf = DFRClassifier(balance="group", penalty="l2", C=0.3, n_repeats=3, **FAST).fit(data, y)
    hold = clf.holdout_indices_
    cells = np.char.add(np.char.add(group[hold], "|"), y[hold].astype(str))
    names, cell_of_row = np.unique(cells, return_inverse=True)
    members = [np.flatnonzero(cell_of_row == k) for k in range(len(names))]
    smallest = min(map(len, members))
    assert clf.n_balanced_ == smallest * len(names) < len(hold)
    features = clf.scaler_.transform(clf.penultimate(X[hold]).astype(np.float64))
    np.testing.assert_allclose(clf.scaler_.mean_, clf.penultimate(X[hold]).mean(axis=0),
                               rtol=1e-5, atol=1e-6)
    rng = np.random.RandomState(0)  # the subsamples, drawn as documented: cell by cell
    coefs, intercepts = [], []
    for _ in range(3):
        rows = np.concatenate([rng.choice(m, smallest, replace=False) for m in members])
        assert np.unique(cells[rows], return_counts=True)[1].tolist() == [smallest] * len(names)
        fit = LogisticRegression(C=0.3, max_iter=10_000).fit(features[rows], y[hold][rows])
        coefs.append(fit.coef_)
        intercepts.append(fit.intercept_)
    np.testing.assert_allclose(clf.last_layer_.coef_, np.mean(coefs, axis=0), atol=1e-4)
    np.testing.assert_allclose(clf.last_layer_.intercept_, np.mean(intercepts, axis=0),
                               atol=1e-4)
    logit = features @ np.mean(coefs, axis=0)[0] + np.mean(intercepts)
    np.testing.assert_allclose(clf.decision_function(X[hold]), logit, atol=1e-3)


def test_dfr_group_balance_warns_without_groups_and_multiclass_works():
    X, y, _ = _tabular(240)
    with pytest.warns(FairnessWarning, match=r"balance='group'.*no groups.*classes"):
        DFRClassifier(balance="group", n_repeats=2, **FAST).fit(X, y)
    y3 = np.digitize(X[:, 0], [-0.5, 0.5])
    for penalty in ("l1", "l2"):
        clf = DFRClassifier(penalty=penalty, n_repeats=2, **FAST).fit(X, y3)
        assert clf.predict_proba(X).shape == (240, 3)
        assert clf.decision_function(X).shape == (240, 3)
        assert clf.score(X, y3) > 0.6


def test_dfr_partial_fit_refits_the_last_layer():
    X, y, _ = _tabular(200)
    clf = DFRClassifier(n_repeats=2, **FAST).partial_fit(X, y, classes=[0, 1])
    assert hasattr(clf, "last_layer_") and len(clf.history) == 5
    head = clf.last_layer_
    clf.partial_fit(X, y)
    assert len(clf.history) == 10 and clf.last_layer_ is not head


# -- LfF ----------------------------------------------------------------------------------------

def test_lff_gce_weights_and_loss_of_one_batch_by_hand():
    X, y, _ = _tabular(120)
    q = 0.6
    clf, logits_d = _frozen(LfFClassifier, X, y, gce_q=q, ema_alpha=0.7)
    with torch.no_grad():
        logits_b = clf.biased_module_(torch.tensor(X))[0].numpy().astype(float)
    assert not np.allclose(logits_b, logits_d)  # two networks, two initialisations
    p_y = _softmax(logits_b)[np.arange(120), y]
    gce = (1 - p_y ** q) / q
    ce_b, ce_d = _ce(logits_b, y), _ce(logits_d, y)
    # the first average of a row is its loss
    np.testing.assert_allclose(clf.sample_loss_ema_, np.c_[ce_b, ce_d], rtol=1e-5)
    max_b = np.array([ce_b[y == c].max() for c in (0, 1)])[y]  # the largest of each class
    max_d = np.array([ce_d[y == c].max() for c in (0, 1)])[y]
    w = (ce_b / max_b) / (ce_b / max_b + ce_d / max_d + 1e-8)
    row = clf.history[-1]
    assert row["train_gce"] == pytest.approx(gce.mean(), rel=1e-5)
    assert row["train_weighted_ce"] == pytest.approx((w * ce_d).mean(), rel=1e-5)
    assert row["train_loss"] == pytest.approx(gce.mean() + (w * ce_d).mean(), rel=1e-5)
    assert row["train_ce"] == pytest.approx(ce_d.mean(), rel=1e-5)

    # a second batch of 40 rows, the debiased logits doubled: the averages move, the others
    # stay, and each class is still divided by its largest average over all 120 rows
    rows = np.arange(40)
    batch = {"X": torch.tensor(X[rows]), "index": torch.tensor(rows)}
    new_d = 2 * logits_d[rows]
    y_pred = (torch.tensor(new_d, dtype=torch.float32), torch.zeros(40, 64))
    loss = clf.get_loss(y_pred, torch.tensor(y[rows]), X=batch, training=True)
    ema = np.c_[ce_b, ce_d]
    ema[rows, 1] = 0.7 * ce_d[rows] + 0.3 * _ce(new_d, y[rows])  # the biased loss is the same
    np.testing.assert_allclose(clf.sample_loss_ema_, ema, rtol=1e-5)
    largest = np.array([ema[y == c].max(axis=0) for c in (0, 1)])[y[rows]]
    b, d = (ema[rows] / largest).T
    w = b / (b + d + 1e-8)
    expected = gce[rows].mean() + (w * _ce(new_d, y[rows])).mean()
    assert loss.item() == pytest.approx(expected, rel=1e-5)

    # validation batches leave the averages as they are; weights from the batch's losses
    before = clf.sample_loss_ema_.copy()
    loss = clf.get_loss(y_pred, torch.tensor(y[rows]), X=batch, training=False)
    np.testing.assert_array_equal(clf.sample_loss_ema_, before)
    w = ce_b[rows] / (ce_b[rows] + _ce(new_d, y[rows]) + 1e-8)
    assert loss.item() == pytest.approx(gce[rows].mean() + (w * _ce(new_d, y[rows])).mean(),
                                        rel=1e-5)


def test_lff_trains_both_networks_with_one_optimizer():
    X, y, _ = _tabular(200)
    clf = LfFClassifier(**FAST).fit(X, y)
    optimized = {id(p) for group in clf.optimizer_.param_groups for p in group["params"]}
    assert {id(p) for p in clf.biased_module_.parameters()} <= optimized
    assert {id(p) for p in clf.module_.parameters()} <= optimized
    initial = LfFClassifier(**{**FAST, "max_epochs": 1, "lr": 0.0}).fit(X, y)
    for trained, start in ((clf.biased_module_, initial.biased_module_),
                           (clf.module_, initial.module_)):
        assert not torch.allclose(trained.head.weight, start.head.weight)
    # predict uses the debiased network
    proba = torch.softmax(clf.module_(torch.tensor(X))[0], dim=1).detach().numpy()
    np.testing.assert_allclose(clf.predict_proba(X), proba, rtol=1e-5)
    assert not np.isnan(clf.sample_loss_ema_).any()


# -- the family's API ---------------------------------------------------------------------------

ESTIMATORS = [
    GroupDROClassifier(step_size=0.1, **FAST),
    DFRClassifier(n_repeats=2, **FAST),
    LfFClassifier(**FAST),
]


HEAD_ROUNDING = (
    "the network's float32 penultimate features of one row alone differ from those of the same "
    "row in a batch by float32 rounding (~5e-7: a matrix-vector instead of a matrix-matrix "
    "product); DFR's head divides them by their held-out standard deviation and weighs them, "
    "which carries the difference past the check's 1e-7 tolerance (the other classifiers' "
    "logits stay just inside it)"
)


def _expected_failures(estimator):
    failures = {"check_no_attributes_set_in_init": SKORCH_INIT}
    if isinstance(estimator, DFRClassifier):
        failures["check_methods_subset_invariance"] = HEAD_ROUNDING
    return failures


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    import warnings

    with warnings.catch_warnings():  # sklearn's arrays carry no groups: plain ERM, as warned
        warnings.simplefilter("ignore", FairnessWarning)
        check(estimator)


def test_every_baseline_shares_the_base():
    for estimator in ESTIMATORS:
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
    (GroupDROClassifier(**FAST), {"step_size": [0.01, 0.5]}),
    (DFRClassifier(n_repeats=2, **FAST), {"C": [0.1, 1.0]}),
    (LfFClassifier(**FAST), {"gce_q": [0.5, 0.7]}),
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


@pytest.mark.parametrize("estimator, message", [
    (GroupDROClassifier(step_size=-0.1), r"'step_size' .* range \[0\.0, inf\)\. Got -0\.1"),
    (GroupDROClassifier(generalization_adjustment="1"), r"'generalization_adjustment' parameter"),
    (DFRClassifier(holdout_size=0.0), r"'holdout_size' .* range \(0\.0, 1\.0\)\. Got 0\.0"),
    (DFRClassifier(holdout_size=1.0), r"'holdout_size' .* Got 1\.0"),
    (DFRClassifier(C=0), r"'C' .* range \(0\.0, inf\)\. Got 0 "),
    (DFRClassifier(penalty="elasticnet"), r"'penalty' .* among \{.*\}\. Got 'elas"),
    (DFRClassifier(balance="group_label"), r"'balance' .* among \{.*\}\. Got 'group_label'"),
    (DFRClassifier(n_repeats=0), r"'n_repeats' .* an int in the range \[1, inf\)\. Got 0 "),
    (LfFClassifier(gce_q=0.0), r"'gce_q' .* range \(0\.0, 1\.0\]\. Got 0\.0"),
    (LfFClassifier(ema_alpha=1.0), r"'ema_alpha' .* range \[0\.0, 1\.0\)\. Got 1\.0"),
    (LfFClassifier(ema_alpha=-0.5), r"'ema_alpha' .* range \[0\.0, 1\.0\)\. Got -0\.5"),
    (LfFClassifier(checkpoint="runs/lff"), r"does not support checkpoint='runs/lff'"),
], ids=lambda p: p if isinstance(p, str) else type(p).__name__)
def test_parameter_errors_name_the_parameter(estimator, message):
    X, y, _ = _tabular(50)
    with pytest.raises(ValueError, match=message):
        estimator.set_params(backbone="mlp", verbose=0).fit(X, y)


def test_errors_of_the_data():
    X, y, group = _tabular(60)
    group = group.astype(object)
    group[3] = None
    with pytest.raises(ValueError, match="groups has missing values"):
        GroupDROClassifier(**FAST).fit({"X": X, "groups": group}, y)
    y_rare = y.copy()
    y_rare[:] = 0
    y_rare[0] = 1  # a class with a single row cannot be on both sides
    with pytest.raises(ValueError, match=r"by class, but \[1\] have a single row each"):
        DFRClassifier(**FAST).fit(X, y_rare)
    images = torch.utils.data.TensorDataset(torch.zeros(60, 1, 8, 8), torch.tensor(y))
    with pytest.raises(TypeError, match="without a subset method"):
        DFRClassifier(**{**FAST, "backbone": "small_cnn"}).fit(images, y)


@pytest.mark.parametrize("cls", [GroupDROClassifier, LfFClassifier, DFRClassifier])
def test_streamed_images_and_arrays_train_the_same(cls, tmp_path):
    """Image paths (read batch by batch) carry the methods' per-row extras (group codes, row
    indices, held-out rows) as the array does: the same model from both."""
    from PIL import Image

    from fairskl.datasets import ImageFiles

    rng = np.random.RandomState(0)
    images = (rng.uniform(size=(48, 8, 8, 3)) * 255).astype(np.uint8)
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    X = np.stack([ImageFiles(paths, image_size=8)[i][0].numpy() for i in range(48)])
    y = np.arange(48) % 2
    group = np.where(np.arange(48) % 3 == 0, "a", "b")
    kw = dict(backbone="small_cnn", max_epochs=2, batch_size=16, random_state=0, verbose=0)
    from_array = cls(**kw).fit({"X": X, "groups": group}, y)
    streamed = cls(image_size=8, **kw).fit({"X": np.array(paths), "groups": group}, y)
    np.testing.assert_allclose(streamed.predict_proba(paths), from_array.predict_proba(X),
                               rtol=1e-5, atol=1e-6)
