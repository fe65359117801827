"""Bootstrap resamples as row weights, and the base metrics of every resample at once.

A resample is a row of counts (how often each row is drawn), so the metrics of many resamples
are weighted sums over the same rows: one matrix product for the rates, a weighted
Mann–Whitney statistic for the AUC and weighted bin sums for the ECE. :func:`group_report` and
the held-out audit of the experiments both evaluate their resamples this way.
"""

import numpy as np

from fairskl.metrics._group_metrics import N_BINS, calibration_bins

__all__ = ["bootstrap_weights", "replicates"]

# Rows of the confusion matrix counted per group: name -> f(y, y_hat).
_CELLS = {
    "n": lambda y, yh: np.ones_like(y),
    "pos": lambda y, yh: y,
    "neg": lambda y, yh: 1 - y,
    "tp": lambda y, yh: y * yh,
    "fp": lambda y, yh: (1 - y) * yh,
    "pred_pos": lambda y, yh: yh,
    "correct": lambda y, yh: (y == yh).astype(int),
}
# Base metric -> (numerator cell, denominator cell).
_RATIOS = {
    "tpr": ("tp", "pos"),
    "fpr": ("fp", "neg"),
    "selection_rate": ("pred_pos", "n"),
    "accuracy": ("correct", "n"),
}


def bootstrap_weights(rng, n, size, strata=None):
    """How often each row is drawn in each of ``size`` resamples of ``n`` rows.

    Parameters
    ----------
    rng : numpy.random.RandomState
        The source of the draws; ``size * n`` integers are drawn from it, stratum after
        stratum.
    n : int
        Number of rows.
    size : int
        Number of resamples.
    strata : list of ndarray, default=None
        Arrays of row indices that partition the rows. Each stratum of ``n_s`` rows is then
        resampled on its own: ``n_s`` draws with replacement from its rows. ``None`` resamples
        all ``n`` rows together.

    Returns
    -------
    weights : ndarray of shape (size, n)
        The count of each row in each resample, as floats; each row sums to ``n``.

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl.metrics._bootstrap import bootstrap_weights
    >>> weights = bootstrap_weights(np.random.RandomState(0), 5, 3)
    >>> weights.shape, weights.sum(axis=1).tolist()
    ((3, 5), [5.0, 5.0, 5.0])
    """
    strata = [np.arange(n)] if strata is None else strata
    draws = np.concatenate(
        [rows[rng.randint(0, len(rows), size=(size, len(rows)))] for rows in strata], axis=1
    )
    idx = draws + n * np.arange(size)[:, None]
    return np.bincount(idx.ravel(), minlength=size * n).reshape(size, n).astype(float)


def replicates(weights, y, y_hat, score, codes, n_groups, metrics, *, n_bins=N_BINS):
    """Base metrics per group and overall for each row of ``weights``.

    Rates are ratios of weighted confusion-matrix cells, found with one matrix product. The AUC
    is the weighted Mann–Whitney statistic (ties count one half), i.e. scikit-learn's ROC AUC
    on the resample. The ECE is ``sum_b |sum_{i in b} w_i (y_i - p_i)| / sum_i w_i`` per group.
    A metric undefined in a resample (a group without positives for the TPR, with one class
    for the AUC, without rows) is NaN there.

    Parameters
    ----------
    weights : ndarray of shape (n_resamples, n_samples)
        Row counts of each resample (:func:`bootstrap_weights`); a row of ones gives the point
        estimates.
    y : ndarray of shape (n_samples,)
        0/1 labels.
    y_hat : ndarray of shape (n_samples,)
        0/1 predictions, for the rates.
    score : ndarray of shape (n_samples,) or None
        Scores of the positive class, for ``"auc"``; probabilities for ``"ece"``.
    codes : ndarray of shape (n_samples,)
        The group of each row, in ``range(n_groups)``.
    n_groups : int
        Number of groups.
    metrics : list of str
        Among ``"tpr"``, ``"fpr"``, ``"selection_rate"``, ``"accuracy"``, ``"auc"`` and
        ``"ece"``.
    n_bins : int, default=10
        Equal-width bins of [0, 1] of the ECE.

    Returns
    -------
    replicates : dict of str to ndarray of shape (n_resamples, n_groups + 1)
        Each metric per resample and group, the overall value in the last column.

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl.metrics._bootstrap import replicates
    >>> y, y_hat = np.array([1, 1, 0, 1]), np.array([1, 0, 0, 1])
    >>> codes = np.array([0, 0, 1, 1])
    >>> replicates(np.ones((1, 4)), y, y_hat, None, codes, 2, ["tpr"])["tpr"].round(2)
    array([[0.5 , 1.  , 0.67]])
    """
    member = np.zeros((len(y), n_groups + 1))
    member[np.arange(len(y)), codes] = 1.0
    member[:, -1] = 1.0
    cells = np.stack([f(y, y_hat) for f in _CELLS.values()], axis=1)  # (n, n_cells)
    design = (member[:, :, None] * cells[:, None, :]).reshape(len(y), -1)
    counts = (weights @ design).reshape(len(weights), n_groups + 1, len(_CELLS))
    cell = dict(zip(_CELLS, np.moveaxis(counts, -1, 0), strict=True))
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for name in metrics:
            if name == "auc":
                out[name] = np.stack(
                    [_weighted_auc(weights, y, score, codes == g) for g in range(n_groups)]
                    + [_weighted_auc(weights, y, score, slice(None))],
                    axis=1,
                )
            elif name == "ece":
                out[name] = _weighted_ece(weights, y, score, codes, n_groups, n_bins)
            else:
                numerator, denominator = _RATIOS[name]
                out[name] = np.where(
                    cell[denominator] > 0, cell[numerator] / cell[denominator], np.nan
                )
    return out


def _weighted_ece(weights, y, score, codes, n_groups, n_bins):
    """ECE of each group (+ overall) under each row of ``weights``: (B, G + 1)."""
    bins = calibration_bins(score, n_bins)
    residual = weights * (y - score)
    gaps = np.concatenate(  # (B, G + 1, n_bins): summed residual per group (+ all) and bin
        [_sum_by(residual, codes * n_bins + bins, n_groups * n_bins), _sum_by(residual, bins,
                                                                              n_bins)],
        axis=1,
    ).reshape(len(weights), n_groups + 1, n_bins)
    size = np.c_[_sum_by(weights, codes, n_groups), weights.sum(axis=1)]
    return np.where(size > 0, np.abs(gaps).sum(axis=-1) / np.where(size > 0, size, 1), np.nan)


def _sum_by(values, index, n):
    """Sums of the columns of ``values`` (B, n_rows) by ``index`` (n_rows,) in range(n): (B, n)."""
    order = np.argsort(index, kind="stable")
    cells, starts = np.unique(index[order], return_index=True)
    out = np.zeros((len(values), n))
    out[:, cells] = np.add.reduceat(values[:, order], starts, axis=1)
    return out


def _weighted_auc(weights, y, score, rows):
    """ROC AUC of the rows ``rows`` under each row of ``weights`` (counts of a resample)."""
    idx = np.arange(len(y))[rows]
    order = idx[np.argsort(score[idx], kind="stable")]
    sorted_score = score[order]
    starts = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])
    w = weights[:, order]
    positive = w * y[order]
    negative = w - positive
    if len(starts) < len(order):  # tied scores: pool each block of ties first
        positive_tied = np.add.reduceat(positive, starts, axis=1)
        negative_tied = np.add.reduceat(negative, starts, axis=1)
    else:
        positive_tied, negative_tied = positive, negative
    negative_below = np.cumsum(negative_tied, axis=1) - negative_tied
    numerator = (positive_tied * (negative_below + 0.5 * negative_tied)).sum(axis=1)
    denominator = positive.sum(axis=1) * negative.sum(axis=1)
    return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)
