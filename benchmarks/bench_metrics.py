"""group_report's vectorised bootstrap vs the naive loop of fairlearn MetricFrames, side by side.

Both compute, for 1000 resamples of 100,000 rows (4 intersectional groups), the TPR, FPR,
selection rate, accuracy and ROC AUC per group and overall. Target: ratio <= 0.05.

A MetricFrame on 100,000 rows takes seconds, so 1000 of them would take about an hour: the naive
loop runs ``--naive-resamples`` of them (each one does the same work) and its time is scaled to
``--n-bootstrap``; pass ``--naive-resamples 1000`` to time it in full.

    python benchmarks/bench_metrics.py [--n-rows 100000] [--n-bootstrap 1000] [--naive-resamples 20]
"""

import argparse
import time

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from sklearn.metrics import accuracy_score, roc_auc_score
from tqdm import tqdm

from fairskl.metrics import group_report


def make_data(n, seed=0):
    rng = np.random.RandomState(seed)
    groups = pd.DataFrame({"sex": rng.choice(["female", "male"], n),
                           "age_group": rng.choice(["<60", "60+"], n)})
    y = rng.binomial(1, 0.3, n)
    score = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    return y, score, groups


def naive(y, score, groups, n_bootstrap, seed=0):
    metrics = {"tpr": true_positive_rate, "fpr": false_positive_rate,
               "selection_rate": selection_rate, "accuracy": accuracy_score}
    rng = np.random.RandomState(seed)
    y_hat = (score >= 0.5).astype(int)
    out = []
    for _ in tqdm(range(n_bootstrap), desc="naive MetricFrame loop", leave=False):
        i = rng.randint(0, len(y), len(y))
        labels = MetricFrame(metrics=metrics, y_true=y[i], y_pred=y_hat[i],
                             sensitive_features=groups.iloc[i])
        auc = MetricFrame(metrics=roc_auc_score, y_true=y[i], y_pred=score[i],
                          sensitive_features=groups.iloc[i])
        out.append((labels.by_group, auc.by_group))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-rows", type=int, default=100_000)
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--naive-resamples", type=int, default=20)
    args = parser.parse_args()
    y, score, groups = make_data(args.n_rows)

    start = time.perf_counter()
    group_report(y, score, sensitive_features=groups, n_bootstrap=args.n_bootstrap,
                 metrics=["tpr", "fpr", "selection_rate", "accuracy", "auc"], random_state=0)
    vectorised = time.perf_counter() - start

    start = time.perf_counter()
    naive(y, score, groups, args.naive_resamples)
    loop = (time.perf_counter() - start) * args.n_bootstrap / args.naive_resamples

    print(f"rows={args.n_rows} resamples={args.n_bootstrap} groups=4 metrics=tpr,fpr,"
          f"selection_rate,accuracy,auc")
    print(f"group_report (vectorised bootstrap): {vectorised:8.2f} s")
    print(f"naive loop of fairlearn MetricFrame: {loop:8.2f} s "
          f"({args.naive_resamples} resamples timed, scaled to {args.n_bootstrap})")
    print(f"ratio group_report_vs_naive_loop = {vectorised / loop:.4f} (target <= 0.05)")


if __name__ == "__main__":
    main()
