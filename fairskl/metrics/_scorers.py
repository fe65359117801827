"""Fairness scorers for cross_validate / GridSearchCV, and a refit rule that trades them off."""

import functools

import numpy as np
import sklearn
from fairlearn.metrics import MetricFrame
from sklearn.metrics import make_scorer
from sklearn.metrics._scorer import _Scorer
from sklearn.utils._param_validation import StrOptions, validate_params

from fairskl.metrics import _group_metrics as gm
from fairskl.metrics._operating import check_operating_point, operating_threshold
from fairskl.metrics._validation import absent_categories, check_group_inputs

__all__ = ["make_fairness_scorer", "make_reconstruction_scorer"]

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


# make_scorer validates response_method and greater_is_better, which are handed on to it.
@validate_params(
    {
        "metric": [StrOptions(set(SCORER_METRICS)), callable],
        "greater_is_better": ["boolean", None],
        "response_method": [str, list, tuple, None],
        "operating_point": "no_validation",  # check_operating_point: a number or (kind, value)
    },
    prefer_skip_nested_validation=False,
)
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
    _require_metadata_routing("make_fairness_scorer")
    if isinstance(metric, str):
        function, default_greater, default_response = SCORER_METRICS[metric]
    else:
        function, default_greater, default_response = _named(metric), False, "predict"
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


def _require_metadata_routing(maker):
    """Raise unless metadata routing is on: a scorer made by ``maker`` (a function's name)
    could not receive ``sensitive_features`` in a search without it."""
    if not sklearn.get_config()["enable_metadata_routing"]:
        raise RuntimeError(
            f"{maker} needs scikit-learn's metadata routing to pass "
            "sensitive_features to the scorer inside cross_validate and GridSearchCV. Call "
            "sklearn.set_config(enable_metadata_routing=True) first (or build the scorer inside "
            "sklearn.config_context(enable_metadata_routing=True))."
        )


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


@validate_params(
    {"metric": [StrOptions(set(RECONSTRUCTION_METRICS))]}, prefer_skip_nested_validation=True
)
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
    _require_metadata_routing("make_reconstruction_scorer")
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
