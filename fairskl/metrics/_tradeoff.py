"""A refit rule for GridSearchCV that trades performance against a disparity, with a floor."""

import math
import numbers
import warnings

import numpy as np

from fairskl.exceptions import FairnessWarning

__all__ = ["TradeoffRefit"]


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
