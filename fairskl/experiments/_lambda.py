"""The λ study: cross-validated fairness and performance of NIRClassifier along a λ grid."""

import numbers
import warnings

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_validate
from sklearn.utils import Bunch
from sklearn.utils.parallel import Parallel, delayed
from tqdm.auto import tqdm

from fairskl._parallel import limit_torch_threads
from fairskl.exceptions import FairnessWarning
from fairskl.metrics import TradeoffRefit, make_fairness_scorer

__all__ = ["lambda_study", "plot_lambda_tradeoff"]

#: metric -> (scorer, is a disparity reported as a positive gap)
METRICS = {
    "auc": ("roc_auc", False),
    "tpr_difference": ("tpr_difference", True),
    "fpr_difference": ("fpr_difference", True),
    "equity_scaled_auc": ("equity_scaled_auc", False),
}


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
    refit=True,
    n_jobs=None,
    verbose=1,
):
    """Cross-validate an NIR classifier along a grid of λ with fairness scorers.

    For each seed, the folds are stratified by label × sensitive group (and grouped by
    ``groups``, e.g. patient or lesion ids, so that no group is on both sides). Every
    (seed, λ, fold) is fitted with :func:`~sklearn.model_selection.cross_validate` and scored on
    the AUC, the TPR and FPR gaps and the equity-scaled AUC, with ``sensitive_features`` routed
    to the scorers (the classifier never sees them); this is what a
    :class:`~sklearn.model_selection.GridSearchCV` over ``lambda_nir`` computes, as one flat
    list of fits that :class:`sklearn.utils.parallel.Parallel` can spread over workers. The λ
    with the best mean AUC among those whose mean ``disparity`` is at most ``max_disparity`` is
    chosen with :class:`~fairskl.metrics.TradeoffRefit`. See :ref:`nir` for choosing λ.

    Parameters
    ----------
    estimator : NIRClassifier
        Unfitted; its ``lambda_nir`` is set by the study, and its ``random_state`` to each seed.
    X : array-like of shape (n_samples, ...)
        Images (or tabular rows for ``backbone="mlp"``).
    y : array-like of shape (n_samples,)
        Binary labels.
    sensitive_features : array-like, Series or DataFrame of shape (n_samples,) or (n_samples, k)
        Groups for the scorers (several columns: intersections).
    lambdas : sequence of float, default=(0.0, 0.01, 0.1, 1.0)
        The grid; include 0 for the plain classifier.
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
    refit : bool, default=True
        Refit the λ=0 model (when in the grid) and the chosen one on all of ``X``, e.g. for
        :class:`~fairskl.inspection.NeuronIncidenceDisplay` before and after.
    n_jobs : int, default=None
        Fits run in parallel by :class:`sklearn.utils.parallel.Parallel` (any joblib backend).
    verbose : int, default=1
        0 is silent; 1 shows a progress bar over the fits.

    Returns
    -------
    result : sklearn.utils.Bunch
        ``results``: tidy DataFrame (``lambda_nir``, ``seed``, ``fold``, ``metric``, ``value``;
        gaps as positive numbers); ``summary``: per λ and metric the ``mean``, ``std`` and
        count ``n`` over the folds × seeds where it is defined, and ``n_undefined``, the NaN
        folds (λ is chosen on the folds where every λ is defined, with a
        :class:`~fairskl.FairnessWarning` when some are not); ``best_lambda``;
        ``estimators``: dict λ -> fitted estimator (with ``refit``); ``folds``: dict
        seed -> list of (train, test) indices.

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
    ...     max_disparity=1.0, verbose=0)
    >>> study.summary.shape, sorted(study.summary.metric.unique())
    ((8, 6), ['auc', 'equity_scaled_auc', 'fpr_difference', 'tpr_difference'])
    """
    if "lambda_nir" not in estimator.get_params():
        raise TypeError(f"lambda_study needs an estimator with a lambda_nir parameter "
                        f"(NIRClassifier), got {type(estimator).__name__}.")
    lambdas, seeds = [float(lam) for lam in lambdas], list(seeds)
    if not lambdas or any(not lam >= 0 for lam in lambdas):
        raise ValueError(f"lambdas must be a non-empty list of numbers >= 0, got {lambdas!r}.")
    if disparity not in ("tpr_difference", "fpr_difference"):
        raise ValueError(f"disparity must be 'tpr_difference' or 'fpr_difference', got "
                         f"{disparity!r}.")
    if not isinstance(cv, numbers.Integral) or cv < 2:
        raise ValueError(f"cv must be an int >= 2 (folds per seed), got {cv!r}.")
    y = np.asarray(y)
    A = pd.DataFrame(sensitive_features).reset_index(drop=True)
    if len(A) != len(y):
        raise ValueError(f"sensitive_features has {len(A)} rows but y has {len(y)}.")
    strata = pd.Series(y.astype(str)) + "|" + A.astype(str).agg("|".join, axis=1)
    sensitive = A.iloc[:, 0] if A.shape[1] == 1 else A

    all_folds = {}
    for seed in seeds:
        splitter = (StratifiedGroupKFold(cv, shuffle=True, random_state=seed)
                    if groups is not None
                    else StratifiedKFold(cv, shuffle=True, random_state=seed))
        all_folds[seed] = list(splitter.split(np.zeros(len(y)), strata, groups))
    jobs = [(seed, lam, k) for seed in seeds for lam in lambdas for k in range(cv)]
    rows = []
    with sklearn.config_context(enable_metadata_routing=True):
        scoring = {name: make_fairness_scorer(s) if s != "roc_auc" else s
                   for name, (s, _) in METRICS.items()}
        bar = tqdm(total=len(jobs), desc="lambda study (seed x lambda x fold)", unit="fit",
                   disable=not verbose)
        for (seed, lam, k), scores in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_fit_fold)(estimator, X, y, sensitive, all_folds[seed][k],
                               {"lambda_nir": lam}, seed, scoring, (seed, lam, k))
            for seed, lam, k in jobs
        ):
            rows += [(lam, seed, k, name, -scores[f"test_{name}"][0] if is_gap
                      else scores[f"test_{name}"][0]) for name, (_, is_gap) in METRICS.items()]
            bar.update()
        bar.close()
    rows.sort(key=lambda row: (lambdas.index(row[0]), seeds.index(row[1]), row[2],
                               list(METRICS).index(row[3])))
    results = pd.DataFrame(rows, columns=["lambda_nir", "seed", "fold", "metric", "value"])
    summary = (results.groupby(["lambda_nir", "metric"])["value"]
               .agg(mean="mean", std="std", n="count").reset_index())
    summary["n_undefined"] = len(seeds) * cv - summary["n"]
    means = _common_fold_means(results, lambdas, disparity)
    pick = TradeoffRefit("auc", disparity, max_disparity=max_disparity)
    best = lambdas[pick({"mean_test_auc": means["auc"].to_numpy(),
                         f"mean_test_{disparity}": -means[disparity].to_numpy()})]
    estimators = {}
    if refit:
        for lam in sorted({0.0, best} & set(lambdas)):
            model = clone(estimator).set_params(lambda_nir=lam)
            if "random_state" in model.get_params():
                model.set_params(random_state=seeds[0])
            estimators[lam] = model.fit(X, y)
    return Bunch(results=results, summary=summary, best_lambda=best, estimators=estimators,
                 folds=all_folds)


def _common_fold_means(results, candidates, disparity, *, by="lambda_nir", folds=("seed", "fold"),
                       caller="lambda_study", name="λ",
                       note="summary's n_undefined counts them per λ."):
    """Mean AUC and gap per candidate over the folds where every candidate has both defined.

    A gap is undefined (NaN) in a fold that lacks a group's positives (or negatives); comparing
    candidates on different folds would favour the one whose hard folds dropped out, so such a
    fold is left out for every candidate, with a :class:`~fairskl.FairnessWarning`.

    ``results`` is tidy (``by``, ``*folds``, ``metric``, ``value``); ``candidates`` are the
    values of ``by`` in the order of the returned rows; ``caller``, ``name`` and ``note`` word
    the messages (the defaults are the λ study's).
    """
    values = (results[results.metric.isin(["auc", disparity])]
              .pivot_table(index=list(folds), columns=["metric", by], values="value",
                           dropna=False))
    complete = values.notna().all(axis=1)
    if not complete.any():
        raise ValueError(f"{caller}: the {disparity} or the AUC is undefined in every fold "
                         f"for some {name} (a group without positives or negatives in every "
                         f"fold); use fewer folds or check sensitive_features.")
    if not complete.all():
        undefined = values[~complete]
        bad = sorted({c for (_, c), nan in undefined.isna().any().items() if nan})
        warnings.warn(
            f"{caller}: the {disparity} or the AUC is undefined (NaN) in "
            f"{int((~complete).sum())} of {len(complete)} folds for {name}={bad} (a group "
            f"without positives or negatives in the fold); {name} is chosen on the "
            f"{int(complete.sum())} folds where every {name} is defined. {note}",
            FairnessWarning, stacklevel=3)
    means = values[complete].mean()
    return pd.DataFrame({metric: means[metric] for metric in ("auc", disparity)}).loc[candidates]


def _fit_fold(estimator, X, y, sensitive, fold, params, seed, scoring, key):
    """Fit one fold of a clone with ``params`` (and ``random_state=seed`` when it has one) and
    score it; routing carries ``sensitive`` to the scorers only."""
    limit_torch_threads()
    model = clone(estimator).set_params(**params)
    if "random_state" in model.get_params():
        model.set_params(random_state=seed)
    scores = cross_validate(model, X, y, cv=[fold], scoring=scoring, error_score="raise",
                            params={"sensitive_features": sensitive})
    return key, scores


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
