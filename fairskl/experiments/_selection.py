"""The selection engine shared by :func:`lambda_study` and :func:`compare_methods`.

Every (method, candidate, CV seed, fold) is one fit of a clone on the fold's training rows and
one ``predict_proba`` on its test rows, handed as one flat list to
:class:`sklearn.utils.parallel.Parallel`. The out-of-fold probabilities are kept: the fold
metrics are computed from them afterwards, at any operating point, and they are the
training-part data on which the audit's thresholds are fitted. The rule
(:class:`~fairskl.metrics.TradeoffRefit`) then reads each candidate's gap at the operating point
of the audit's primary comparison: by default *matched*, each candidate's threshold flagging as
many rows of the fold as the reference configuration flags at 0.5 (a label-free choice made on
training-part rows).
"""

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.parallel import Parallel, delayed
from tqdm.auto import tqdm

from fairskl._constraints import VERBOSE
from fairskl._parallel import limit_torch_threads
from fairskl.exceptions import FairnessWarning
from fairskl.experiments._heldout import GAPS
from fairskl.metrics import (
    TradeoffRefit,
    auc_difference,
    equity_scaled_auc,
    fpr_difference,
    operating_threshold,
    tpr_difference,
)

__all__ = ["MATCHED", "check_sensitive_features", "fit_candidates", "fold_metrics", "make_folds",
           "matched_thresholds", "score_folds", "select"]

MATCHED = "matched"

#: the declared rules (validate_params) of the arguments lambda_study and compare_methods share
SELECTION_RULES = {
    "X": "no_validation",  # arrays, DataFrames, SliceDicts, image paths: checked by the callers
    "y": ["array-like"],
    "sensitive_features": "no_validation",  # check_sensitive_features, against X and y
    "cv": [Interval(numbers.Integral, 2, None, closed="left")],
    "groups": ["array-like", None],
    "disparity": [StrOptions(set(GAPS))],
    "max_disparity": [Interval(numbers.Real, 0, None, closed="left")],
    "operating_point": "no_validation",  # "matched" or a number: check_audit_point
    "max_auc_drop": [Interval(numbers.Real, 0, None, closed="left")],
    "n_jobs": [numbers.Integral, None],
    "verbose": VERBOSE,
}


def check_audit_point(operating_point):
    """``"matched"`` or a fixed threshold (a float) for a selection and its audit."""
    if operating_point == MATCHED:
        return MATCHED
    if isinstance(operating_point, int | float) and not isinstance(operating_point, bool) \
            and np.isfinite(operating_point):
        return float(operating_point)
    raise ValueError(f"operating_point must be 'matched' (every model read at the reference's "
                     f"positive rate) or a fixed threshold such as 0.5, got "
                     f"{operating_point!r}.")


def label_strata(y, sensitive):
    """Each row's label × group stratum, ``"<label>|<group>"`` (one group per column of a
    DataFrame ``sensitive``, joined by ``|``), for stratified splits."""
    groups = pd.DataFrame(sensitive).astype(str).agg("|".join, axis=1)
    return pd.Series(np.asarray(y).astype(str)) + "|" + groups.to_numpy()


def make_folds(strata, groups, cv, seeds):
    """One cross-validation per seed: ``cv`` shuffled folds stratified by ``strata`` (and
    grouped by ``groups``), as lists of (train, test) positions by seed."""
    kfold = StratifiedGroupKFold if groups is not None else StratifiedKFold
    return {seed: list(kfold(cv, shuffle=True, random_state=seed).split(
        np.zeros(len(strata)), strata, groups)) for seed in seeds}


def fit_candidates(jobs, X, y, folds, *, n_jobs=None, verbose=1, desc="fits",
                   checkpoints=None):
    """Out-of-fold P(positive) of every job, fitting only those not checkpointed.

    Parameters
    ----------
    jobs : dict of key -> (estimator, params, seed)
        One entry per (method, candidate, CV seed); the clone gets ``params`` and, when it has
        one, ``random_state=seed``. ``key`` is a tuple whose last element is the CV seed.
    folds : dict of seed -> list of (train, test)
    checkpoints : Checkpoints, default=None
        Where each finished fold is saved (``cv_<key>_f<fold>``) and reloaded from.

    Returns
    -------
    dict of key -> ndarray of shape (n_samples,)
        Each row's probability from the fold that held it out.
    """
    tasks = [(key, k) for key in jobs for k in range(len(folds[key[-1]]))]
    names = {task: "cv_" + "_".join(map(str, task[0])) + f"_f{task[1]}" for task in tasks}
    saved = {} if checkpoints is None else {task: checkpoints.load(names[task]) for task in tasks}
    results = {task: proba for task, proba in saved.items() if proba is not None}
    todo = [task for task in tasks if task not in results]
    results.update(run_fits((
        delayed(_fit_predict)(*jobs[key], X, y, folds[key[-1]][k], (key, k), checkpoints,
                              names[key, k])
        for key, k in todo
    ), n_jobs, desc, verbose, len(tasks), done=len(results)))
    oof = {key: np.full(len(y), np.nan) for key in jobs}
    for (key, k), proba in results.items():
        oof[key][folds[key[-1]][k][1]] = proba  # the rows that fold k held out
    return oof


def run_fits(calls, n_jobs, desc, verbose, total, done=0):
    """The results of the delayed ``calls`` (one fit each), as each finishes, counted (with
    ``verbose``) on a progress bar of ``total`` fits, ``done`` of them already."""
    bar = tqdm(total=total, desc=desc, unit="fit", disable=not verbose or not total)
    bar.update(done)
    # batch_size=1: one fit per task (joblib's auto-batching would put several quick fits on
    # one worker, e.g. one Dask task, when the first ones finish fast)
    for result in Parallel(n_jobs=n_jobs, batch_size=1, return_as="generator_unordered")(calls):
        yield result
        bar.update()
    bar.close()


def _fit_predict(estimator, params, seed, X, y, fold, task, checkpoints, name):
    """One fold: fit a clone on the training rows, P(classes_[1]) on the test rows."""
    limit_torch_threads()
    train, test = fold
    model = fit_clone(estimator, params, seed, _safe_indexing(X, train), np.asarray(y)[train])
    proba = np.asarray(model.predict_proba(_safe_indexing(X, test)), dtype=float)[:, 1]
    if checkpoints is not None:
        checkpoints.save(name, proba)
    return task, proba


def fit_clone(estimator, params, seed, X, y):
    """A clone of ``estimator`` with ``params`` (and ``random_state=seed`` when it has one),
    fitted on ``X``, ``y``."""
    model = clone(estimator).set_params(**params)
    if "random_state" in model.get_params():
        model.set_params(random_state=seed)
    model.fit(X, y)
    return model


def rate_threshold(proba, reference_proba, at=0.5):
    """The threshold at which ``proba`` flags as many rows as ``reference_proba`` does at
    ``at``."""
    return operating_threshold(None, proba, ("rate", float(np.mean(reference_proba >= at))))


def fold_metrics(y01, proba, sensitive, reference_proba):
    """The selection's numbers of one fold, from held-out probabilities.

    ``auc``, ``equity_scaled_auc``, ``auc_difference`` (threshold-free), ``positive_rate`` and
    the TPR and FPR gaps at 0.5, and the gaps ``<gap>_matched`` at the threshold where
    ``proba`` flags as many of the fold's rows as ``reference_proba`` at 0.5.
    Gaps are positive numbers; an undefined one is NaN (with fairskl's FairnessWarning).
    """
    out = {"auc": roc_auc_score(y01, proba) if 0 < y01.sum() < len(y01) else np.nan,
           "equity_scaled_auc": equity_scaled_auc(y01, proba, sensitive_features=sensitive),
           "auc_difference": auc_difference(y01, proba, sensitive_features=sensitive),
           "positive_rate": float(np.mean(proba >= 0.5))}
    thresholds = {"": 0.5, "_matched": rate_threshold(proba, reference_proba)}
    for suffix, threshold in thresholds.items():
        y_hat = (proba >= threshold).astype(int)
        out["tpr_difference" + suffix] = tpr_difference(y01, y_hat, sensitive_features=sensitive)
        out["fpr_difference" + suffix] = fpr_difference(y01, y_hat, sensitive_features=sensitive)
    return out


def score_folds(y01, oof, key, reference_key, sensitive, folds):
    """:func:`fold_metrics` of every fold: (seed, fold, metric, value) rows from the
    out-of-fold probabilities ``oof[(*key, seed)]`` and the reference's
    ``oof[(*reference_key, seed)]``; a fold's undefined gaps are NaN, reported once by the
    selection."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FairnessWarning)
        return [(seed, k, metric, value) for seed, splits in folds.items()
                for k, (_, test) in enumerate(splits)
                for metric, value in fold_metrics(y01[test], oof[(*key, seed)][test],
                                                  _safe_indexing(sensitive, test),
                                                  oof[(*reference_key, seed)][test]).items()]


def matched_thresholds(oof, reference_oof, operating_point):
    """The audit's thresholds of one configuration, fitted on its out-of-fold predictions.

    ``{name: threshold}``: the named fixed threshold (when ``operating_point`` is a number,
    e.g. ``"0.5"``), and ``"matched"``, the threshold at which ``oof`` flags as many rows as
    ``reference_oof`` at 0.5 (both pooled over the CV seeds). A configuration compared with
    itself (``oof is reference_oof``) is matched at 0.5 exactly.
    """
    fixed = 0.5 if operating_point == MATCHED else operating_point
    matched = 0.5 if oof is reference_oof else rate_threshold(oof, reference_oof)
    return {f"{fixed:g}": fixed, MATCHED: matched}


def select(cv_results, candidates, disparity, max_disparity, *, operating_point=MATCHED,
           reference=None, min_score=None, max_auc_drop=0.01, caller="selection",
           name="candidate", by="candidate", values=None, note=""):
    """The candidate chosen by :class:`~fairskl.metrics.TradeoffRefit` on common-fold means.

    ``cv_results`` is tidy (``by``, ``seed``, ``fold``, ``metric``, ``value``) for one method;
    ``candidates`` the parameter dicts in the order of ``values``, the values of ``by`` (None:
    0, 1, ...); the gap is
    ``disparity`` at the operating point (``<disparity>_matched`` when matched). ``reference``
    is the index of the reference candidate (its AUC minus ``max_auc_drop`` is the floor), or
    None with ``min_score`` (an absolute floor, e.g. the reference method's AUC minus the drop),
    or both None (the best candidate's AUC minus the drop). Warnings name ``caller``.

    Returns
    -------
    index : int
    means : DataFrame
        Per candidate the mean ``auc`` and gap over the common folds.
    """
    gap = disparity + ("_matched" if operating_point == MATCHED else "")
    values = list(range(len(candidates))) if values is None else list(values)
    means = common_fold_means(cv_results, values, gap, by=by, caller=caller, name=name, note=note)
    if len(candidates) == 1:  # nothing to choose, nothing to warn about
        return 0, means
    rule = TradeoffRefit("auc", gap, max_disparity=max_disparity, max_drop=max_auc_drop,
                         min_score=min_score, reference=reference)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FairnessWarning)
        best = rule({"mean_test_auc": means["auc"].to_numpy(),
                     f"mean_test_{gap}": -means[gap].to_numpy(),
                     "params": candidates})
    for warning in caught:  # say which selection it is about
        warnings.warn(f"{caller}: {warning.message}", warning.category, stacklevel=2)
    return best, means


def common_fold_means(results, candidates, disparity, *, by="lambda_nir", caller="lambda_study",
                      name="λ", note="summary's n_undefined counts them per λ."):
    """Mean AUC and gap per candidate over the folds where every candidate has both defined.

    A gap is undefined (NaN) in a fold that lacks a group's positives (or negatives); comparing
    candidates on different folds would favour the one whose hard folds dropped out, so such a
    fold is left out for every candidate, with a :class:`~fairskl.FairnessWarning`.

    ``results`` is tidy (``by``, ``seed``, ``fold``, ``metric``, ``value``); ``candidates``
    are the values of ``by`` in the order of the returned rows; ``caller``, ``name`` and
    ``note`` word the messages (the defaults are the λ study's).
    """
    values = (results[results.metric.isin(["auc", disparity])]
              .pivot_table(index=["seed", "fold"], columns=["metric", by], values="value",
                           dropna=False))
    complete = values.notna().all(axis=1)
    if not complete.any():
        raise ValueError(f"{caller}: the {disparity} or the AUC is undefined in every fold "
                         f"for some {name} (a group without positives or negatives in every "
                         f"fold); use fewer folds or check sensitive_features.")
    if not complete.all():
        bad = sorted({c for (_, c), nan in values[~complete].isna().any().items() if nan})
        warnings.warn(
            f"{caller}: the {disparity} or the AUC is undefined (NaN) in "
            f"{int((~complete).sum())} of {len(complete)} folds for {name}={bad} (a group "
            f"without positives or negatives in the fold); {name} is chosen on the "
            f"{int(complete.sum())} folds where every {name} is defined. {note}",
            FairnessWarning, stacklevel=3)
    return values[complete].mean().unstack("metric")[["auc", disparity]].loc[candidates]


def check_sensitive_features(sensitive_features, n, name, y=None, X=None):
    """``sensitive_features`` as a DataFrame with string column names and a 0..n-1 index,
    checked: ``n`` rows, no missing value, no column "all", and, where it and y (or X) are
    pandas objects, the same index (rows are paired by position, so a differing index
    would pair them silently wrong)."""
    for other, values in (("y", y), ("X", X)):
        if isinstance(sensitive_features, pd.Series | pd.DataFrame) \
                and isinstance(values, pd.Series | pd.DataFrame) \
                and not sensitive_features.index.equals(values.index):
            raise ValueError(f"{name} and {other} are pandas objects with different indexes; "
                             f"rows are matched by position, so align them (e.g. "
                             f".reset_index(drop=True)).")
    A = pd.DataFrame(sensitive_features).reset_index(drop=True)
    A.columns = [str(c) for c in A.columns]
    if len(A) != n:
        raise ValueError(f"{name} has {len(A)} rows but X has {n}.")
    if "all" in A.columns:
        raise ValueError(f"{name} has a column named 'all', the attribute of the overall AUC "
                         f"in the tables; rename it.")
    if A.isna().any().any():
        raise ValueError(f"{name} has missing values in {list(A.columns[A.isna().any()])}; "
                         f"subset the rows or fill them with a group of their own.")
    return A
