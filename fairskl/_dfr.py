"""Deep feature reweighting (DFR): retrain only the last layer, on balanced held-out data."""

import copy
import numbers
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted, column_or_1d

from fairskl._base import (
    SHARED_ATTRIBUTES,
    SHARED_PARAMETERS,
    _RegularizedClassifier,
    is_training_split,
)
from fairskl._docstrings import fill_doc
from fairskl.exceptions import FairnessWarning
from fairskl.model_selection._split import stratified_holdout

__all__ = ["DFRClassifier"]

BALANCES = ("class", "group")
PENALTIES = ("l1", "l2")


@fill_doc(shared=SHARED_PARAMETERS, attributes=SHARED_ATTRIBUTES)
class DFRClassifier(_RegularizedClassifier):
    r"""Deep feature reweighting: an ERM network whose last layer is refit on balanced data.

    ``fit`` holds out a share ``holdout_size`` of the training rows, trains the network by
    plain cross-entropy on the others, then replaces its last layer by a logistic regression
    on the held-out rows' penultimate features :math:`h(x)`, standardised
    (:math:`\tilde h = (h - \mu) / \sigma`, with the held-out mean and standard deviation):

    .. math:: p(y \mid x) = \operatorname{softmax}(W \tilde h(x) + b), \qquad
              (W, b) = \frac{1}{R} \sum_{r=1}^{R} \operatorname*{arg\,min}_{W, b}
              \sum_{i \in S_r} \ell(W \tilde h_i + b, y_i) + \frac{1}{C}\,\Omega(W),

    (a sigmoid of one logit for two classes), where each :math:`S_r` draws, anew, as many
    held-out rows from every cell — class, or (group, class) — as the smallest cell has,
    :math:`\Omega` is the :math:`\ell_1` or :math:`\ell_2` penalty and :math:`R` is
    ``n_repeats`` (see :ref:`mitigations`). The features stay those the ERM network learned;
    only how they are weighed changes, which Kirichenko et al. find is enough to undo much of
    a spurious correlation.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="resnet18"
        As in :class:`NIRClassifier`: a torchvision model by name, ``"small_cnn"``, ``"mlp"``
        for 2-D X, or a module returning ``(logits, penultimate)``.
    holdout_size : float, default=0.5
        The share of the training rows held out for the last layer, in (0, 1); the network
        trains on the others. The split is stratified by the cells that ``balance`` balances
        (:class:`~sklearn.model_selection.StratifiedShuffleSplit`, seeded by
        ``random_state``), so that every cell is on both sides; it does not keep groups
        such as patients whole (split those beforehand).
    C : float, default=1.0
        Inverse strength of the last layer's penalty, > 0 (as in
        :class:`~sklearn.linear_model.LogisticRegression`). A plain parameter: search it
        with :class:`~sklearn.model_selection.GridSearchCV` (which retrains the network for
        every value); Kirichenko et al. search 1 down to 0.01.
    penalty : {"l1", "l2"}, default="l1"
        The last layer's penalty :math:`\Omega`. ``"l1"`` (the paper's) is fitted by
        liblinear for two classes and saga for more, ``"l2"`` by lbfgs.
    balance : {"class", "group"}, default="class"
        The cells subsampled to the same size. ``"class"``: the classes, which needs no
        group labels (the label-free variant). ``"group"``: the (group, class) cells, with
        the groups carried inside X (``X = SliceDict(X=images, groups=sex)``), as the
        paper's groups are (label, attribute) pairs; without groups in X it balances the
        classes, with a :class:`~fairskl.FairnessWarning`.
    n_repeats : int, default=10
        :math:`R`, the balanced subsamples drawn; the last layer averages their
        coefficients, as Kirichenko et al.'s code does.
%(shared)s
    Attributes
    ----------
%(attributes)s    holdout_indices_ : ndarray of int
        The rows of the last ``fit``'s X held out for the last layer (sorted).
    scaler_ : sklearn.preprocessing.StandardScaler
        The standardisation of the penultimate features, fitted on the held-out rows.
    last_layer_ : sklearn.linear_model.LogisticRegression
        The refit last layer on standardised features; ``coef_`` and ``intercept_`` are the
        means over the ``n_repeats`` fits. Its classes are the encoded labels
        ``0 .. n_classes - 1``, in the order of ``classes_``.
    n_balanced_ : int
        The rows of each balanced subsample (cells × the smallest cell's size).
    history_ : skorch History
        The network's plain ERM training: ``train_loss`` (= ``train_ce``) per epoch.

    Warns
    -----
    FairnessWarning
        ``balance="group"`` when X carries no groups: the classes are balanced instead.

    See Also
    --------
    GroupBalancedClassifier : Reweighting the whole training by group.
    JTTClassifier, GroupDROClassifier, LfFClassifier

    Notes
    -----
    **Subsampling, not weights.** The paper subsamples each cell to the smallest cell's
    size, and averages the coefficients of several subsamples to use the rows it left out;
    so does fairskl. Sample weights would use every row in one fit, but with an
    :math:`\ell_1` penalty they do not give the same solution (the penalty's strength relative
    to the loss changes with the weights), so the paper's ``C`` would not carry over.

    ``predict_proba``, ``predict`` and ``decision_function`` use the refit last layer;
    ``penultimate`` gives the ERM network's features, unchanged. ``partial_fit`` on a fitted
    classifier splits its X anew, trains the network ``max_epochs`` more epochs on one part
    and refits the last layer on the other. X is an array, a dict, image paths or an
    :class:`~fairskl.datasets.ImageFiles` (rows are held out with its ``subset``); another
    torch Dataset is not supported.

    References
    ----------
    .. [1] Kirichenko, Izmailov, Wilson, "Last Layer Re-Training is Sufficient for Robustness
       to Spurious Correlations", ICLR 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl import DFRClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 5)).astype("float32")
    >>> y = (X[:, 0] > 0).astype(int)
    >>> clf = DFRClassifier("mlp", C=0.3, n_repeats=5, lr=1e-2, max_epochs=20, random_state=0,
    ...                     verbose=0).fit(X, y)
    >>> len(clf.holdout_indices_), clf.last_layer_.coef_.shape
    (150, (1, 64))
    >>> bool(clf.score(X, y) > 0.9)
    True
    """

    _loss_terms = ("ce",)

    _parameter_constraints = {
        **_RegularizedClassifier._parameter_constraints,
        "holdout_size": [Interval(RealNotInt, 0, 1, closed="neither")],
        "C": [Interval(numbers.Real, 0, None, closed="neither")],
        "penalty": [StrOptions(set(PENALTIES))],
        "balance": [StrOptions(set(BALANCES))],
        "n_repeats": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, backbone="resnet18", *, holdout_size=0.5, C=1.0, penalty="l1",
                 balance="class", n_repeats=10, **kwargs):
        super().__init__(backbone, **kwargs)
        self.holdout_size = holdout_size
        self.C = C
        self.penalty = penalty
        self.balance = balance
        self.n_repeats = n_repeats

    # -- training ------------------------------------------------------------------------------

    def fit(self, X, y, **fit_params):
        """Train the network on one part of the rows, then its last layer on the other.

        X as in :class:`NIRClassifier` (in memory); ``balance="group"`` reads the groups of
        a dict X.
        """
        X, y, groups = self._prepare(X, y)
        return self._fit_dfr(X, y, groups, continued=False, **fit_params)

    def partial_fit(self, X, y, classes=None, **fit_params):
        """``fit`` for an unfitted classifier; a fitted one splits X anew, trains the network
        ``max_epochs`` more epochs on one part and refits the last layer on the other."""
        if "_routing_method" in fit_params:  # the network's training, called by skorch's fit
            return super().partial_fit(X, y, classes=classes, **fit_params)
        if not (self.initialized_ and hasattr(self, "last_layer_")):
            X, y, groups = self._prepare(X, y, classes)
            return self._fit_dfr(X, y, groups, continued=False, **fit_params)
        X, groups = self._check_X(X)
        y = self.label_encoder_.transform(column_or_1d(y))
        return self._fit_dfr(X, y, groups, continued=True, **fit_params)

    def _fit_dfr(self, X, y, groups, *, continued, **fit_params):
        if isinstance(X, torch.utils.data.Dataset) and not hasattr(X, "subset"):
            raise TypeError(
                f"{type(self).__name__} holds rows out for the last layer, which needs X as "
                f"an array, image paths, a dict {{'X': ..., 'groups': ...}} or an ImageFiles; "
                f"got a {type(X).__name__} without a subset method."
            )
        cells = self._cells(y, groups)
        train, holdout = self._split(cells)
        sub_groups = None if groups is None else groups[train]
        data = self._training_data(_rows(X, train), y[train], sub_groups)
        net = super(_RegularizedClassifier, self)  # skorch's fit/partial_fit, data prepared
        if continued:
            net.partial_fit(data, y[train], **fit_params)
        else:
            net.fit(data, y[train], **fit_params)
        self.holdout_indices_ = holdout
        self._fit_last_layer(_rows(X, holdout), y[holdout], cells[holdout])
        return self

    def _cells(self, y, groups):
        """The cell of each row that the last layer balances: its class, or (group, class)."""
        if self.balance == "class":
            return y
        if groups is None:
            warnings.warn(
                f"{type(self).__name__}(balance='group') got no groups: X is a plain array, so "
                f"the classes are balanced instead. Pass X=SliceDict(X=X, groups=groups) to "
                f"balance the (group, class) cells.", FairnessWarning, stacklevel=4)
            return y
        if pd.isna(pd.Series(groups)).any():
            raise ValueError(f"{type(self).__name__}: groups has missing values; give every "
                             f"sample a group.")
        cells = pd.Series(groups.astype(str)) + "|" + pd.Series(y).astype(str)
        return pd.factorize(cells, sort=True)[0]

    def _split(self, cells):
        """The training rows of the network and the held-out rows, stratified by cell."""
        what = "class" if self.balance == "class" else "(group, class) cell"
        return stratified_holdout(cells, self.holdout_size, self.random_state,
                                  type(self).__name__, what)

    def _fit_last_layer(self, X, y, cells):
        """Standardise the held-out rows' features and fit the averaged, balanced head."""
        missing = np.setdiff1d(np.arange(len(self.classes_)), y)
        if len(missing):
            raise ValueError(
                f"{type(self).__name__} refits its last layer on the held-out rows, but they "
                f"have no row of class(es) {self.classes_[missing].tolist()}; give every class "
                f"at least 2 rows in y, or a larger holdout_size."
            )
        features = self.penultimate(X).astype(np.float64)
        self.scaler_ = StandardScaler().fit(features)
        features = self.scaler_.transform(features)
        names, cell_of_row = np.unique(cells, return_inverse=True)
        members = [np.flatnonzero(cell_of_row == k) for k in range(len(names))]
        size = min(len(rows) for rows in members)
        self.n_balanced_ = size * len(members)
        rng = check_random_state(self.random_state)
        fits = []
        for _ in range(self.n_repeats):
            rows = np.concatenate([rng.choice(m, size, replace=False) for m in members])
            fits.append(self._logistic_regression().fit(features[rows], y[rows]))
        head = copy.deepcopy(fits[0])
        head.coef_ = np.mean([fit.coef_ for fit in fits], axis=0)
        head.intercept_ = np.mean([fit.intercept_ for fit in fits], axis=0)
        self.last_layer_ = head

    def _logistic_regression(self):
        if self.penalty == "l2":
            solver = "lbfgs"
        else:  # liblinear (the paper's) fits two classes only; saga, the multinomial L1 loss,
            # can take thousands of epochs on small, nearly separable data
            solver = "liblinear" if len(self.classes_) == 2 else "saga"
        return LogisticRegression(C=self.C, l1_ratio=1.0 if self.penalty == "l1" else 0.0,
                                  solver=solver, max_iter=10_000,
                                  random_state=self.random_state)

    # -- prediction ----------------------------------------------------------------------------

    def _head_input(self, X):
        check_is_fitted(self, "last_layer_")
        return self.scaler_.transform(self.penultimate(X).astype(np.float64))

    def predict_proba(self, X):
        """Class probabilities of the refit last layer, columns in the order of
        ``classes_``."""
        if is_training_split(X):  # skorch's scoring during training
            return super().predict_proba(X)
        features = self._head_input(X)  # checks that the classifier is fitted
        return self.last_layer_.predict_proba(features)

    def decision_function(self, X):
        """The refit last layer's logits: (n_samples,) logit of ``classes_[1]`` for two
        classes, else one column per class."""
        if is_training_split(X):  # skorch's scoring during training
            return super().decision_function(X)
        features = self._head_input(X)  # checks that the classifier is fitted
        return self.last_layer_.decision_function(features)


def _rows(X, indices):
    """The rows of X at ``indices``: an array's, or an ImageFiles' (its ``subset``)."""
    return X.subset(indices) if hasattr(X, "subset") else X[indices]
