"""Post-processing: fairlearn's ThresholdOptimizer fitted on rows the classifier did not see."""

import numbers
from collections.abc import Mapping

import numpy as np
import pandas as pd
from fairlearn.postprocessing import ThresholdOptimizer
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, _fit_context, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval, RealNotInt, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

from fairskl._base import _RegularizedClassifier
from fairskl.model_selection._split import stratified_holdout

__all__ = ["ThresholdOptimizedClassifier"]

#: fairlearn's constraints, and the objectives it allows with each kind
SIMPLE_CONSTRAINTS = ("demographic_parity", "selection_rate_parity",
                      "true_positive_rate_parity", "false_positive_rate_parity",
                      "true_negative_rate_parity", "false_negative_rate_parity")
CONSTRAINTS = (*SIMPLE_CONSTRAINTS, "equalized_odds")
OBJECTIVES = ("accuracy_score", "balanced_accuracy_score", "selection_rate",
              "true_positive_rate", "true_negative_rate")
EQUALIZED_ODDS_OBJECTIVES = ("accuracy_score", "balanced_accuracy_score")


class ThresholdOptimizedClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A classifier post-processed by fairlearn's ThresholdOptimizer on held-out rows.

    ``fit`` holds out a share ``holdout_size`` of the rows, stratified by (group, label), fits
    a clone of ``estimator`` on the others, and then fits fairlearn's
    :class:`~fairlearn.postprocessing.ThresholdOptimizer` (``prefit=True``,
    ``predict_method="predict_proba"``) on the held-out rows, with the groups as sensitive
    features: per group, a randomised choice between two thresholds of the classifier's
    probability of ``classes_[1]``, chosen to maximise ``objective`` with ``constraints``
    equal across the groups (Hardt et al.'s post-processing, see :ref:`mitigations`). The
    thresholds are fitted on rows the classifier did not train on, never on the rows it is
    later scored on. One estimator, so that :func:`~fairskl.experiments.compare_methods` and
    :class:`~sklearn.model_selection.GridSearchCV` can fit and score it like any other.

    The groups travel **inside X**, in ``fit`` *and* in prediction: pass
    ``X = SliceDict(X=inputs, groups=sex)`` (or a dict), as for
    :class:`GroupBalancedClassifier`; cross-validation and ``compare_methods`` index them with
    the rows. A fairskl classifier (one of this package's networks) is fitted on the dict's
    rows, so a method that trains on the groups gets them; any other estimator (e.g.
    :class:`~sklearn.linear_model.LogisticRegression`) is fitted on ``X["X"]`` alone.
    Prediction hands ``X["X"]`` to the fitted classifier (none needs groups to predict) and
    ``X["groups"]`` to the post-processor.

    Parameters
    ----------
    estimator : classifier
        An unfitted binary classifier with ``predict_proba``, whose float64 probability of
        ``classes_[1]`` is thresholded (fairlearn's post-processing fails on float32 scores
        with pandas 3; scikit-learn's and fairskl's classifiers give float64).
    constraints : str, default="true_positive_rate_parity"
        What is equalised across the groups, as in fairlearn: ``"demographic_parity"`` (or
        ``"selection_rate_parity"``), ``"{true,false}_{positive,negative}_rate_parity"``, or
        ``"equalized_odds"`` (TPR and FPR).
    objective : str, default="balanced_accuracy_score"
        What is maximised under the constraint: ``"accuracy_score"``,
        ``"balanced_accuracy_score"``, or, except with ``"equalized_odds"``,
        ``"selection_rate"``, ``"true_positive_rate"``, ``"true_negative_rate"``.
    holdout_size : float, default=0.3
        The share of the rows held out for the thresholds, in (0, 1); the classifier trains on
        the others. The split is stratified by (group, label)
        (:class:`~sklearn.model_selection.StratifiedShuffleSplit`, seeded by
        ``random_state``), so that every group has thresholds; it does not keep ids such as
        patients whole (split those beforehand).
    grid_size : int, default=1000
        fairlearn's grid over the constraint's value in [0, 1] (``grid_size + 1`` points).
    random_state : None, int or numpy.random.RandomState, default=None
        Seeds the held-out split and the randomised predictions of :meth:`predict`; when not
        None it is also the ``random_state`` of the clone of ``estimator`` (if it has one),
        so that :func:`~fairskl.experiments.compare_methods`' seeds reach the classifier.
        None leaves the estimator's own.

    Attributes
    ----------
    estimator_ : classifier
        The clone of ``estimator`` fitted on the rows that were not held out.
    postprocessor_ : fairlearn.postprocessing.ThresholdOptimizer
        The thresholds, fitted on the held-out rows (``estimator=estimator_``,
        ``prefit=True``); it takes ``X["X"]`` and ``sensitive_features=X["groups"]``.
    classes_ : ndarray of shape (2,)
        The labels; ``classes_[1]`` is the positive one.
    groups_ : ndarray of object
        The groups with thresholds (those of the held-out rows, which are all of fit's).
    holdout_indices_ : ndarray of int
        The rows of ``fit``'s X the thresholds were fitted on (sorted).
    n_features_in_ : int
        ``estimator_``'s, when it has one.

    See Also
    --------
    fairlearn.postprocessing.ThresholdOptimizer : The post-processor itself.
    GroupBalancedClassifier : Using the groups in training instead.
    DFRClassifier : Also fitted in two steps on a held-out share of the rows.

    Notes
    -----
    **What** ``predict_proba`` **means.** Its column 1 is the probability that the randomised
    post-processed classifier predicts ``classes_[1]`` (fairlearn's probability mass
    function): in a group with thresholds :math:`t_0 > t_1` chosen with probabilities
    :math:`p_0, p_1`, it is 1 above :math:`t_0`, :math:`p_1` between them and 0 below. It is a
    *decision* probability with a few distinct values (at most three per group), not a
    calibrated score of the label: an AUC of it is coarse (it ranks rows by their decision,
    not by their risk), and an operating threshold on it flags whole ties at once
    (:func:`~fairskl.metrics.operating_threshold` flags tied scores together, so
    ``compare_methods``' *matched* point can flag more rows than the reference). The gaps
    ``compare_methods`` reads at 0.5 are those of the de-randomised rule "flag the rows whose
    decision probability is at least 0.5" (in each group the threshold with the larger
    weight), not of the randomised classifier whose gap fairlearn equalised; the latter's
    expected rates are means of ``predict_proba(X)[:, 1]``, and :meth:`predict` draws its
    decisions.

    References
    ----------
    .. [1] Hardt, Price, Srebro, "Equality of Opportunity in Supervised Learning",
       NeurIPS 2016.
    .. [2] Weerts, Dudík, Edgar, Jalali, Lutz, Madaio, "Fairlearn: Assessing and Improving
       Fairness of AI Systems", JMLR 24(257), 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skorch.helper import SliceDict
    >>> from fairskl import ThresholdOptimizedClassifier
    >>> from fairskl.metrics import tpr_difference
    >>> rng = np.random.RandomState(0)
    >>> sex = rng.choice(["female", "male"], 4000)
    >>> X = rng.normal(size=(4000, 3))
    >>> y = (X[:, 0] * np.where(sex == "male", 2.0, 0.7) + 0.5 * rng.normal(size=4000)
    ...      > 0).astype(int)
    >>> data = SliceDict(X=X, groups=sex)
    >>> post = ThresholdOptimizedClassifier(LogisticRegression(), random_state=0).fit(data, y)
    >>> len(post.holdout_indices_), post.groups_.tolist()
    (1200, ['female', 'male'])
    >>> test = rng.normal(size=(2000, 3))
    >>> test_sex = rng.choice(["female", "male"], 2000)
    >>> test_y = (test[:, 0] * np.where(test_sex == "male", 2.0, 0.7)
    ...           + 0.5 * rng.normal(size=2000) > 0).astype(int)
    >>> before = tpr_difference(test_y, post.estimator_.predict(test), sensitive_features=test_sex)
    >>> after = tpr_difference(test_y, post.predict(SliceDict(X=test, groups=test_sex)),
    ...                        sensitive_features=test_sex)
    >>> print(f"TPR gap: {before:.2f} before, {after:.2f} after")
    TPR gap: 0.11 before, 0.01 after
    >>> proba = post.predict_proba(SliceDict(X=test, groups=test_sex))
    >>> proba.shape, bool(len(np.unique(proba[:, 1])) <= 6)  # a decision probability
    ((2000, 2), True)
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict_proba"])],
        "constraints": [StrOptions(set(CONSTRAINTS))],
        "objective": [StrOptions(set(OBJECTIVES))],
        "holdout_size": [Interval(RealNotInt, 0, 1, closed="neither")],
        "grid_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator, *, constraints="true_positive_rate_parity",
                 objective="balanced_accuracy_score", holdout_size=0.3, grid_size=1000,
                 random_state=None):
        self.estimator = estimator
        self.constraints = constraints
        self.objective = objective
        self.holdout_size = holdout_size
        self.grid_size = grid_size
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)  # the inner estimator validates its own
    def fit(self, X, y):
        """Fit the classifier on one part of the rows and the thresholds on the other.

        Parameters
        ----------
        X : dict or skorch.helper.SliceDict
            ``{"X": inputs, "groups": groups}``: the inputs (an array or a DataFrame, as
            fairlearn takes) and one group per row. A fairskl estimator gets the whole dict's
            rows (with any other key it reads, such as ``"split_groups"``).
        y : array-like of shape (n_samples,)
            Binary labels.

        Returns
        -------
        self : ThresholdOptimizedClassifier
        """
        if self.constraints == "equalized_odds" and self.objective not in \
                EQUALIZED_ODDS_OBJECTIVES:
            raise ValueError(f"objective={self.objective!r} is not supported with "
                             f"constraints='equalized_odds'; choose one of "
                             f"{list(EQUALIZED_ODDS_OBJECTIVES)}.")
        inputs, groups = self._split_X(X, "fit")
        y = column_or_1d(y, warn=True)
        check_consistent_length(groups, y)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) != 2:
            raise ValueError(f"{type(self).__name__} is for binary classification (fairlearn's "
                             f"thresholds), but y has {len(encoder.classes_)} classes: "
                             f"{encoder.classes_[:10].tolist()}. Binarise it, e.g. "
                             f"y = (y == positive).")
        self.classes_ = encoder.classes_
        y01 = encoder.transform(y)

        train, holdout = self._holdout(groups, y01)
        model = clone(self.estimator)
        if self.random_state is not None and "random_state" in model.get_params(deep=False):
            model.set_params(random_state=self.random_state)
        if isinstance(model, _RegularizedClassifier):  # fairskl's: the groups stay in X
            model.fit({key: None if value is None else _safe_indexing(value, train)
                       for key, value in X.items()}, y[train])
        else:
            model.fit(_safe_indexing(inputs, train), y[train])
        self.estimator_ = model
        if hasattr(model, "n_features_in_"):
            self.n_features_in_ = model.n_features_in_

        self.postprocessor_ = ThresholdOptimizer(
            estimator=model, constraints=self.constraints, objective=self.objective,
            grid_size=self.grid_size, prefit=True, predict_method="predict_proba")
        self.postprocessor_.fit(_safe_indexing(inputs, holdout), y01[holdout],
                                sensitive_features=groups[holdout])
        self.holdout_indices_ = holdout
        self.groups_ = np.asarray(sorted(set(groups[holdout]), key=str), dtype=object)
        return self

    def _split_X(self, X, method):
        """The inputs and the groups (1-D object array) of a dict X; an error naming the fix."""
        name = type(self).__name__
        if not isinstance(X, Mapping) or issparse(X):
            raise ValueError(
                f"{name}.{method} needs the groups inside X (the thresholds are per group, in "
                f"fit and in prediction): pass X=SliceDict(X=X, groups=groups) (or a dict "
                f"{{'X': ..., 'groups': ...}}); got {type(X).__name__}.")
        if "X" not in X or X.get("groups") is None:
            raise ValueError(
                f"{name}.{method} needs X with the keys 'X' (the inputs) and 'groups' (one "
                f"group per row), e.g. SliceDict(X=X, groups=sex); got keys {sorted(X)}"
                + (" with groups=None." if "groups" in X else "."))
        groups = column_or_1d(np.asarray(X["groups"], dtype=object))
        check_consistent_length(X["X"], groups)
        if pd.isna(pd.Series(groups)).any():
            raise ValueError(f"{name}.{method}: X['groups'] has missing values; give every row "
                             f"a group.")
        return X["X"], groups

    def _holdout(self, groups, y01):
        """The training rows of the classifier and the held-out rows, stratified by cell."""
        cells = pd.Series(groups).astype(str) + "|" + self.classes_[y01].astype(str)
        train, holdout = stratified_holdout(cells.to_numpy(), self.holdout_size,
                                            self.random_state, type(self).__name__,
                                            "(group, label) cell")
        missing = sorted(set(groups) - set(groups[holdout]), key=str)
        if missing:
            raise ValueError(
                f"{type(self).__name__}: the held-out rows have no row of the group(s) "
                f"{missing}, which would get no thresholds; raise holdout_size (now "
                f"{self.holdout_size}) or give those groups more rows.")
        held = pd.crosstab(groups[holdout], y01[holdout])
        single = sorted((g for g, row in held.iterrows() if (row == 0).any()), key=str)
        if single:  # fairlearn's trade-off curve of a group needs both labels
            raise ValueError(
                f"{type(self).__name__}: among the held-out rows, the group(s) {single} have a "
                f"single label, and fairlearn's thresholds need both labels in every group; "
                f"raise holdout_size (now {self.holdout_size}) or give those groups more rows "
                f"of their rarer label.")
        return train, holdout

    def _prediction_input(self, X, method):
        check_is_fitted(self)
        inputs, groups = self._split_X(X, method)
        unseen = sorted(set(groups) - set(self.groups_), key=str)
        if unseen:  # fairlearn would give them probability 0 (never flagged), silently
            raise ValueError(
                f"{type(self).__name__}.{method}: X['groups'] has the group(s) {unseen}, which "
                f"have no thresholds; it was fitted on the groups {self.groups_.tolist()}. "
                f"Predict for those groups only, or refit with rows of the others.")
        return inputs, groups

    def predict_proba(self, X):
        """The probability that the randomised post-processed classifier predicts each class.

        A decision probability with a few distinct values per group, not a calibrated score
        (see the Notes).

        Parameters
        ----------
        X : dict or skorch.helper.SliceDict
            ``{"X": inputs, "groups": groups}``, the groups among ``groups_``.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2), float64
            Columns in the order of ``classes_``; column 1 is the probability of a positive
            decision.
        """
        inputs, groups = self._prediction_input(X, "predict_proba")
        # fairlearn's probability mass function of its randomised decision (no public name)
        proba = self.postprocessor_._pmf_predict(inputs, sensitive_features=groups)
        return np.asarray(proba, dtype=np.float64)

    def predict(self, X):
        """The randomised post-processed decisions, seeded by ``random_state``.

        Parameters
        ----------
        X : dict or skorch.helper.SliceDict
            ``{"X": inputs, "groups": groups}``, the groups among ``groups_``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels among ``classes_``; with an int ``random_state`` every call draws the same
            decisions.
        """
        inputs, groups = self._prediction_input(X, "predict")
        decisions = self.postprocessor_.predict(inputs, sensitive_features=groups,
                                                random_state=self.random_state)
        return self.classes_[np.asarray(decisions, dtype=int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags
