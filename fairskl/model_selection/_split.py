"""Splits that keep groups whole and stratify: train / validation / test, and the internal
validation split of a skorch net."""

import numbers
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.validation import _num_samples, check_consistent_length

__all__ = ["GroupedValidSplit", "encode_groups", "stratified_holdout",
           "train_val_test_split"]


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


class GroupedValidSplit:
    """skorch's ``ValidSplit`` that keeps groups (lesions, patients) whole.

    Pass it as ``train_split=`` of a fairskl classifier or :class:`~fairskl.PerceptualVAE`:
    the net holds out a validation set for early stopping or checkpoint selection in which
    no group of the training set appears, and, with ``stratified=True``, each label in the
    same proportion as in the training set. skorch's own ``ValidSplit`` splits images, so
    that images of one lesion (HAM10000 has several per lesion) land on both sides and the
    validation score that picks the epoch is optimistic.

    Read more in the :ref:`User Guide <datasets_split>`.

    Parameters
    ----------
    cv : float, int or cross-validator, default=0.2
        A float in (0, 1): the share of the samples to validate on (as close as the group
        sizes allow). An int k >= 2: one k-th of them (one fold of k, as ``ValidSplit``). A
        group-aware splitter with ``split(X, y, groups)`` (e.g.
        :class:`~sklearn.model_selection.StratifiedGroupKFold`): its first split.
    stratified : bool, default=True
        Keep the share of each label the same on both sides; needs the labels y (a
        classifier's). Pass False for :class:`~fairskl.PerceptualVAE`, which has none.
    random_state : int, RandomState instance or None, default=None
        For a float or int ``cv``: the order in which equal-sized groups are assigned. An int
        gives the same split at every call (every ``fit`` and ``partial_fit``).

    Notes
    -----
    **How the groups reach the split.** They travel inside X, as the methods' per-sample
    extras do: ``fit(X={"X": images, "groups": lesion_id}, y)`` (a dict or a skorch
    ``SliceDict``). skorch batches and indexes the dict with the rows, so scikit-learn's
    ``GridSearchCV`` and ``cross_validate`` hand each inner fit the groups of its own rows,
    the estimators use the same X for their own per-sample groups
    (:class:`~fairskl.GroupBalancedClassifier`), and nothing needs
    ``enable_metadata_routing``. skorch's metadata routing (``fit(X, y, groups=...)``) was not
    chosen: without routing enabled, skorch also passes every fit parameter to the module's
    ``forward``, which the backbones do not take, and with it every caller (a search, a
    pipeline) would have to request ``groups`` for the net. When ``"groups"`` holds something
    else (the sensitive groups of :class:`~fairskl.GroupBalancedClassifier`), put the lesions
    or patients under ``"split_groups"``, which the split reads first. A torch ``Dataset`` X
    (or image paths in a dict X) may carry them in a ``groups`` attribute instead; an
    explicit ``groups=`` argument wins. A missing
    group (NaN, None; the estimators pass groups on as :func:`encode_groups` codes, -1 for
    a missing one) is an error.

    The float and int ``cv`` assign groups greedily, largest first, each to the side whose
    share of the group's labels is furthest below its target, as
    :func:`train_val_test_split` does.

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.dataset import Dataset
    >>> from fairskl.model_selection import GroupedValidSplit
    >>> lesion = np.repeat(np.arange(10), 2)  # two images of each lesion
    >>> y = np.repeat([0, 1] * 5, 2)
    >>> X = {"X": np.zeros((20, 3), "float32"), "groups": lesion}
    >>> train, valid = GroupedValidSplit(0.2, random_state=0)(Dataset(X, y), y)
    >>> sorted(set(lesion[train.indices]) & set(lesion[valid.indices]))  # no lesion on both
    []
    >>> len(valid), y[valid.indices].mean()
    (4, np.float64(0.5))

    The same as the internal split of a classifier, for early stopping:

    >>> from fairskl import NIRClassifier
    >>> clf = NIRClassifier("mlp", max_epochs=2, train_split=GroupedValidSplit(0.2),
    ...                     verbose=0).fit(X, y)
    >>> "valid_loss" in clf.history[-1]
    True
    """

    def __init__(self, cv=0.2, stratified=True, random_state=None):
        self.cv = cv
        self.stratified = stratified
        self.random_state = random_state
        self._fraction()  # an invalid cv fails when constructed, as skorch's ValidSplit

    def __repr__(self):
        return (f"{type(self).__name__}(cv={self.cv!r}, stratified={self.stratified!r}, "
                f"random_state={self.random_state!r})")

    def _fraction(self):
        """The share to validate on, or None for a splitter."""
        cv = self.cv
        if isinstance(cv, numbers.Integral) and not isinstance(cv, bool) and cv >= 2:
            return 1 / cv
        if isinstance(cv, numbers.Real) and not isinstance(cv, (bool, numbers.Integral)) \
                and 0 < cv < 1:
            return float(cv)
        if hasattr(cv, "split") and not isinstance(cv, (str, bytes)):
            return None
        raise ValueError(
            f"cv must be a float in (0, 1) (the share to validate on), an int >= 2 (one fold "
            f"of that many) or a group splitter such as StratifiedGroupKFold, got {cv!r}."
        )

    def __call__(self, dataset, y=None, groups=None):
        """The training and validation sets: two :class:`torch.utils.data.Subset` of dataset."""
        n = len(dataset)
        groups = _dataset_groups(dataset) if groups is None else groups
        groups = groups.numpy() if isinstance(groups, torch.Tensor) else np.asarray(groups)
        coded_missing = np.issubdtype(groups.dtype, np.integer) and (groups < 0).any()
        groups = groups.astype(object).reshape(-1)
        if len(groups) != n:
            raise ValueError(f"groups has {len(groups)} values for {n} samples; give one group "
                             f"per sample.")
        if coded_missing or pd.isna(pd.Series(groups)).any():
            raise ValueError("groups has missing values; give every sample a group id.")
        if y is not None:
            y = y.numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
            check_consistent_length(groups, y)
        if self.stratified and y is None:
            raise ValueError(
                "GroupedValidSplit(stratified=True) stratifies by the labels y, but got none "
                "(PerceptualVAE has no labels); pass stratified=False."
            )
        fraction = self._fraction()
        if fraction is None:
            idx_train, idx_valid = next(iter(self.cv.split(np.zeros((n, 1)), y, groups)))
        else:
            group_codes = _codes(groups, "groups")
            strata = _codes(y, "y") if self.stratified else np.zeros(n, dtype=np.int64)
            n_groups = group_codes.max() + 1
            if n_groups < 2:
                raise ValueError(f"Cannot split {n_groups} group into a training and a "
                                 f"validation set; pass more groups.")
            counts = np.zeros((n_groups, strata.max() + 1), dtype=np.int64)
            np.add.at(counts, (group_codes, strata), 1)
            side = _assign(counts, np.array([1 - fraction, fraction]),
                           check_random_state(self.random_state))[group_codes]
            idx_train, idx_valid = np.flatnonzero(side == 0), np.flatnonzero(side == 1)
        subset = torch.utils.data.Subset
        return subset(dataset, idx_train), subset(dataset, idx_valid)


def stratified_holdout(cells, holdout_size, random_state, owner, what):
    """The rows to train on and the rows held out (sorted positions), stratified by ``cells``:
    scikit-learn's ``StratifiedShuffleSplit`` with the errors worded for ``owner`` (the
    estimator's name) and ``what`` (what a cell is, e.g. "(group, label) cell")."""
    from sklearn.model_selection import StratifiedShuffleSplit

    names, counts = np.unique(np.asarray(cells), return_counts=True)
    if counts.min() < 2:
        raise ValueError(
            f"{owner} holds out rows stratified by {what}, but "
            f"{sorted(names[counts < 2].tolist(), key=str)} have a single row each; every "
            f"{what} needs at least 2 (one on each side).")
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=holdout_size,
                                      random_state=random_state)
    try:
        train, holdout = next(splitter.split(np.zeros((len(cells), 1)), cells))
    except ValueError as error:
        raise ValueError(f"{owner} could not hold out holdout_size={holdout_size} of the "
                         f"{len(cells)} rows stratified by {what}: {error}") from error
    return np.sort(train), np.sort(holdout)


def encode_groups(groups):
    """Integer codes of per-sample groups, as they travel with the rows of a training set.

    skorch batches the values of a dict X; a batch of strings would be a list, which skorch
    takes for nested data. The codes number the groups in order of appearance; a missing
    group (NaN, None) is -1.

    Examples
    --------
    >>> from fairskl.model_selection._split import encode_groups
    >>> encode_groups(["HAM_0002", "HAM_0001", "HAM_0002", None])
    array([ 0,  1,  0, -1])
    """
    return pd.factorize(np.asarray(groups, dtype=object).reshape(-1))[0].astype(np.int64)


def _dataset_groups(dataset):
    """The per-sample groups a training set carries: ``X["groups"]`` of a skorch Dataset of a
    dict X, or a ``groups`` attribute."""
    X = getattr(dataset, "X", None)
    for key in ("split_groups", "groups"):
        if isinstance(X, Mapping) and X.get(key) is not None:
            return X[key]
    if getattr(dataset, "groups", None) is not None:
        return dataset.groups
    raise ValueError(
        "GroupedValidSplit needs the group (lesion, patient) of each sample, but the training "
        "data carry none. Pass X as a dict {'X': images, 'groups': lesion_id} (or "
        "skorch.helper.SliceDict(X=images, groups=lesion_id)) to fit; a torch Dataset X can "
        "carry them in a 'groups' attribute."
    )
