"""Networks for NIRClassifier: a torchvision or timm model, a small CNN or an MLP, as body and head.

The body returns the penultimate features (after global pooling); a linear head maps them to one
logit per class. Pretrained weights are loaded only when the user asks for them: a torchvision
weights name or timm's "pretrained" / a timm tag (which download to torch's or Hugging Face's
cache) or the path of a local state_dict. A pretrained body sees its inputs scaled as during its
pretraining (the weights' own mean and std), inside the network, so that a user passes images in
[0, 1] whatever the weights. timm is an optional dependency (``pip install 'fairskl[timm]'``).
"""

import difflib
import os

import numpy as np
import torch
from torch import nn

from fairskl._weights import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    is_path,
    load_state_dict,
    read_state_dict,
    weights_member,
)

#: ``backbone="timm:<name>"`` builds ``timm.create_model(<name>)``
TIMM_PREFIX = "timm:"


class InputNormalization(nn.Module):
    """``(X - mean) / std`` per channel, with the statistics as (saved) buffers."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32)[:, None, None])
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32)[:, None, None])

    def forward(self, X):
        return (X - self.mean) / self.std

    def extra_repr(self):
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


class NIRNetwork(nn.Module):
    """``forward(X) -> (logits, penultimate)``: input scaling, a feature body and a linear head.

    ``dropout`` (the backbone's own dropout before its classifier, if any) acts between the
    penultimate features and the head, so the features that the penalty sees are noise-free.
    """

    def __init__(self, body, n_features, n_classes, normalization=None, dropout=None):
        super().__init__()
        self.normalization = normalization or nn.Identity()
        self.body = body
        self.dropout = dropout or nn.Identity()
        self.head = nn.Linear(n_features, n_classes)

    def forward(self, X):
        features = self.body(self.normalization(X))
        return self.head(self.dropout(features)), features


class MLPBody(nn.Sequential):
    """Linear-ReLU layers for tabular data; the last hidden layer is the penultimate one."""

    def __init__(self, n_inputs, hidden_sizes=(64, 64)):
        layers, width = [], n_inputs
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        super().__init__(*layers)


class SmallCNNBody(nn.Sequential):
    """Three conv-BN-ReLU blocks (16, 32, 64 channels), max-pooling between, global average.

    A fast body for small images on a CPU (the studies' ``--scale small``); its 64 penultimate
    features follow a ReLU, so they are non-negative as the incidence analysis assumes.
    """

    def __init__(self, in_channels, widths=(16, 32, 64)):
        layers, width = [], in_channels
        for i, out in enumerate(widths):
            layers += [nn.Conv2d(width, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                       nn.ReLU()]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            width = out
        super().__init__(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def build_network(backbone, *, weights, input_shape, n_classes, hidden_sizes=(64, 64),
                  input_normalization="auto"):
    """An :class:`NIRNetwork` for images (torchvision or "timm:<name>" ``backbone``) or tabular
    data ("mlp").

    ``input_normalization``: "auto" scales the inputs as the pretrained ``weights`` expect (none
    for random weights), None never scales, a pair ``(mean, std)`` of per-channel sequences
    scales by those.
    """
    if len(input_shape) == 1:
        if backbone != "mlp":
            raise ValueError(
                f"X is 2-D (tabular, {input_shape[0]} features) but backbone={backbone!r} is an "
                f"image model; use backbone='mlp' for tabular data, or pass images N×C×H×W."
            )
        if weights is not None:
            raise ValueError(f"weights={weights!r} has no meaning for backbone='mlp'; use None.")
        body = MLPBody(input_shape[0], hidden_sizes)
        return NIRNetwork(body, hidden_sizes[-1], n_classes)
    if backbone == "mlp":
        raise ValueError(
            f"backbone='mlp' is for 2-D tabular X, but X has images of shape {input_shape}; use "
            f"an image model such as 'resnet18'."
        )
    if backbone == "small_cnn":
        stats = None if input_normalization == "auto" else input_normalization
        return NIRNetwork(_small_cnn_body(input_shape[0], weights), 64, n_classes,
                          _normalization(stats, input_shape[0]))
    if backbone.startswith(TIMM_PREFIX):
        body, n_features, stats = _timm_model(backbone, weights, input_shape)
        dropout = None  # timm's own (drop_rate=0 unless asked) stays inside the body
    else:
        body, stats = torchvision_model(backbone, weights)
        n_features, dropout = _drop_classifier(body, backbone)
        _adapt_input_channels(body, input_shape[0], backbone)
    if input_normalization != "auto":
        stats = input_normalization
    return NIRNetwork(body, n_features, n_classes, _normalization(stats, input_shape[0]), dropout)


def _small_cnn_body(in_channels, weights):
    """A :class:`SmallCNNBody`, random or with the local ``state_dict`` of one (e.g. the body
    pretrained on a source task by :func:`fairskl.experiments.pretrain_small_cnn`)."""
    body = SmallCNNBody(in_channels)
    if weights is None:
        return body
    if not is_path(weights):
        raise ValueError(f"weights={weights!r}: backbone='small_cnn' has no named pretrained "
                         f"weights; use None, the path of a SmallCNNBody state_dict, or a "
                         f"torchvision backbone such as 'resnet18'.")
    try:
        body.load_state_dict(read_state_dict(weights))
    except (RuntimeError, KeyError, OSError) as error:
        raise ValueError(f"weights={os.fspath(weights)!r} is not a state_dict of a "
                         f"SmallCNNBody with {in_channels} input channels ({error}).") from None
    return body


def _normalization(stats, in_channels):
    """InputNormalization for ``in_channels`` from RGB (or per-channel) ``(mean, std)``."""
    if stats is None:
        return None
    try:
        mean, std = (np.asarray(v, dtype=float).ravel() for v in stats)
    except (TypeError, ValueError):
        raise ValueError(f"input_normalization must be 'auto', None or a pair (mean, std) of "
                         f"per-channel sequences, got {stats!r}.") from None
    if len(mean) == 3 and in_channels != 3:  # RGB statistics for grey (or other) inputs
        mean, std = np.full(in_channels, mean.mean()), np.full(in_channels, std.mean())
    if len(mean) != in_channels or len(std) != in_channels or not (std > 0).all():
        raise ValueError(f"input_normalization=(mean, std) needs {in_channels} values each "
                         f"(one per channel of X), std > 0; got mean={mean.tolist()}, "
                         f"std={std.tolist()}.")
    return InputNormalization(mean, std)


def torchvision_model(name, weights):
    """The torchvision model and the (mean, std) its weights expect (None for random ones).

    ``weights``: None, a weights name of the model (``"DEFAULT"`` or e.g. ``"IMAGENET1K_V1"``:
    torchvision downloads it once, to torch's cache) or the path of a local ``state_dict``.
    """
    import torchvision

    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        raise ValueError(
            f"backbone={name!r} is not a torchvision classification model; choose among e.g. "
            f"'resnet18', 'resnet50', 'densenet121', 'efficientnet_b0', 'mlp' (tabular), or pass "
            f"an nn.Module whose forward returns (logits, penultimate)."
        )
    if weights is None:
        return torchvision.models.get_model(name, weights=None), None
    if is_path(weights):
        model = torchvision.models.get_model(name, weights=None)
        load_state_dict(
            model, read_state_dict(weights),
            f"weights={str(weights)!r} is not a state_dict of torchvision's {name!r}",
            "Save one with torch.save(model.state_dict(), path).",
        )
        return model, (IMAGENET_MEAN, IMAGENET_STD)  # torchvision's weights are ImageNet's
    enum = torchvision.models.get_model_weights(name)
    resolved = weights_member(enum, weights)
    if resolved is None:
        raise ValueError(
            f"weights={weights!r} is neither a path to an existing file nor a weights name of "
            f"{name!r}; choose None, 'DEFAULT', one of {[w.name for w in enum]}, or a local "
            f"state_dict path."
        )
    model = torchvision.models.get_model(name, weights=resolved)  # downloads once, to torch's cache
    preprocess = resolved.transforms()
    return model, (preprocess.mean, preprocess.std)


def _timm_model(backbone, weights, input_shape):
    """The timm model without classifier, its feature width and the (mean, std) of its weights.

    With ``num_classes=0`` timm's model returns the pooled penultimate features (its
    ``forward_features`` and the pooling of its head). timm adapts the first convolution to the
    channels of X (``in_chans``) and, for models of a fixed input size (ViT), the position
    embeddings to X's image size.
    """
    try:
        import timm
    except ImportError:
        raise ImportError(f"backbone={backbone!r} needs timm, an optional dependency of fairskl; "
                          f"install it with: pip install 'fairskl[timm]'") from None
    name = backbone.removeprefix(TIMM_PREFIX)
    arch, tag = timm.models.split_model_name_tag(name)
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=3)
        raise ValueError(
            f"backbone={backbone!r}: timm has no model {arch!r}"
            + (f" (did you mean {', '.join(map(repr, close))}?)" if close else "")
            + "; find names with timm.list_models('*vit*'), and those with pretrained weights "
            "with timm.list_pretrained('resnet50*')."
        )
    path = weights if weights is not None and is_path(weights) else None
    if weights is not None and path is None and weights != "pretrained":
        if tag:
            raise ValueError(f"weights={weights!r} and the tag of backbone={backbone!r} both "
                             f"name weights; give the tag once, e.g. weights='pretrained'.")
        name, tag = f"{arch}.{weights}", weights
    if tag and name not in timm.list_pretrained(f"{arch}.*"):
        raise ValueError(
            f"{tag!r} is not a pretrained tag of timm's {arch!r}; choose among "
            f"{[n.partition('.')[2] for n in timm.list_pretrained(f'{arch}.*')]}, "
            f"'pretrained' (the default tag), None or a local state_dict path."
        )
    kwargs = {"num_classes": 0, "in_chans": input_shape[0]}
    config = timm.models.get_pretrained_cfg(name)
    if config is not None and config.fixed_input_size \
            and tuple(config.input_size[1:]) != tuple(input_shape[1:]):
        kwargs["img_size"] = tuple(input_shape[1:])
    if path is not None:  # timm's own loader: safetensors, in_chans, position embeddings
        if not os.path.isfile(path):
            raise FileNotFoundError(f"weights={os.fspath(path)!r}: no such file; give the path "
                                    f"of a state_dict of timm's {name!r}.")
        kwargs["pretrained_cfg_overlay"] = {"file": os.fspath(path)}
    try:  # "pretrained" or a tag: downloads once, to Hugging Face's cache
        model = timm.create_model(name, pretrained=weights is not None, **kwargs)
        if path is not None:
            _check_timm_keys(model, timm.models.load_state_dict(os.fspath(path)))
    except (RuntimeError, ValueError) as error:
        if path is None:
            raise
        raise ValueError(
            f"weights={os.fspath(path)!r} is not a state_dict of timm's {name!r} ({error}). "
            f"Save one with torch.save(timm.create_model({name!r}).state_dict(), path)."
        ) from error
    # timm >= 1.0: the width of the pooled output, after a pre-logits layer if the model has one
    n_features = getattr(model, "head_hidden_size", None) or model.num_features
    stats = None if weights is None else (model.pretrained_cfg["mean"],
                                          model.pretrained_cfg["std"])
    return model, n_features, stats


def _check_timm_keys(model, state):
    """Raise if ``state`` (less the pretrained classifier) does not name the model's tensors.

    timm loads a checkpoint non-strictly when it drops the classifier: a wrong file would
    otherwise leave the model silently at its random weights.
    """
    classifier = model.pretrained_cfg.get("classifier") or ()
    classifier = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    given = {key for key in state if key.rpartition(".")[0] not in classifier}
    expected = set(model.state_dict())
    if given != expected:
        def some(keys):
            keys = sorted(keys)
            return f"{keys[:5]}{' and more' if len(keys) > 5 else ''}"
        raise ValueError(f"missing keys {some(expected - given)}, "
                         f"unexpected keys {some(given - expected)}")


def _drop_classifier(model, name):
    """Remove the last Linear layer (the ImageNet classifier) and the dropout just before it.

    Returns the classifier's input width and that dropout (None if there is none; EfficientNet,
    MobileNet and VGG have one), which the caller puts between the features and the new head.
    """
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"backbone {name!r} has no Linear classifier to replace.")
    parent, _, child = linears[-1].rpartition(".")
    owner = model.get_submodule(parent) if parent else model
    n_features = getattr(owner, child).in_features
    setattr(owner, child, nn.Identity())
    dropout = None
    if isinstance(owner, nn.Sequential):
        names = list(owner._modules)
        position = names.index(child)
        if position > 0 and isinstance(owner[position - 1], nn.Dropout):
            dropout = owner[position - 1]
            dropout.inplace = False  # MobileNet's is in place: it would overwrite the features
            setattr(owner, names[position - 1], nn.Identity())
    return n_features, dropout


def _adapt_input_channels(model, in_channels, name):
    """Give the first convolution ``in_channels`` inputs (its RGB filters averaged)."""
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"backbone {name!r} has no Conv2d input layer.")
    parent, _, child = convs[0].rpartition(".")
    owner = model.get_submodule(parent) if parent else model
    conv = getattr(owner, child)
    if conv.in_channels == in_channels:
        return
    new = nn.Conv2d(
        in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
        conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode,
    )
    with torch.no_grad():
        new.weight.copy_(conv.weight.mean(dim=1, keepdim=True).expand_as(new.weight))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    setattr(owner, child, new)
