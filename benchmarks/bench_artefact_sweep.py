"""How strongly the synthetic testbed's shortcut follows its artefacts: a sweep of
``make_skin_lesions(artefact_strength=s)``.

For each strength s, a plain network (``NIRClassifier("small_cnn", lambda_nir=0)``, the NIR
study's small-scale training: 2,400 images of 32 px, 8 epochs, cosine decay) is trained on
``bias=2`` images whose hair and vignette follow sex and age with strength s, and audited on a
balanced test set (``bias=0``, the same s; the study's *shortcut* scenario): its TPR gap by
age at 0.5 and its AUC. At s = 0 the artefacts show nothing of the groups, so the gap left is
what the prevalence difference in training teaches through the lesions alone; the gap should
grow with s. Target: the gap at s = 1 is at least twice the gap at s = 0.

    python benchmarks/bench_artefact_sweep.py [--strengths 0 0.5 1] [--n-test 4000]
"""

import argparse
import time

import numpy as np
from skorch.callbacks import LRScheduler

from fairskl import NIRClassifier
from fairskl.datasets import make_skin_lesions
from fairskl.metrics import tpr_difference


def shortcut_gap(strength, n_test, seed=0):
    """TPR gap by age at 0.5 and AUC of a plain network on the balanced test set."""
    from sklearn.metrics import roc_auc_score

    train = make_skin_lesions(2400, 32, bias=2.0, artefact_strength=strength,
                              random_state=seed)
    test = make_skin_lesions(n_test, 32, bias=0.0, artefact_strength=strength,
                             random_state=seed + 2)
    net = NIRClassifier("small_cnn", lambda_nir=0.0, max_epochs=8, lr=1e-3, batch_size=64,
                        random_state=seed, verbose=0,
                        callbacks=[("lr", LRScheduler("CosineAnnealingLR", T_max=8))])
    proba = net.fit(train.images, train.target).predict_proba(test.images)[:, 1]
    gap = tpr_difference(test.target, (proba >= 0.5).astype(int),
                         sensitive_features=test.sensitive["age_group"])
    return gap, roc_auc_score(test.target, proba)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--n-test", type=int, default=4000)
    args = parser.parse_args()
    strengths = sorted(set(args.strengths) | {0.0, 1.0})
    gaps = {}
    print(f"{'strength':>9} {'TPR gap by age':>15} {'AUC':>6} {'seconds':>8}")
    for s in strengths:
        start = time.perf_counter()
        gaps[s], auc = shortcut_gap(s, args.n_test)
        print(f"{s:9.2f} {100 * gaps[s]:15.1f} {100 * auc:6.1f} "
              f"{time.perf_counter() - start:8.1f}", flush=True)
    ratio = gaps[1.0] / max(gaps[0.0], np.finfo(float).eps)
    print(f"ratio shortcut_gap_strength1_vs_0 = {ratio:.2f} (target >= 2)")


if __name__ == "__main__":
    main()
