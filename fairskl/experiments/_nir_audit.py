"""The NIR study's held-out audit: gaps and the paper's mechanism, averaged over training seeds.

Every fitted model is scored on the same held-out rows and on the same bootstrap resamples of
them (paired), so that a model's replicates can be averaged over seeds and differenced between
two λ. An interval then adds the two sources of noise that a reader must see: the test sample
(the variance of the seed-averaged replicates) and the training seed (the variance of the
per-seed values over the number of seeds).
"""

import numpy as np
import pandas as pd
from scipy import stats

from fairskl.metrics._group_metrics import disparities
from fairskl.metrics._report import _replicates, _resample_weights

__all__ = ["audit_model", "combine_seeds", "difference", "resample_weights"]

#: the group that the paper finds over-diagnosed, per attribute (the mechanism's "privileged")
PRIVILEGED = {"age": "60+", "sex": "male"}
GAPS = ("tpr_difference", "fpr_difference")


def resample_weights(n_samples, n_bootstrap, random_state):
    """Row counts of ``n_bootstrap`` resamples, shape (n_bootstrap, n_samples): one draw shared
    by every model audited on these rows (paired replicates)."""
    return _resample_weights(np.random.RandomState(random_state), n_samples, n_bootstrap)


def audit_model(y, proba, features, sensitive, weights):
    """Point values and bootstrap replicates of one model on one held-out set.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        0/1 labels.
    proba : ndarray of shape (n_samples,)
        Predicted probability of the positive class (thresholded at 0.5 for the rates).
    features : ndarray of shape (n_samples, n_neurons) or None
        Penultimate activations; None audits the AUC and the gaps only (no mechanism metrics),
        e.g. for a model without penultimate features.
    sensitive : DataFrame
        One column per audited attribute.
    weights : ndarray of shape (n_bootstrap, n_samples)
        :func:`resample_weights`.

    Returns
    -------
    dict
        ``(attribute, metric) -> (value, replicates)``; ``attribute`` is ``"all"`` for the AUC
        and the incidence concentration. Mechanism metrics: ``coactivation_positive`` and
        ``coactivation_negative``, the percentage by which the privileged group's incidence on
        the dominant neuron of positive (negative) predictions exceeds the other group's;
        ``concentration_positive`` / ``_negative``, the squared coefficient of variation of the
        class's incidence across neurons (``nir_statistic`` of
        :func:`~fairskl.inspection.neuron_incidence`). Without ``features``, only ``auc``,
        ``tpr_difference`` and ``fpr_difference``.
    """
    ones = np.ones((1, len(y)))
    y_hat = (proba >= 0.5).astype(int)
    out = {}
    point = _replicates(ones, y, y_hat, proba, np.zeros(len(y), int), 0, ["auc"])
    boot = _replicates(weights, y, y_hat, proba, np.zeros(len(y), int), 0, ["auc"])
    out[("all", "auc")] = (point["auc"][0, -1], boot["auc"][:, -1])
    class_proba = np.c_[1 - proba, proba]
    if features is not None:
        mass = class_proba.sum(axis=0)
        incidence = class_proba.T @ features / mass[:, None]  # (2, n_neurons)
        top = incidence.argmax(axis=1)
        for c, name in [(1, "positive"), (0, "negative")]:
            p = class_proba[:, c]
            m = (weights @ (p[:, None] * features)) / (weights @ p)[:, None]  # (B, n_neurons)
            out[("all", f"concentration_{name}")] = (_cv2(incidence[c]), _cv2(m))
    for attribute in sensitive.columns:
        groups = sensitive[attribute].astype(str).to_numpy()
        names = sorted(set(groups))
        codes = np.searchsorted(names, groups)
        point = disparities(_replicates(ones, y, y_hat, proba, codes, len(names), ["tpr", "fpr"]))
        boot = disparities(_replicates(weights, y, y_hat, proba, codes, len(names),
                                       ["tpr", "fpr"]))
        for gap in GAPS:
            out[(attribute, gap)] = (point[gap][0], boot[gap])
        privileged = PRIVILEGED.get(attribute)
        if features is None or privileged not in names or len(names) != 2:
            continue
        member = groups == privileged
        for c, name in [(1, "positive"), (0, "negative")]:
            a = class_proba[:, c] * features[:, top[c]]
            p = class_proba[:, c]

            def excess(w, a=a, p=p, member=member):
                high = (w @ (a * member)) / (w @ (p * member))
                low = (w @ (a * ~member)) / (w @ (p * ~member))
                return 100 * (high / low - 1)

            out[(attribute, f"coactivation_{name}")] = (excess(ones)[0], excess(weights))
    return out


def _cv2(m):
    """Squared coefficient of variation across the last axis (neurons)."""
    m = np.asarray(m)
    return m.var(axis=-1) / np.abs(m).mean(axis=-1) ** 2


def combine_seeds(audits, ci=0.95):
    """Seed-averaged values with intervals from the test sample and the seed spread.

    Parameters
    ----------
    audits : list of dict
        :func:`audit_model` of the models of one method, one per training seed, all on the
        same rows and the same ``weights``.
    ci : float, default=0.95

    Returns
    -------
    DataFrame
        One row per (attribute, metric): ``value`` (mean over seeds), ``ci_low``, ``ci_high``,
        ``half_width``, ``seed_sd`` and ``n_seeds``. The half-width is
        ``z * sqrt(var_b(mean_s rep[s, b]) + var_s(value[s]) / S)``.
    """
    z = stats.norm.ppf(0.5 + ci / 2)
    rows = []
    for key in audits[0]:
        values = np.array([audit[key][0] for audit in audits], dtype=float)
        reps = np.array([audit[key][1] for audit in audits], dtype=float)
        mean = values.mean()
        seed_var = values.var(ddof=1) / len(values) if len(values) > 1 else 0.0
        with np.errstate(invalid="ignore"):
            test_var = np.nanvar(reps.mean(axis=0), ddof=1)
        half = z * np.sqrt(test_var + seed_var)
        rows.append((*key, mean, mean - half, mean + half, half,
                     values.std(ddof=1) if len(values) > 1 else 0.0, len(values)))
    return pd.DataFrame(rows, columns=["attribute", "metric", "value", "ci_low", "ci_high",
                                       "half_width", "seed_sd", "n_seeds"])


def difference(after, before):
    """Per-seed, per-replicate ``after - before`` of two paired lists of audits."""
    return [{key: (a[key][0] - b[key][0], a[key][1] - b[key][1]) for key in a}
            for a, b in zip(after, before, strict=True)]
