"""fairskl.experiments.make_baseline_cnn: a skorch classifier that behaves like a sklearn one."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_score
from skorch import NeuralNetClassifier

from fairskl.datasets import make_skin_lesions
from fairskl.experiments import make_baseline_cnn


def _toy(n=64, channels=3, size=16, seed=0):
    """Images whose class is their brightness: any working CNN separates them."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.uniform(0, 0.5, size=(n, channels, size, size)).astype(np.float32)
    X += 0.4 * y[:, None, None, None].astype(np.float32)
    return X, y.astype(np.int64)


def test_defaults_and_overrides():
    net = make_baseline_cnn()
    assert isinstance(net, NeuralNetClassifier)
    params = net.get_params()
    assert params["criterion"] is torch.nn.CrossEntropyLoss
    assert params["optimizer"] is torch.optim.Adam
    assert params["train_split"] is None
    assert params["iterator_train__shuffle"] is True
    assert (params["max_epochs"], params["lr"], params["batch_size"]) == (10, 1e-3, 64)
    assert params["device"] == "cpu" and params["verbose"] == 0
    assert params["random_state"] is None

    net = make_baseline_cnn(max_epochs=3, random_state=7, module__channels=(4, 8, 8))
    assert net.max_epochs == 3 and net.random_state == 7
    assert net.get_params()["module__channels"] == (4, 8, 8)
    net.set_params(random_state=8)
    assert net.get_params()["random_state"] == 8


@pytest.mark.parametrize("channels, size", [(1, 16), (3, 16), (3, 33), (5, 20)])
def test_any_channel_count_and_size(channels, size):
    X, y = _toy(n=32, channels=channels, size=size)
    net = make_baseline_cnn(max_epochs=1, batch_size=16, random_state=0).fit(X, y)
    assert net.module_.features[0].in_channels == channels
    proba = net.predict_proba(X)
    assert proba.shape == (32, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert set(np.unique(net.predict(X))) <= {0, 1}


def test_learns_an_easy_problem():
    X, y = _toy(n=128)
    net = make_baseline_cnn(max_epochs=5, batch_size=32, random_state=0).fit(X, y)
    assert np.mean(net.predict(X) == y) > 0.95
    losses = net.history[:, "train_loss"]
    assert losses[-1] < losses[0]


def test_learning_rate_decays_along_a_half_cosine():
    X, y = _toy(n=32)
    net = make_baseline_cnn(max_epochs=4, lr=0.01, batch_size=16, random_state=0).fit(X, y)
    last = 0.01 * 0.5 * (1 + np.cos(np.pi * 3 / 4))  # epoch 3 of 0..3
    assert net.optimizer_.param_groups[0]["lr"] == pytest.approx(last)
    net.set_params(max_epochs=2).fit(X, y)  # the schedule follows max_epochs, restarts per fit
    assert net.optimizer_.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5)
    net = make_baseline_cnn(max_epochs=2, lr=0.01, callbacks__cosine_decay=None).fit(X, y)
    assert net.optimizer_.param_groups[0]["lr"] == pytest.approx(0.01)


def test_random_state_makes_fits_reproducible():
    X, y = _toy(n=48)
    kwargs = {"max_epochs": 2, "batch_size": 16}
    a = make_baseline_cnn(random_state=0, **kwargs).fit(X, y).predict_proba(X)
    torch.manual_seed(123)  # the global state before fit must not matter
    b = make_baseline_cnn(random_state=0, **kwargs).fit(X, y).predict_proba(X)
    c = make_baseline_cnn(random_state=1, **kwargs).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_clone_and_pickle():
    X, y = _toy(n=48)
    net = make_baseline_cnn(max_epochs=2, batch_size=16, random_state=3, lr=5e-3)
    twin = clone(net)
    assert type(twin) is type(net)
    assert twin.get_params()["random_state"] == 3 and twin.lr == 5e-3
    np.testing.assert_array_equal(net.fit(X, y).predict_proba(X), twin.fit(X, y).predict_proba(X))
    restored = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(restored.predict_proba(X), net.predict_proba(X))


def test_cross_val_score():
    X, y = _toy(n=64)
    net = make_baseline_cnn(max_epochs=3, batch_size=16, random_state=0)
    scores = cross_val_score(net, X, y, cv=2)
    assert scores.shape == (2,) and np.all(scores > 0.7)


def _tpr_gap(y, pred, groups, privileged):
    """TPR of the privileged group minus TPR of the others, by hand."""
    positive = y == 1
    inside = groups == privileged
    return pred[positive & inside].mean() - pred[positive & ~inside].mean()


@pytest.mark.slow
def test_bias_in_the_data_becomes_a_tpr_gap():
    """Trained on biased data, the CNN gives the privileged groups (60+, male) a higher TPR.

    At bias=0 the label is independent of the groups; at bias=3 men and patients aged 60+ are
    more often malignant and carry visible artefacts (hair, vignette) that the CNN uses as
    shortcuts. About 30 s on two CPU cores.
    """
    n_train, n_test = 4000, 3000
    gaps, aucs = {}, {}
    for bias in [0.0, 3.0]:
        data = make_skin_lesions(n_train + n_test, 32, bias=bias, random_state=0)
        X, y, s = data.images, data.target, data.sensitive
        net = make_baseline_cnn(max_epochs=8, random_state=0).fit(X[:n_train], y[:n_train])
        proba = net.predict_proba(X[n_train:])[:, 1]
        y_test, pred = y[n_train:], (proba >= 0.5).astype(int)
        aucs[bias] = roc_auc_score(y_test, proba)
        gaps[bias] = {
            "age_group": _tpr_gap(y_test, pred, s["age_group"].to_numpy()[n_train:], "60+"),
            "sex": _tpr_gap(y_test, pred, s["sex"].to_numpy()[n_train:], "male"),
        }
    # the lesion alone is informative but not perfect
    assert 0.82 < aucs[0.0] < 0.95, aucs
    # no planted bias: about the same TPR in each group
    assert abs(gaps[0.0]["age_group"]) < 0.1 and abs(gaps[0.0]["sex"]) < 0.1, gaps
    # planted bias: a clear gap in favour of the privileged groups
    assert gaps[3.0]["age_group"] > gaps[0.0]["age_group"] + 0.1, gaps
    assert gaps[3.0]["sex"] > gaps[0.0]["sex"] + 0.04, gaps
