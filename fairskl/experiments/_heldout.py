"""The held-out audit shared by the NIR study and :func:`compare_methods`.

Every fitted model is scored on the same held-out rows and on the same bootstrap resamples of
them (paired), so that a model's replicates can be averaged over seeds and differenced between
two models. An interval then adds the two sources of noise that a reader must see: the test
sample (the variance of the seed-averaged replicates) and the training seed (the variance of
the per-seed values over the number of seeds), with Welch–Satterthwaite degrees of freedom for
the t quantile (few seeds: wide; many: the normal quantile).

Gaps are read at named operating points: thresholds fitted beforehand on training-part data
(out-of-fold predictions), never on the audited rows. The AUC and the per-group AUC gap need no
threshold and are always audited.
"""

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from fairskl.metrics._bootstrap import bootstrap_weights, replicates
from fairskl.metrics._group_metrics import disparities

__all__ = ["FREE", "audit_model", "combine_seeds", "difference", "holm", "resample_weights"]

#: the group that the paper finds over-diagnosed, per attribute (the mechanism's "privileged")
PRIVILEGED = {"age": "60+", "sex": "male"}
GAPS = ("tpr_difference", "fpr_difference")
#: the operating point of the metrics that need no threshold (AUC, AUC gap, mechanism)
FREE = "threshold-free"
#: rates read per group and overall at each operating point -> their base metric in replicates
RATES = {"positive_rate": "selection_rate", "tpr": "tpr", "fpr": "fpr"}
#: metrics whose value is a spread (max - min) or a size, never below 0
NONNEGATIVE = (*GAPS, "auc_difference", "concentration_positive", "concentration_negative")
#: metrics whose value is a fraction, within [0, 1]
FRACTIONS = ("auc", *RATES)
TABLE_COLUMNS = ["attribute", "group", "metric", "operating_point", "value", "ci_low",
                 "ci_high", "half_width", "df", "p_value", "seed_sd", "n_seeds"]


def resample_weights(n_samples, n_bootstrap, random_state):
    """Row counts of ``n_bootstrap`` resamples, shape (n_bootstrap, n_samples): one draw shared
    by every model audited on these rows (paired replicates)."""
    return bootstrap_weights(np.random.RandomState(random_state), n_samples, n_bootstrap)


def audit_model(y, proba, features, sensitive, weights, thresholds=None):
    """Point values and bootstrap replicates of one model on one held-out set.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        0/1 labels.
    proba : ndarray of shape (n_samples,)
        Predicted probability of the positive class.
    features : ndarray of shape (n_samples, n_neurons) or None
        Penultimate activations; None audits the AUC and the rates only (no mechanism
        metrics), e.g. for a model without penultimate features.
    sensitive : DataFrame
        One column per audited attribute.
    weights : ndarray of shape (n_bootstrap, n_samples)
        :func:`resample_weights`.
    thresholds : dict of str -> float, default=None
        Operating points by name, each a threshold (``proba >= t`` is positive) fitted on other
        rows than these; None is ``{"0.5": 0.5}``.

    Returns
    -------
    dict
        ``(attribute, group, metric, operating_point) -> (value, replicates)``. Overall rows
        have attribute and group ``"all"``; per-group rows the group's name; gaps the group
        ``"all"``. At each operating point: ``positive_rate``, ``tpr`` and ``fpr`` overall and
        per group, ``tpr_difference`` and ``fpr_difference`` per attribute. Threshold-free
        (operating point :data:`FREE`): ``auc`` overall and per group, ``auc_difference`` per
        attribute, and with ``features`` the mechanism: ``coactivation_positive`` /
        ``_negative``, the percentage by which the privileged group's incidence on the dominant
        neuron of positive (negative) predictions exceeds the other group's, computed within
        each true label and averaged over the two labels (so that a prevalence difference
        between the groups cannot produce it); ``concentration_positive`` / ``_negative``, the
        squared coefficient of variation of the class's incidence across neurons.
    """
    thresholds = {"0.5": 0.5} if thresholds is None else thresholds
    out = {}
    # per operating point: the predictions, the metrics (-> their base in replicates), the gaps
    readings = [(FREE, y, {"auc": "auc"}, ["auc_difference"])] + [
        (op, (proba >= threshold).astype(int), RATES, GAPS) for op, threshold in thresholds.items()]
    columns = [(attribute, sensitive[attribute].astype(str).to_numpy())
               for attribute in sensitive.columns]
    # replicates gives (B, G + 1) per metric, the overall value last: the overall rows are
    # the "all" pseudo-attribute's last column, an attribute's groups the others
    for attribute, groups in [("all", np.zeros(len(y), int))] + columns:
        names = [] if attribute == "all" else sorted(set(groups))
        codes = np.searchsorted(names, groups) if names else groups
        labels = dict(enumerate(names)) if names else {-1: "all"}  # column -> group
        for op, y_hat, metrics, gaps in readings:
            point, boot = (replicates(w, y, y_hat, proba, codes, len(names), list(metrics.values()))
                           for w in (np.ones((1, len(y))), weights))
            for metric, base in metrics.items():
                for j, label in labels.items():
                    out[(attribute, label, metric, op)] = (point[base][0, j], boot[base][:, j])
            if names:
                point_gap, boot_gap = disparities(point), disparities(boot)
                for gap in gaps:
                    out[(attribute, "all", gap, op)] = (point_gap[gap][0], boot_gap[gap])
    if features is not None:
        _mechanism(out, y, proba, features, columns, weights)
    return out


def _mechanism(out, y, proba, features, columns, weights):
    """The paper's mechanism metrics of :func:`audit_model`, added to ``out``."""
    ones = np.ones((1, len(y)))
    class_proba = np.c_[1 - proba, proba]
    incidence = class_proba.T @ features / class_proba.sum(axis=0)[:, None]  # (2, n_neurons)
    top = incidence.argmax(axis=1)
    for c, name in [(1, "positive"), (0, "negative")]:
        p = class_proba[:, c]
        m = (weights @ (p[:, None] * features)) / (weights @ p)[:, None]  # (B, n_neurons)
        out[("all", "all", f"concentration_{name}", FREE)] = (_cv2(incidence[c]), _cv2(m))
    for attribute, groups in columns:
        privileged = PRIVILEGED.get(attribute)
        if privileged not in set(groups) or len(set(groups)) != 2:
            continue
        member = groups == privileged
        for c, name in [(1, "positive"), (0, "negative")]:
            p = class_proba[:, c]
            a = p * features[:, top[c]]
            with np.errstate(invalid="ignore", divide="ignore"):
                out[(attribute, "all", f"coactivation_{name}", FREE)] = (
                    _excess(ones, y, a, p, member)[0], _excess(weights, y, a, p, member))


def _excess(w, y, a, p, member):
    """Per row of ``w``, the percentage by which the members' incidence ``a / p`` exceeds the
    others', within each true label, averaged over the two labels."""
    def incidence(rows):
        return (w @ (a * rows)) / (w @ (p * rows))

    per_label = [incidence(member & (y == label)) / incidence(~member & (y == label)) - 1
                 for label in (0, 1)]
    return 100 * np.mean(per_label, axis=0)


def _cv2(m):
    """Squared coefficient of variation across the last axis (neurons)."""
    return m.var(axis=-1) / np.abs(m).mean(axis=-1) ** 2


def combine_seeds(audits, ci=0.95, *, change=False):
    """Seed-averaged values with intervals from the test sample and the seed spread.

    Parameters
    ----------
    audits : list of dict
        :func:`audit_model` of the models of one method, one per training seed, all on the
        same rows and the same ``weights`` (or their :func:`difference`).
    ci : float, default=0.95
    change : bool, default=False
        The audits are :func:`difference` s: a gap's change may be negative, so its interval
        is not clipped at 0.

    Returns
    -------
    DataFrame
        One row per key of the audits (``attribute``, ``group``, ``metric``,
        ``operating_point``): ``value`` (mean over the S seeds), ``ci_low``, ``ci_high``,
        ``half_width``, ``df``, ``p_value``, ``seed_sd`` and ``n_seeds``. With the test-sample
        variance ``v_t = var_b(mean_s rep[s, b])`` (B resamples) and the seed variance of the
        mean ``v_s = var_s(value[s]) / S``, the half-width is ``t_df * sqrt(v_t + v_s)``, with
        the Welch–Satterthwaite ``df = (v_t + v_s)^2 / (v_s^2 / (S - 1) + v_t^2 / (B - 1))``:
        close to S - 1 when the seeds dominate, as the t interval of a few seeds must be.
        ``p_value`` tests a value of 0 (meaningful for a change between two models). The bounds
        of a value (not of a change) are clipped to the metric's range: gaps and
        concentrations at 0, fractions (AUC, rates) to [0, 1].
    """
    rows = []
    for key in audits[0]:
        values = np.array([audit[key][0] for audit in audits], dtype=float)
        reps = np.array([audit[key][1] for audit in audits], dtype=float)
        n_seeds, n_boot = len(values), reps.shape[1]
        mean = values.mean()
        seed_var = values.var(ddof=1) / n_seeds if n_seeds > 1 else 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN metric stays NaN
            test_var = np.nanvar(reps.mean(axis=0), ddof=1) if n_boot > 1 else 0.0
        total = test_var + seed_var
        denominator = seed_var ** 2 / max(n_seeds - 1, 1) + test_var ** 2 / max(n_boot - 1, 1)
        df = total ** 2 / denominator if denominator > 0 else np.inf
        se = np.sqrt(total)
        half = stats.t.ppf(0.5 + ci / 2, df) * se if np.isfinite(total) else np.nan
        if se > 0:
            p_value = 2 * stats.t.sf(abs(mean) / se, df)
        else:  # no variance at all: a model against itself, or a constant
            p_value = np.nan if np.isnan(mean) else float(mean == 0)
        low, high = mean - half, mean + half
        if not change and key[2] in NONNEGATIVE + FRACTIONS:  # the interval ends where the
            low = max(low, 0.0)  # metric does (max passes NaN through)
        if not change and key[2] in FRACTIONS:
            high = min(high, 1.0)
        rows.append((*key, mean, low, high, half, df, p_value,
                     values.std(ddof=1) if n_seeds > 1 else 0.0, n_seeds))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def difference(after, before):
    """Per-seed, per-replicate ``after - before`` of two paired lists of audits."""
    return [{key: (a[key][0] - b[key][0], a[key][1] - b[key][1]) for key in a}
            for a, b in zip(after, before, strict=True)]


def holm(p_values):
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN), by statsmodels."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    finite = ~np.isnan(p)
    if finite.any():
        adjusted[finite] = multipletests(p[finite], method="holm")[1]
    return adjusted
