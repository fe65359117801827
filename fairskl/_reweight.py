"""Group-balanced reweighting: each group weighs the same in the loss (a label-using reference)."""

import warnings

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight

from fairskl._base import (
    SHARED_ATTRIBUTES,
    SHARED_PARAMETERS,
    _RegularizedClassifier,
    weighted_loss,
)
from fairskl._docstrings import fill_doc
from fairskl.exceptions import FairnessWarning

__all__ = ["GroupBalancedClassifier"]

BALANCES = ("group", "group_label")


@fill_doc(shared=SHARED_PARAMETERS, attributes=SHARED_ATTRIBUTES)
class GroupBalancedClassifier(_RegularizedClassifier):
    r"""Classifier whose loss weighs every group (or group × label cell) equally.

    The reference a user *with* group labels would try first: sample :math:`i` of group
    :math:`g` gets the weight :math:`w_g = n / (G\,n_g)`, so that each of the :math:`G` groups
    contributes the same total weight, and each batch's loss is the weighted mean
    :math:`\sum_i w_i \ell_i / \sum_i w_i` (see :ref:`mitigations`). The groups travel
    **inside X**, as skorch documents for per-sample extras: pass
    ``X = SliceDict(X=images, groups=sex)`` (or a dict) to ``fit``; skorch splits and batches
    them with the images, and :class:`~sklearn.model_selection.GridSearchCV` and
    ``cross_validate`` index them with the rows. Nothing goes through ``fit``'s metadata
    routing. Prediction needs no groups: ``predict(images)`` or ``predict(SliceDict(...))``.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="resnet18"
        As in :class:`NIRClassifier`: a torchvision model by name, ``"small_cnn"``, ``"mlp"``
        for 2-D X, or a module returning ``(logits, penultimate)``.
    balance : {"group", "group_label"}, default="group"
        ``"group"``: each group weighs the same. ``"group_label"``: each (group, label) cell
        weighs the same, :math:`w_{g,y} = n / (K\,n_{g,y})` over the :math:`K` non-empty cells,
        so that positives of a small group are not outweighed by its negatives.
%(shared)s
    Attributes
    ----------
%(attributes)s    group_weights_ : pandas.Series
        The weight of each group (or (group, label) cell) in the last ``fit``.
    history_ : skorch History
        Per epoch ``train_loss`` (= ``train_weighted_ce``), ``train_ce`` (unweighted) and,
        with a validation split, their ``valid_`` counterparts.

    Warns
    -----
    FairnessWarning
        When X carries no groups (a plain array): every sample then weighs 1, plain ERM.

    See Also
    --------
    NIRClassifier : The label-free method this reference is compared with.

    References
    ----------
    .. [1] Idrissi, Arjovsky, Pezeshki, Lopez-Paz, "Simple data balancing achieves competitive
       worst-group-accuracy", CLeaR 2022.
    .. [2] Zong, Yang, Hospedales, "MEDFAIR: Benchmarking Fairness for Medical Imaging",
       ICLR 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.helper import SliceDict
    >>> from fairskl import GroupBalancedClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 5)).astype("float32")
    >>> sex = np.where(rng.rand(200) < 0.8, "male", "female")
    >>> y = (X[:, 0] > 0).astype(int)
    >>> clf = GroupBalancedClassifier("mlp", lr=1e-2, max_epochs=20, random_state=0, verbose=0)
    >>> clf.fit(SliceDict(X=X, groups=sex), y).group_weights_.round(3).to_dict()
    {'female': 2.273, 'male': 0.641}
    >>> bool(clf.score(X, y) > 0.9)
    True
    """

    _loss_terms = ("ce", "weighted_ce")

    _parameter_constraints = {
        **_RegularizedClassifier._parameter_constraints,
        "balance": [StrOptions(set(BALANCES))],
    }

    def __init__(self, backbone="resnet18", *, balance="group", **kwargs):
        super().__init__(backbone, **kwargs)
        self.balance = balance

    def _sample_weight(self, y, groups):
        if groups is None:
            warnings.warn(
                f"{type(self).__name__} got no groups: X is a plain array, so every sample "
                f"weighs 1 (plain ERM). Pass X=SliceDict(X=X, groups=groups) to balance the "
                f"groups.", FairnessWarning, stacklevel=4)
            groups = np.zeros(len(y), dtype=object)
        cells = pd.Series(groups.astype(str))
        if self.balance == "group_label":
            cells = cells + "|" + self.classes_[y].astype(str)
        weight = compute_sample_weight("balanced", cells)  # n / (K n_k), scikit-learn's
        self.group_weights_ = pd.Series(weight, index=cells).groupby(level=0).first()
        self.group_weights_.index.name = self.balance
        return weight

    def regularized_loss(self, logits, features, losses, sample_weight):
        return weighted_loss(losses, sample_weight)
