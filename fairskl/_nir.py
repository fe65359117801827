"""Neuron Incidence Redistribution (NIR): the penalty on penultimate-layer neuron incidence."""

import numbers

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from fairskl._base import (
    SHARED_ATTRIBUTES,
    SHARED_PARAMETERS,
    _RegularizedClassifier,
)
from fairskl._docstrings import fill_doc

__all__ = ["NIRClassifier", "nir_penalty"]

NORMALIZATIONS = ("global", "centered", "standardize", "mean", None)


def nir_penalty(features, probabilities, *, normalize="global",
                detach_probabilities=False, eps=1e-8):
    r"""The NIR penalty: variance across neurons of the probability-weighted mean activations.

    For a batch with penultimate features :math:`h_i \in \mathbb{R}^D` and predicted class
    probabilities :math:`p_{ic}`, the *incidence* of class :math:`c` on the neurons is

    .. math:: m_c = \frac{\sum_i p_{ic} h_i}{\sum_i p_{ic} + \epsilon} \in \mathbb{R}^D,

    and the penalty is the population variance of :math:`m_c` across the :math:`D` neurons,
    averaged over the classes. A few dominant neurons give a large penalty; an even incidence
    gives zero. ``normalize`` decides which changes of the features leave the penalty as it is.
    The classification head is linear, so it can undo any shift or scale of the features, per
    neuron or common to all; a penalty that such a change lowers can be satisfied without
    redistributing anything. The :ref:`user guide <nir-invariance>` tabulates each form's
    invariances and the evidence behind the default.

    Parameters
    ----------
    features : torch.Tensor of shape (n_samples, n_neurons)
        Penultimate activations, after global pooling.
    probabilities : torch.Tensor of shape (n_samples,) or (n_samples, n_classes)
        Predicted probabilities: of the positive class for a single sigmoid output (the
        columns ``(1 - p, p)`` are then used), or one column per class (rows summing to 1).
    normalize : {"global", "centered", "standardize", "mean", None}, default="global"
        ``"global"`` divides the raw variance by the variance of all activations of the batch:
        invariant to a shift and a scale common to all neurons, so the network cannot lower it
        by moving or shrinking every activation, and one λ means the same for any backbone.
        ``"centered"`` first centres each neuron on its batch mean, so the incidence is
        :math:`m_c = \sum_i w_{ic} (h_i - \bar h)` with :math:`w_{ic} = p_{ic} / \sum_j p_{jc}`,
        and divides by the mean over neurons of their batch variances (the variance of all
        activations about their neuron's mean): invariant to any shift of each neuron and to a
        common scale, but not to a scale of each neuron; its part that does not depend on
        ``probabilities`` is gone, so constant probabilities give exactly zero.
        ``"standardize"`` first standardises each neuron over the batch (zero mean, unit
        variance): the centred form on standardised features, invariant to any shift and
        positive scale of each neuron too. ``"mean"`` divides each class's incidence by its
        mean absolute value (the squared coefficient of variation; invariant to a common scale
        only, so a common offset lowers it). ``None``
        uses the raw activations, the literal form of the paper's description (invariant to a
        common shift only, so shrinking the activations lowers it). The default was chosen on
        held-out evidence, in the user guide. No form is invariant to flattening the
        probabilities: the centred ones reach their minimum, zero, at constant probabilities
        (see ``detach_probabilities``).
    detach_probabilities : bool, default=False
        Use ``probabilities`` as constant weights (``probabilities.detach()``): no gradient
        flows into the predictions, so the penalty can only be lowered by changing the
        features, not by flattening or shrinking the predicted probabilities.
    eps : float, default=1e-8
        Added to denominators, so a class with (near) zero total probability in the batch, or
        a neuron that is constant over it, gives zero instead of NaN or inf.

    Returns
    -------
    torch.Tensor
        A scalar, differentiable with respect to ``features``, and to ``probabilities``
        unless ``detach_probabilities``.

    References
    ----------
    .. [1] Shoby, Palmer, Kurian, "Neuron Incidence Redistribution (NIR) for Fairness in
       Medical Image Classification", arXiv:2605.19393, 2026.

    Examples
    --------
    >>> import torch
    >>> from fairskl import nir_penalty
    >>> h = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    >>> float(nir_penalty(h, torch.tensor([0.9, 0.2])))  # even incidence: no penalty
    0.0
    >>> h = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # one neuron follows the class
    >>> round(float(nir_penalty(h, torch.tensor([0.9, 0.2]))), 4)
    0.5454
    >>> round(float(nir_penalty(10 * h + 5, torch.tensor([0.9, 0.2]))), 4)  # the head undoes it
    0.5454
    >>> h = torch.tensor([[3.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 2.0, 5.0]])
    >>> flat = torch.full((3,), 0.3)  # the same prediction for every sample
    >>> round(float(nir_penalty(h, flat, normalize="centered")), 10)  # zero up to rounding
    0.0
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}.")
    if features.ndim != 2:
        raise ValueError(
            f"features must be 2-D (n_samples, n_neurons), got shape {tuple(features.shape)}; "
            f"pool spatial maps first, e.g. features.mean(dim=(2, 3))."
        )
    if probabilities.ndim == 2 and probabilities.shape[1] == 1:
        probabilities = probabilities[:, 0]
    if probabilities.ndim == 1:
        probabilities = torch.stack([1 - probabilities, probabilities], dim=1)
    if probabilities.ndim != 2 or len(probabilities) != len(features):
        raise ValueError(
            f"probabilities must have shape (n_samples,) or (n_samples, n_classes) with "
            f"n_samples={len(features)} like features, got {tuple(probabilities.shape)}."
        )
    if detach_probabilities:
        probabilities = probabilities.detach()
    if normalize in ("centered", "standardize"):
        features = features - features.mean(dim=0, keepdim=True)
        variances = features.square().mean(dim=0, keepdim=True)  # per neuron, over the batch
        if normalize == "standardize":
            features = features / (variances + eps).sqrt()
    weights = probabilities / (probabilities.sum(dim=0, keepdim=True) + eps)  # (N, C)
    incidence = weights.T.to(features.dtype) @ features  # (C, D)
    if normalize == "mean":
        incidence = incidence / (incidence.abs().mean(dim=1, keepdim=True) + eps)
    penalty = incidence.var(dim=1, unbiased=False).mean()
    if normalize == "global":
        penalty = penalty / (features.var(unbiased=False) + eps)
    elif normalize == "centered":  # not the raw variance: a per-neuron shift would inflate it
        penalty = penalty / (variances.mean() + eps)
    return penalty


@fill_doc(shared=SHARED_PARAMETERS, attributes=SHARED_ATTRIBUTES)
class NIRClassifier(_RegularizedClassifier):
    """Image (or tabular) classifier trained with the NIR fairness regulariser.

    A skorch :class:`~skorch.classifier.NeuralNetClassifier` whose loss is the cross-entropy plus
    ``lambda_nir`` times :func:`nir_penalty` of each batch (skorch's ``RegularizedNet`` pattern).
    The penalty spreads the probability-weighted incidence of the penultimate neurons; it needs
    no demographic labels, so ``fit`` never sees sensitive features — route them to fairness
    scorers instead (:func:`~fairskl.metrics.make_fairness_scorer`). See the
    :ref:`user guide <nir>` for the equations, and :ref:`mitigations` for the methods to
    compare it with.

    The network has one logit per class (softmax cross-entropy; for two classes this is the
    same model as one sigmoid output).

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="resnet18"
        A torchvision classification model by name (its classifier is replaced by a linear
        head sized from the data, its first convolution adapted to the number of channels),
        ``"timm:<name>"`` for a `timm <https://huggingface.co/docs/timm>`_ model such as
        ``"timm:convnext_tiny"`` or ``"timm:vit_small_patch16_224"`` (needs
        ``pip install 'fairskl[timm]'``; its pooled features are the penultimate ones;
        ``weights`` is None, ``"pretrained"``, a timm tag such as ``"augreg_in21k"``, or a
        local state_dict path; see the :ref:`user guide <nir-backbones>`),
        ``"small_cnn"`` (three conv blocks, 64 penultimate neurons: fast on a CPU for images
        of 16–64 pixels), ``"mlp"`` for 2-D tabular X, or a module whose ``forward`` returns
        ``(logits, penultimate)``.
    lambda_nir : float, default=0.1
        Weight λ ≥ 0 of the NIR penalty; 0 gives the plain classifier.
    nir_normalize : {"global", "centered", "standardize", "mean", None}, default="global"
        Passed to :func:`nir_penalty` as ``normalize``: which changes of the penultimate
        features the penalty ignores (see the :ref:`user guide <nir-invariance>`).
    nir_detach : bool, default=True
        Passed to :func:`nir_penalty` as ``detach_probabilities``: the predicted probabilities
        only weight the incidence, and no gradient of the penalty flows into them, so the
        network cannot lower it by pushing its predictions towards one class. The default
        since the held-out evidence at a matched operating point (see the :ref:`user guide
        <nir-invariance>`); ``False`` lets the gradient through p, as in a literal reading of
        the paper.
%(shared)s
    Attributes
    ----------
%(attributes)s    history_ : skorch History
        Per epoch ``train_loss`` (= ``train_ce`` + λ ``train_nir``), ``train_ce``,
        ``train_nir`` and, with a validation split, their ``valid_`` counterparts.

    See Also
    --------
    CVaRDROClassifier, JTTClassifier, SpectralDecouplingClassifier : Label-free baselines.
    GroupBalancedClassifier : Reweighting by group labels (a label-using reference).

    References
    ----------
    .. [1] Shoby, Palmer, Kurian, "Neuron Incidence Redistribution (NIR) for Fairness in
       Medical Image Classification", arXiv:2605.19393, 2026.

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl import NIRClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 5)).astype("float32")
    >>> y = np.where(X[:, 0] > 0, "malignant", "benign")
    >>> clf = NIRClassifier("mlp", lr=1e-2, max_epochs=20, random_state=0, verbose=0)
    >>> clf.fit(X, y).classes_.tolist()
    ['benign', 'malignant']
    >>> bool(clf.score(X, y) > 0.9)
    True
    >>> {"train_ce", "train_nir", "train_loss"} <= set(clf.history[-1])
    True
    """

    _loss_terms = ("ce", "nir")
    _strength_hint = " or lambda_nir"

    _parameter_constraints = {
        **_RegularizedClassifier._parameter_constraints,
        "lambda_nir": [Interval(numbers.Real, 0, None, closed="left")],
        "nir_normalize": [StrOptions({n for n in NORMALIZATIONS if n is not None}), None],
        "nir_detach": ["boolean"],
    }

    def __init__(self, backbone="resnet18", *, lambda_nir=0.1, nir_normalize="global",
                 nir_detach=True, **kwargs):
        super().__init__(backbone, **kwargs)
        self.lambda_nir = lambda_nir
        self.nir_normalize = nir_normalize
        self.nir_detach = nir_detach

    def regularized_loss(self, logits, features, losses, sample_weight):
        ce = losses.mean()
        probabilities = torch.softmax(logits, dim=1)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.lambda_nir != 0):
            nir = nir_penalty(features, probabilities, normalize=self.nir_normalize,
                              detach_probabilities=bool(self.nir_detach))
        return ce + self.lambda_nir * nir if self.lambda_nir else ce, {"ce": ce, "nir": nir}
