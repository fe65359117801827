"""The same λ grid search with n_jobs=1, n_jobs=2 (loky) and a 2-worker Dask cluster, side by side.

GridSearchCV over ``lambda_nir`` of a small-CNN NIRClassifier on synthetic 16x16 lesion images,
scored on the AUC and the TPR gap (``make_fairness_scorer``, ``sensitive_features`` routed), is
timed three ways in one run:

- ``n_jobs=1``: the fits one after another in this process, torch on ``--sequential-threads``
  threads (default 1: on a machine shared with other work, two OpenMP threads fighting a busy
  core are many times slower than one, which would flatter the speed-ups);
- ``n_jobs=2`` on loky: joblib's worker processes, each with ``OMP_NUM_THREADS = cores // 2``;
- ``n_jobs=2`` on a ``LocalCluster(n_workers=2, threads_per_worker=1)`` through
  ``joblib.parallel_config(backend="dask")``.

The workers are started and warmed up (torch and fairskl imported) before the clock runs. Target
on 2 cores: speed-up >= 1.6 for both backends. The scores of the three runs are compared too.

Dask's nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (and writes it into this
process's environment, so that loky workers started later inherit it). A fixed threshold turns
off glibc's adaptive mmap threshold: every activation tensor above 128 KiB is then mmapped and
unmapped again, and a small CNN spends ~40% of its time in page faults. The cluster is started
without it, as the user guide recommends (:ref:`cluster`); ``--dask-default-env`` keeps it.

    python benchmarks/bench_parallel.py [--n-samples 1500] [--epochs 10] [--repeats 1]
"""

import argparse
import os
import time

import joblib
import numpy as np
import sklearn
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from fairskl import NIRClassifier
from fairskl.datasets import make_skin_lesions
from fairskl.metrics import make_fairness_scorer

LAMBDAS = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0]


def _warm_up():
    import fairskl  # noqa: F401 - imports torch and fairskl in the worker

    return os.getpid()


def _environ():
    return {key: os.environ.get(key) for key in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")}


def search(X, y, A, n_jobs, args):
    net = NIRClassifier("small_cnn", max_epochs=args.epochs, batch_size=64, random_state=0,
                        verbose=0)
    scoring = {"auc": "roc_auc", "tpr_difference": make_fairness_scorer("tpr_difference")}
    grid = GridSearchCV(net, {"lambda_nir": LAMBDAS}, scoring=scoring, refit=False,
                        cv=StratifiedKFold(3, shuffle=True, random_state=0), n_jobs=n_jobs)
    start = time.perf_counter()
    grid.fit(X, y, sensitive_features=A)
    seconds = time.perf_counter() - start
    scores = np.concatenate([grid.cv_results_[f"mean_test_{m}"] for m in scoring])
    return seconds, scores, float(np.mean(grid.cv_results_["mean_fit_time"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each setting, interleaved; the fastest counts")
    parser.add_argument("--sequential-threads", type=int, default=1,
                        help="torch threads of the n_jobs=1 run")
    parser.add_argument("--dask-default-env", action="store_true",
                        help="keep MALLOC_TRIM_THRESHOLD_ in the environment of dask's workers")
    args = parser.parse_args()

    import dask
    from dask.distributed import Client, LocalCluster

    unset = {} if args.dask_default_env else {
        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}

    data = make_skin_lesions(args.n_samples, 16, bias=2.0, random_state=0)
    X, y, A = data.images, data.target, data.sensitive["age_group"]
    n_fits = len(LAMBDAS) * 3
    print(f"GridSearchCV: small_cnn NIRClassifier, {args.n_samples} images 16x16, "
          f"{len(LAMBDAS)} lambdas x 3 folds = {n_fits} fits of {args.epochs} epochs, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    times = {"n_jobs=1": [], "loky n_jobs=2": [], "dask 2 workers": []}
    scores, fit_times = {}, {name: [] for name in times}
    with (dask.config.set(unset),
          LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                       dashboard_address=":0") as cluster, Client(cluster) as client,
          sklearn.config_context(enable_metadata_routing=True)):
        client.run(_warm_up)
        environ = client.run(_environ)
        print("dask workers' environment:", next(iter(environ.values())))
        with joblib.parallel_config(backend="loky"):
            joblib.Parallel(n_jobs=2)(joblib.delayed(_warm_up)() for _ in range(2))
        threads = torch.get_num_threads()
        for _ in range(args.repeats):
            torch.set_num_threads(args.sequential_threads)
            try:
                seconds, scores["n_jobs=1"], fit = search(X, y, A, 1, args)
            finally:
                torch.set_num_threads(threads)
            times["n_jobs=1"].append(seconds)
            fit_times["n_jobs=1"].append(fit)
            for name, backend in [("loky n_jobs=2", "loky"), ("dask 2 workers", "dask")]:
                with joblib.parallel_config(backend=backend):
                    seconds, scores[name], fit = search(X, y, A, 2, args)
                times[name].append(seconds)
                fit_times[name].append(fit)
    best = {name: min(t) for name, t in times.items()}
    print(f"fastest of {args.repeats} (n_jobs=1 on {args.sequential_threads} torch thread(s), "
          f"workers on 1 each), load average {os.getloadavg()[0]:.2f} at the end:")
    for name, seconds in best.items():
        print(f"  {name:15s} {seconds:7.2f} s   {n_fits / seconds:.2f} fits/s   "
              f"mean time of one fit {min(fit_times[name]):.2f} s")
    for name in ("loky n_jobs=2", "dask 2 workers"):
        gap = np.max(np.abs(scores[name] - scores["n_jobs=1"]))
        print(f"  max |mean score difference| {name} vs n_jobs=1: {gap:.2e}")
    base = best["n_jobs=1"]
    print(f"ratio loky_speedup = {base / best['loky n_jobs=2']:.2f} (target >= 1.6)")
    print(f"ratio dask_speedup = {base / best['dask 2 workers']:.2f} (target >= 1.6)")


if __name__ == "__main__":
    main()
