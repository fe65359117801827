"""Pretrained weights as fairskl's networks take them: a name or the path of a local file.

A ``weights`` parameter (the classifiers' ``weights``, PerceptualVAE's ``perceptual_weights``)
is None (random weights), the name of a member of a torchvision weights enum (``"DEFAULT"`` for
its default; torchvision downloads it once, to torch's cache, and only when it is used), or the
path of a ``state_dict`` saved with ``torch.save``. These helpers tell a path from a name, read a
local file and resolve a name; the callers build their networks and word their errors.
"""

import os
from pathlib import Path

import torch

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "is_path",
    "load_state_dict",
    "read_state_dict",
    "weights_member",
]

#: the per-channel statistics torchvision's ImageNet weights were trained with
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def is_path(weights):
    """Whether ``weights`` is the path of a local file rather than a weights name.

    A path-like object always is; a string is when it names an existing file or directory or
    contains a path separator, so that a mistyped path is not taken for a weights name.
    """
    return isinstance(weights, os.PathLike) or (
        isinstance(weights, str) and (Path(weights).exists() or os.sep in weights)
    )


def read_state_dict(path):
    """The ``state_dict`` saved at ``path`` with ``torch.save``, on the CPU, tensors only."""
    return torch.load(path, map_location="cpu", weights_only=True)


def weights_member(enum, name):
    """The member of the torchvision weights ``enum`` called ``name``, or None if none is.

    ``"DEFAULT"`` is the enum's default (e.g. ``ResNet18_Weights.IMAGENET1K_V1``).
    """
    try:
        return enum.DEFAULT if name == "DEFAULT" else enum[name]
    except KeyError:
        return None


def load_state_dict(module, state, problem, fix=""):
    """Load ``state`` into ``module``, or raise a ValueError if it does not fit.

    Parameters
    ----------
    module : torch.nn.Module
    state : dict
        The ``state_dict`` to load (strictly: every key of ``module`` and no other).
    problem : str
        The start of the message, naming what was given, e.g. ``"weights='r.pth' is not a
        state_dict of torchvision's 'resnet34'"``; torch's error follows it in parentheses.
    fix : str, default=""
        The end of the message: how to fix it.
    """
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{problem} ({error}).{f' {fix}' if fix else ''}") from error
