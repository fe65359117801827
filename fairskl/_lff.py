"""Learning from Failure (LfF): a biased network trained to fail tells a second whom to weigh."""

import copy
import numbers

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from skorch.utils import to_numpy, to_tensor
from torch import nn

from fairskl._backbones import build_network
from fairskl._base import (
    SHARED_ATTRIBUTES,
    SHARED_PARAMETERS,
    StreamedInputs,
    _RegularizedClassifier,
)
from fairskl._docstrings import fill_doc

__all__ = ["LfFClassifier"]

#: added to the denominator of the weights, as in Nam et al.'s code
EPS = 1e-8


@fill_doc(shared=SHARED_PARAMETERS, attributes=SHARED_ATTRIBUTES)
class LfFClassifier(_RegularizedClassifier):
    r"""Learning from Failure: a biased network finds the samples a debiased one should weigh.

    Two networks of the same backbone train together on each batch. The *biased* one
    minimises the generalized cross-entropy, which stresses the samples it already gets right
    and so learns the easiest cue (often a spurious one):

    .. math:: \mathrm{GCE}(p, y) = \frac{1 - p_y^{\,q}}{q},

    with :math:`p` its softmax output and :math:`q` ``gce_q``. The *debiased* one — the
    estimator's ``module_``, which ``predict`` uses — minimises its cross-entropy weighted by
    the *relative difficulty* of each sample,

    .. math:: W(x) = \frac{\bar\ell_b(x)}{\bar\ell_b(x) + \bar\ell_d(x)},

    where :math:`\bar\ell_b, \bar\ell_d` are the two networks' cross-entropies on the sample,
    averaged over its epochs with an exponential moving average
    (:math:`\bar\ell \leftarrow \alpha \bar\ell + (1 - \alpha) \ell`, the first time
    :math:`\ell`; :math:`\alpha` is ``ema_alpha``) and divided by their largest value over the
    training samples of its class. Samples the biased network fails on get weights near 1, the
    ones it masters near 0. Each batch's loss is
    :math:`\frac{1}{B} \sum_i \mathrm{GCE}_b(x_i) + \frac{1}{B} \sum_i W(x_i)\, \ell_d(x_i)`
    (see :ref:`mitigations`). It needs no group labels.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="resnet18"
        As in :class:`NIRClassifier`: a torchvision model by name, ``"small_cnn"``, ``"mlp"``
        for 2-D X, or a module returning ``(logits, penultimate)``. Both networks are built
        from it: a named backbone twice (two random initialisations, both seeded by
        ``random_state``), a module as two copies of it.
    gce_q : float, default=0.7
        :math:`q \in (0, 1]` of the generalized cross-entropy (1: the mean absolute error of
        :math:`p_y`; towards 0: the cross-entropy). Nam et al. use 0.7.
    ema_alpha : float, default=0.7
        :math:`\alpha \in [0, 1)` of the moving averages of the per-sample losses (0: the
        current loss only). Nam et al.'s code uses 0.7.
%(shared)s
    Attributes
    ----------
%(attributes)s    biased_module_ : NIRNetwork
        The biased network (trained with the generalized cross-entropy).
    sample_loss_ema_ : ndarray of shape (n_samples, 2)
        The moving averages :math:`\bar\ell_b, \bar\ell_d` of each training row of the last
        ``fit`` (columns: biased, debiased), before the per-class division; NaN for a row no
        training batch held (such as the rows ``train_split`` holds out).
    history_ : skorch History
        Per epoch ``train_loss`` (= ``train_gce`` + ``train_weighted_ce``), ``train_gce``
        (the biased network's), ``train_weighted_ce`` and ``train_ce`` (the debiased network's
        plain mean cross-entropy) and, with a validation split, their ``valid_``
        counterparts; validation rows have no moving averages, so their weights come from
        the batch's losses alone, :math:`\ell_b / (\ell_b + \ell_d)`.

    See Also
    --------
    JTTClassifier : Another label-free two-model method (sequential, not joint).
    CVaRDROClassifier, GroupDROClassifier, DFRClassifier

    Notes
    -----
    Nam et al.'s code gives the biased network the surrogate
    :math:`q\, p_y^{\,q} \cdot \mathrm{CE}` (with :math:`p_y^{\,q}` held constant), whose
    gradient is :math:`q` times the gradient of :math:`\mathrm{GCE}`; fairskl uses the
    :math:`\mathrm{GCE}` itself, the paper's loss (with Adam, the default optimizer, a
    constant factor on a network's gradient changes nothing). One optimizer updates both
    networks (skorch's ``get_all_learnable_params``); Nam et al. use one per network, the
    same for Adam, which treats every parameter on its own. ``partial_fit`` starts the moving
    averages afresh for the data it is given. Each row's index travels with it (in a dict X
    or a streamed Dataset's items) to index the moving averages. ``checkpoint`` is not
    supported (it would not hold the biased network and the averages).

    References
    ----------
    .. [1] Nam, Cha, Ahn, Lee, Shin, "Learning from Failure: Training Debiased Classifier
       from Biased Classifier", NeurIPS 2020.
    .. [2] Zhang, Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural Networks
       with Noisy Labels", NeurIPS 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl import LfFClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 5)).astype("float32")
    >>> y = (X[:, 0] > 0).astype(int)
    >>> clf = LfFClassifier("mlp", lr=1e-2, max_epochs=20, random_state=0, verbose=0).fit(X, y)
    >>> clf.sample_loss_ema_.shape, {"train_gce", "train_weighted_ce"} <= set(clf.history[-1])
    ((200, 2), True)
    >>> bool(clf.score(X, y) > 0.9)
    True
    """

    _loss_terms = ("ce", "gce", "weighted_ce")
    #: the batch's inputs, row indices, targets and whether it trains, for the one call of
    #: regularized_loss that get_loss makes (see get_loss)
    _batch = None

    _parameter_constraints = {
        **_RegularizedClassifier._parameter_constraints,
        "gce_q": [Interval(numbers.Real, 0, 1, closed="right")],
        "ema_alpha": [Interval(numbers.Real, 0, 1, closed="left")],
    }

    def __init__(self, backbone="resnet18", *, gce_q=0.7, ema_alpha=0.7, **kwargs):
        super().__init__(backbone, **kwargs)
        self.gce_q = gce_q
        self.ema_alpha = ema_alpha

    def _check_params(self):
        if self.checkpoint is not None:
            raise ValueError(
                f"{type(self).__name__} does not support checkpoint={self.checkpoint!r}: a "
                f"checkpoint would hold neither the biased network nor the per-sample loss "
                f"averages. Pass checkpoint=None."
            )

    # -- the two networks ----------------------------------------------------------------------

    def initialize_module(self):
        super().initialize_module()  # the debiased network, module_, seeded by random_state
        if isinstance(self.backbone, nn.Module):
            biased = copy.deepcopy(self.backbone)
        else:  # built after module_, so from the next draws of torch's seeded generator
            biased = build_network(
                self.backbone, weights=self.weights, input_shape=self.input_shape_,
                n_classes=len(self.classes_), hidden_sizes=self.hidden_sizes,
                input_normalization=self.input_normalization,
            )
        if self.channels_last:
            biased = biased.to(memory_format=torch.channels_last)
        # an nn.Module attribute set here is registered by skorch as a module of the net: it
        # moves to the device, and its parameters are among get_all_learnable_params, which
        # the optimizer gets
        self.biased_module_ = biased
        return self

    def _training_data(self, X, y, groups, sample_weight=None):
        data = super()._training_data(X, y, groups, sample_weight)
        self.sample_loss_ema_ = np.full((len(y), 2), np.nan)
        self._ema_targets = np.asarray(y)
        # each row's index travels with it, batched and split by skorch as the groups are
        if isinstance(data, StreamedInputs):  # streamed: each item gets its index
            data.extras["index"] = np.arange(len(y))
            return data
        return {**(data if isinstance(data, dict) else {"X": data}), "index": np.arange(len(y))}

    # -- the loss ------------------------------------------------------------------------------

    def get_loss(self, y_pred, y_true, X=None, training=False):
        # The base hands regularized_loss the debiased network's outputs and per-sample
        # losses. LfF also needs the batch's inputs (for the biased network), targets, row
        # indices (in X["index"], put there by _training_data) and whether it trains (only
        # training batches move the averages). They are kept for the one call of
        # regularized_loss that the base's get_loss makes, so that the base's checks and
        # records stay in one place.
        self._batch = (X, y_true, training)
        try:
            return super().get_loss(y_pred, y_true, X=X, training=training)
        finally:
            self._batch = None

    def regularized_loss(self, logits, features, losses, sample_weight):
        X, y, training = self._batch
        y = to_tensor(y, device=logits.device).long()
        with self._autocast():
            logits_b = self.biased_module_(self._to_device(X["X"]))[0].float()
        gce = gce_loss(logits_b, y, self.gce_q)
        ce_b = self.criterion_(logits_b, y).detach()
        ce_d = losses.detach()
        if training:
            ema_b, ema_d = self._update_averages(to_numpy(X["index"]), to_numpy(y),
                                                 to_numpy(ce_b), to_numpy(ce_d))
            ema_b = torch.as_tensor(ema_b, dtype=losses.dtype, device=losses.device)
            ema_d = torch.as_tensor(ema_d, dtype=losses.dtype, device=losses.device)
            weight = ema_b / (ema_b + ema_d + EPS)
        else:
            weight = ce_b / (ce_b + ce_d + EPS)
        weighted = (weight * losses).mean()
        gce = gce.mean()
        return gce + weighted, {"ce": losses.mean().detach(), "gce": gce,
                                "weighted_ce": weighted}

    def _update_averages(self, index, y, ce_b, ce_d):
        """Move the rows' moving averages; their values divided by the largest of their
        class."""
        ema = self.sample_loss_ema_
        current = np.stack([ce_b, ce_d], axis=1).astype(np.float64)
        past = ema[index]
        ema[index] = np.where(np.isnan(past), current,
                              self.ema_alpha * past + (1 - self.ema_alpha) * current)
        scaled = ema[index].copy()
        for c in np.unique(y):
            largest = np.nanmax(ema[self._ema_targets == c], axis=0)
            scaled[y == c] /= np.maximum(largest, EPS)
        return scaled[:, 0], scaled[:, 1]


def gce_loss(logits, y, q):
    r"""Per-sample generalized cross-entropy :math:`(1 - p_y^{\,q}) / q` (Zhang and Sabuncu).

    :math:`p_y^{\,q}` is computed as :math:`e^{q \log p_y}`, whose gradient stays finite
    where :math:`p_y` underflows to 0.
    """
    log_p_y = torch.log_softmax(logits, dim=1).gather(1, y[:, None])[:, 0]
    return (1 - torch.exp(q * log_p_y)) / q
