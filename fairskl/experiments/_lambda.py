"""The λ study: cross-validated fairness and performance of NIRClassifier along a λ grid."""

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import Bunch
from sklearn.utils._param_validation import HasMethods, Interval, validate_params

from fairskl.experiments._selection import (
    SELECTION_RULES,
    check_audit_point,
    check_sensitive_features,
    fit_candidates,
    fit_clone,
    label_strata,
    make_folds,
    score_folds,
    select,
)

__all__ = ["lambda_study", "plot_lambda_tradeoff"]


@validate_params(
    {
        **SELECTION_RULES,
        "estimator": [HasMethods(["fit", "predict_proba", "get_params"])],
        "lambdas": ["array-like"],
        "seeds": ["array-like"],
        "refit": ["boolean"],
    },
    prefer_skip_nested_validation=False,  # the estimator's parameters are checked too
)
def lambda_study(
    estimator,
    X,
    y,
    *,
    sensitive_features,
    lambdas=(0.0, 0.01, 0.1, 1.0),
    cv=3,
    groups=None,
    seeds=(0,),
    disparity="tpr_difference",
    max_disparity=0.05,
    operating_point="matched",
    max_auc_drop=0.01,
    refit=True,
    n_jobs=None,
    verbose=1,
):
    """Cross-validate an NIR classifier along a grid of λ with fairness metrics.

    For each seed, the folds are stratified by label × sensitive group (and grouped by
    ``groups``, e.g. patient or lesion ids, so that no group is on both sides). Every
    (seed, λ, fold) is one fit on the fold's training rows and one ``predict_proba`` on its
    test rows, as one flat list that :class:`sklearn.utils.parallel.Parallel` can spread over
    workers; the classifier never sees ``sensitive_features``. From the out-of-fold
    probabilities each fold is scored on the AUC, the equity-scaled AUC, the per-group AUC gap,
    the positive rate and the TPR and FPR gaps at 0.5 and at the *matched* operating point (the
    threshold where the λ flags as many of the fold's rows as λ=0 does at 0.5: a model cannot
    lower its gaps there by flagging fewer cases). The λ is chosen by
    :class:`~fairskl.metrics.TradeoffRefit`: the best mean AUC among the λ whose mean
    ``disparity`` (at ``operating_point``) is at most ``max_disparity`` and whose mean AUC is
    at least λ=0's minus ``max_auc_drop``; when none qualifies, λ=0, with a
    :class:`~fairskl.FairnessWarning`. See :ref:`nir` for choosing λ.

    Parameters
    ----------
    estimator : NIRClassifier
        Unfitted; its ``lambda_nir`` is set by the study, and its ``random_state`` to each seed.
    X : array-like of shape (n_samples, ...)
        Images (or tabular rows for ``backbone="mlp"``).
    y : array-like of shape (n_samples,)
        Binary labels.
    sensitive_features : array-like, Series or DataFrame of shape (n_samples,) or (n_samples, k)
        Groups for the gaps (several columns: intersections).
    lambdas : sequence of float, default=(0.0, 0.01, 0.1, 1.0)
        The grid; it must include 0, the reference of the floor and of the matched operating
        point.
    cv : int, default=3
        Folds per seed.
    groups : array-like of shape (n_samples,), default=None
        Ids that must not be split across folds (patients, lesions).
    seeds : sequence of int, default=(0,)
        One cross-validation per seed: the folds and the network's ``random_state``.
    disparity : {"tpr_difference", "fpr_difference"}, default="tpr_difference"
        Gap constrained when choosing λ.
    max_disparity : float, default=0.05
        Largest acceptable mean gap.
    operating_point : "matched" or float, default="matched"
        Where the selection reads ``disparity``: at λ=0's positive rate (``"matched"``) or at a
        fixed threshold of ``predict_proba`` (e.g. 0.5, where a λ that flags fewer cases can
        lower its FPR gaps without being fairer).
    max_auc_drop : float, default=0.01
        Largest acceptable loss of mean AUC against λ=0: a λ below that floor is never chosen.
    refit : bool, default=True
        Refit the λ=0 model and the chosen one on all of ``X``, e.g. for
        :class:`~fairskl.inspection.NeuronIncidenceDisplay` before and after.
    n_jobs : int, default=None
        Fits run in parallel by :class:`sklearn.utils.parallel.Parallel` (any joblib backend).
    verbose : int, default=1
        0 is silent; 1 shows a progress bar over the fits.

    Returns
    -------
    result : sklearn.utils.Bunch
        ``results``: tidy DataFrame (``lambda_nir``, ``seed``, ``fold``, ``metric``, ``value``;
        gaps as positive numbers; ``<gap>_matched`` at the matched operating point);
        ``summary``: per λ and metric the ``mean``, ``std`` and count ``n`` over the folds ×
        seeds where it is defined, and ``n_undefined``, the NaN folds (λ is chosen on the folds
        where every λ is defined, with a :class:`~fairskl.FairnessWarning` when some are not);
        ``best_lambda``; ``best_lambda_without_labels``, the λ of the best mean AUC alone
        (the choice of a user without the group labels, on the same folds); ``oof``: dict
        (λ, seed) -> out-of-fold P(positive) of every row (the training-part data on which an
        audit fits its thresholds); ``estimators``: dict
        λ -> fitted estimator (with ``refit``); ``folds``: dict seed -> list of (train, test)
        indices.

    See Also
    --------
    plot_lambda_tradeoff : The gap against the AUC for each λ, with the chosen λ marked.

    Examples
    --------
    >>> from fairskl import NIRClassifier
    >>> from fairskl.datasets import make_skin_lesions
    >>> from fairskl.experiments import lambda_study
    >>> data = make_skin_lesions(240, 16, bias=2.0, random_state=0)
    >>> study = lambda_study(
    ...     NIRClassifier("small_cnn", max_epochs=2, verbose=0), data.images, data.target,
    ...     sensitive_features=data.sensitive["age_group"], lambdas=[0, 1], cv=2, refit=False,
    ...     max_disparity=1.0, max_auc_drop=1.0, verbose=0)
    >>> sorted(study.summary.metric.unique())[:4]
    ['auc', 'auc_difference', 'equity_scaled_auc', 'fpr_difference']
    >>> len(study.oof[1.0, 0]) == len(data.target)  # (λ, seed)
    True
    """
    if "lambda_nir" not in estimator.get_params():
        raise TypeError(f"lambda_study needs an estimator with a lambda_nir parameter "
                        f"(NIRClassifier), got {type(estimator).__name__}.")
    lambdas, seeds = [float(lam) for lam in lambdas], list(seeds)
    if not lambdas or any(not lam >= 0 for lam in lambdas):
        raise ValueError(f"lambdas must be a non-empty list of numbers >= 0, got {lambdas!r}.")
    if 0.0 not in lambdas:
        raise ValueError(f"lambdas must include 0, the plain classifier: the reference of the "
                         f"AUC floor and of the matched operating point; got {lambdas!r}.")
    operating_point = check_audit_point(operating_point)
    A = check_sensitive_features(sensitive_features, len(y), "sensitive_features", y, X)
    y = np.asarray(y)
    sensitive = A.iloc[:, 0].to_numpy() if A.shape[1] == 1 else A

    all_folds = make_folds(label_strata(y, A), groups, cv, seeds)
    jobs = {(lam, seed): (estimator, {"lambda_nir": lam}, seed)
            for seed in seeds for lam in lambdas}
    oof = fit_candidates(jobs, X, y, all_folds, n_jobs=n_jobs, verbose=verbose,
                         desc="lambda study (seed x lambda x fold)")
    y01 = (y == np.unique(y)[-1]).astype(int)
    rows = [(lam, *row) for lam in lambdas
            for row in score_folds(y01, oof, (lam,), (0.0,), sensitive, all_folds)]
    results = pd.DataFrame(rows, columns=["lambda_nir", "seed", "fold", "metric", "value"])
    summary = (results.groupby(["lambda_nir", "metric"])["value"]
               .agg(mean="mean", std="std", n="count").reset_index())
    summary["n_undefined"] = len(seeds) * cv - summary["n"]
    best, means = select(results, [{"lambda_nir": lam} for lam in lambdas], disparity,
                     max_disparity, operating_point=operating_point,
                     reference=lambdas.index(0.0), max_auc_drop=max_auc_drop,
                     caller="lambda_study", name="λ", by="lambda_nir", values=lambdas,
                     note="summary's n_undefined counts them per λ.")
    best = lambdas[best]
    # without the group labels: the best mean AUC on the same common folds
    best_without_labels = lambdas[int(np.argmax(means["auc"].to_numpy()))]
    estimators = {lam: fit_clone(estimator, {"lambda_nir": lam}, seeds[0], X, y)
                  for lam in sorted({0.0, best})} if refit else {}
    return Bunch(results=results, summary=summary, best_lambda=best,
                 best_lambda_without_labels=best_without_labels, oof=oof,
                 estimators=estimators, folds=all_folds)


@validate_params(
    {
        "summary": [pd.DataFrame],
        "disparity": [str],
        "performance": [str],
        "best_lambda": [Interval(numbers.Real, 0, None, closed="left"), None],
        "ax": [HasMethods(["errorbar"]), None],
    },
    prefer_skip_nested_validation=True,
)
def plot_lambda_tradeoff(summary, *, disparity="tpr_difference", performance="auc",
                         best_lambda=None, ax=None):
    """Mean gap against mean AUC for each λ, with ±1 sd bars and the chosen λ marked.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``lambda_study(...).summary``.
    disparity, performance : str
        Metrics on the x and y axes.
    best_lambda : float, default=None
        λ to mark with a star (``lambda_study(...).best_lambda``).
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from fairskl.experiments import plot_lambda_tradeoff
    >>> summary = pd.DataFrame(dict(
    ...     lambda_nir=[0, 0, 1, 1], metric=["auc", "tpr_difference"] * 2,
    ...     mean=[0.9, 0.2, 0.88, 0.05], std=[0.01, 0.05, 0.02, 0.03], n=3))
    >>> ax = plot_lambda_tradeoff(summary, best_lambda=1)
    >>> ax.get_xlabel()
    'tpr_difference (mean ± sd)'
    """
    import matplotlib.pyplot as plt

    table = summary.pivot(index="lambda_nir", columns="metric", values=["mean", "std"])
    for metric in (disparity, performance):
        if metric not in table["mean"].columns:
            raise ValueError(f"summary has no metric {metric!r}; it has "
                             f"{sorted(table['mean'].columns)}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4), layout="constrained")
    x, y = table["mean"][disparity], table["mean"][performance]
    ax.errorbar(x, y, xerr=table["std"][disparity], yerr=table["std"][performance], fmt="o",
                capsize=3)
    for lam in table.index:
        ax.annotate(f"λ={lam:g}", (x[lam], y[lam]), textcoords="offset points", xytext=(5, 5),
                    fontsize=8)
    if best_lambda is not None:
        ax.plot(x[best_lambda], y[best_lambda], "*", ms=16, color="tab:red",
                label=f"chosen λ={best_lambda:g}")
        ax.legend(fontsize=8)
    ax.set_xlabel(f"{disparity} (mean ± sd)")
    ax.set_ylabel(f"{performance} (mean ± sd)")
    return ax
