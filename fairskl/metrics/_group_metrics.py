"""Group disparities for binary classification and reconstruction, on fairlearn's MetricFrame.

Every public function takes ``sensitive_features`` as a keyword (a 1-D array, a Series, or a
DataFrame whose columns define intersectional groups), so it can be used in a scorer that receives
``sensitive_features`` through scikit-learn's metadata routing.

NaN policy: a disparity is NaN, with a :class:`~fairskl.FairnessWarning` naming the groups, when
it cannot be computed over all groups — fewer than two groups are present, a category of a
categorical sensitive feature has no row (e.g. in a cross-validation fold), or a group's metric is
undefined (no positives for the TPR, no negatives for the FPR, one class for the AUC).
"""

import functools
import warnings
from numbers import Integral

import numpy as np
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from fairskl.exceptions import FairnessWarning
from fairskl.metrics._validation import (
    EXPECTED_GROUPS,
    POS_LABEL,
    absent_categories,
    binarize,
    check_group_inputs,
    check_probabilities,
    check_scores,
)

__all__ = [
    "auc_by_group",
    "auc_difference",
    "demographic_parity_difference",
    "ece_by_group",
    "ece_difference",
    "equalized_odds_difference",
    "equity_scaled_auc",
    "fpr_difference",
    "mse_by_group",
    "mse_difference",
    "tpr_difference",
    "worst_group_auc",
]

# Declared constraints of the public functions (scikit-learn's validate_params), by the kind of
# their second argument; the checks of _validation are those that involve the data.
_GROUPS = {"sensitive_features": ["array-like", None], "expected_groups": EXPECTED_GROUPS}
_LABELS = {"y_true": ["array-like"], "y_pred": ["array-like"], "pos_label": POS_LABEL, **_GROUPS}
_SCORES = {"y_true": ["array-like"], "y_score": ["array-like"], "pos_label": POS_LABEL,
           **_GROUPS}
_PROBABILITIES = {"y_true": ["array-like"], "y_prob": ["array-like"], "pos_label": POS_LABEL,
                  "n_bins": [Interval(Integral, 1, None, closed="left")], **_GROUPS}
_RECONSTRUCTIONS = {"X_true": ["array-like"], "X_pred": ["array-like"], **_GROUPS}


# Per-group metrics handed to MetricFrame: fairlearn's own, made NaN where they are undefined
# (fairlearn returns 0.0 for the TPR of a group without positives, a silent number).
def _tpr(y_true, y_pred):
    return true_positive_rate(y_true, y_pred, pos_label=1) if y_true.any() else np.nan


def _fpr(y_true, y_pred):
    return false_positive_rate(y_true, y_pred, pos_label=1) if not y_true.all() else np.nan


def _auc(y_true, y_score):
    return roc_auc_score(y_true, y_score) if 0 < y_true.sum() < len(y_true) else np.nan


#: Equal-width bins of [0, 1] of the expected calibration error, as in MEDFAIR and FairMedFM.
N_BINS = 10


def calibration_bins(y_prob, n_bins):
    """Bin of each probability among ``n_bins`` equal-width bins of [0, 1].

    The bins of :func:`sklearn.calibration.calibration_curve` (``strategy="uniform"``): bin
    ``b`` holds ``b / n_bins < p <= (b + 1) / n_bins``, and the first one also holds 0.
    """
    return np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], y_prob)


def _ece(y_true, y_prob, n_bins=N_BINS):
    # sum_b (n_b / n) |mean_b(y) - mean_b(p)| = sum_b |sum_{i in b} (y_i - p_i)| / n
    y_true, y_prob = np.asarray(y_true, dtype=float), np.asarray(y_prob, dtype=float)
    gaps = np.bincount(calibration_bins(y_prob, n_bins), weights=y_true - y_prob,
                       minlength=n_bins)
    return float(np.abs(gaps).sum() / len(y_true))


def _mean_error(errors, _unused):
    return float(np.mean(errors))


#: name -> (per-group function, input kind, why it can be undefined)
BASE_METRICS = {
    "tpr": (_tpr, "label", "it has no positive samples in y_true"),
    "fpr": (_fpr, "label", "it has no negative samples in y_true"),
    "selection_rate": (selection_rate, "label", None),
    "accuracy": (accuracy_score, "label", None),
    "auc": (_auc, "score", "y_true holds only one class in it"),
    "ece": (_ece, "probability", None),
}


def group_frame(metrics, y_true, y_pred, sensitive_features, *, n_bins=N_BINS):
    """A fairlearn MetricFrame of the named :data:`BASE_METRICS` on validated inputs."""
    functions = {name: BASE_METRICS[name][0] for name in metrics}
    if "ece" in functions:
        functions["ece"] = functools.partial(_ece, n_bins=n_bins)
    return MetricFrame(
        metrics=functions,
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=sensitive_features,
    )


def _classification_frame(
    metrics, y_true, y_pred, sensitive_features, pos_label, kind, expected_groups=None,
    n_bins=N_BINS,
):
    y_pred_name = {"label": "y_pred", "score": "y_score", "probability": "y_prob"}[kind]
    frame = check_group_inputs(
        y_true,
        y_pred,
        sensitive_features,
        y_pred_name=y_pred_name,
        expected_groups=expected_groups,
    )
    y_true = binarize(y_true, name="y_true", pos_label=pos_label)
    if kind == "label":
        y_pred = binarize(y_pred, name="y_pred", pos_label=pos_label)
    elif kind == "score":
        y_pred = check_scores(y_pred)
    else:
        y_pred = check_probabilities(y_pred)
    return group_frame(metrics, y_true, y_pred, frame, n_bins=n_bins), frame


def undefined_reason(mf, frame, metrics):
    """Why a disparity over ``mf.by_group`` cannot be computed over all groups, or None."""
    absent = absent_categories(frame)
    if absent:
        return f"group(s) {absent} of the categorical sensitive features have no sample here"
    by_group = mf.by_group
    if len(by_group) < 2:
        return f"only one group ({by_group.index[0]!r}) is present, a disparity needs two"
    for name in metrics:
        undefined = by_group.index[by_group[name].isna()].tolist()
        if undefined:
            why = BASE_METRICS.get(name, (None, None, None))[2] or "it has no sample"
            return f"{name} is undefined for group(s) {undefined} because {why}"
    return None


def _warn_nan(function_name, reason):
    warnings.warn(
        f"{function_name} is NaN: {reason}. Use group-stratified folds (e.g. StratifiedKFold on "
        f"the label crossed with the group) or merge small groups.",
        FairnessWarning,
        stacklevel=3,
    )
    return np.nan


#: disparity -> the base metrics it is computed from
DISPARITY_INPUTS = {
    "tpr_difference": ["tpr"],
    "fpr_difference": ["fpr"],
    "equalized_odds_difference": ["tpr", "fpr"],
    "demographic_parity_difference": ["selection_rate"],
    "accuracy_difference": ["accuracy"],
    "auc_difference": ["auc"],
    "worst_group_auc": ["auc"],
    "equity_scaled_auc": ["auc"],
    "ece_difference": ["ece"],
}


def disparities(values, *, agg="worst_case"):
    """The disparities of :data:`DISPARITY_INPUTS` from per-group values.

    ``values`` maps base metrics to arrays (..., n_groups + 1) whose last column is the overall
    value, so the same formulas serve one estimate and a stack of bootstrap replicates. A NaN
    group value makes the disparity NaN (np.max/np.min propagate it). ``agg`` combines the TPR
    and FPR gaps of the equalized odds difference, as in :func:`equalized_odds_difference`.
    """

    def spread(name):
        groups = values[name][..., :-1]
        return groups.max(axis=-1) - groups.min(axis=-1)

    out = {}
    for name, inputs in DISPARITY_INPUTS.items():
        if not all(m in values for m in inputs):
            continue
        if name == "equalized_odds_difference":
            combine = np.maximum if agg == "worst_case" else lambda a, b: (a + b) / 2
            out[name] = combine(spread("tpr"), spread("fpr"))
        elif name == "worst_group_auc":
            out[name] = values["auc"][..., :-1].min(axis=-1)
        elif name == "equity_scaled_auc":  # AUC / (1 + sum_g |AUC_g - AUC|)
            auc = values["auc"]
            out[name] = auc[..., -1] / (1.0 + np.abs(auc[..., :-1] - auc[..., -1:]).sum(axis=-1))
        else:
            out[name] = spread(inputs[0])
    return out


def _disparity(name, y_true, y_pred, sensitive_features, pos_label, expected_groups,
               agg="worst_case", n_bins=N_BINS):
    inputs = DISPARITY_INPUTS[name]
    kind = BASE_METRICS[inputs[0]][1]
    mf, frame = _classification_frame(
        inputs, y_true, y_pred, sensitive_features, pos_label, kind, expected_groups, n_bins
    )
    reason = undefined_reason(mf, frame, inputs)
    if reason:
        return _warn_nan(name, reason)
    values = {m: np.append(mf.by_group[m].to_numpy(float), mf.overall[m]) for m in inputs}
    return float(disparities(values, agg=agg)[name])


@validate_params(_LABELS, prefer_skip_nested_validation=True)
def tpr_difference(
    y_true, y_pred, *, sensitive_features=None, pos_label=None, expected_groups=None
):
    """Largest gap in true positive rate (sensitivity) between two groups.

    ``max_g TPR_g - min_g TPR_g``; 0 means equal opportunity. See the
    :ref:`user guide <metrics>` for the NaN policy.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary ground truth (0/1, or any two labels with ``pos_label``).
    y_pred : array-like of shape (n_samples,)
        Binary predictions, in the same labels as ``y_true``.
    sensitive_features : array-like, Series or DataFrame of shape (n_samples,) or (n_samples, k)
        Group of each sample; several columns define intersectional groups.
    pos_label : scalar, default=None
        The positive class; required unless the labels are 0/1 or -1/1.
    expected_groups : list or dict of lists, default=None
        Every group that should be present (for several columns, ``{column: groups}``). A group
        missing from the data (e.g. from a cross-validation fold) then makes the result NaN,
        with a :class:`~fairskl.FairnessWarning`. Without it only categorical columns are
        checked: plain values cannot tell that a group is missing.

    Returns
    -------
    float
        The difference, or NaN with a :class:`~fairskl.FairnessWarning` when a group has no
        positives or fewer than two groups are present.

    See Also
    --------
    fairlearn.metrics.true_positive_rate_difference : fairlearn's version (0.0 for empty groups).

    Examples
    --------
    >>> from fairskl.metrics import tpr_difference
    >>> y_true = [1, 1, 0, 1, 1, 0]
    >>> y_pred = [1, 1, 0, 1, 0, 1]
    >>> tpr_difference(y_true, y_pred, sensitive_features=["a", "a", "a", "b", "b", "b"])
    0.5
    """
    return _disparity(
        "tpr_difference", y_true, y_pred, sensitive_features, pos_label, expected_groups
    )


@validate_params(_LABELS, prefer_skip_nested_validation=True)
def fpr_difference(
    y_true, y_pred, *, sensitive_features=None, pos_label=None, expected_groups=None
):
    """Largest gap in false positive rate between two groups: ``max_g FPR_g - min_g FPR_g``.

    Parameters
    ----------
    y_true, y_pred, sensitive_features, pos_label, expected_groups
        As in :func:`tpr_difference`.

    Returns
    -------
    float
        The difference, or NaN with a :class:`~fairskl.FairnessWarning` when a group has no
        negatives or fewer than two groups are present.

    Examples
    --------
    >>> from fairskl.metrics import fpr_difference
    >>> fpr_difference([0, 0, 1, 0, 0, 1], [1, 0, 1, 0, 0, 1],
    ...                sensitive_features=["a", "a", "a", "b", "b", "b"])
    0.5
    """
    return _disparity(
        "fpr_difference", y_true, y_pred, sensitive_features, pos_label, expected_groups
    )


@validate_params(
    {**_LABELS, "agg": [StrOptions({"worst_case", "mean"})]}, prefer_skip_nested_validation=True
)
def equalized_odds_difference(
    y_true, y_pred, *, sensitive_features=None, pos_label=None, expected_groups=None,
    agg="worst_case",
):
    """The larger of the TPR gap and the FPR gap; with ``agg="mean"``, their mean.

    fairskl's convention is fairlearn's default, the worst case ``max(ΔTPR, ΔFPR)``: 0 means
    equalized odds, and the value bounds both gaps. The medical-imaging benchmarks use other
    forms of the same two gaps: MEDFAIR's ``cal_eqodd`` (two groups) and FairMedFM's ``eod`` report
    ``1 - (ΔTPR + ΔFPR) / 2`` (FairMedFM writes ΔTNR, which equals ΔFPR), i.e. one minus
    ``agg="mean"``. See the :ref:`user guide <metrics>`.

    Parameters
    ----------
    y_true, y_pred, sensitive_features, pos_label, expected_groups
        As in :func:`tpr_difference`.
    agg : {"worst_case", "mean"}, default="worst_case"
        How to combine the two gaps, as in fairlearn's
        :func:`~fairlearn.metrics.equalized_odds_difference`: the larger one, or their mean.

    Returns
    -------
    float
        ``max(ΔTPR, ΔFPR)`` or ``(ΔTPR + ΔFPR) / 2``, or NaN with a
        :class:`~fairskl.FairnessWarning`.

    See Also
    --------
    fairlearn.metrics.equalized_odds_difference : The same, with 0.0 for an empty group.

    References
    ----------
    Y. Zong, Y. Yang and T. Hospedales, "MEDFAIR: Benchmarking Fairness for Medical Imaging",
    ICLR, 2023.

    R. Jin et al., "FairMedFM: Fairness Benchmarking for Medical Imaging Foundation Models",
    NeurIPS Datasets and Benchmarks, 2024.

    Examples
    --------
    >>> from fairskl.metrics import equalized_odds_difference
    >>> y_true, y_pred = [1, 0, 1, 0, 1, 0], [1, 1, 0, 0, 1, 0]
    >>> A = ["a", "a", "b", "b", "b", "b"]
    >>> equalized_odds_difference(y_true, y_pred, sensitive_features=A)  # ΔTPR 0.5, ΔFPR 1
    1.0
    >>> equalized_odds_difference(y_true, y_pred, sensitive_features=A, agg="mean")
    0.75
    """
    return _disparity(
        "equalized_odds_difference", y_true, y_pred, sensitive_features, pos_label,
        expected_groups, agg=agg,
    )


@validate_params(_LABELS, prefer_skip_nested_validation=True)
def demographic_parity_difference(
    y_true, y_pred, *, sensitive_features=None, pos_label=None, expected_groups=None
):
    """Largest gap in selection rate (share predicted positive) between two groups.

    Parameters
    ----------
    y_true, y_pred, sensitive_features, pos_label, expected_groups
        As in :func:`tpr_difference` (``y_true`` is only checked, as in fairlearn).

    Returns
    -------
    float
        ``max_g P(ŷ=1 | g) - min_g P(ŷ=1 | g)``, or NaN with a :class:`~fairskl.FairnessWarning`.

    Examples
    --------
    >>> from fairskl.metrics import demographic_parity_difference
    >>> demographic_parity_difference([1, 0, 1, 0], [1, 1, 0, 1],
    ...                               sensitive_features=["a", "a", "b", "b"])
    0.5
    """
    return _disparity(
        "demographic_parity_difference",
        y_true,
        y_pred,
        sensitive_features,
        pos_label,
        expected_groups,
    )


@validate_params(_SCORES, prefer_skip_nested_validation=True)
def auc_by_group(y_true, y_score, *, sensitive_features=None, pos_label=None, expected_groups=None):
    """ROC AUC overall and in each group.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary ground truth.
    y_score : array-like of shape (n_samples,)
        Scores of the positive class (probabilities or decision values).
    sensitive_features, pos_label, expected_groups
        As in :func:`tpr_difference`.

    Returns
    -------
    overall : float
        AUC on all samples.
    by_group : pandas.Series
        AUC per group (NaN for a group holding one class only).

    Examples
    --------
    >>> from fairskl.metrics import auc_by_group
    >>> overall, by_group = auc_by_group([0, 1, 0, 1], [0.1, 0.9, 0.8, 0.3],
    ...                                  sensitive_features=["a", "a", "b", "b"])
    >>> overall, by_group.tolist()
    (0.75, [1.0, 0.0])
    """
    mf, _ = _classification_frame(
        ["auc"], y_true, y_score, sensitive_features, pos_label, "score", expected_groups
    )
    return float(mf.overall["auc"]), mf.by_group["auc"]


@validate_params(_SCORES, prefer_skip_nested_validation=True)
def auc_difference(
    y_true, y_score, *, sensitive_features=None, pos_label=None, expected_groups=None
):
    """Largest gap in ROC AUC between two groups: ``max_g AUC_g - min_g AUC_g``.

    Parameters
    ----------
    y_true, y_score, sensitive_features, pos_label, expected_groups
        As in :func:`auc_by_group`.

    Returns
    -------
    float
        The difference, or NaN with a :class:`~fairskl.FairnessWarning`.

    Examples
    --------
    >>> from fairskl.metrics import auc_difference
    >>> auc_difference([0, 1, 0, 1], [0.1, 0.9, 0.8, 0.3], sensitive_features=[0, 0, 1, 1])
    1.0
    """
    return _disparity(
        "auc_difference", y_true, y_score, sensitive_features, pos_label, expected_groups
    )


@validate_params(_SCORES, prefer_skip_nested_validation=True)
def worst_group_auc(
    y_true, y_score, *, sensitive_features=None, pos_label=None, expected_groups=None
):
    """The lowest ROC AUC of any group (higher is better).

    Parameters
    ----------
    y_true, y_score, sensitive_features, pos_label, expected_groups
        As in :func:`auc_by_group`.

    Returns
    -------
    float
        ``min_g AUC_g``, or NaN with a :class:`~fairskl.FairnessWarning`.

    Examples
    --------
    >>> from fairskl.metrics import worst_group_auc
    >>> worst_group_auc([0, 1, 0, 1], [0.1, 0.9, 0.4, 0.3], sensitive_features=[0, 0, 1, 1])
    0.0
    """
    return _disparity(
        "worst_group_auc", y_true, y_score, sensitive_features, pos_label, expected_groups
    )


@validate_params(_SCORES, prefer_skip_nested_validation=True)
def equity_scaled_auc(
    y_true, y_score, *, sensitive_features=None, pos_label=None, expected_groups=None
):
    """Equity-scaled AUC: ``AUC / (1 + Σ_g |AUC_g − AUC|)`` (higher is better).

    The overall AUC shrunk by the summed deviation of the group AUCs from it, as used by the
    Harvard-GF glaucoma fairness benchmark.

    Parameters
    ----------
    y_true, y_score, sensitive_features, pos_label, expected_groups
        As in :func:`auc_by_group`.

    Returns
    -------
    float
        ES-AUC, or NaN with a :class:`~fairskl.FairnessWarning`.

    References
    ----------
    Y. Luo et al., "Harvard Glaucoma Fairness: A Retinal Nerve Disease Dataset for Fairness
    Learning and Fair Identity Normalization", IEEE TMI, 2024.

    Examples
    --------
    >>> from fairskl.metrics import equity_scaled_auc
    >>> round(equity_scaled_auc([0, 1, 0, 1, 0, 1], [0.1, 0.9, 0.8, 0.3, 0.2, 0.6],
    ...                         sensitive_features=[0, 0, 1, 1, 1, 1]), 4)
    0.5185
    """
    return _disparity(
        "equity_scaled_auc", y_true, y_score, sensitive_features, pos_label, expected_groups
    )


@validate_params(_PROBABILITIES, prefer_skip_nested_validation=True)
def ece_by_group(
    y_true, y_prob, *, sensitive_features=None, n_bins=N_BINS, pos_label=None,
    expected_groups=None,
):
    """Expected calibration error (ECE) overall and in each group.

    The probabilities of the positive class are put in ``n_bins`` equal-width bins of [0, 1];
    the ECE is the mean absolute gap between the share of positives and the mean probability
    in a bin, weighted by the share of samples in the bin (Guo et al., 2017). Each group's
    ECE uses the same bins. MEDFAIR and FairMedFM report it per group with 10 bins; see the
    :ref:`user guide <metrics>` for the formula and for how their binning differs.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary ground truth.
    y_prob : array-like of shape (n_samples,)
        Probabilities of the positive class, in [0, 1] (e.g. ``predict_proba(X)[:, 1]``).
    sensitive_features : array-like, Series or DataFrame of shape (n_samples,) or (n_samples, k)
        Group of each sample, as in :func:`tpr_difference`.
    n_bins : int, default=10
        Number of equal-width bins of [0, 1]; bin ``b`` holds ``b/n_bins < p <= (b+1)/n_bins``
        (the first one also 0), as in :func:`sklearn.calibration.calibration_curve`.
    pos_label, expected_groups
        As in :func:`tpr_difference`.

    Returns
    -------
    overall : float
        ECE on all samples.
    by_group : pandas.Series
        ECE per group (0 is perfectly calibrated, lower is better).

    See Also
    --------
    ece_difference : The gap between the groups' ECEs.
    sklearn.calibration.calibration_curve : The per-bin values, with the same bins.

    References
    ----------
    C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On Calibration of Modern Neural
    Networks", ICML, 2017.

    Examples
    --------
    >>> from fairskl.metrics import ece_by_group
    >>> y_true = [0, 0, 0, 1, 0, 0, 1, 1]
    >>> y_prob = [0.25] * 8  # right for a (1 positive in 4), not for b (2 in 4)
    >>> ece_by_group(y_true, y_prob, sensitive_features=list("aaaabbbb"))[1].tolist()
    [0.0, 0.25]
    """
    mf, _ = _classification_frame(
        ["ece"], y_true, y_prob, sensitive_features, pos_label, "probability", expected_groups,
        n_bins,
    )
    return float(mf.overall["ece"]), mf.by_group["ece"]


@validate_params(_PROBABILITIES, prefer_skip_nested_validation=True)
def ece_difference(
    y_true, y_prob, *, sensitive_features=None, n_bins=N_BINS, pos_label=None,
    expected_groups=None,
):
    """Largest gap in expected calibration error between two groups.

    ``max_g ECE_g - min_g ECE_g``, the "ECE gap" of MEDFAIR and FairMedFM.

    Parameters
    ----------
    y_true, y_prob, sensitive_features, n_bins, pos_label, expected_groups
        As in :func:`ece_by_group`.

    Returns
    -------
    float
        The difference, or NaN with a :class:`~fairskl.FairnessWarning` when fewer than two
        groups are present.

    Examples
    --------
    >>> from fairskl.metrics import ece_difference
    >>> ece_difference([0, 0, 0, 1, 0, 0, 1, 1], [0.25] * 8,
    ...                sensitive_features=list("aaaabbbb"))
    0.25
    """
    return _disparity(
        "ece_difference", y_true, y_prob, sensitive_features, pos_label, expected_groups,
        n_bins=n_bins,
    )


@validate_params(_RECONSTRUCTIONS, prefer_skip_nested_validation=True)
def mse_by_group(X_true, X_pred, *, sensitive_features=None, expected_groups=None):
    """Mean squared reconstruction error per group.

    Each sample's error is the mean of its squared differences over all its values (pixels and
    channels); a group's error is the mean of its samples' errors. uint8 images are divided by
    255 first, so that uint8 originals and [0, 1] float reconstructions (what
    :class:`~fairskl.PerceptualVAE` returns) are compared on one scale, [0, 1]. (On the [-1, 1]
    scale of the VAE study's numbers the same error is 4 times larger.)

    Parameters
    ----------
    X_true, X_pred : array-like of shape (n_samples, ...)
        Originals and reconstructions (e.g. N×C×H×W images), same shape; float values as
        they are, uint8 images (0..255) scaled to [0, 1].
    sensitive_features, expected_groups : array-like, Series or DataFrame; list or dict
        Group of each sample and the groups to expect, as in :func:`tpr_difference`.

    Returns
    -------
    pandas.Series
        MSE per group.

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl.metrics import mse_by_group
    >>> X = np.zeros((4, 1, 2, 2))
    >>> X_rec = X + np.array([0.1, 0.1, 0.3, 0.3])[:, None, None, None]
    >>> mse_by_group(X, X_rec, sensitive_features=["light", "light", "dark", "dark"]).round(3)
    sensitive_feature_0
    dark     0.09
    light    0.01
    Name: mse, dtype: float64
    """
    return _mse_frame(X_true, X_pred, sensitive_features, expected_groups)[0].by_group["mse"]


def _unit_scale(X):
    """``X`` as a float array; uint8 images (0..255) divided by 255, to [0, 1]."""
    X = np.asarray(X)
    return X / 255.0 if X.dtype == np.uint8 else X.astype(float)


def per_sample_mse(X_true, X_pred):
    """Mean squared difference of each sample over its values, uint8 images scaled to [0, 1]
    (the one MSE of :func:`mse_by_group`, the scorers and the representation study)."""
    X_true, X_pred = _unit_scale(X_true), _unit_scale(X_pred)
    if X_true.shape != X_pred.shape:
        raise ValueError(
            f"X_true and X_pred must have the same shape, got {X_true.shape} and {X_pred.shape}."
        )
    return ((X_true - X_pred) ** 2).reshape(len(X_true), -1).mean(axis=1)


def _mse_frame(X_true, X_pred, sensitive_features, expected_groups):
    frame = check_group_inputs(
        X_true, X_pred, sensitive_features, y_pred_name="X_pred", expected_groups=expected_groups
    )
    errors = per_sample_mse(X_true, X_pred)
    mf = MetricFrame(
        metrics={"mse": _mean_error}, y_true=errors, y_pred=errors, sensitive_features=frame
    )
    return mf, frame


@validate_params(_RECONSTRUCTIONS, prefer_skip_nested_validation=True)
def mse_difference(X_true, X_pred, *, sensitive_features=None, expected_groups=None):
    """Largest gap in mean squared reconstruction error between two groups.

    Parameters
    ----------
    X_true, X_pred, sensitive_features, expected_groups
        As in :func:`mse_by_group`.

    Returns
    -------
    float
        ``max_g MSE_g - min_g MSE_g``, or NaN with a :class:`~fairskl.FairnessWarning` when
        fewer than two groups are present.

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl.metrics import mse_difference
    >>> X = np.zeros((4, 3))
    >>> X_rec = X + np.array([0.1, 0.1, 0.3, 0.3])[:, None]
    >>> round(mse_difference(X, X_rec, sensitive_features=[0, 0, 1, 1]), 3)
    0.08
    """
    mf, frame = _mse_frame(X_true, X_pred, sensitive_features, expected_groups)
    reason = undefined_reason(mf, frame, ["mse"])
    if reason:
        return _warn_nan("mse_difference", reason)
    return float(mf.difference(method="between_groups")["mse"])
