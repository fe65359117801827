"""Fairness scorers for cross_validate / GridSearchCV, and a refit rule that trades them off."""

import functools
import math
import numbers
import warnings

import numpy as np
import sklearn
from fairlearn.metrics import MetricFrame
from sklearn.metrics import make_scorer
from sklearn.metrics._scorer import _Scorer

from fairskl.exceptions import FairnessWarning
from fairskl.metrics import _group_metrics as gm
from fairskl.metrics._operating import check_operating_point, operating_threshold
from fairskl.metrics._validation import absent_categories, check_group_inputs

__all__ = ["TradeoffRefit", "make_fairness_scorer", "make_reconstruction_scorer"]

_SCORES = ("decision_function", "predict_proba")

#: name -> (metric, greater_is_better, response_method)
SCORER_METRICS = {
    "tpr_difference": (gm.tpr_difference, False, "predict"),
    "fpr_difference": (gm.fpr_difference, False, "predict"),
    "equalized_odds_difference": (gm.equalized_odds_difference, False, "predict"),
    "demographic_parity_difference": (gm.demographic_parity_difference, False, "predict"),
    "auc_difference": (gm.auc_difference, False, _SCORES),
    "worst_group_auc": (gm.worst_group_auc, True, _SCORES),
    "equity_scaled_auc": (gm.equity_scaled_auc, True, _SCORES),
    "ece_difference": (gm.ece_difference, False, "predict_proba"),
}


def make_fairness_scorer(metric, *, greater_is_better=None, response_method=None,
                         operating_point=None, **kwargs):
    """Make a scorer that receives ``sensitive_features`` through metadata routing.

    The scorer requests ``sensitive_features`` (``set_score_request(sensitive_features=True)``),
    so ``GridSearchCV.fit(X, y, sensitive_features=A)`` or ``cross_validate(...,
    params={"sensitive_features": A})`` hand each test fold's groups to it. Disparities are
    negated (``greater_is_better=False``), as scikit-learn does for losses, so that higher is
    always better for the search: ``cv_results_["mean_test_tpr_difference"]`` holds ``-gap``.

    Parameters
    ----------
    metric : str or callable
        A name among ``"tpr_difference"``, ``"fpr_difference"``,
        ``"equalized_odds_difference"``, ``"demographic_parity_difference"``,
        ``"auc_difference"``, ``"worst_group_auc"``, ``"equity_scaled_auc"``,
        ``"ece_difference"`` (from ``predict_proba``); or any
        ``metric(y_true, y_pred, *, sensitive_features, **kwargs)``, e.g. one of fairlearn's
        metrics or a derived metric from :func:`fairlearn.metrics.make_derived_metric`.
    greater_is_better : bool, default=None
        For a named metric, its own direction; for a callable, False (a disparity) unless given.
    response_method : str or tuple of str, default=None
        For a named metric, ``"predict"`` or the scores; for a callable, ``"predict"``.
    operating_point : float or tuple, default=None
        For a metric of hard predictions (the TPR, FPR, equalized-odds and demographic-parity
        differences, or a callable of ``y_pred``): read it at this operating point of
        ``predict_proba`` instead of ``predict``. A number is a fixed threshold;
        ``("rate", r)`` flags the fraction ``r`` of each scored fold with the highest scores
        (a label-free choice, so a model cannot lower its gaps by flagging fewer cases);
        ``("tpr", t)`` / ``("fpr", f)`` are set with the fold's own labels, which makes the
        score a "gap at a sensitivity of t" read on the fold, not a threshold one could
        deploy. See :func:`operating_threshold`. None uses ``predict``.
    **kwargs
        Passed to the metric on every call (e.g. ``pos_label``, ``expected_groups``,
        ``agg="mean"`` for ``"equalized_odds_difference"``, ``n_bins`` for
        ``"ece_difference"``).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, sensitive_features=...)``.

    Raises
    ------
    RuntimeError
        When scikit-learn's metadata routing is disabled: the scorer could not receive
        ``sensitive_features`` in a search.

    See Also
    --------
    TradeoffRefit : Choose the best candidate of a search under a disparity bound.

    Examples
    --------
    >>> import numpy as np, sklearn
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_validate
    >>> from fairskl.metrics import make_fairness_scorer
    >>> rng = np.random.RandomState(0)
    >>> X, A = rng.normal(size=(200, 3)), rng.randint(0, 2, 200)
    >>> y = (X[:, 0] + 0.5 * A + rng.normal(size=200) > 0).astype(int)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     scoring = {"auc": "roc_auc", "tpr_gap": make_fairness_scorer("tpr_difference")}
    ...     cv = cross_validate(LogisticRegression(), X, y, scoring=scoring,
    ...                         params={"sensitive_features": A})
    >>> bool((cv["test_tpr_gap"] <= 0).all())
    True
    """
    if not sklearn.get_config()["enable_metadata_routing"]:
        raise RuntimeError(
            "make_fairness_scorer needs scikit-learn's metadata routing to pass "
            "sensitive_features to the scorer inside cross_validate and GridSearchCV. Call "
            "sklearn.set_config(enable_metadata_routing=True) first (or build the scorer inside "
            "sklearn.config_context(enable_metadata_routing=True))."
        )
    if isinstance(metric, str):
        if metric not in SCORER_METRICS:
            raise ValueError(
                f"Unknown fairness metric {metric!r}; choose among {list(SCORER_METRICS)}, or "
                f"pass a callable metric(y_true, y_pred, *, sensitive_features)."
            )
        function, default_greater, default_response = SCORER_METRICS[metric]
    elif callable(metric):
        function, default_greater, default_response = _named(metric), False, "predict"
    else:
        raise TypeError(f"metric must be a name or a callable, got {type(metric).__name__}.")
    if operating_point is not None:
        if default_response != "predict":
            raise ValueError(f"operating_point applies to metrics of hard predictions; "
                             f"{metric!r} reads scores and needs no threshold.")
        function, default_response = _at_operating_point(function, operating_point), (
            "predict_proba", "decision_function")
    scorer = make_scorer(
        function,
        greater_is_better=default_greater if greater_is_better is None else greater_is_better,
        response_method=default_response if response_method is None else response_method,
        **kwargs,
    )
    return scorer.set_score_request(sensitive_features=True)


def _at_operating_point(function, operating_point):
    """``function(y_true, y_pred, ...)`` as a metric of scores, thresholded at the point."""
    point = check_operating_point(operating_point)

    def at_point(y_true, y_score, **kwargs):
        threshold = operating_threshold(y_true, y_score, point)
        return function(y_true, (np.asarray(y_score) >= threshold).astype(int), **kwargs)

    at_point.__name__ = at_point.__qualname__ = function.__name__
    return at_point


def _group_errors(errors, sensitive_features, expected_groups):
    """MetricFrame of the mean per-sample error of each group, and the checked groups."""
    errors = np.asarray(errors, dtype=float).ravel()
    frame = check_group_inputs(
        errors, errors, sensitive_features, y_pred_name="errors", expected_groups=expected_groups
    )
    mf = MetricFrame(
        metrics={"mse": gm._mean_error}, y_true=errors, y_pred=errors, sensitive_features=frame
    )
    return mf, frame


def reconstruction_mse_difference(y_true, scores, *, sensitive_features, expected_groups=None):
    """Largest gap in mean reconstruction MSE between two groups, from ``score_samples``
    (negative per-sample MSE); ``y_true`` is ignored (None for an unsupervised model)."""
    mf, frame = _group_errors(-np.asarray(scores, float), sensitive_features, expected_groups)
    reason = gm.undefined_reason(mf, frame, ["mse"])
    if reason:
        return gm._warn_nan("reconstruction_mse_difference", reason)
    return float(mf.difference(method="between_groups")["mse"])


def worst_group_mse(y_true, scores, *, sensitive_features, expected_groups=None):
    """Largest mean reconstruction MSE of a group, from ``score_samples`` (negative
    per-sample MSE); ``y_true`` is ignored. NaN with a :class:`~fairskl.FairnessWarning` when
    an expected group has no sample (the worst group may be the missing one), as the
    disparities."""
    mf, frame = _group_errors(-np.asarray(scores, float), sensitive_features, expected_groups)
    absent = absent_categories(frame)
    if absent:
        return gm._warn_nan(
            "worst_group_mse",
            f"group(s) {absent} of the categorical sensitive features have no sample here",
        )
    return float(mf.group_max()["mse"])


def reconstruction_mse_ratio(y_true, scores, *, sensitive_features, expected_groups=None):
    """Largest over smallest mean reconstruction MSE of the groups (>= 1), from
    ``score_samples``; ``y_true`` is ignored."""
    mf, frame = _group_errors(-np.asarray(scores, float), sensitive_features, expected_groups)
    reason = gm.undefined_reason(mf, frame, ["mse"])
    if reason:
        return gm._warn_nan("reconstruction_mse_ratio", reason)
    by_group = mf.by_group["mse"]
    return float(by_group.max() / by_group.min())


#: name -> (metric of (y_true, -per-sample MSE), greater_is_better)
RECONSTRUCTION_METRICS = {
    "mse_difference": (reconstruction_mse_difference, False),
    "worst_group_mse": (worst_group_mse, False),
    "mse_ratio": (reconstruction_mse_ratio, False),
}


def make_reconstruction_scorer(metric="mse_difference", **kwargs):
    """Make a scorer of per-group reconstruction error, with ``sensitive_features`` routed.

    For autoencoders such as :class:`~fairskl.PerceptualVAE`, which have no ``y``: the scorer
    calls the estimator's ``score_samples`` (the negative reconstruction MSE of each sample),
    groups the errors by ``sensitive_features`` with fairlearn's
    :class:`~fairlearn.metrics.MetricFrame`, and returns the negated metric, so that higher
    is better for ``cross_validate`` and ``GridSearchCV``. It is a scikit-learn scorer
    (``make_scorer(..., response_method="score_samples")``) that requests
    ``sensitive_features``: with metadata routing enabled, ``cross_validate(vae, X,
    params={"sensitive_features": A})`` or ``GridSearchCV(...).fit(X, sensitive_features=A)``
    hand each test fold's groups to it. A group's error is the mean of its samples' errors, as
    in :func:`mse_by_group`.

    Parameters
    ----------
    metric : {"mse_difference", "worst_group_mse", "mse_ratio"}, default="mse_difference"
        The largest gap between the groups' mean MSEs (as :func:`mse_difference`), the largest
        group MSE, or the largest over the smallest group MSE.
    **kwargs
        Passed to the metric on every call (``expected_groups``).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None, sensitive_features=...)``; e.g. ``-gap``.

    Raises
    ------
    RuntimeError
        When scikit-learn's metadata routing is disabled.

    See Also
    --------
    mse_by_group, mse_difference : The same errors from images and reconstructions.

    Examples
    --------
    >>> import numpy as np, sklearn
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.model_selection import cross_validate
    >>> from fairskl.metrics import make_reconstruction_scorer
    >>> class PCAWithErrors(PCA):  # any estimator with score_samples = -per-sample error
    ...     def score_samples(self, X):
    ...         return -((self.inverse_transform(self.transform(X)) - X) ** 2).mean(axis=1)
    >>> rng = np.random.RandomState(0)
    >>> A = np.tile([0, 1], 50)
    >>> X = rng.normal(size=(100, 5)) * np.where(A[:, None] == 1, 3.0, 1.0)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     cv = cross_validate(PCAWithErrors(2), X, cv=2,
    ...                         scoring={"gap": make_reconstruction_scorer("mse_difference")},
    ...                         params={"sensitive_features": A})
    >>> bool((cv["test_gap"] < 0).all())  # -gap: group 1 is reconstructed worse
    True
    """
    if not sklearn.get_config()["enable_metadata_routing"]:
        raise RuntimeError(
            "make_reconstruction_scorer needs scikit-learn's metadata routing to pass "
            "sensitive_features to the scorer inside cross_validate and GridSearchCV. Call "
            "sklearn.set_config(enable_metadata_routing=True) first (or build the scorer inside "
            "sklearn.config_context(enable_metadata_routing=True))."
        )
    if metric not in RECONSTRUCTION_METRICS:
        raise ValueError(
            f"Unknown reconstruction metric {metric!r}; choose among "
            f"{list(RECONSTRUCTION_METRICS)}."
        )
    function, greater_is_better = RECONSTRUCTION_METRICS[metric]
    scorer = _UnsupervisedScorer(
        function, 1 if greater_is_better else -1, kwargs, response_method="score_samples"
    )
    return scorer.set_score_request(sensitive_features=True)


class _UnsupervisedScorer(_Scorer):
    """scikit-learn's scorer (``make_scorer``), with ``y`` optional: ``cross_validate`` and
    ``GridSearchCV`` call a scorer without ``y`` when fitted without one. Everything else —
    metadata requests, response caching, repr — is scikit-learn's."""

    def __call__(self, estimator, X, y_true=None, **kwargs):
        return super().__call__(estimator, X, y_true, **kwargs)

    def _score(self, method_caller, estimator, X, y_true=None, **kwargs):
        return super()._score(method_caller, estimator, X, y_true, **kwargs)


def _named(metric):
    """``metric`` with a ``__name__``: fairlearn's derived metrics lack one, and scikit-learn's
    scorer repr (used by dicts of scorers and cv_results_) needs it."""
    if hasattr(metric, "__name__"):
        return metric

    @functools.wraps(metric, assigned=("__doc__",))
    def named_metric(y_true, y_pred, **kwargs):
        return metric(y_true, y_pred, **kwargs)

    named_metric.__name__ = named_metric.__qualname__ = getattr(
        metric, "_metric_fn", type(metric)
    ).__name__
    return named_metric


class TradeoffRefit:
    """Refit rule for ``GridSearchCV``: best performance among candidates fair enough and useful.

    A candidate *qualifies* when its mean disparity ``-mean_test_<disparity>`` is at most
    ``max_disparity`` **and** its mean ``performance`` score is at least a *floor*; among the
    qualifying candidates the one with the highest mean ``performance`` is refitted (ties: the
    lowest index). The floor is what keeps a collapsed model out: a classifier that predicts
    the same class for everyone has a gap of 0 in every group metric, and an AUC of 0.5.

    The floor is ``min_score`` when it is given (absolute), otherwise the mean ``performance``
    of a *reference* candidate minus ``max_drop``. The reference is the candidate with the best
    mean ``performance`` by default, so the default floor is "best minus 0.01"; it can also be
    a candidate named by index or by its parameters, e.g. ``reference={"lambda_nir": 0.0}``
    for the unregularised model of a λ sweep.

    When no candidate qualifies, the reference candidate is refitted (the best one when
    ``reference=None``) and a :class:`~fairskl.FairnessWarning` names the floor, the bound and
    what to relax. No other candidate below the floor is ever chosen (with an absolute
    ``min_score`` above every candidate, the reference itself may be below it; the warning
    says so).

    When ``cv_results`` has ``"params"`` and the candidates form a 1-D numeric grid (one
    parameter varies, over at least 3 real values) and the chosen candidate holds the largest
    value, a :class:`~fairskl.FairnessWarning` says that the choice is at the edge of the grid:
    a better trade-off may lie beyond it, so widen the grid.

    Parameters
    ----------
    performance : str, default="auc"
        Key of the performance scorer in the ``scoring`` dict (higher is better).
    disparity : str, default="tpr_difference"
        Key of a disparity scorer made by :func:`make_fairness_scorer` (it holds ``-gap``).
    max_disparity : float, default=0.05
        Largest acceptable mean disparity (e.g. a TPR gap of 5 points).
    max_drop : float, default=0.01
        Largest acceptable drop of the mean ``performance`` below the reference candidate's
        (the floor is ``performance[reference] - max_drop``). Ignored when ``min_score`` is
        given. ``float("inf")`` removes the floor.
    min_score : float, default=None
        An absolute floor on the mean ``performance`` (e.g. ``0.75`` for an AUC), used instead
        of ``max_drop``.
    reference : int or dict, default=None
        The candidate the floor is measured from, and the one refitted when none qualifies:
        ``None`` for the candidate with the best mean ``performance``; an index into
        ``cv_results["params"]``; or a dict of parameters that exactly one candidate's
        ``cv_results["params"][i]`` contains, e.g. ``{"lambda_nir": 0.0}``.

    Attributes
    ----------
    floor_ : float
        The floor on the mean ``performance`` of the last call.
    reference_index_ : int
        The index of the reference candidate of the last call.
    fallback_ : bool
        True when no candidate qualified in the last call, so that the reference was chosen.

    See Also
    --------
    make_fairness_scorer : The routed disparity scorers that ``disparity`` names.

    Notes
    -----
    Used as ``GridSearchCV(refit=TradeoffRefit(...))``, it is called once with
    ``cv_results_``; the search then sets ``best_index_``, ``best_params_`` and
    ``best_estimator_`` but not ``best_score_``.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from fairskl.metrics import TradeoffRefit
    >>> cv_results = {"mean_test_auc": np.array([0.90, 0.88, 0.80]),
    ...               "mean_test_tpr_difference": np.array([-0.12, -0.04, -0.01])}

    Candidate 1 is fair enough and within 0.05 of the best AUC:

    >>> TradeoffRefit("auc", "tpr_difference", max_disparity=0.05, max_drop=0.05)(cv_results)
    1

    With the default ``max_drop=0.01`` the floor is 0.89: no candidate qualifies, so the best
    one is refitted, with a warning.

    >>> refit = TradeoffRefit("auc", "tpr_difference", max_disparity=0.05)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     chosen = refit(cv_results)
    >>> chosen, refit.fallback_, round(refit.floor_, 2), caught[0].category.__name__
    (0, True, 0.89, 'FairnessWarning')

    A λ sweep where the strongest penalty collapsed to a constant predictor (AUC 0.5, gap 0)
    is never refitted at λ = 1, however tight the bound; the floor is measured from λ = 0:

    >>> sweep = {"mean_test_auc": np.array([0.91, 0.90, 0.50]),
    ...          "mean_test_tpr_difference": np.array([-0.10, -0.03, 0.0]),
    ...          "params": [{"lambda_nir": 0.0}, {"lambda_nir": 0.1}, {"lambda_nir": 1.0}]}
    >>> refit = TradeoffRefit(max_disparity=0.05, reference={"lambda_nir": 0.0})
    >>> refit(sweep), refit.reference_index_, round(refit.floor_, 2)
    (1, 0, 0.9)
    >>> refit = TradeoffRefit(max_disparity=0.01, reference={"lambda_nir": 0.0})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     chosen = refit(sweep)
    >>> chosen, refit.fallback_
    (0, True)
    """

    def __init__(
        self,
        performance="auc",
        disparity="tpr_difference",
        max_disparity=0.05,
        *,
        max_drop=0.01,
        min_score=None,
        reference=None,
    ):
        self.performance = performance
        self.disparity = disparity
        self.max_disparity = max_disparity
        self.max_drop = max_drop
        self.min_score = min_score
        self.reference = reference

    def __call__(self, cv_results):
        self._check_parameters()
        performance = self._column(cv_results, self.performance)
        scores = self._column(cv_results, self.disparity)
        if (scores > 0).any():
            raise ValueError(
                f"mean_test_{self.disparity} has positive values, so it is not a negated "
                f"disparity. Use a scorer from make_fairness_scorer for a lower-is-better "
                f"disparity (e.g. 'tpr_difference'), not one where higher is better."
            )
        gap = -scores
        if np.isnan(gap).all():
            raise ValueError(
                f"Every candidate has a NaN {self.disparity}. See the warnings raised while "
                f"scoring: a FairnessWarning (a group missing from a fold, or without "
                f"positives), or scikit-learn's 'Scoring failed' (an error in the scorer, e.g. "
                f"misaligned indexes; use error_score='raise' to see it as an error)."
            )
        reference = self._reference_index(cv_results, performance)
        floor = self._floor(performance, reference)
        with np.errstate(invalid="ignore"):
            useful = performance >= floor  # False where NaN
            ok = (gap <= self.max_disparity) & useful
        self.floor_, self.reference_index_, self.fallback_ = floor, reference, not ok.any()
        if ok.any():
            chosen = int(np.flatnonzero(ok)[np.argmax(performance[ok])])
        else:
            chosen = reference
            self._warn_fallback(performance, gap, useful, floor, reference)
        edge = _edge_of_grid(cv_results.get("params"), chosen)
        if edge is not None:
            name, values = edge
            warnings.warn(
                f"TradeoffRefit chose candidate {chosen}, which holds the largest {name} of the "
                f"grid ({name}={values[-1]!r}, of {values}): the choice is at the edge of the "
                f"grid, and a better trade-off may lie beyond it. Widen the grid to larger "
                f"{name} to check.",
                FairnessWarning,
                stacklevel=2,
            )
        return chosen

    def _check_parameters(self):
        if not isinstance(self.max_disparity, numbers.Real) or not self.max_disparity >= 0:
            raise ValueError(
                f"max_disparity must be a number >= 0, got {self.max_disparity!r}."
            )
        if not _is_real(self.max_drop) or not self.max_drop >= 0:
            raise ValueError(
                f"max_drop must be a real number >= 0 (the largest acceptable drop of the mean "
                f"{self.performance} below the reference candidate's), got {self.max_drop!r}. "
                f"Pass e.g. max_drop=0.01, or min_score=<number> for an absolute floor."
            )
        if self.min_score is not None and not (
            _is_real(self.min_score) and math.isfinite(self.min_score)
        ):
            raise ValueError(
                f"min_score must be None or a finite real number (an absolute floor on the "
                f"mean {self.performance}), got {self.min_score!r}. Pass e.g. min_score=0.75, "
                f"or min_score=None to measure the floor from the reference candidate."
            )
        reference = self.reference
        if reference is not None and not isinstance(reference, dict) and not (
            isinstance(reference, numbers.Integral) and not isinstance(reference, bool)
        ):
            raise ValueError(
                f"reference must be None (the candidate with the best mean {self.performance}), "
                f"a candidate index (int) or a dict of parameters (e.g. "
                f"{{'lambda_nir': 0.0}}), got {reference!r}."
            )

    def _reference_index(self, cv_results, performance):
        """Index of the reference candidate, checked against ``cv_results``."""
        n = len(performance)
        reference = self.reference
        if reference is None:
            if np.isnan(performance).all():
                raise ValueError(
                    f"Every candidate has a NaN mean_test_{self.performance}, so there is no "
                    f"best candidate to measure the floor from or to fall back to. See the "
                    f"warnings raised while scoring (scikit-learn's 'Scoring failed'; use "
                    f"error_score='raise' to see the error)."
                )
            return int(np.nanargmax(performance))
        if isinstance(reference, dict):
            if "params" not in cv_results:
                raise ValueError(
                    f"reference={reference!r} names parameters, but cv_results has no 'params' "
                    f"to look them up in. Pass cv_results_ of a search (it has 'params'), or "
                    f"reference as a candidate index."
                )
            params = list(cv_results["params"])
            matches = [
                i for i, candidate in enumerate(params)
                if all(key in candidate and _same(candidate[key], value)
                       for key, value in reference.items())
            ]
            if len(matches) != 1:
                found = "no candidate" if not matches else f"candidates {matches}"
                raise ValueError(
                    f"reference={reference!r} must match exactly one candidate of "
                    f"cv_results['params'], but {found} match(es), among {params}. Name more "
                    f"parameters, or pass reference as a candidate index."
                )
            return matches[0]
        if not 0 <= reference < n:
            raise ValueError(
                f"reference={reference!r} is not a candidate index: cv_results has {n} "
                f"candidates (0 to {n - 1}). Pass an index in that range, or a dict of "
                f"parameters."
            )
        return int(reference)

    def _floor(self, performance, reference):
        """The floor on the mean performance: ``min_score``, or the reference's minus drop."""
        if self.min_score is not None:
            return float(self.min_score)
        if np.isnan(performance[reference]):
            raise ValueError(
                f"The reference candidate {reference} has a NaN mean_test_{self.performance}, "
                f"so there is no floor to measure from it. Pass another reference, or "
                f"min_score=<number> for an absolute floor."
            )
        return float(performance[reference] - self.max_drop)

    def _warn_fallback(self, performance, gap, useful, floor, reference):
        if self.min_score is not None:
            source = f"min_score={self.min_score!r}"
            relax = "lower min_score"
        else:
            source = (f"candidate {reference}'s {performance[reference]:.4g} minus "
                      f"max_drop={self.max_drop!r}")
            relax = "raise max_drop"
        fair = np.asarray(gap <= self.max_disparity)
        if fair.any():
            why = (f"the {int(fair.sum())} candidate(s) {np.flatnonzero(fair).tolist()} within "
                   f"max_disparity all score below the floor (a collapsed model, such as a "
                   f"constant predictor, has no gap)")
        else:
            why = "no candidate is within max_disparity"
        below = "" if useful[reference] else f" (below the floor itself: {relax})"
        warnings.warn(
            f"No candidate has both a mean {self.disparity} <= {self.max_disparity} and a "
            f"mean {self.performance} >= {floor:.4g} (the floor: {source}): {why}. Refitting "
            f"the reference candidate {reference} ({self.performance} "
            f"{performance[reference]:.4g}, {self.disparity} {gap[reference]:.4g}){below}. "
            f"Relax max_disparity, {relax}, or widen the grid.",
            FairnessWarning,
            stacklevel=3,
        )

    def _column(self, cv_results, name):
        key = f"mean_test_{name}"
        if key not in cv_results:
            found = sorted(k[len("mean_test_"):] for k in cv_results if k.startswith("mean_test_"))
            raise ValueError(
                f"TradeoffRefit needs the scorer {name!r} in GridSearchCV(scoring={{...}}), "
                f"but cv_results_ has scores for {found}."
            )
        return np.asarray(cv_results[key], dtype=float)

    def __repr__(self):
        return (
            f"TradeoffRefit(performance={self.performance!r}, disparity={self.disparity!r}, "
            f"max_disparity={self.max_disparity!r}, max_drop={self.max_drop!r}, "
            f"min_score={self.min_score!r}, reference={self.reference!r})"
        )


def _is_real(value):
    """A real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _same(a, b):
    """``a == b`` as one bool, False where the comparison is not a single truth value."""
    if a is b:
        return True
    try:
        equal = a == b
    except Exception:  # noqa: BLE001 - any value may be a parameter
        return False
    return bool(equal) if isinstance(equal, (bool, np.bool_)) else False


def _edge_of_grid(params, chosen):
    """``(name, sorted values)`` when ``params`` is a 1-D numeric grid of at least 3 values
    and candidate ``chosen`` holds the largest; None otherwise."""
    if params is None:
        return None
    params = list(params)
    if not params or not all(isinstance(p, dict) for p in params):
        return None
    keys = set(params[0])
    if any(set(p) != keys for p in params):
        return None
    varying = [k for k in keys if not all(_same(p[k], params[0][k]) for p in params)]
    if len(varying) != 1:
        return None
    name = varying[0]
    values = [p[name] for p in params]
    if not all(_is_real(v) and math.isfinite(v) for v in values):
        return None
    distinct = sorted(set(values))
    if len(distinct) < 3 or values[chosen] != distinct[-1]:
        return None
    return name, distinct
