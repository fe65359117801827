"""Per-group report with vectorised bootstrap confidence intervals."""

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from fairskl._constraints import CI, N_BOOTSTRAP, RANDOM_STATE
from fairskl.exceptions import FairnessWarning
from fairskl.metrics._bootstrap import bootstrap_weights, replicates
from fairskl.metrics._group_metrics import (
    BASE_METRICS,
    DISPARITY_INPUTS,
    N_BINS,
    disparities,
    group_frame,
    undefined_reason,
)
from fairskl.metrics._validation import (
    EXPECTED_GROUPS,
    POS_LABEL,
    binarize,
    check_group_inputs,
    check_scores,
    group_label,
)

__all__ = ["group_report"]

LABEL_METRICS = ["tpr", "fpr", "selection_rate", "accuracy"]
SCORE_METRICS = ["auc", "ece"]

# Disparities that are the spread max_g m_g - min_g m_g of one base metric m (see
# ``disparities``) -> m. Their intervals are not percentile intervals: see ``_spread_interval``.
_SPREADS = {
    "tpr_difference": "tpr",
    "fpr_difference": "fpr",
    "demographic_parity_difference": "selection_rate",
    "accuracy_difference": "accuracy",
    "auc_difference": "auc",
    "ece_difference": "ece",
}


@validate_params(
    {
        "y_true": ["array-like"],
        "y_pred_or_score": ["array-like"],
        "sensitive_features": ["array-like"],
        "metrics": ["array-like", str, None],
        "threshold": [numbers.Real],
        "pos_label": POS_LABEL,
        "expected_groups": EXPECTED_GROUPS,
        "n_bins": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_bootstrap": N_BOOTSTRAP,
        "stratify": ["boolean"],
        "ci": CI,
        "random_state": RANDOM_STATE,
    },
    prefer_skip_nested_validation=True,
)
def group_report(
    y_true,
    y_pred_or_score,
    *,
    sensitive_features,
    metrics=None,
    threshold=0.5,
    pos_label=None,
    expected_groups=None,
    n_bins=N_BINS,
    n_bootstrap=1000,
    stratify=False,
    ci=0.95,
    random_state=None,
):
    """Per-group metrics and disparities of a binary classifier, with bootstrap intervals.

    Point estimates come from fairlearn's :class:`~fairlearn.metrics.MetricFrame`. Confidence
    intervals come from ``n_bootstrap`` resamples of the rows with replacement: of the whole
    data set at once, so group sizes vary as they would in a new sample, or, with
    ``stratify=True``, within each group, so every resample keeps every group at its size. They
    are percentile intervals, except for the gaps between groups (see Notes). The resamples are
    evaluated in a vectorised way — counts per group, a weighted Mann–Whitney AUC and weighted
    bin sums for the ECE — which gives the same numbers as a MetricFrame on each resample,
    about a hundred times faster.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary ground truth (0/1, or two labels with ``pos_label``).
    y_pred_or_score : array-like of shape (n_samples,)
        Either hard labels — values within {0, 1} or {-1, 1}, or within the labels of
        ``y_true`` when ``pos_label`` is given — or scores of the positive class (e.g.
        ``predict_proba(X)[:, 1]``). Scores are thresholded at ``threshold`` for the label
        metrics and also give the AUC and, when they lie in [0, 1], the ECE; hard labels have
        neither.
    sensitive_features : array-like, Series or DataFrame
        Group of each sample; several columns define intersectional groups.
    metrics : list of str, default=None
        Base metrics among ``"tpr"``, ``"fpr"``, ``"selection_rate"``, ``"accuracy"``,
        ``"auc"`` (scores only) and ``"ece"``, the expected calibration error of
        :func:`ece_by_group` (scores in [0, 1] only). ``None`` takes all that apply.
    threshold : float, default=0.5
        Scores ``>= threshold`` are predicted positive. Use 0 for decision-function values.
        The TPR, FPR and selection-rate gaps depend on it: to read them at a named operating
        point (a flag rate, a sensitivity, a false-positive rate) or to compare models at a
        matched one, pass a threshold fitted by :func:`operating_threshold` on *other* rows — a
        validation split or out-of-fold predictions of the training part, never the rows
        reported on (see Examples and the :ref:`user guide <metrics_operating_points>`).
    pos_label : scalar, default=None
        The positive class when the labels are not 0/1 or -1/1. Numeric values other than
        the labels are taken as scores.
    expected_groups : list or dict of lists, default=None
        Every group that should be present, as in :func:`tpr_difference`; a missing one makes
        the disparities NaN, with a :class:`~fairskl.FairnessWarning`.
    n_bins : int, default=10
        Equal-width bins of [0, 1] of the ECE, as in :func:`ece_by_group`.
    n_bootstrap : int, default=1000
        Number of bootstrap resamples, at least 2; 0 skips the intervals.
    stratify : bool, default=False
        Resample within each group (``n_g`` rows drawn with replacement from the ``n_g`` rows
        of group ``g``) rather than from all rows. A small group then never vanishes from a
        resample, and the intervals reflect a fixed design (the group sizes of the data); the
        overall metrics then vary less, as the mix of the groups no longer varies.
    ci : float, default=0.95
        Coverage of the intervals.
    random_state : int, RandomState instance or None, default=None
        Seed of the resampling.

    Returns
    -------
    report : pandas.DataFrame
        Tidy table with columns ``metric``, ``kind`` (``"group"``, ``"overall"`` or
        ``"disparity"``), ``group``, ``n``, ``value``, ``ci_low``, ``ci_high``. Disparity rows
        are named like the functions of :mod:`fairskl.metrics` (``tpr_difference``,
        ``equalized_odds_difference`` (the worst case), ``equity_scaled_auc``,
        ``ece_difference``, …). A disparity that cannot be computed over all groups is NaN,
        with a :class:`~fairskl.FairnessWarning`, and NaN bounds. ``ci_low`` and ``ci_high``
        are NaN with ``n_bootstrap=0``. They are percentile intervals, except for the gaps
        between groups and ``equalized_odds_difference``, whose intervals combine the
        intervals of the pairwise differences between groups with a Bonferroni correction and
        always hold the estimate (see Notes).

    See Also
    --------
    operating_threshold : A threshold fitted on other rows, for ``threshold``.
    plot_group_report : Bars with the intervals as whiskers.
    fairlearn.metrics.MetricFrame : The per-group computation this builds on.

    Notes
    -----
    The per-group and overall metrics, ``worst_group_auc`` and ``equity_scaled_auc`` have
    percentile intervals: the ``(1 - ci) / 2`` and ``(1 + ci) / 2`` quantiles of the replicates
    (resamples in which a metric is undefined are left out).

    The gaps ``max_g m_g - min_g m_g`` (``tpr_difference``, ``fpr_difference``,
    ``demographic_parity_difference``, ``accuracy_difference``, ``auc_difference``,
    ``ece_difference``) are absolute differences, and their replicates are biased away from 0:
    where the groups are equal, a percentile interval lies above 0, and can exclude the estimate
    itself. Instead, with ``G`` groups, a gap is the largest of the ``K = G (G - 1) / 2``
    pairwise gaps ``|D_ij|``, ``D_ij = m_j - m_i`` for the groups ``i < j``, whose signed
    replicates are not biased, and its interval is built from theirs:

    - each ``D_ij`` gets the percentile interval ``[l, h]`` of its replicates at the level
      ``1 - (1 - ci) / K``. It gives the interval ``[0, max(|l|, |h|)]`` of ``|D_ij|`` when
      ``l <= 0 <= h``, and ``[min(|l|, |h|), max(|l|, |h|)]`` otherwise, which holds
      ``|D_ij|`` whenever ``[l, h]`` holds ``D_ij``. In the rare case where ``[l, h]`` misses
      the estimate of ``D_ij`` (skewed replicates, e.g. of rates near 0 or 1 in small groups),
      this interval is widened to hold the estimate of ``|D_ij|``;
    - the interval of the gap is ``[max_ij a_ij, max_ij b_ij]``, the largest lower end and the
      largest upper end of the pairwise intervals ``[a_ij, b_ij]``. By Bonferroni's inequality
      every pairwise interval holds its ``|D_ij|`` with probability at least ``ci`` (insofar as
      the percentile intervals have their nominal coverage), and then the gap, the largest
      ``|D_ij|``, lies in ``[max a_ij, max b_ij]``; the estimate always does.

    With two groups (``K = 1``) the interval of the gap is the one of ``|m_2 - m_1|`` from the
    percentile interval of ``m_2 - m_1`` at the level ``ci``. ``equalized_odds_difference``, the
    larger of the TPR and FPR gaps, is the largest of the ``2 K`` pairwise gaps of the TPR and of
    the FPR, and gets the same construction over them, each at the level
    ``1 - (1 - ci) / (2 K)``.

    So a zero gap is not called nonzero for want of a lower bound at 0. The pairwise intervals
    are quantiles ``(1 - ci) / (2 K)`` into the tails of the replicates (``(1 - ci) / (4 K)``
    for ``equalized_odds_difference``): with many groups, raise ``n_bootstrap`` so that each
    tail holds several resamples (with three groups, ``ci=0.95`` and the default 1000
    resamples, about 8, and 4 for ``equalized_odds_difference``). The
    :ref:`user guide <metrics_report>` has the coverage this gives.

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl.metrics import group_report
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 200)
    >>> score = np.clip(0.35 * y + rng.uniform(0, 0.65, 200), 0, 1)
    >>> group = np.where(rng.uniform(size=200) < 0.5, "female", "male")
    >>> report = group_report(y, score, sensitive_features=group, n_bootstrap=100,
    ...                       random_state=0)
    >>> report.query("metric == 'tpr'")[["kind", "group", "n"]]
          kind    group    n
    0    group   female  110
    1    group     male   90
    2  overall  overall  200
    >>> sorted(report.query("kind == 'disparity'").metric)[:3]
    ['accuracy_difference', 'auc_difference', 'demographic_parity_difference']
    >>> report.query("metric == 'tpr_difference'")[["value", "ci_low", "ci_high"]].round(3)
        value  ci_low  ci_high
    18  0.097     0.0    0.253

    The gaps at a flag rate of 30%, with the threshold fitted on other rows (here new ones; a
    validation split or out-of-fold predictions in practice), never on the rows reported on:

    >>> from fairskl.metrics import operating_threshold
    >>> y_val = rng.randint(0, 2, 500)
    >>> score_val = np.clip(0.35 * y_val + rng.uniform(0, 0.65, 500), 0, 1)
    >>> t = operating_threshold(y_val, score_val, ("rate", 0.3))
    >>> at_rate = group_report(y, score, sensitive_features=group, threshold=t,
    ...                        n_bootstrap=100, random_state=0)
    >>> at_rate.query("metric == 'selection_rate' and kind == 'overall'").value.item()
    0.305
    """
    frame = check_group_inputs(
        y_true, y_pred_or_score, sensitive_features, y_pred_name="y_pred_or_score",
        expected_groups=expected_groups,
    )
    y = binarize(y_true, name="y_true", pos_label=pos_label)
    y_hat, score = _labels_and_scores(y_pred_or_score, np.unique(y_true), threshold, pos_label)
    metrics = _check_metrics(metrics, score)

    label_metrics = [m for m in metrics if m in LABEL_METRICS]
    score_metrics = [m for m in metrics if m in SCORE_METRICS]
    frames = {}
    if label_metrics:
        frames["label"] = group_frame(label_metrics, y, y_hat, frame)
    if score_metrics:
        frames["score"] = group_frame(score_metrics, y, score, frame, n_bins=n_bins)
    any_mf = next(iter(frames.values()))
    groups = any_mf.by_group.index
    codes = _group_codes(frame, groups)
    counts = np.bincount(codes, minlength=len(groups))

    # point estimates: (n_groups + 1,) per base metric, the last entry overall
    point = {}
    for mf in frames.values():
        for name in mf.by_group.columns:
            point[name] = np.append(mf.by_group[name].to_numpy(float), mf.overall[name])
    point_disp = disparities(point)
    reasons = {
        name: reason
        for mf in frames.values()
        for name in mf.by_group.columns
        if (reason := undefined_reason(mf, frame, [name]))
    }
    if reasons:
        undefined = [d for d, inputs in DISPARITY_INPUTS.items()
                     if d in point_disp and set(inputs) & set(reasons)]
        warnings.warn(
            f"group_report: {undefined} are NaN: {'; '.join(dict.fromkeys(reasons.values()))}.",
            FairnessWarning,
            stacklevel=2,
        )
        point_disp.update(dict.fromkeys(undefined, np.nan))
    else:
        undefined = []

    boot, boot_disp = _bootstrap(y, y_hat, score, codes, len(groups), metrics, n_bootstrap,
                                 check_random_state(random_state), n_bins=n_bins,
                                 stratify=stratify)
    alpha = (1 - ci) / 2
    keys = groups if groups.nlevels > 1 else [(g,) for g in groups]
    labels = [group_label(key, frame.columns) for key in keys] + ["overall"]
    rows = []
    for name in metrics:
        low, high = _interval(boot.get(name), alpha, len(labels))
        for j, label in enumerate(labels):
            rows.append(
                (name, "overall" if label == "overall" else "group", label,
                 counts[j] if j < len(groups) else len(y), point[name][j], low[j], high[j])
            )
    for name, value in point_disp.items():
        if name in undefined or np.isnan(value) or not boot_disp:
            low, high = np.nan, np.nan
        elif name in _SPREADS:
            metric = _SPREADS[name]
            low, high = _spread_interval(point[metric][:-1], boot[metric][:, :-1], alpha)
        elif name == "equalized_odds_difference":  # max of 2K |differences| of TPR, FPR
            low, high = _max_abs_interval(_odds_differences(point), _odds_differences(boot),
                                          alpha)
        else:  # worst_group_auc, equity_scaled_auc
            low, high = _percentiles(boot_disp[name], alpha, axis=-1)
        rows.append((name, "disparity", "between groups", len(y), value, float(low),
                     float(high)))
    return pd.DataFrame(
        rows, columns=["metric", "kind", "group", "n", "value", "ci_low", "ci_high"]
    )


def _labels_and_scores(y_pred_or_score, labels, threshold, pos_label):
    """0/1 predictions and, when the values are scores rather than labels, the scores.

    Values within {0, 1} or within {-1, 1} (the label codings ``binarize`` accepts), or within
    the labels of ``y_true`` when ``pos_label`` is given, are hard labels: they have no AUC.
    """
    values = np.asarray(y_pred_or_score)
    observed = set(np.unique(values).tolist())
    is_label = (observed <= {0, 1} or observed <= {-1, 1}
                or (pos_label is not None and observed <= set(labels.tolist())))
    if values.dtype.kind in "biuf" and not is_label:
        score = check_scores(values, name="y_pred_or_score")
        return (score >= threshold).astype(int), score
    return binarize(values, name="y_pred_or_score", pos_label=pos_label), None


def _check_metrics(metrics, score):
    is_probability = score is not None and score.min() >= 0 and score.max() <= 1
    available = LABEL_METRICS + (["auc"] if score is not None else []) + (
        ["ece"] if is_probability else [])
    if metrics is None:
        return available
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in BASE_METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}; choose among {list(BASE_METRICS)}.")
    needs_scores = [m for m in metrics if m in SCORE_METRICS]
    if needs_scores and score is None:
        raise ValueError(
            f"metrics={needs_scores} needs scores, but y_pred_or_score holds hard labels; pass "
            f"predict_proba(X)[:, 1] (or decision_function(X) for the AUC) instead."
        )
    if "ece" in metrics and not is_probability:
        raise ValueError(
            f"metrics=['ece', ...] needs probabilities in [0, 1], but y_pred_or_score ranges "
            f"from {score.min():.4g} to {score.max():.4g}; pass predict_proba(X)[:, 1]."
        )
    if not metrics:
        raise ValueError(f"metrics is empty; choose among {available}.")
    return metrics


def _group_codes(frame, groups):
    keys = pd.MultiIndex.from_frame(frame) if frame.shape[1] > 1 else frame.iloc[:, 0]
    codes = groups.get_indexer(keys)
    assert (codes >= 0).all(), "every row belongs to a MetricFrame group"
    return codes


def _bootstrap(y, y_hat, score, codes, n_groups, metrics, n_bootstrap, rng, *, n_bins=N_BINS,
               stratify=False):
    """Replicates of the base metrics and disparities over ``n_bootstrap`` resamples."""
    if n_bootstrap == 0:
        return {}, {}
    n = len(y)
    strata = [np.flatnonzero(codes == g) for g in range(n_groups)] if stratify else None
    chunk = max(1, min(n_bootstrap, 4_000_000 // n))
    parts = []
    for start in range(0, n_bootstrap, chunk):
        size = min(chunk, n_bootstrap - start)
        parts.append(replicates(bootstrap_weights(rng, n, size, strata), y, y_hat, score,
                                codes, n_groups, metrics, n_bins=n_bins))
    boot = {name: np.concatenate([p[name] for p in parts]) for name in metrics}
    return boot, disparities(boot)


def _interval(replicates, alpha, width):
    if replicates is None:
        return np.full(width, np.nan), np.full(width, np.nan)
    low, high = _percentiles(replicates, alpha, axis=0)
    return np.atleast_1d(low), np.atleast_1d(high)


def _percentiles(replicates, alpha, axis):
    """The ``alpha`` and ``1 - alpha`` quantiles along ``axis``, NaN replicates left out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN replicates give NaN bounds
        low, high = np.nanquantile(replicates, [alpha, 1 - alpha], axis=axis)
    return low, high


def _spread_interval(estimates, replicates, alpha):
    """Interval of a spread disparity ``max_g m_g - min_g m_g`` from bootstrap replicates.

    The replicates of a spread lie above it on average (a max minus a min of noisy values), so
    their percentile interval is shifted away from 0 and can exclude the estimate itself. The
    spread is instead written as ``max_{i<j} |D_ij|`` with ``D_ij = m_j - m_i``, whose signed
    replicates have no such bias, and the interval is found from theirs
    (:func:`_max_abs_interval`). With two groups this is the interval of ``|m_2 - m_1|`` from the
    percentile interval of ``m_2 - m_1``.

    Parameters
    ----------
    estimates : ndarray of shape (..., n_groups)
        The estimate of the base metric in each group.
    replicates : ndarray of shape (..., n_bootstrap, n_groups)
        Replicates of the base metric in each group (NaN where undefined in a resample).
    alpha : float
        ``(1 - ci) / 2``.

    Returns
    -------
    low, high : float or ndarray of shape (...)
    """
    return _max_abs_interval(_pairwise_differences(estimates), _pairwise_differences(replicates),
                             alpha)


def _pairwise_differences(values):
    """``values[..., j] - values[..., i]`` for each pair ``i < j`` of the last axis: (..., K).

    ``K = G (G - 1) / 2`` for ``G`` entries; ``max - min`` of the last axis is the largest of
    their absolute values.
    """
    i, j = np.triu_indices(values.shape[-1], k=1)
    return values[..., j] - values[..., i]


def _odds_differences(values):
    """The pairwise differences of the TPR, then of the FPR, between groups: (..., 2K).

    The worst-case equalized odds difference, the larger of the TPR and FPR spreads, is the
    largest of their absolute values. ``values`` maps ``"tpr"`` and ``"fpr"`` to arrays
    (..., n_groups + 1) whose last column, the overall value, is left out.
    """
    return np.concatenate([_pairwise_differences(values[m][..., :-1]) for m in ("tpr", "fpr")],
                          axis=-1)


def _max_abs_interval(estimates, replicates, alpha):
    """Simultaneous (Bonferroni) interval of ``max_k |D_k|`` over ``K`` signed differences.

    Each ``D_k`` gets the percentile interval ``[l_k, h_k]`` of its replicates at the level
    ``1 - 2 alpha / K``, which :func:`_absolute_interval` turns into an interval ``[a_k, b_k]``
    of ``|D_k|``; ``[a_k, b_k]`` is widened, if needed, to hold the estimate ``|D̂_k|`` (a
    percentile interval can miss its own estimate when the replicates are skewed, e.g. for rates
    near 0 or 1 in small groups). The interval of ``max_k |D_k|`` is
    ``[max_k a_k, max_k b_k]``.

    Parameters
    ----------
    estimates : ndarray of shape (..., K)
        Estimates of the signed differences.
    replicates : ndarray of shape (..., n_bootstrap, K)
        Their replicates (NaN where undefined in a resample, left out).
    alpha : float
        ``(1 - ci) / 2``, the tail of the joint interval.

    Returns
    -------
    low, high : float or ndarray of shape (...)
    """
    # Why this holds max_k |D_k| with probability >= ci: each [l_k, h_k] misses D_k with
    # probability (1 - ci) / K (as far as the percentile interval is accurate), so by
    # Bonferroni's inequality all K intervals hold their D_k, and then every [a_k, b_k] holds
    # |D_k|, with probability >= 1 - K (1 - ci) / K = ci (widening only helps). When they all
    # do, max_k |D_k| >= |D_m| >= a_m for every m, so max_k |D_k| >= max_m a_m; and
    # |D_k| <= b_k <= max_m b_m for every k, so max_k |D_k| <= max_m b_m. Likewise the estimate
    # max_k |D̂_k| lies in the interval, since each [a_k, b_k] holds |D̂_k|.
    low, high = _absolute_interval(*_percentiles(replicates, alpha / estimates.shape[-1],
                                                 axis=-2))
    size = np.abs(estimates)
    low, high = np.minimum(low, size), np.maximum(high, size)
    return low.max(axis=-1), high.max(axis=-1)


def _absolute_interval(low, high):
    """Interval of ``|D|`` from an interval ``[low, high]`` of ``D``.

    ``[0, max(|low|, |high|)]`` when the interval holds 0, else ``[min(...), max(...)]``: it
    holds ``|D|`` whenever ``[low, high]`` holds ``D``.
    """
    a, b = np.abs(low), np.abs(high)
    return np.where((low <= 0) & (0 <= high), 0.0, np.minimum(a, b)), np.maximum(a, b)
