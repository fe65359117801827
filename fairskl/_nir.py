"""Neuron Incidence Redistribution (NIR): the penalty on penultimate-layer neuron incidence."""

import torch

__all__ = ["nir_penalty"]

NORMALIZATIONS = ("mean", None)


def nir_penalty(features, probabilities, *, normalize="mean", eps=1e-8):
    r"""The NIR penalty: variance across neurons of the probability-weighted mean activations.

    For a batch with penultimate features :math:`h_i \in \mathbb{R}^D` and predicted class
    probabilities :math:`p_{ic}`, the *incidence* of class :math:`c` on the neurons is

    .. math:: m_c = \frac{\sum_i p_{ic} h_i}{\sum_i p_{ic} + \epsilon} \in \mathbb{R}^D,

    and the penalty is the population variance of :math:`m_c` across the :math:`D` neurons,
    averaged over the classes. With ``normalize="mean"`` each :math:`m_c` is first divided by
    its mean absolute value, so the penalty is the squared coefficient of variation: it does not
    change when all activations are scaled, the network cannot lower it by shrinking them, and
    one λ means the same for any backbone. A few dominant neurons give a large penalty; an
    even incidence gives zero. See the :ref:`user guide <nir>` for why these choices.

    Parameters
    ----------
    features : torch.Tensor of shape (n_samples, n_neurons)
        Penultimate activations, after global pooling.
    probabilities : torch.Tensor of shape (n_samples,) or (n_samples, n_classes)
        Predicted probabilities: of the positive class for a single sigmoid output (the
        columns ``(1 - p, p)`` are then used), or one column per class (rows summing to 1).
    normalize : {"mean", None}, default="mean"
        ``"mean"`` divides each class's incidence by its mean absolute value (scale-free);
        ``None`` uses the raw activations, the literal form of the paper's description.
    eps : float, default=1e-8
        Added to denominators, so a class with (near) zero total probability in the batch gives
        a zero incidence instead of NaN or inf.

    Returns
    -------
    torch.Tensor
        A scalar, differentiable with respect to ``features`` and ``probabilities``.

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
    >>> h = torch.tensor([[3.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    >>> round(float(nir_penalty(h, torch.tensor([0.9, 0.2]))), 4)  # one dominant neuron
    2.0
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
    weights = probabilities / (probabilities.sum(dim=0, keepdim=True) + eps)  # (N, C)
    incidence = weights.T.to(features.dtype) @ features  # (C, D)
    if normalize == "mean":
        incidence = incidence / (incidence.abs().mean(dim=1, keepdim=True) + eps)
    return incidence.var(dim=1, unbiased=False).mean()
