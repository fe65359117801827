"""Group DRO: minimise the loss of the worst group, with online weights on the groups."""

import numbers
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from sklearn.utils._param_validation import Interval
from skorch.utils import to_tensor

from fairskl._base import (
    SHARED_ATTRIBUTES,
    SHARED_PARAMETERS,
    StreamedInputs,
    _RegularizedClassifier,
)
from fairskl._docstrings import fill_doc
from fairskl.exceptions import FairnessWarning

__all__ = ["GroupDROClassifier"]

#: the name of the one group when X carries none (plain ERM)
ALL = "all"


@fill_doc(shared=SHARED_PARAMETERS, attributes=SHARED_ATTRIBUTES)
class GroupDROClassifier(_RegularizedClassifier):
    r"""Classifier trained on the loss of its worst group: online group DRO.

    Sagawa et al.'s online algorithm keeps a weight :math:`q_g` per group (uniform at first).
    For each training batch, with :math:`L_g` the mean loss of the batch's samples of group
    :math:`g`, it first moves the weights towards the groups with the highest losses,

    .. math:: q_g \leftarrow \frac{q_g \, e^{\eta (L_g + C / \sqrt{n_g})}}
              {\sum_{h} q_h \, e^{\eta (L_h + C / \sqrt{n_h})}} \cdot \sum_h q_h ,

    then minimises :math:`\sum_g q_g L_g` (see :ref:`mitigations`). The sums run over the
    groups present in the batch: an absent group contributes nothing and keeps its weight
    (with every group in the batch, the last factor is 1). :math:`\eta` is ``step_size``,
    :math:`n_g` the group's number of rows and :math:`C` the ``generalization_adjustment``.

    The groups travel **inside X**, as for :class:`GroupBalancedClassifier`: pass
    ``X = SliceDict(X=images, groups=sex)`` (or a dict) to ``fit``. Prediction needs no
    groups. Without groups (a plain array), every sample is in one group: plain ERM, with a
    :class:`~fairskl.FairnessWarning`.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="resnet18"
        As in :class:`NIRClassifier`: a torchvision model by name, ``"small_cnn"``, ``"mlp"``
        for 2-D X, or a module returning ``(logits, penultimate)``.
    step_size : float, default=0.01
        :math:`\eta \geq 0`, how fast the weights follow the group losses; 0 keeps them
        uniform (then the loss is the mean over the groups of their mean losses). Sagawa et
        al. use 0.01.
    generalization_adjustment : float, default=0.0
        :math:`C \geq 0`, added as :math:`C / \sqrt{n_g}` to each group's loss in the weight
        update, so that small groups, whose training loss underestimates their test loss, get
        more weight. Sagawa et al. search values from 0 to 5. :math:`n_g` counts the group's
        rows in the data given to ``fit`` (including rows that ``train_split`` holds out).
%(shared)s
    Attributes
    ----------
%(attributes)s    group_weights_ : pandas.Series
        The weight :math:`q_g` of each group (index: the groups, sorted), after the last
        training batch. It starts uniform whenever the network is initialised; ``partial_fit``
        on the same groups carries on from it.
    group_counts_ : pandas.Series
        :math:`n_g`, the rows of each group in the data of the last ``fit``/``partial_fit``.
    history_ : skorch History
        Per epoch ``train_loss`` (= ``train_group_dro``, the mean over the batches of
        :math:`\sum_g q_g L_g`), ``train_ce`` (the plain mean cross-entropy) and, with a
        validation split, their ``valid_`` counterparts (with the current weights, which
        validation batches do not change).

    Warns
    -----
    FairnessWarning
        When X carries no groups (a plain array): every sample is then in one group, plain
        ERM.

    See Also
    --------
    GroupBalancedClassifier : The static reweighting by group.
    CVaRDROClassifier : Distributionally robust without groups.
    DFRClassifier, LfFClassifier

    Notes
    -----
    The weights move once per call of the loss on a training batch: an optimizer that
    evaluates the loss several times per step (LBFGS) moves them several times. Sagawa et
    al.'s code also multiplies an absent group's weight by :math:`e^{\eta C / \sqrt{n_g}}`
    and renormalises over all groups, so that the absent groups lose weight to the present
    ones; here an absent group's weight is left as it was. Both agree when every group is in
    every batch. Sagawa et al. pair group DRO with strong :math:`\ell_2` regularisation or
    early stopping: use ``optimizer__weight_decay`` and a validation split.

    References
    ----------
    .. [1] Sagawa, Koh, Hashimoto, Liang, "Distributionally Robust Neural Networks for Group
       Shifts: On the Importance of Regularization for Worst-Case Generalization", ICLR 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.helper import SliceDict
    >>> from fairskl import GroupDROClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 5)).astype("float32")
    >>> sex = np.where(rng.rand(200) < 0.8, "male", "female")
    >>> y = (X[:, 0] + (sex == "female") * X[:, 1] > 0).astype(int)
    >>> clf = GroupDROClassifier("mlp", step_size=0.1, lr=1e-2, max_epochs=20, random_state=0,
    ...                          verbose=0).fit(SliceDict(X=X, groups=sex), y)
    >>> clf.group_weights_.index.tolist(), bool(np.isclose(clf.group_weights_.sum(), 1))
    (['female', 'male'], True)
    >>> bool(clf.score(X, y) > 0.9)
    True
    """

    _loss_terms = ("ce", "group_dro")
    _strength_hint = " or step_size"
    #: the batch's group codes and whether it trains, for the one call of regularized_loss
    #: that get_loss makes (see get_loss)
    _batch = None

    _parameter_constraints = {
        **_RegularizedClassifier._parameter_constraints,
        "step_size": [Interval(numbers.Real, 0, None, closed="left")],
        "generalization_adjustment": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(self, backbone="resnet18", *, step_size=0.01, generalization_adjustment=0.0,
                 **kwargs):
        super().__init__(backbone, **kwargs)
        self.step_size = step_size
        self.generalization_adjustment = generalization_adjustment

    def _training_data(self, X, y, groups, sample_weight=None):
        if groups is None:
            warnings.warn(
                f"{type(self).__name__} got no groups (X has no 'groups'), so every sample is "
                f"in one group (plain ERM). Pass X=SliceDict(X=X, groups=groups) to weigh the "
                f"groups.", FairnessWarning, stacklevel=3)
            names, codes = pd.Index([ALL]), None
        else:
            if pd.isna(pd.Series(groups)).any():
                raise ValueError(f"{type(self).__name__}: groups has missing values; give "
                                 f"every sample a group.")
            codes, names = pd.factorize(groups.astype(str), sort=True)
            names = pd.Index(names)
        counts = np.bincount(np.zeros(len(y), int) if codes is None else codes,
                             minlength=len(names))
        self.group_counts_ = pd.Series(counts, index=names.rename("group"), name="n")
        if not getattr(self, "group_weights_", pd.Series()).index.equals(names):
            self._reset_group_weights()  # new groups: their codes below number these
        data = super()._training_data(X, y, groups, sample_weight)
        if codes is None:
            return data
        # the base encodes the groups in order of appearance; the loss needs the codes of the
        # sorted names that index group_weights_ (a grouped split reads any codes)
        codes = codes.astype(np.int64)
        if isinstance(data, StreamedInputs):  # streamed: each item gets its code
            data.extras["groups"] = codes
            return data
        return {**data, "groups": codes}

    def _reset_group_weights(self):
        names = self.group_counts_.index
        self.group_weights_ = pd.Series(1.0 / len(names), index=names, name="q")

    def initialize_module(self):
        super().initialize_module()
        if hasattr(self, "group_counts_"):  # a (re)initialised network starts from uniform q
            self._reset_group_weights()
        return self

    def get_loss(self, y_pred, y_true, X=None, training=False):
        # The base hands regularized_loss the per-sample weights of a method only. Group DRO
        # also needs the batch's group codes, which travel with the rows in X["groups"] (put
        # there by _training_data), and whether the batch trains (only training batches move
        # q). Both are kept for the one call of regularized_loss that the base's get_loss
        # makes, so that the base's checks and records stay in one place; carrying the codes
        # as sample_weight instead would give that argument a second meaning.
        groups = X.get("groups") if isinstance(X, Mapping) else None
        self._batch = (groups, training)
        try:
            return super().get_loss(y_pred, y_true, X=X, training=training)
        finally:
            self._batch = None

    def regularized_loss(self, logits, features, losses, sample_weight):
        groups, training = self._batch or (None, False)
        n_groups = len(self.group_weights_)
        if groups is None:
            groups = torch.zeros(len(losses), dtype=torch.int64, device=losses.device)
        else:
            groups = to_tensor(groups, device=losses.device).long()
        counts = torch.bincount(groups, minlength=n_groups)
        sums = torch.zeros(n_groups, dtype=losses.dtype, device=losses.device)
        group_loss = sums.index_add(0, groups, losses) / counts.clamp(min=1)
        present = counts.cpu().numpy() > 0
        q = self.group_weights_.to_numpy(dtype=np.float64, copy=True)
        if training:
            adjustment = self.generalization_adjustment / np.sqrt(self.group_counts_.to_numpy())
            exponent = self.step_size * (group_loss.detach().cpu().double().numpy() + adjustment)
            # less its largest value among the present groups: the same after normalising,
            # and no overflow
            moved = q[present] * np.exp(exponent[present] - exponent[present].max())
            q[present] = moved / moved.sum() * q[present].sum()
            self.group_weights_ = pd.Series(q, index=self.group_weights_.index, name="q")
        robust = (torch.as_tensor(q, dtype=losses.dtype, device=losses.device)
                  * group_loss).sum()  # an absent group's loss is 0
        return robust, {"ce": losses.mean().detach(), "group_dro": robust}
