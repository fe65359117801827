"""Comparing mitigations: one selection rule, seeds, held-out rows and bootstrap for all methods.

Each method's hyperparameters are chosen on folds of the training part only, by the same rule
(:class:`~fairskl.metrics.TradeoffRefit` on the cross-validated AUC and gap); the chosen
configuration is refitted once per seed on the whole training part and audited on held-out rows
that no selection step has seen, with the same bootstrap resamples for every method (paired), so
that the difference between two methods has an interval of its own.
"""

import numbers
import os

import joblib
import numpy as np
import pandas as pd
from sklearn.model_selection import ParameterGrid, train_test_split
from sklearn.utils import Bunch, _safe_indexing
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    RealNotInt,
    StrOptions,
    validate_params,
)
from sklearn.utils.parallel import delayed
from sklearn.utils.validation import _num_samples

from fairskl._constraints import N_BOOTSTRAP, RANDOM_STATE
from fairskl._parallel import limit_torch_threads
from fairskl.experiments._checkpoint import Checkpoints, checkpoint_seed, describe, hash_frame
from fairskl.experiments._heldout import (
    FREE,
    TABLE_COLUMNS,
    audit_model,
    combine_seeds,
    difference,
    resample_weights,
)
from fairskl.experiments._selection import (
    MATCHED,
    SELECTION_RULES,
    check_audit_point,
    check_sensitive_features,
    fit_candidates,
    fit_clone,
    label_strata,
    make_folds,
    matched_thresholds,
    rate_threshold,
    run_fits,
    score_folds,
    select,
)
from fairskl.model_selection import train_val_test_split

__all__ = ["compare_methods", "plot_method_comparison"]

SUMMARY_COLUMNS = ["scenario", "method", "comparison", *TABLE_COLUMNS]
CV_COLUMNS = ["method", "candidate", "params", "seed", "fold", "metric", "value"]
#: the markers of plot_method_comparison's methods, in turn
MARKERS = "osD^vPX*"
#: the two selections of every method: the rule on the group gap, and the best AUC alone
WITH_LABELS, WITHOUT_LABELS = "group labels", "no labels"


@validate_params(
    {
        **SELECTION_RULES,
        "estimators": [dict],
        "param_grids": [dict, None],
        "test_size": [Interval(RealNotInt, 0, 1, closed="neither"), None],
        "heldout": "no_validation",  # (X, y, sensitive) or a dict of them: _check_heldout
        "seeds": "no_validation",  # distinct ints: _check_seeds
        "select_on": [str, None],
        "cv_seeds": "no_validation",
        "n_bootstrap": N_BOOTSTRAP,
        "reference": [str, None],
        "checkpoint_dir": [str, os.PathLike, None],
        "random_state": RANDOM_STATE,
    },
    prefer_skip_nested_validation=False,  # the estimators' parameters are checked too
)
def compare_methods(
    estimators,
    X,
    y,
    *,
    sensitive_features,
    param_grids=None,
    cv=3,
    test_size=0.3,
    heldout=None,
    groups=None,
    seeds=(0,),
    select_on=None,
    disparity="tpr_difference",
    max_disparity=0.05,
    operating_point="matched",
    max_auc_drop=0.01,
    cv_seeds=None,
    n_bootstrap=200,
    reference=None,
    n_jobs=None,
    checkpoint_dir=None,
    random_state=0,
    verbose=1,
):
    """Compare classifiers (mitigations) under one selection rule on one held-out set.

    The protocol (see :ref:`compare`):

    1. **Held-out set.** ``heldout`` if given, else a split of ``X`` stratified by label ×
       ``select_on`` group (and keeping each of ``groups`` on one side); the same rows for
       every method, never used to select anything.
    2. **Selection**, on the training part only. The same folds for every method (one
       cross-validation per ``cv_seeds``), stratified by label × ``select_on`` group (grouped
       by ``groups``). Each (method, candidate, CV seed, fold) of ``param_grids`` is one fit on
       the fold's training rows and one ``predict_proba`` on its test rows; all fits of all
       methods are one flat list for :class:`sklearn.utils.parallel.Parallel`. The reference's
       candidate is chosen first (at the fixed threshold); then, per method, the candidate with
       the best mean AUC among those whose mean ``disparity`` of ``select_on`` — read at
       ``operating_point``, by default *matched*: at the threshold where the candidate flags as
       many rows of the fold as the reference flags at 0.5 — is at most ``max_disparity`` and
       whose mean AUC is at least the reference's minus ``max_auc_drop``, by
       :class:`~fairskl.metrics.TradeoffRefit`; when none qualifies, the best AUC, with a
       :class:`~fairskl.FairnessWarning` (a fold where some candidate's gap is undefined is
       left out for all, with a warning too). A second selection does without the group
       labels (as SubpopBench reports both): per method the candidate with the best mean AUC
       alone. Both go through the next steps; a configuration both choose is refitted once.
    3. **Operating points.** Each chosen configuration's thresholds are fitted on its
       out-of-fold predictions (training-part data): the fixed threshold (0.5, or
       ``operating_point`` when it is a number) and *matched*, where it flags as many
       out-of-fold rows as the reference (chosen by the same selection) does at 0.5.
    4. **Refit and audit.** Each method's chosen configuration is fitted on the whole training
       part once per seed, and scored on the held-out set at both operating points: per
       column of ``sensitive_features`` the TPR and FPR gaps, and overall and per group the
       positive rate, TPR and FPR; and threshold-free, the AUC overall and per group and the
       per-group AUC gap. Every model is scored on the same ``n_bootstrap`` resamples of the
       held-out rows; the interval of a seed-averaged value adds the test-sample and the seed
       variance (t quantile, Welch–Satterthwaite degrees of freedom), and so does the interval
       of a method's change against ``reference``, paired by seed and resample.
    5. **Threshold-only control.** The reference is also read, per method, at the threshold
       where it flags as many out-of-fold rows as that method does at the fixed threshold
       (operating point ``"rate of <method>"``); the method at the fixed threshold minus this
       control is what the method changed beyond flagging another number of cases.

    Parameters
    ----------
    estimators : dict of str -> classifier
        Unfitted binary classifiers with ``predict_proba``, by method name (the order of the
        tables). Estimators with a ``random_state`` parameter get ``random_state`` during
        selection and each seed at the refit (this overrides a ``random_state`` of the grid).
    X : array-like of shape (n_samples, ...) or skorch.helper.SliceDict
        Training (and, without ``heldout``, held-out) samples; rows are selected with
        :func:`sklearn.utils._safe_indexing`, so a ``SliceDict(X=images, groups=codes)`` works.
    y : array-like of shape (n_samples,)
        Binary labels.
    sensitive_features : array-like, Series or DataFrame of shape (n_samples,) or (n_samples, k)
        Audited attributes, one per column (column names as strings; an unnamed Series or array
        column is ``"0"``). The estimators never see them.
    param_grids : dict of str -> dict or list of dicts, default=None
        Grid per method name, as for :class:`~sklearn.model_selection.GridSearchCV`.
    cv : int, default=3
        Folds of the training part for selection.
    test_size : float or None, default=0.3
        Held-out fraction when ``heldout`` is None.
    heldout : tuple (X_test, y_test, sensitive_test) or dict of str -> tuple, default=None
        A given held-out set (e.g. the data set's official test split); all of ``X`` is then the
        training part. ``sensitive_test`` has the columns of ``sensitive_features``. A dict
        names several held-out sets (scenarios, e.g. ``{"default": ..., "shortcut": ...}``):
        one selection, and every refitted model audited on each.
    groups : array-like of shape (n_samples,), default=None
        Ids (patients, lesions) kept on one side of the held-out split and of every fold.
    seeds : sequence of int, default=(0,)
        Refit seeds (``random_state`` of estimators that have one).
    select_on : str, default=None
        Column of ``sensitive_features`` whose gap constrains selection; None is the first.
    disparity : {"tpr_difference", "fpr_difference"}, default="tpr_difference"
        Gap constrained by selection.
    max_disparity : float, default=0.05
        Largest acceptable mean cross-validated gap.
    operating_point : "matched" or float, default="matched"
        Where selection reads the gap: at the reference's positive rate, or at a fixed
        threshold of ``predict_proba``. The audit reads every gap at both.
    max_auc_drop : float, default=0.01
        A candidate whose mean cross-validated AUC is below the reference's minus this is never
        chosen (a model that flags nothing has no gap).
    cv_seeds : sequence of int, default=None
        One cross-validation of the training part per seed (its folds and the fits'
        ``random_state``), averaged by the selection; None is ``[random_state]``. Several seeds
        steady a method whose result depends on its initialisation (e.g. JTT's error set).
    n_bootstrap : int, default=200
        Bootstrap resamples of the held-out rows (shared by all models); 0 or >= 2. With 0 an
        interval has the seed spread alone.
    reference : str, default=None
        Method the others are compared with; None is the first of ``estimators``.
    n_jobs : int, default=None
        Fits run in parallel by :class:`sklearn.utils.parallel.Parallel` (any joblib backend).
    checkpoint_dir : str or path-like, default=None
        Folder where each finished fit (a selection fold's predictions, a refit's audit) is
        saved atomically; a rerun with the same arguments loads them and fits only the others.
        Other data, estimators, grids, folds, seeds or ``n_bootstrap`` raise an error rather
        than mix two comparisons; the selection rule and ``reference`` may change (a refit whose
        chosen parameters or thresholds changed is redone).
    random_state : int, RandomState instance or None, default=0
        Seed of the held-out split, the folds (without ``cv_seeds``) and the bootstrap; an int
        with ``checkpoint_dir`` (a rerun must draw the same rows).
    verbose : int, default=1
        0 is silent; 1 shows a progress bar over the fits.

    Returns
    -------
    result : sklearn.utils.Bunch
        Every table has a ``selection`` column first: ``"group labels"`` (the rule of step 2)
        or ``"no labels"`` (the best cross-validated AUC).
        ``results``: held-out point values per seed (``scenario``, ``method``, ``seed``,
        ``attribute``, ``group``, ``metric``, ``operating_point``, ``value``; ``attribute`` and
        ``group`` are ``"all"`` for overall values; ``scenario`` is ``"heldout"`` unless
        ``heldout`` is a dict). ``summary``: seed-averaged values with 95% intervals
        (``scenario``, ``method``, ``comparison``, ``attribute``, ``group``, ``metric``,
        ``operating_point``, ``value``, ``ci_low``, ``ci_high``, ``half_width``, ``df``,
        ``p_value``, ``seed_sd``, ``n_seeds``); ``comparison`` is ``"value"`` for a method's
        own value, ``"change vs <reference>"`` for its value minus the reference's (not for
        the reference itself) and ``"change vs <reference> at the same rate"`` for its value at
        the fixed threshold minus the reference's at ``"rate of <method>"`` (step 5);
        ``operating_point`` is ``"0.5"`` (the fixed threshold), ``"matched"``,
        ``"threshold-free"`` or, for the reference, ``"rate of <method>"``. ``selection``: per
        method the chosen ``candidate`` (its index in the grid), ``n_candidates``, ``params``
        (repr), ``params_dict`` and the chosen candidate's cross-validated ``cv_auc`` and
        ``cv_<disparity>`` (at the selection's operating point). ``thresholds``: per method and
        operating point the threshold fitted on the out-of-fold predictions. ``cv_results``:
        every selection fold's numbers (``method``, ``candidate``, ``params``, ``seed``,
        ``fold``, ``metric``, ``value``; gaps as positive numbers, ``<gap>_matched`` at the
        matched operating point). ``heldout_index``: positions in ``X`` of the held-out rows
        (None with ``heldout``).

    See Also
    --------
    plot_method_comparison : Held-out gap against AUC per method, with 2-D intervals.
    lambda_study : The λ sweep of one method.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from fairskl.experiments import compare_methods
    >>> rng = np.random.RandomState(0)
    >>> A = pd.Series(rng.choice(["a", "b"], 300), name="group")
    >>> X = rng.normal(size=(300, 3)) + (A == "b").to_numpy()[:, None]
    >>> y = (X[:, 0] + rng.normal(size=300) > 0.5).astype(int)
    >>> result = compare_methods(
    ...     {"logistic": LogisticRegression(), "tree": DecisionTreeClassifier()}, X, y,
    ...     sensitive_features=A, param_grids={"tree": {"max_depth": [1, 4]}}, cv=2,
    ...     max_disparity=1.0, max_auc_drop=0.1, n_bootstrap=20, verbose=0)
    >>> result.selection[["selection", "method", "params", "cv_auc"]].round(2)
          selection    method            params  cv_auc
    0  group labels  logistic                {}    0.83
    1  group labels      tree  {'max_depth': 1}    0.76
    2     no labels  logistic                {}    0.83
    3     no labels      tree  {'max_depth': 1}    0.76
    >>> auc = result.summary.query("metric == 'auc' and group == 'all' and "
    ...                            "selection == 'group labels'")
    >>> auc[["method", "comparison", "value", "ci_low", "ci_high"]].round(2)
          method          comparison  value  ci_low  ci_high
    0   logistic               value   0.85    0.80     0.90
    37      tree               value   0.68    0.62     0.75
    63      tree  change vs logistic  -0.17   -0.22    -0.11
    >>> result.thresholds.query("selection == 'group labels'").round(3)  # matched rates
          selection    method operating_point  threshold
    0  group labels  logistic             0.5      0.500
    1  group labels  logistic         matched      0.500
    2  group labels  logistic    rate of tree      0.408
    3  group labels      tree             0.5      0.500
    4  group labels      tree         matched      0.742
    """
    random_state = checkpoint_seed(random_state, checkpoint_dir)
    p = _check_arguments(estimators, param_grids, X, y, sensitive_features, groups,
                         reference, disparity, seeds, cv_seeds, random_state,
                         operating_point, select_on)
    data = _training_and_tests(X, p, heldout, test_size, n_bootstrap, random_state)
    folds = make_folds(label_strata(data.y, data.A[p.select_on]), data.groups, cv, p.cv_seeds)
    checkpoints = None
    if checkpoint_dir is not None:
        checkpoints = Checkpoints(checkpoint_dir, dict(
            estimators=[[name, describe(est)] for name, est in p.methods.items()],
            param_grids=[[name, repr((param_grids or {}).get(name))] for name in p.names],
            X=joblib.hash(X), y=joblib.hash(p.y), sensitive=hash_frame(p.A),
            groups=None if p.groups is None else joblib.hash(p.groups),
            heldout=None if heldout is None else [
                [k, joblib.hash(tX), joblib.hash(ty), hash_frame(tA)]
                for k, (tX, ty, tA) in data.tests.items()],
            test_size=None if heldout is not None else float(test_size), cv=int(cv),
            cv_seeds=p.cv_seeds, seeds=p.seeds, select_on=p.select_on,
            n_bootstrap=int(n_bootstrap), random_state=int(random_state),
        ))
    # selection: every (method, candidate, CV seed, fold) of the training part, one flat list
    jobs = {(m, c, seed): (p.methods[name], params, seed)
            for m, name in enumerate(p.names) for c, params in enumerate(p.candidates[name])
            for seed in p.cv_seeds}
    oof = fit_candidates(jobs, data.X, data.y, folds, n_jobs=n_jobs, verbose=verbose,
                         desc="compare methods: selection (fits)", checkpoints=checkpoints)
    chosen, cv_results = _select_all(oof, data, folds, p, max_disparity, max_auc_drop)
    picks, selection = _both_selections(chosen, p)
    thresholds = _operating_points(oof, picks, p)
    audits, stamps = _refit_all(p, picks, thresholds, data, checkpoints, n_jobs, verbose)
    results, summary = _assemble(audits, stamps, picks, data.tests, p)
    threshold_table = pd.DataFrame(
        [(mode, name, op, t) for (mode, name), named in thresholds.items()
         for op, t in named.items()],
        columns=["selection", "method", "operating_point", "threshold"])
    return Bunch(results=results, summary=summary, selection=selection, cv_results=cv_results,
                 thresholds=threshold_table, heldout_index=data.heldout_index)


def _check_arguments(estimators, param_grids, X, y, sensitive_features, groups, reference,
                     disparity, seeds, cv_seeds, random_state, operating_point, select_on):
    """The validated arguments of :func:`compare_methods`, as one Bunch."""
    methods, candidates = _check_methods(estimators, param_grids)
    names = list(methods)
    reference = names[0] if reference is None else reference
    if reference not in methods:
        raise ValueError(f"reference={reference!r} is not a method; choose one of {names} "
                         f"(None: the first).")
    seeds = _check_seeds(seeds, "seeds")
    operating_point = check_audit_point(operating_point)
    cv_seeds = _check_seeds([int(random_state)] if cv_seeds is None else cv_seeds, "cv_seeds",
                            " (one cross-validation each)")
    n = _n_rows(X, "X")
    A = check_sensitive_features(sensitive_features, n, "sensitive_features", y, X)
    y = _check_y(y, n)
    select_on = A.columns[0] if select_on is None else str(select_on)
    if select_on not in A.columns:
        raise ValueError(f"select_on={select_on!r} is not a column of sensitive_features; "
                         f"choose one of {list(A.columns)} (None: the first).")
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != n:
            raise ValueError(f"groups has {len(groups)} values but X has {n} rows.")
    return Bunch(methods=methods, candidates=candidates, names=names, reference=reference,
                 ref=names.index(reference), disparity=disparity, seeds=seeds,
                 cv_seeds=cv_seeds, operating_point=operating_point,
                 fixed=0.5 if operating_point == MATCHED else operating_point, y=y, A=A,
                 select_on=select_on, groups=groups, classes=np.unique(y))


def _check_seeds(seeds, name, note=""):
    seeds = list(seeds) if not isinstance(seeds, numbers.Integral) else [seeds]
    if not seeds or not all(isinstance(s, numbers.Integral) for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ValueError(f"{name} must be a non-empty sequence of distinct ints{note}, got "
                         f"{seeds!r}.")
    return [int(s) for s in seeds]


def _training_and_tests(X, p, heldout, test_size, n_bootstrap, random_state):
    """The training part (X, y, A, groups), the held-out sets by scenario name and their
    bootstrap ``weights`` (shared by every model)."""
    y, A, groups = p.y, p.A, p.groups
    if heldout is None:
        if test_size is None:
            raise ValueError("test_size=None needs heldout=(X_test, y_test, sensitive_test); "
                             "give a fraction in (0, 1) to split X instead.")
        train, test = _split(y, A[p.select_on], groups, test_size, random_state)
        data = Bunch(X=_safe_indexing(X, train), y=y[train],
                     A=A.iloc[train].reset_index(drop=True),
                     groups=None if groups is None else groups[train], heldout_index=test,
                     tests={"heldout": (_safe_indexing(X, test), y[test],
                                        A.iloc[test].reset_index(drop=True))})
    else:
        named = heldout if isinstance(heldout, dict) else {"heldout": heldout}
        if not named or not all(isinstance(k, str) for k in named):
            raise ValueError(f"heldout as a dict must map scenario names (str) to "
                             f"(X_test, y_test, sensitive_test), got keys {list(named)}.")
        tests = {k: _check_heldout(v, A.columns, p.classes, k) for k, v in named.items()}
        data = Bunch(X=X, y=y, A=A, groups=groups, heldout_index=None, tests=tests)
    for scenario, (_, y_te, _) in data.tests.items():
        if len(np.unique(y_te)) < 2:
            raise ValueError(f"The held-out set {scenario!r} has only the label "
                             f"{np.unique(y_te)}; it needs both to audit the AUC and the gaps. "
                             f"Raise test_size or check heldout.")
    data.weights = {k: resample_weights(len(t[1]), n_bootstrap, random_state)
                    for k, t in data.tests.items()}
    return data


def _select_all(oof, data, folds, p, max_disparity, max_auc_drop):
    """Every method's chosen candidate (with its common-fold means) by the rule on the group
    gap, and every selection fold's numbers: the reference first (its own rule at the fixed
    threshold), then every method matched to it."""
    y01 = (data.y == p.classes[1]).astype(int)
    sensitive = data.A[p.select_on].to_numpy()

    def choose(m, reference_c, operating_point, floor):
        """Method ``m``'s fold numbers, each candidate matched to the reference's candidate
        ``reference_c`` (None: to itself), and its pick by the rule."""
        name, rows = p.names[m], []
        for c, params in enumerate(p.candidates[name]):
            against = (p.ref, c if reference_c is None else reference_c)
            rows += [(name, c, repr(params), *row)
                     for row in score_folds(y01, oof, (m, c), against, sensitive, folds)]
        frame = pd.DataFrame(rows, columns=CV_COLUMNS)
        return frame, select(frame, p.candidates[name], p.disparity, max_disparity,
                             operating_point=operating_point, min_score=floor,
                             max_auc_drop=max_auc_drop, caller=f"compare_methods ({name!r})",
                             note="cv_results holds the undefined folds.")

    frames, chosen = {}, {}
    frames[p.reference], chosen[p.reference] = choose(p.ref, None, p.fixed, None)
    ref_best, ref_means = chosen[p.reference]
    floor = float(ref_means["auc"].iloc[ref_best]) - max_auc_drop
    for m, name in enumerate(p.names):
        if name != p.reference:
            frames[name], chosen[name] = choose(m, ref_best, p.operating_point, floor)
    cv_results = pd.concat([frames[name] for name in p.names], ignore_index=True)
    return chosen, cv_results.astype({"candidate": int, "seed": int, "fold": int, "value": float})


def _both_selections(chosen, p):
    """The picks of both selections (with the group labels: the rule; without: each method's
    best cross-validated AUC) and the ``selection`` table."""
    picks = {WITH_LABELS: {name: best for name, (best, _) in chosen.items()},
             WITHOUT_LABELS: {name: int(np.argmax(means["auc"].to_numpy()))
                              for name, (_, means) in chosen.items()}}
    selection = pd.DataFrame(
        [(mode, name, best, len(p.candidates[name]), repr(p.candidates[name][best]),
          p.candidates[name][best], float(chosen[name][1]["auc"].iloc[best]),
          float(chosen[name][1].iloc[best, 1]))  # the gap the rule read (the reference's at 0.5)
         for mode, picked in picks.items() for name in p.names
         for best in [picked[name]]],
        columns=["selection", "method", "candidate", "n_candidates", "params", "params_dict",
                 "cv_auc", f"cv_{p.disparity}"],
    )
    return picks, selection


def _operating_points(oof, picks, p):
    """The audit's thresholds, fitted on the chosen configurations' out-of-fold rows: each
    method matched to the reference chosen by the same selection, and the reference at each
    method's own rate (the threshold-only control)."""
    def pooled(m, c):
        return np.concatenate([oof[m, c, seed] for seed in p.cv_seeds])

    thresholds = {}
    for mode, picked in picks.items():
        ref_oof = pooled(p.ref, picked[p.reference])
        for m, name in enumerate(p.names):
            thresholds[mode, name] = matched_thresholds(
                ref_oof if m == p.ref else pooled(m, picked[name]), ref_oof, p.operating_point)
        thresholds[mode, p.reference].update({
            same_rate(name): rate_threshold(ref_oof, pooled(m, picked[name]), p.fixed)
            for m, name in enumerate(p.names) if m != p.ref})
    return thresholds


def _refit_all(p, picks, thresholds, data, checkpoints, n_jobs, verbose):
    """Each chosen configuration refitted once per seed (shared by the two selections when
    they agree) and audited on the held-out rows at every set of thresholds it is read at
    (the reference's differ between the selections when a method's pick does); audits by
    (method, stamp, seed)."""
    stamps = {(mode, m): repr((p.candidates[name][picks[mode][name]], thresholds[mode, name]))
              for mode in picks for m, name in enumerate(p.names)}
    # the distinct (method, configuration and thresholds) to audit, shared by both selections
    keys = {(m, stamps[mode, m]): (picks[mode][p.names[m]], thresholds[mode, p.names[m]])
            for mode, m in stamps}
    audits, todo = {}, {}
    for (m, stamp), (c, point) in keys.items():
        for seed in p.seeds:
            suffix = "" if stamp == stamps[WITH_LABELS, m] else f"_{joblib.hash(stamp)[:8]}"
            name = f"refit_m{m:02d}_s{seed}{suffix}"
            saved = None if checkpoints is None else checkpoints.load(name, stamp)
            if saved is not None:
                audits[m, stamp, seed] = saved
            else:  # one fit per (method, candidate, seed), audited at each of its thresholds
                todo.setdefault((m, c, seed), []).append((m, stamp, name, point))
    for done in run_fits((
        delayed(_refit_audit)(p.methods[p.names[m]], p.candidates[p.names[m]][c], seed, data.X,
                              data.y, data.tests, data.weights, points, checkpoints)
        for (m, c, seed), points in todo.items()
    ), n_jobs, "compare methods: refit and audit", verbose, len(todo)):
        audits.update(done)
    return audits, stamps


def _assemble(audits, stamps, picks, tests, p):
    """The per-seed ``results`` and the seed-averaged ``summary`` (values, changes vs the
    reference, changes vs the reference at the same rate)."""
    names, reference, seeds = p.names, p.reference, p.seeds
    others = [name for name in names if name != reference]
    rows, frames = [], []
    for mode in picks:
        for scenario in tests:
            per = {name: [audits[m, stamps[mode, m], s][scenario] for s in seeds]
                   for m, name in enumerate(names)}
            rows += [(mode, scenario, name, s, *key, float(audit[key][0]))
                     for name in names for s, audit in zip(seeds, per[name], strict=True)
                     for key in audit]
            tables = [("value", name, per[name]) for name in names]
            tables += [(f"change vs {reference}", name, difference(per[name], per[reference]))
                       for name in others]
            tables += [(f"change vs {reference} at the same rate", name,
                        _against_same_rate(per[name], per[reference], name, f"{p.fixed:g}"))
                       for name in others]
            frames += [combine_seeds(paired, change=comparison != "value").assign(
                selection=mode, scenario=scenario, method=name, comparison=comparison)
                for comparison, name, paired in tables]
    results = pd.DataFrame(rows, columns=["selection", "scenario", "method", "seed",
                                          "attribute", "group", "metric", "operating_point",
                                          "value"])
    summary = pd.concat(frames, ignore_index=True)[["selection", *SUMMARY_COLUMNS]]
    return results, summary


def same_rate(method):
    """The name of the reference's operating point at ``method``'s own flag rate."""
    return f"rate of {method}"


def _against_same_rate(audits, reference_audits, name, fixed):
    """Per seed, ``name`` at the fixed threshold minus the reference at ``name``'s rate: what
    ``name`` changed beyond flagging another number of rows (the threshold-only control)."""
    own = [{key: value for key, value in audit.items() if key[3] == fixed} for audit in audits]
    control = [{(*key[:3], fixed): value for key, value in audit.items()
                if key[3] == same_rate(name)} for audit in reference_audits]
    return difference(own, control)


def _refit_audit(estimator, params, seed, X_tr, y_tr, tests, weights, points, checkpoints):
    """One (method, candidate, seed): fit on the training part, audit on each held-out set at
    each of ``points`` (method, stamp, checkpoint name, thresholds); audits by (method, stamp,
    seed)."""
    limit_torch_threads()
    model = fit_clone(estimator, params, seed, X_tr, y_tr)
    probas = {scenario: np.asarray(model.predict_proba(X_te), dtype=float)[:, 1]
              for scenario, (X_te, _, _) in tests.items()}  # P(classes_[1])
    audits = {}
    for m, stamp, name, thresholds in points:
        audit = {scenario: audit_model((y_te == model.classes_[1]).astype(int), probas[scenario],
                                       None, A_te, weights[scenario], thresholds)
                 for scenario, (_, y_te, A_te) in tests.items()}
        if checkpoints is not None:
            checkpoints.save(name, audit, stamp=stamp)
        audits[m, stamp, seed] = audit
    return audits


def _check_methods(estimators, param_grids):
    """The estimators dict and, per method, its list of candidate parameter dicts."""
    if not estimators:  # a dict (declared): at least one method
        raise ValueError("estimators must be a non-empty dict of name -> unfitted classifier, "
                         "e.g. {'erm': LogisticRegression()}, got {}.")
    for name, est in estimators.items():
        if not isinstance(name, str):
            raise TypeError(f"estimators' keys must be method names (str), got {name!r}.")
        if not all(hasattr(est, method) for method in ("fit", "get_params", "predict_proba")):
            raise TypeError(f"estimators[{name!r}] must be a scikit-learn classifier with "
                            f"predict_proba, got {type(est).__name__}.")
    param_grids = {} if param_grids is None else param_grids
    unknown = sorted(set(param_grids) - set(estimators))
    if unknown:
        raise ValueError(f"param_grids has grids for {unknown}, which are not in estimators "
                         f"({list(estimators)}); use the same names.")
    candidates = {}
    for name, est in estimators.items():
        grid = param_grids.get(name)
        candidates[name] = [{}] if grid is None else list(ParameterGrid(grid))
        valid = set(est.get_params())
        for params in candidates[name]:
            bad = sorted(set(params) - valid)
            if bad:
                raise ValueError(f"param_grids[{name!r}] sets {bad}, which "
                                 f"{type(est).__name__} does not have; its parameters are "
                                 f"{sorted(valid)}.")
        if not candidates[name]:
            raise ValueError(f"param_grids[{name!r}] has no candidate; give at least one value "
                             f"per parameter, or no grid.")
    return estimators, candidates


def _n_rows(X, name):
    try:
        return _num_samples(X)
    except TypeError:
        raise TypeError(f"{name} must be array-like with rows (an array, a DataFrame, a skorch "
                        f"SliceDict), got {type(X).__name__}.") from None


def _check_y(y, n, name="y", of="X", classes=None):
    """Labels: one per row of ``of`` (``n``); binary, or else within ``classes``."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{name} must have one label per row of {of} ({n}), got shape "
                         f"{y.shape}.")
    labels = np.unique(y)
    if classes is None and len(labels) != 2:
        raise ValueError(f"y must be binary (two labels), got {len(labels)}: "
                         f"{labels[:10].tolist()}. Binarise it, e.g. y = (y == positive).")
    unknown = [] if classes is None else sorted(set(labels.tolist()) - set(classes.tolist()))
    if unknown:
        raise ValueError(f"{name} has labels {unknown} that are not in y "
                         f"({classes.tolist()}).")
    return y


def _check_heldout(heldout, columns, classes, scenario):
    name = "heldout" if scenario == "heldout" else f"heldout[{scenario!r}]"
    if not isinstance(heldout, tuple | list) or len(heldout) != 3:
        raise ValueError(f"{name} must be a tuple (X_test, y_test, sensitive_test), got "
                         f"{type(heldout).__name__}.")
    X_te, y_te, A_te = heldout
    n = _n_rows(X_te, f"{name}'s X_test")
    A_te = check_sensitive_features(A_te, n, f"{name}'s sensitive_test", y_te, X_te)
    y_te = _check_y(y_te, n, f"{name}'s y_test", "X_test", classes)
    if list(A_te.columns) != list(columns):
        raise ValueError(f"{name}'s sensitive_test has columns {list(A_te.columns)}, "
                         f"sensitive_features has {list(columns)}; they must be the same.")
    return X_te, y_te, A_te


def _split(y, sensitive, groups, test_size, random_state):
    """Sorted training and held-out positions, stratified by label × group."""
    index = np.arange(len(y))
    if groups is None:
        train, test = train_test_split(index, test_size=test_size, random_state=random_state,
                                       stratify=label_strata(y, sensitive))
    else:
        train, _, test = train_val_test_split(
            index, groups=groups, stratify=pd.DataFrame({"y": y, "a": np.asarray(sensitive)}),
            val_size=0, test_size=test_size, random_state=random_state)
    return np.sort(train), np.sort(test)


@validate_params(
    {
        "summary": [pd.DataFrame],
        "attribute": [str, None],
        "scenario": [str, None],
        "disparity": [str],
        "performance": [str],
        "operating_point": [str],
        "selection": [StrOptions({WITH_LABELS, WITHOUT_LABELS})],
        "ax": [HasMethods(["errorbar"]), None],
    },
    prefer_skip_nested_validation=True,
)
def plot_method_comparison(summary, *, attribute=None, scenario=None,
                           disparity="tpr_difference", performance="auc",
                           operating_point="matched", selection=WITH_LABELS, ax=None):
    """Held-out gap against performance per method, with 95% intervals on both axes.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``compare_methods(...).summary`` (its ``comparison == "value"`` rows are drawn).
    attribute : str, default=None
        Attribute of the gap; None is the first one of ``summary`` (other than ``"all"``).
    scenario : str, default=None
        Held-out set to draw (``summary``'s ``scenario`` column); None is the first.
    disparity : str, default="tpr_difference"
        Gap on the x axis.
    performance : str, default="auc"
        Metric on the y axis (overall, attribute ``"all"``, when it has one).
    operating_point : str, default="matched"
        Operating point of the gap (``summary``'s ``operating_point`` column: ``"matched"``,
        ``"0.5"``, ...); metrics without a threshold are drawn whatever it is. Ignored when
        ``summary`` has no such column.
    selection : {"group labels", "no labels"}, default="group labels"
        Which selection's models to draw (``summary``'s ``selection`` column); ignored when
        ``summary`` has no such column.
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes
        One :meth:`~matplotlib.axes.Axes.errorbar` per method (``ax.containers``), in the
        order of ``summary``, each annotated with the method's name when there are at most 6
        (else ``ax.legend()`` names them).

    Examples
    --------
    >>> import pandas as pd
    >>> from fairskl.experiments import plot_method_comparison
    >>> summary = pd.DataFrame(dict(
    ...     method=["erm", "erm", "jtt", "jtt"], comparison="value",
    ...     attribute=["all", "sex"] * 2, metric=["auc", "tpr_difference"] * 2,
    ...     value=[0.90, 0.12, 0.88, 0.05], ci_low=[0.88, 0.08, 0.86, 0.02],
    ...     ci_high=[0.92, 0.16, 0.90, 0.08]))
    >>> ax = plot_method_comparison(summary)
    >>> ax.get_xlabel()
    'held-out tpr_difference (sex), 95% CI'
    """
    import matplotlib.pyplot as plt

    missing = sorted({"method", "comparison", "attribute", "metric", "value", "ci_low",
                      "ci_high"} - set(summary.columns))
    if missing:
        raise ValueError(f"summary lacks the columns {missing}; pass compare_methods(...)"
                         f".summary.")
    values = _only(summary[summary.comparison == "value"], "selection", selection)
    if "group" in values.columns:
        values = values[values.group == "all"]
    values = _only(values, "operating_point", operating_point, also=[FREE])
    values = _only(values, "scenario", scenario)
    attribute = _choice(values, "attribute", attribute, also=["all"])
    methods = list(pd.unique(values.method))
    x = _metric_rows(values, methods, attribute, disparity, "disparity")
    y_attribute = "all" if ((values.attribute == "all") & (values.metric == performance)).any() \
        else attribute
    y = _metric_rows(values, methods, y_attribute, performance, "performance")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.5), layout="constrained")
    # one colour and marker per method, so that overlapping bars stay apart; past 6 methods the
    # names would overlap too: the legend (ax.legend()) names them instead
    colours = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20").colors
    for i, method in enumerate(methods):
        colour = colours[i % len(colours)]
        ax.errorbar(x[0, i], y[0, i], xerr=[[x[0, i] - x[1, i]], [x[2, i] - x[0, i]]],
                    yerr=[[y[0, i] - y[1, i]], [y[2, i] - y[0, i]]], fmt=MARKERS[i % 8],
                    capsize=3, color=colour, label=method)
        if len(methods) <= 6:
            ax.annotate(method, (x[0, i], y[0, i]), textcoords="offset points",
                        xytext=(6, 6), fontsize=9, color=colour)
    at = f", {operating_point}" if "operating_point" in summary.columns else ""
    ax.set_xlabel(f"held-out {disparity} ({attribute}{at}), 95% CI")
    ax.set_ylabel(f"held-out {performance}"
                  + ("" if y_attribute == "all" else f" ({y_attribute})") + ", 95% CI")
    ax.margins(0.15)
    return ax


def _choice(values, column, value, also=()):
    """``value``, which must be in ``values[column]`` (other than ``also``); None is the first
    one there."""
    present = [v for v in pd.unique(values[column]) if v not in also]
    value = present[0] if value is None and present else value
    if value not in present:
        raise ValueError(f"{column}={value!r} is not in summary; choose one of {present}.")
    return value


def _only(values, column, value, also=()):
    """The rows of ``values`` whose ``column`` is ``value`` (None: the first one, see
    :func:`_choice`) or one of ``also``; all rows when ``values`` has no such column."""
    if column not in values.columns:
        return values
    return values[values[column].isin([_choice(values, column, value, also), *also])]


def _metric_rows(values, methods, attribute, metric, axis):
    """Per method (columns) the value, ci_low and ci_high (rows) of ``metric``."""
    rows = values[(values.attribute == attribute) & (values.metric == metric)]
    if rows.empty:
        raise ValueError(f"summary has no {axis} metric {metric!r} for {attribute!r}; it has "
                         f"{sorted(values.metric.unique())}.")
    rows = rows.set_index("method")[["value", "ci_low", "ci_high"]].reindex(methods)
    return rows.to_numpy(float).T
