"""Train / validation / test split that keeps groups whole and stratifies by label x group."""

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.validation import _num_samples, check_consistent_length

__all__ = ["train_val_test_split"]


def _check_size(name, value, *, allow_zero):
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and (0 <= value < 1 if allow_zero else 0 < value < 1))
    if not ok:
        low = "0 <=" if allow_zero else "0 <"
        raise ValueError(
            f"{name} must be a fraction of the samples with {low} {name} < 1, got {value!r}. "
            f"E.g. {name}=0.15."
        )
    return float(value)


def _codes(values, name):
    """Integer codes of the rows of a 1-D or 2-D array-like (a combination per row if 2-D)."""
    frame = values if isinstance(values, pd.DataFrame) else pd.DataFrame(
        np.asarray(values, dtype=object).reshape(_num_samples(values), -1))
    if frame.shape[1] == 0:
        raise ValueError(f"{name} has no columns.")
    return frame.astype(object).fillna("<missing>").groupby(
        list(frame.columns), sort=True, observed=True).ngroup().to_numpy()


def _assign(group_strata, fractions, rng):
    """Greedy assignment of groups to splits (one per fraction), largest groups first.

    Each group goes to the split that most needs its strata: the split maximising
    ``sum_k counts[g, k] * (target[s, k] - assigned[s, k]) / total[k]``, ties broken by the
    split with the largest shortfall of samples overall. The groups are shuffled by
    ``rng`` before a stable sort by size, so equal-sized groups are taken in a random order.
    """
    n_groups, n_strata = group_strata.shape
    total = group_strata.sum(axis=0).astype(float)
    target = np.outer(fractions, total)
    target_size = fractions * total.sum()
    assigned = np.zeros_like(target)
    size = np.zeros(len(fractions))
    open_ = fractions > 0
    order = rng.permutation(n_groups)
    order = order[np.argsort(-group_strata[order].sum(axis=1), kind="stable")]
    split_of_group = np.empty(n_groups, dtype=np.int64)
    for g in order:
        counts = group_strata[g]
        need = ((target - assigned) / np.maximum(total, 1)) @ counts
        overall = (target_size - size) / max(total.sum(), 1)
        score = np.where(open_, need + 1e-6 * overall, -np.inf)
        s = int(np.argmax(score))
        split_of_group[g] = s
        assigned[s] += counts
        size[s] += counts.sum()
    return split_of_group


def train_val_test_split(*arrays, groups, stratify=None, val_size=0.15, test_size=0.15,
                         random_state=None):
    """Split arrays into train, validation and test sets, keeping each group on one side.

    All samples of a group (a patient, a lesion) go to the same set, so that no image of a
    lesion is used to train and to evaluate, which inflates the scores of data sets with
    several images per lesion such as HAM10000. Within that constraint, the sets are
    stratified: each combination of the ``stratify`` columns (typically the label and a
    sensitive group) is split as close to ``1 - val_size - test_size`` / ``val_size`` /
    ``test_size`` as the group sizes allow.

    Read more in the :ref:`User Guide <datasets_split>`.

    Parameters
    ----------
    *arrays : sequence of indexables with the same length
        Lists, NumPy arrays, SciPy sparse matrices or pandas objects.

    groups : array-like of shape (n_samples,)
        Group of each sample (e.g. ``lesion_id``); a group is never split across sets.

    stratify : array-like of shape (n_samples,) or (n_samples, n_columns), default=None
        Labels to stratify by; with several columns (or a DataFrame), every combination of
        their values is a stratum, e.g. ``np.c_[y, sensitive["sex"]]``. Missing values form
        their own category. None stratifies by nothing (only the sizes are balanced).

    val_size : float, default=0.15
        Fraction of the samples in the validation set, in [0, 1). 0 gives an empty one.

    test_size : float, default=0.15
        Fraction of the samples in the test set, in (0, 1); ``val_size + test_size < 1``.

    random_state : int, RandomState instance or None, default=None
        Order in which equal-sized groups are assigned; pass an int for reproducible splits.

    Returns
    -------
    splitting : list, length = 3 * len(arrays)
        ``[a_train, a_val, a_test, b_train, b_val, b_test, ...]``; the rows of each set keep
        their original order.

    See Also
    --------
    sklearn.model_selection.StratifiedGroupKFold : Cross-validation folds under the same
        constraints (equal-sized folds).
    sklearn.model_selection.train_test_split : The two-way split without groups.

    Notes
    -----
    Groups are assigned greedily, largest first, each to the set whose share of the group's
    strata is furthest below its target (in the spirit of iterative stratification [1]_).
    With few groups per stratum the realised fractions are approximate.

    References
    ----------
    .. [1] K. Sechidis, G. Tsoumakas and I. Vlahavas, "On the stratification of multi-label
       data", ECML PKDD, 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl.model_selection import train_val_test_split
    >>> X = np.arange(20).reshape(10, 2)
    >>> y = np.array([0, 0, 1, 1, 0, 0, 1, 1, 0, 1])
    >>> lesion = np.array([0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
    >>> X_tr, X_va, X_te, y_tr, y_va, y_te, g_tr, g_va, g_te = train_val_test_split(
    ...     X, y, lesion, groups=lesion, stratify=y, val_size=0.2, test_size=0.2,
    ...     random_state=0)
    >>> len(g_tr), len(g_va), len(g_te)
    (6, 2, 2)
    >>> set(g_tr) & set(g_va), set(g_tr) & set(g_te), set(g_va) & set(g_te)
    (set(), set(), set())
    """
    if not arrays:
        raise ValueError("At least one array is required, e.g. train_val_test_split(X, y, "
                         "groups=groups).")
    val_size = _check_size("val_size", val_size, allow_zero=True)
    test_size = _check_size("test_size", test_size, allow_zero=False)
    if val_size + test_size >= 1:
        raise ValueError(
            f"val_size + test_size must be < 1 to leave a training set, got {val_size} + "
            f"{test_size}."
        )
    if groups is None:
        raise ValueError("groups is required: pass the patient or lesion id of each sample.")
    check_consistent_length(*arrays, groups, *([] if stratify is None else [stratify]))
    n = _num_samples(arrays[0])
    if pd.isna(pd.Series(np.asarray(groups, dtype=object).ravel())).any():
        raise ValueError("groups has missing values; give every sample a group id.")
    group_codes = _codes(groups, "groups")
    strata = np.zeros(n, dtype=np.int64) if stratify is None else _codes(stratify, "stratify")
    n_groups, n_strata = group_codes.max() + 1, strata.max() + 1
    fractions = np.array([1 - val_size - test_size, val_size, test_size])
    needed = int((fractions > 0).sum())
    if n_groups < needed:
        raise ValueError(f"Cannot split {n_groups} group(s) into {needed} non-empty sets; "
                         "pass more groups or val_size=0.")
    counts = np.zeros((n_groups, n_strata), dtype=np.int64)
    np.add.at(counts, (group_codes, strata), 1)
    split_of_group = _assign(counts, fractions, check_random_state(random_state))
    side = split_of_group[group_codes]
    indices = [np.flatnonzero(side == s) for s in range(3)]
    return [_safe_indexing(a, idx) for a in arrays for idx in indices]
