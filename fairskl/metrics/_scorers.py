"""Fairness scorers for cross_validate / GridSearchCV, and a refit rule that trades them off."""

import functools
import numbers
import warnings

import numpy as np
import sklearn
from sklearn.metrics import make_scorer

from fairskl.exceptions import FairnessWarning
from fairskl.metrics import _group_metrics as gm

__all__ = ["TradeoffRefit", "make_fairness_scorer"]

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
}


def make_fairness_scorer(metric, *, greater_is_better=None, response_method=None, **kwargs):
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
        ``"auc_difference"``, ``"worst_group_auc"``, ``"equity_scaled_auc"``; or any
        ``metric(y_true, y_pred, *, sensitive_features, **kwargs)``, e.g. one of fairlearn's
        metrics or a derived metric from :func:`fairlearn.metrics.make_derived_metric`.
    greater_is_better : bool, default=None
        For a named metric, its own direction; for a callable, False (a disparity) unless given.
    response_method : str or tuple of str, default=None
        For a named metric, ``"predict"`` or the scores; for a callable, ``"predict"``.
    **kwargs
        Passed to the metric on every call (e.g. ``pos_label``).

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
    scorer = make_scorer(
        function,
        greater_is_better=default_greater if greater_is_better is None else greater_is_better,
        response_method=default_response if response_method is None else response_method,
        **kwargs,
    )
    return scorer.set_score_request(sensitive_features=True)


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
    """Refit rule for ``GridSearchCV``: best performance among candidates fair enough.

    Picks the candidate with the highest mean ``performance`` score among those whose mean
    disparity ``-mean_test_<disparity>`` is at most ``max_disparity``. When none qualifies it
    picks the candidate with the smallest mean disparity and warns.

    Parameters
    ----------
    performance : str, default="auc"
        Key of the performance scorer in the ``scoring`` dict (higher is better).
    disparity : str, default="tpr_difference"
        Key of a disparity scorer made by :func:`make_fairness_scorer` (it holds ``-gap``).
    max_disparity : float, default=0.05
        Largest acceptable mean disparity (e.g. a TPR gap of 5 points).

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl.metrics import TradeoffRefit
    >>> cv_results = {"mean_test_auc": np.array([0.90, 0.88, 0.80]),
    ...               "mean_test_tpr_difference": np.array([-0.12, -0.04, -0.01])}
    >>> TradeoffRefit("auc", "tpr_difference", max_disparity=0.05)(cv_results)
    1
    """

    def __init__(self, performance="auc", disparity="tpr_difference", max_disparity=0.05):
        self.performance = performance
        self.disparity = disparity
        self.max_disparity = max_disparity

    def __call__(self, cv_results):
        if not isinstance(self.max_disparity, numbers.Real) or not self.max_disparity >= 0:
            raise ValueError(
                f"max_disparity must be a number >= 0, got {self.max_disparity!r}."
            )
        performance = self._column(cv_results, self.performance)
        scores = self._column(cv_results, self.disparity)
        if (scores > 0).any():
            raise ValueError(
                f"mean_test_{self.disparity} has positive values, so it is not a negated "
                f"disparity. Use a scorer from make_fairness_scorer for a lower-is-better "
                f"disparity (e.g. 'tpr_difference'), not one where higher is better."
            )
        gap = -scores
        ok = (gap <= self.max_disparity) & ~np.isnan(performance)
        if ok.any():
            return int(np.flatnonzero(ok)[np.argmax(performance[ok])])
        if np.isnan(gap).all():
            raise ValueError(
                f"Every candidate has a NaN {self.disparity}. See the warnings raised while "
                f"scoring: a FairnessWarning (a group missing from a fold, or without "
                f"positives), or scikit-learn's 'Scoring failed' (an error in the scorer, e.g. "
                f"misaligned indexes; use error_score='raise' to see it as an error)."
            )
        best = int(np.nanargmin(gap))
        warnings.warn(
            f"No candidate has a mean {self.disparity} <= {self.max_disparity}; refitting the "
            f"one with the smallest ({gap[best]:.4g}, candidate {best}). Relax max_disparity "
            f"or widen the grid.",
            FairnessWarning,
            stacklevel=2,
        )
        return best

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
            f"max_disparity={self.max_disparity!r})"
        )
