"""fairskl's parallel loops and scikit-learn's searches on a Dask cluster of worker processes.

Each result on the cluster is compared with the same computation with ``n_jobs=1`` in this
process (torch on 1 thread, as in a ``threads_per_worker=1`` worker, so that float reductions
match). Task streams prove that the work really ran on the workers.
"""

import os
from contextlib import contextmanager

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.utils.parallel import Parallel, delayed

from fairskl import NIRClassifier
from fairskl._parallel import limit_torch_threads
from fairskl.experiments import lambda_study, representation_study
from fairskl.metrics import make_fairness_scorer

distributed = pytest.importorskip(
    "dask.distributed", reason="dask[distributed] is not installed (pip install fairskl[dask])")
dask = pytest.importorskip("dask")

pytestmark = pytest.mark.timeout(300)


@contextmanager
def _cluster(**kwargs):
    """A LocalCluster of worker processes, leaving this process's environment as it was.

    Dask's nanny writes its workers' environment (``OMP_NUM_THREADS=1``...) into the process that
    starts them, where processes started by later tests would inherit it. ``dashboard_address=":0"``
    serves the scheduler's HTTP routes on a free port (with None they still take 8787).
    """
    before = dict(os.environ)
    unset = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}  # see cluster.rst
    try:
        with dask.config.set(unset), distributed.LocalCluster(
                processes=True, dashboard_address=":0", **kwargs) as cluster, \
                distributed.Client(cluster) as client:
            yield client
    finally:
        os.environ.clear()
        os.environ.update(before)


@pytest.fixture(scope="module")
def client():
    with _cluster(n_workers=2, threads_per_worker=1) as client:
        yield client


@contextmanager
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _on_dask(client):
    """Run joblib on the cluster; yields the list of tasks that ran there."""
    with distributed.get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
        yield stream


def _data(n=150, seed=0):
    rng = np.random.default_rng(seed)
    A = pd.Series(rng.choice(["a", "b"], n), name="group")
    y = rng.integers(0, 2, n)
    X = (rng.normal(size=(n, 6)) + y[:, None] * (1 + (A == "a").to_numpy()[:, None])).astype(
        np.float32)
    return X, y, A


def _net():
    return NIRClassifier("mlp", hidden_sizes=(16,), max_epochs=3, random_state=0, verbose=0)


def test_grid_search_with_fairness_scorers_equals_sequential(client):
    X, y, A = _data()
    scores = {}
    with sklearn.config_context(enable_metadata_routing=True):
        scoring = {"auc": "roc_auc", "tpr_difference": make_fairness_scorer("tpr_difference")}
        for n_jobs in (1, 2):
            search = GridSearchCV(_net(), {"lambda_nir": [0.0, 1.0]}, scoring=scoring,
                                  cv=StratifiedKFold(3, shuffle=True, random_state=0),
                                  refit=False, n_jobs=n_jobs)
            if n_jobs == 1:
                with _one_torch_thread():
                    search.fit(X, y, sensitive_features=A)
            else:
                with _on_dask(client) as stream:
                    search.fit(X, y, sensitive_features=A)
                assert len(stream.data) >= 6  # 2 candidates x 3 folds ran on the workers
            scores[n_jobs] = {key: value for key, value in search.cv_results_.items()
                              if key.startswith(("split", "mean_test", "rank_test"))}
    assert set(scores[1]) == set(scores[2])
    for key in scores[1]:
        np.testing.assert_array_equal(scores[2][key], scores[1][key], err_msg=key)
    # the fairness scorer saw the groups: a gap, not a constant
    assert (scores[1]["mean_test_tpr_difference"] <= 0).all()
    assert (scores[1]["split0_test_tpr_difference"] < 0).any()


def _two_groups(n=80, seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(size=(n, 5)), 3 * rng.normal(size=(n, 5))])
    groups = pd.Categorical(np.repeat(["light", "dark"], n), categories=["light", "dark"])
    return X, groups


def test_representation_study_and_its_checkpoints_across_backends(client, tmp_path):
    X, groups = _two_groups()
    kwargs = dict(groups=groups, train_mixes=[(1, 0), (0.5, 0.5)], n_train=40,
                  n_test_per_group=20, random_state=0, verbose=0)
    with _one_torch_thread():
        expected = representation_study(PCA(n_components=2), X, n_repeats=3, n_jobs=1, **kwargs)
    with _on_dask(client) as stream:
        got = representation_study(PCA(n_components=2), X, n_repeats=3, n_jobs=2, **kwargs)
    assert len(stream.data) >= 6
    pd.testing.assert_frame_equal(got, expected)

    # 2 repeats on the cluster, each cell in its own file ...
    folder = tmp_path / "study"
    with _on_dask(client):
        representation_study(PCA(n_components=2), X, n_repeats=2, n_jobs=2,
                             checkpoint_dir=folder, **kwargs)
    cells = sorted(p.name for p in folder.glob("cell_*.csv"))
    assert cells == [f"cell_r{r:04d}_m{m:02d}.csv" for r in range(2) for m in range(2)]
    # ... one lost, then resumed and extended to 3 repeats sequentially
    (folder / "cell_r0001_m00.csv").unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in folder.glob("cell_*.csv")}
    with _one_torch_thread():
        resumed = representation_study(PCA(n_components=2), X, n_repeats=3, n_jobs=1,
                                       checkpoint_dir=folder, **kwargs)
    pd.testing.assert_frame_equal(resumed, expected)
    assert {p: (folder / p).stat().st_mtime_ns for p in kept} == kept  # not refitted
    assert len(list(folder.glob("cell_*.csv"))) == 6


def test_representation_study_of_a_network_equals_sequential(client):
    X, groups = _two_groups(60)
    y = (X[:, 0] > 0).astype(int)
    kwargs = dict(groups=groups, train_mixes=[(1, 0), (0, 1)], n_train=40, n_test_per_group=20,
                  n_repeats=1, random_state=0, verbose=0)
    net = NIRClassifier("mlp", hidden_sizes=(8,), max_epochs=2, verbose=0)
    X = X.astype(np.float32)
    with _one_torch_thread():
        expected = representation_study(net, X, y, n_jobs=1, **kwargs)
    with _on_dask(client) as stream:
        got = representation_study(net, X, y, n_jobs=2, **kwargs)
    assert len(stream.data) >= 2
    pd.testing.assert_frame_equal(got, expected)


def test_lambda_study_equals_sequential(client):
    X, y, A = _data()
    kwargs = dict(sensitive_features=A, lambdas=[0, 1], cv=2, seeds=[0, 1], refit=False,
                  max_disparity=1.0, verbose=0)
    with _one_torch_thread():
        expected = lambda_study(_net(), X, y, n_jobs=1, **kwargs)
    with _on_dask(client) as stream:
        got = lambda_study(_net(), X, y, n_jobs=2, **kwargs)
    assert len(stream.data) >= 8  # 2 seeds x 2 lambdas x 2 folds
    pd.testing.assert_frame_equal(got.results, expected.results)
    assert got.best_lambda == expected.best_lambda


def _worker_state():
    worker = distributed.get_worker()
    return worker.address, sklearn.get_config()["enable_metadata_routing"]


def test_metadata_routing_reaches_the_workers(client):
    with sklearn.config_context(enable_metadata_routing=True), _on_dask(client):
        states = Parallel(n_jobs=2)(delayed(_worker_state)() for _ in range(4))
        # joblib's own delayed does not carry scikit-learn's configuration: the control
        bare = joblib.Parallel(n_jobs=2)(joblib.delayed(_worker_state)() for _ in range(4))
    workers = set(client.scheduler_info()["workers"])
    assert {address for address, _ in states} <= workers
    assert all(routing for _, routing in states)
    assert not any(routing for _, routing in bare)


def _torch_threads_after_the_helper(leftover):
    torch.set_num_threads(leftover)  # e.g. left by an earlier task, or a wrong environment
    set_to = limit_torch_threads()
    return set_to, torch.get_num_threads(), distributed.get_worker().state.nthreads


def test_torch_threads_follow_the_worker_threads(client):
    assert os.environ.get("MALLOC_TRIM_THRESHOLD_") is None  # the cluster fixture unset it
    for result in client.gather([client.submit(_torch_threads_after_the_helper, 3, pure=False,
                                               workers=[w]) for w in client.scheduler_info()
                                 ["workers"]]):
        assert result == (1, 1, 1)
    with _cluster(n_workers=1, threads_per_worker=2) as other:
        assert other.submit(_torch_threads_after_the_helper, 1, pure=False).result() == (2, 2, 2)
    # outside a worker the helper changes nothing
    before = torch.get_num_threads()
    assert limit_torch_threads() is None
    assert torch.get_num_threads() == before

