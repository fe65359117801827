"""VGG19 perceptual (feature) loss for PerceptualVAE, and the resolution of its weights.

The loss compares the pre-ReLU outputs of the 16 convolutional layers of torchvision's
``vgg19().features`` for a reconstruction and its input. The VGG is a fixed function of its
weights: frozen, always in eval mode, and not a submodule of anything, so it is never trained,
never in an optimizer, and never in a ``state_dict``. Weights are read only where the user
asks: a torchvision weights name (downloaded once to torch's cache) or a local ``state_dict``.
"""

import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from fairskl._weights import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    is_path,
    load_state_dict,
    read_state_dict,
    weights_member,
)

__all__ = ["PerceptualLoss", "vgg19_features"]

N_CONV = 16  # convolutional layers of VGG19
LAYER_REDUCTIONS = ("mean", "half_sum")
_RANDOM_SEED = 0  # the random VGG19 of perceptual_weights=None is always the same one


def vgg19_features(weights=None):
    """``vgg19().features`` up to and including its 16th (last) conv layer, frozen, in eval mode.

    Parameters
    ----------
    weights : None, str or path-like, default=None
        None: torchvision's random initialisation, drawn from a fixed seed (the same network
        every time, without touching torch's global random state). ``"IMAGENET1K_V1"`` or
        ``"DEFAULT"``: torchvision's ImageNet weights (downloaded once to torch's cache). A
        path: a local ``state_dict`` of ``torchvision.models.vgg19`` (the classifier's keys are
        ignored) or of its ``features``.

    Returns
    -------
    torch.nn.Sequential
        The layers; its ReLUs are not in-place, so the conv outputs stay pre-activation.

    Examples
    --------
    >>> from fairskl._perceptual import vgg19_features
    >>> features = vgg19_features(None)
    >>> sum(isinstance(m, torch.nn.Conv2d) for m in features), len(features)
    (16, 35)
    """
    from torchvision.models import vgg

    layers = vgg.make_layers(vgg.cfgs["E"], batch_norm=False)  # VGG19's features, no classifier
    last_conv = max(i for i, layer in enumerate(layers) if isinstance(layer, nn.Conv2d))
    features = nn.Sequential(*list(layers)[: last_conv + 1])  # nothing after the last conv
    if weights is None:
        generator = torch.Generator().manual_seed(_RANDOM_SEED)
        for layer in features:
            if isinstance(layer, nn.Conv2d):  # torchvision's own initialisation of VGG
                nn.init.kaiming_normal_(
                    layer.weight, mode="fan_out", nonlinearity="relu", generator=generator
                )
                nn.init.zeros_(layer.bias)
    else:
        _load_state(features, _resolve_state_dict(weights), weights)
    for layer in features:
        if isinstance(layer, nn.ReLU):
            layer.inplace = False  # an in-place ReLU would overwrite the pre-ReLU conv output
    return features.requires_grad_(False).eval()


def _resolve_state_dict(weights):
    """The VGG19 ``state_dict`` of a local file or of a torchvision weights name."""
    if is_path(weights):
        if not Path(weights).is_file():
            raise ValueError(
                f"perceptual_weights={str(weights)!r} is not an existing file. Save VGG19 "
                f"weights with torch.save(torchvision.models.vgg19(...).state_dict(), path), "
                f"or pass None (random VGG19) or 'IMAGENET1K_V1'."
            )
        return read_state_dict(weights)
    from torchvision.models import VGG19_Weights

    resolved = weights_member(VGG19_Weights, weights)
    if resolved is None:
        raise ValueError(
            f"perceptual_weights={weights!r} is neither a path to an existing file nor a VGG19 "
            f"weights name; choose None, 'DEFAULT', one of {[w.name for w in VGG19_Weights]}, "
            f"or the path of a local state_dict."
        )
    return resolved.get_state_dict(progress=False)  # downloads once, to torch's cache


def _load_state(features, state, weights):
    """Load the convolutions of a ``vgg19`` (or of its ``features``) ``state`` into
    ``features``; the keys of the classifier and of layers past the last conv are dropped."""
    if any(key.startswith("features.") for key in state):
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    state = {k: v for k, v in state.items() if k.split(".")[0].isdigit()
             and int(k.split(".")[0]) < len(features)}
    load_state_dict(
        features, state,
        f"perceptual_weights={str(weights)!r} is not a state_dict of torchvision's vgg19",
        "Save one with torch.save(torchvision.models.vgg19().state_dict(), path).",
    )


class PerceptualLoss(nn.Module):
    r"""Squared difference of VGG19 features at its 16 conv layers (pre-ReLU), equally weighted.

    With ``layer_reduction="mean"`` (the reference implementation of the study, the default)

    .. math::

       \mathcal{L}_\mathrm{perc}(\hat x, x) = \frac{1}{16} \sum_{l=1}^{16}
       \frac{1}{N C_l H_l W_l} \bigl\lVert \phi_l(\hat x) - \phi_l(x) \bigr\rVert_2^2,

    where :math:`\phi_l` is the pre-ReLU output of the :math:`l`-th conv layer: a mean over
    the elements of each layer, summed over the layers and divided by 16. With
    ``layer_reduction="half_sum"`` (the paper's Eq. 2) each layer's term is
    :math:`\frac{1}{2 N C_l H_l W_l}\lVert\cdot\rVert^2` and the 16 terms are summed: 8 times
    the ``"mean"`` value. The images, in [-1, 1], go into the VGG as they are (as in the
    reference), or, with ``imagenet_normalization=True``, mapped to [0, 1] and normalised with
    ImageNet's channel means and standard deviations (torchvision's preprocessing of these
    weights). The forward pass stops after the last conv layer; the target's features are
    computed without gradient. See the :ref:`user guide <vae>` for why these are the defaults.

    The VGG is held outside the module tree: it has no parameters in :meth:`parameters` nor
    keys in :meth:`state_dict`, :meth:`train` cannot switch it out of eval mode, and pickling
    drops it (it is rebuilt from ``weights`` on the next use: the same network for None, the
    file or torch's cache otherwise). :meth:`to` and friends move it with the module.

    Parameters
    ----------
    weights : None, str or path-like, default=None
        As in :func:`vgg19_features`. None warns that a random VGG19 is not the setting of the
        study that used this loss (ImageNet weights).
    imagenet_normalization : bool, default=False
        Feed the VGG ImageNet-normalised [0, 1] images instead of the [-1, 1] images.
    layer_reduction : {"mean", "half_sum"}, default="mean"
        How the 16 per-layer mean squared differences are combined: their mean (reference
        implementation) or half their sum (the paper's Eq. 2).

    Examples
    --------
    >>> import torch, warnings
    >>> from fairskl._perceptual import PerceptualLoss
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     loss = PerceptualLoss(None)
    ...     x = torch.rand(2, 3, 32, 32) * 2 - 1
    ...     float(loss(x, x)), bool(loss(x, -x) > 0)
    (0.0, True)
    >>> len(loss.state_dict()), len(list(loss.parameters()))
    (0, 0)
    """

    def __init__(self, weights=None, imagenet_normalization=False, layer_reduction="mean"):
        super().__init__()
        if layer_reduction not in LAYER_REDUCTIONS:
            raise ValueError(f"layer_reduction must be one of {LAYER_REDUCTIONS}, got "
                             f"{layer_reduction!r}.")
        self.weights = weights
        self.imagenet_normalization = bool(imagenet_normalization)
        self.layer_reduction = layer_reduction
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)
        object.__setattr__(self, "_vgg", None)  # not a submodule: see the class docstring

    @property
    def features(self):
        """The frozen VGG19 layers (built on first access)."""
        if self._vgg is None:
            if self.weights is None:
                warnings.warn(
                    "perceptual_weights=None: the perceptual loss uses a fixed, randomly "
                    "initialised VGG19, not the ImageNet-trained VGG19 of the study. Pass "
                    "perceptual_weights='IMAGENET1K_V1' (downloads once) or the path of a "
                    "local VGG19 state_dict for the study's setting.",
                    UserWarning,
                    stacklevel=3,
                )
            vgg = vgg19_features(self.weights).to(self.mean.device)
            object.__setattr__(self, "_vgg", vgg)
        return self._vgg

    def train(self, mode=True):
        return super().train(False)  # a fixed function: always in eval mode

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        if self._vgg is not None:
            self._vgg._apply(fn, recurse)
        return self

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_vgg"] = None  # a function of `weights`: rebuilt on use, not pickled
        return state

    def feature_maps(self, x):
        """The 16 pre-ReLU conv outputs for images ``x`` in [-1, 1] (ImageNet-normalised
        first with ``imagenet_normalization``)."""
        if x.shape[1] != 3:
            raise ValueError(
                f"The VGG19 perceptual loss needs RGB images (3 channels), got {x.shape[1]}. "
                f"Use perceptual_weight=0 for other images."
            )
        if self.imagenet_normalization:
            x = ((x + 1) / 2 - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        maps = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.Conv2d):
                maps.append(x)
        return maps

    def forward(self, reconstruction, target):
        with torch.no_grad():
            target_maps = self.feature_maps(target)
        terms = [
            F.mse_loss(a.float(), b.float())
            for a, b in zip(self.feature_maps(reconstruction), target_maps, strict=True)
        ]
        if self.layer_reduction == "half_sum":  # the paper's Eq. 2: sum_l ||.||^2 / (2 C H W)
            return torch.stack(terms).sum() / 2
        return torch.stack(terms).sum() / N_CONV  # the reference: sum_l mean_l / 16
