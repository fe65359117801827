"""A small baseline CNN for image classification, as a skorch NeuralNetClassifier."""

import math
import numbers

import numpy as np
import torch
from sklearn.utils import check_random_state
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from torch import nn

__all__ = ["make_baseline_cnn"]


class _BaselineCNN(nn.Module):
    """Conv-BN-ReLU-max-pool blocks, global average pooling and a linear head.

    The first convolution is lazy (:class:`torch.nn.LazyConv2d`): its number of input channels
    is read from the first batch, so the same module takes grey, RGB or any other number of
    channels. Three blocks halve the side three times, so images need a side of at least 8;
    :func:`make_baseline_cnn` documents 16 as the smallest size it is tested with.

    Parameters
    ----------
    channels : tuple of int, default=(16, 32, 64)
        Output channels of the successive blocks.

    n_classes : int, default=2
        Number of output logits.
    """

    def __init__(self, channels=(16, 32, 64), n_classes=2):
        super().__init__()
        layers = []
        for i, out in enumerate(channels):
            conv = (
                nn.LazyConv2d(out, 3, padding=1, bias=False)
                if i == 0
                else nn.Conv2d(channels[i - 1], out, 3, padding=1, bias=False)
            )
            layers += [conv, nn.BatchNorm2d(out), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels[-1], n_classes)
        )

    def forward(self, X):
        return self.head(self.features(X))


class _CosineDecay(Callback):
    """Set the learning rate of epoch e (0-based) of each fit to lr * (1 + cos(pi e / E)) / 2.

    E is the net's ``max_epochs``, read at every fit, so ``set_params(max_epochs=...)`` keeps
    the schedule right. Ending each fit at a small learning rate gives a stable final network,
    whose calibration, and so its error rates at a threshold, does not depend on the last few
    noisy Adam steps.
    """

    def on_train_begin(self, net, **kwargs):
        self.first_epoch_ = len(net.history)

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history) - 1 - self.first_epoch_  # the row of this epoch already exists
        lr = net.lr * 0.5 * (1 + math.cos(math.pi * epoch / net.max_epochs))
        for group in net.optimizer_.param_groups:
            group["lr"] = lr


class _BaselineNetClassifier(NeuralNetClassifier):
    """NeuralNetClassifier that seeds torch before initialising its module, with cosine decay.

    ``random_state`` is an ordinary hyperparameter (``get_params``, ``set_params``, ``clone``);
    seeding in the documented ``initialize_module`` hook makes the weights, the lazy first
    layer and the shuffling of the batches reproducible for every ``fit``. The default
    callbacks gain ``"cosine_decay"`` (switch it off with ``callbacks__cosine_decay=None``).
    """

    def __init__(self, *args, random_state=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.random_state = random_state

    def get_default_callbacks(self):
        return [*super().get_default_callbacks(), ("cosine_decay", _CosineDecay())]

    def initialize_module(self):
        if self.random_state is not None:
            if isinstance(self.random_state, numbers.Integral):
                seed = int(self.random_state)
            else:  # a RandomState instance: draw the seed from it
                seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            torch.manual_seed(seed)
        return super().initialize_module()


def make_baseline_cnn(
    *,
    max_epochs=10,
    lr=1e-3,
    batch_size=64,
    device="cpu",
    random_state=None,
    verbose=0,
    **kwargs,
):
    """Make a small CNN classifier for images, ready to ``fit`` like any scikit-learn estimator.

    The network has three blocks of 3x3 convolution, batch normalisation, ReLU and 2x2 max
    pooling (16, 32 and 64 channels), global average pooling and a linear layer to the logits of
    two classes. It is trained with :class:`torch.nn.CrossEntropyLoss` and Adam on all the data
    (``train_split=None``), shuffling the batches, with a learning rate that decays from ``lr``
    to 0 along a half cosine over the ``max_epochs`` of each fit: the fitted network does not
    depend on the last few noisy steps, so its error rates at a threshold, and their gaps
    between groups, are stable from one fit to the next. The first convolution reads the number of
    input channels from the data, so it works on float32 arrays of shape (n_samples, channels,
    height, width) with any number of channels and a side of at least 16 pixels, such as the
    images of :func:`fairskl.datasets.make_skin_lesions`.

    Parameters
    ----------
    max_epochs : int, default=10
        Number of passes over the training data.

    lr : float, default=1e-3
        Initial learning rate of Adam (see the cosine decay above; switch the decay off with
        ``callbacks__cosine_decay=None``).

    batch_size : int, default=64
        Mini-batch size for training and prediction.

    device : str or torch.device, default="cpu"
        Device to train on, e.g. "cuda".

    random_state : int, RandomState instance or None, default=None
        Seed of torch's global generator, set before the module is initialised at every
        ``fit``: an int makes the weights, the batch order and so the fitted network
        reproducible (on the CPU; GPU kernels may add nondeterminism). None leaves torch's
        generator as it is.

    verbose : int, default=0
        0 prints nothing; 1 prints skorch's table of the training loss per epoch.

    **kwargs
        Further parameters of :class:`skorch.NeuralNetClassifier`, e.g. ``module__channels=(8,
        16, 32)``, ``optimizer__weight_decay=1e-4`` or ``callbacks=[...]`` (added to skorch's
        default callbacks and the cosine decay); they override the defaults above.

    Returns
    -------
    net : skorch.NeuralNetClassifier
        An unfitted classifier with ``fit``, ``predict``, ``predict_proba`` (softmax of the
        logits) and ``random_state`` among its parameters; it can be cloned, cross-validated
        and grid-searched like any scikit-learn estimator. ``y`` must be integer class labels
        0..n_classes-1 (int64).

    See Also
    --------
    fairskl.datasets.make_skin_lesions : Synthetic images to train it on.

    Examples
    --------
    >>> from fairskl.datasets import make_skin_lesions
    >>> from fairskl.experiments import make_baseline_cnn
    >>> X, y = make_skin_lesions(n_samples=32, image_size=16, return_X_y=True, random_state=0)
    >>> net = make_baseline_cnn(max_epochs=1, batch_size=16, random_state=0)
    >>> net = net.fit(X, y)
    >>> net.predict_proba(X).shape
    (32, 2)
    """
    params = {
        "module": _BaselineCNN,
        "criterion": nn.CrossEntropyLoss,
        "optimizer": torch.optim.Adam,
        "max_epochs": max_epochs,
        "lr": lr,
        "batch_size": batch_size,
        "train_split": None,
        "iterator_train__shuffle": True,
        "device": device,
        "verbose": verbose,
        "random_state": random_state,
    }
    params.update(kwargs)
    return _BaselineNetClassifier(**params)
