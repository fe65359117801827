"""CVaR distributionally robust optimisation: minimise the mean of a batch's largest losses."""

import math
import numbers

import torch
from sklearn.utils._param_validation import Interval

from fairskl._base import (
    SHARED_ATTRIBUTES,
    SHARED_PARAMETERS,
    _RegularizedClassifier,
)
from fairskl._docstrings import fill_doc

__all__ = ["CVaRDROClassifier"]


@fill_doc(shared=SHARED_PARAMETERS, attributes=SHARED_ATTRIBUTES)
class CVaRDROClassifier(_RegularizedClassifier):
    r"""Classifier trained on the conditional value at risk (CVaR) of its per-sample losses.

    Each batch's loss is the mean of its :math:`\lceil \alpha B \rceil` largest per-sample
    cross-entropies (Levy et al.'s mini-batch CVaR estimator): the worst-off fraction
    :math:`\alpha` of the samples, whoever they are. It needs no demographic labels: the
    label-free baseline of Hashimoto et al., the fair comparison for
    :class:`NIRClassifier`. ``alpha=1`` is plain empirical risk minimisation. See
    :ref:`mitigations` for the equation.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="resnet18"
        As in :class:`NIRClassifier`: a torchvision model by name, ``"small_cnn"``, ``"mlp"``
        for 2-D X, or a module returning ``(logits, penultimate)``.
    alpha : float in (0, 1], default=0.2
        The share of each batch's largest losses that are averaged.
%(shared)s
    Attributes
    ----------
%(attributes)s    history_ : skorch History
        Per epoch ``train_loss`` (= ``train_cvar``), ``train_ce`` (the plain mean
        cross-entropy, for comparison) and, with a validation split, their ``valid_``
        counterparts.

    See Also
    --------
    NIRClassifier, JTTClassifier, SpectralDecouplingClassifier

    References
    ----------
    .. [1] Hashimoto, Srivastava, Namkoong, Liang, "Fairness Without Demographics in Repeated
       Loss Minimization", ICML 2018.
    .. [2] Levy, Carmon, Duchi, Sidford, "Large-Scale Methods for Distributionally Robust
       Optimization", NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl import CVaRDROClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 5)).astype("float32")
    >>> y = (X[:, 0] > 0).astype(int)
    >>> clf = CVaRDROClassifier("mlp", alpha=0.5, lr=1e-2, max_epochs=20, random_state=0,
    ...                         verbose=0).fit(X, y)
    >>> bool(clf.score(X, y) > 0.9), {"train_ce", "train_cvar"} <= set(clf.history[-1])
    (True, True)
    """

    _loss_terms = ("ce", "cvar")
    _strength_hint = " or raise alpha"

    _parameter_constraints = {
        **_RegularizedClassifier._parameter_constraints,
        "alpha": [Interval(numbers.Real, 0, 1, closed="right")],
    }

    def __init__(self, backbone="resnet18", *, alpha=0.2, **kwargs):
        super().__init__(backbone, **kwargs)
        self.alpha = alpha

    def regularized_loss(self, logits, features, losses, sample_weight):
        k = math.ceil(self.alpha * len(losses))
        cvar = torch.topk(losses, k).values.mean()
        return cvar, {"ce": losses.mean().detach(), "cvar": cvar}
