"""PerceptualVAE: a residual CNN-VAE with a VGG19 perceptual loss, as a scikit-learn transformer."""

import numbers
import os
from collections.abc import Mapping

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted
from skorch import NeuralNet
from skorch.callbacks import Callback, GradientNormClipping, PassthroughScoring
from torch import nn
from torch.nn import functional as F

from fairskl._base import dataset_first_input, image_files, is_training_split
from fairskl._constraints import SEED
from fairskl._io import atomic_path
from fairskl._parallel import limit_torch_threads
from fairskl._perceptual import LAYER_REDUCTIONS, PerceptualLoss
from fairskl._training import TrainingMixin
from fairskl.datasets._cache import RESIZE_MODES
from fairskl.datasets._files import is_path_sequence
from fairskl.model_selection._split import encode_groups

__all__ = ["PerceptualVAE", "ReconstructionGrid", "ResidualVAE"]

NORMS = ("batch", "group")
LOSS_TERMS = ("mse", "kl", "perceptual")
#: the name of the gradient-clipping callback (skorch's GradientNormClipping) in ``callbacks_``
CLIPPING = "gradient_clipping"


# -- the torch modules -----------------------------------------------------------------------------


def _norm(kind, channels):
    if kind == "batch":
        return nn.BatchNorm2d(channels, eps=1e-4)
    return nn.GroupNorm(min(8, channels), channels, eps=1e-4)


class _PreActBlock(nn.Module):
    """Pre-activation residual block: norm → ELU → one 3×3 conv whose output is split into a
    skip part and a residual part; the residual goes norm → ELU → 3×3 conv; output = skip +
    residual. ``resample`` is "down" (stride-2 first conv), "up" (nearest ×2 before it) or
    None (the bottleneck block; identity skip when the width is unchanged)."""

    def __init__(self, channels_in, channels_out, resample=None, norm="batch"):
        super().__init__()
        self.resample = resample
        self.hidden = channels_out // 2 if resample == "down" else channels_in // 2
        self.identity_skip = resample is None and channels_in == channels_out
        skip_channels = 0 if self.identity_skip else channels_out
        self.norm1 = _norm(norm, channels_in)
        stride = 2 if resample == "down" else 1
        self.conv1 = nn.Conv2d(channels_in, self.hidden + skip_channels, 3, stride, 1)
        self.norm2 = _norm(norm, self.hidden)
        self.conv2 = nn.Conv2d(self.hidden, channels_out, 3, 1, 1)

    def forward(self, x):
        h = F.elu(self.norm1(x))
        if self.resample == "up":
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv1(h)
        residual, skip = h[:, : self.hidden], h[:, self.hidden:]
        if self.identity_skip:
            skip = x
        return skip + self.conv2(F.elu(self.norm2(residual)))


class ResidualVAE(nn.Module):
    """The residual CNN-VAE: ``forward(x) -> (reconstruction, mu, log_var)``.

    Encoder: 3×3 conv, ``n_stages`` down blocks doubling the width from ``channel_width``, a
    residual block, ELU, and two 1×1 convs for the mean and log-variance of a Gaussian over a
    spatial latent map ``latent_channels × (H / 2**n_stages)²``. The decoder mirrors it and
    ends with ELU, a 5×5 conv and tanh: images are in [-1, 1]. In training mode the latent is
    sampled (reparameterisation), in eval mode it is the mean.
    """

    def __init__(self, in_channels=3, latent_channels=64, channel_width=64, n_stages=3,
                 norm="batch"):
        super().__init__()
        widths = [channel_width * 2**s for s in range(n_stages + 1)]
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, 1),
            *[_PreActBlock(widths[s], widths[s + 1], "down", norm) for s in range(n_stages)],
            _PreActBlock(widths[-1], widths[-1], None, norm),
            nn.ELU(),
        )
        self.to_mu = nn.Conv2d(widths[-1], latent_channels, 1)
        self.to_log_var = nn.Conv2d(widths[-1], latent_channels, 1)
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, widths[-1], 1),
            _PreActBlock(widths[-1], widths[-1], None, norm),
            *[_PreActBlock(widths[s + 1], widths[s], "up", norm)
              for s in reversed(range(n_stages))],
            nn.ELU(),
            nn.Conv2d(widths[0], in_channels, 5, 1, 2),
            nn.Tanh(),
        )

    def encode(self, x):
        h = self.encoder(x)
        return self.to_mu(h), self.to_log_var(h)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        mu, log_var = self.encode(x)
        z = mu
        if self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        return self.decode(z), mu, log_var


# -- the estimator -------------------------------------------------------------------------------


class PerceptualVAE(ClassNamePrefixFeaturesOutMixin, TransformerMixin, TrainingMixin, NeuralNet):
    r"""Residual CNN-VAE with a VGG19 perceptual loss, as a scikit-learn transformer.

    The model of López-Pérez, Hauberg and Feragen's study of bias in dermatological image
    generation [1]_: a residual convolutional VAE (:class:`ResidualVAE`) with a spatial latent
    map, trained on

    .. math::

       \mathcal{L} = \mathrm{MSE}(\hat x, x) + \beta\, \mathrm{KL}
       + w\, \mathcal{L}_\mathrm{perc}(\hat x, x),

    every term a **mean**: MSE over all pixels and channels (images scaled to [-1, 1]), KL
    over all latent elements and samples, the perceptual loss over the elements of each of
    VGG19's 16 conv layers and then over the layers. The defaults are the choices of the
    study's reference implementation (LukeDitria/CNN-VAE): VGG inputs in [-1, 1] without
    ImageNet scaling, the 16 layer terms summed and divided by 16, gradients clipped at norm
    10, Adam with lr 1e-4. See the :ref:`user guide <vae>` for the equations, the effective KL
    weight these reductions imply, and a table of every choice against the reference.

    ``transform`` gives the flattened latent means (N × 4096 for the study's 64×64 images),
    ``latent_std`` the study's uncertainty statistic (mean posterior standard deviation of each
    image), ``score_samples`` the negative reconstruction MSE of each image on the [0, 1]
    scale of the input (4 times smaller than on the [-1, 1] scale of the loss and of the
    paper's numbers) — group it with :func:`fairskl.metrics.make_reconstruction_scorer`.

    Parameters
    ----------
    image_size : int or None, default=None
        Side of the square images, a power of two >= 32; None takes it from the data in
        ``fit``. Given, ``fit`` checks that the data have it, and **image paths** given as X
        (a list or array of file paths, e.g. a loader's ``return_paths=True`` images) are
        decoded to it by :class:`~fairskl.datasets.ImageFiles`, in the DataLoader's workers
        (``iterator_train__num_workers``, ``iterator_valid__num_workers``); paths need it.
    resize : {"squash", "crop"}, default="squash"
        How image paths are resized, as the loaders' ``resize``: the whole image to the
        square, or its short side to ``image_size`` and the centre square (the study's).
    latent_channels : int, default=64
        Channels of the latent map.
    channel_width : int, default=64
        Width of the first stage; stage ``s`` has ``channel_width * 2**s`` channels.
    n_stages : int, default=3
        Down (and up) blocks, each halving (doubling) the side: 64×64 images give an 8×8
        latent map.
    norm : {"batch", "group"}, default="batch"
        BatchNorm or GroupNorm (8 groups) in the residual blocks.
    beta : float, default=1.0
        Weight of the KL term.
    perceptual_weight : float, default=1.0
        Weight of the perceptual loss; 0 trains on MSE and KL only, without VGG.
    perceptual_weights : None, str or path-like, default=None
        Weights of the VGG19: None (a fixed random VGG19, with a warning: not the study's
        setting), ``"IMAGENET1K_V1"`` / ``"DEFAULT"`` (torchvision downloads them once), or
        the path of a local VGG19 ``state_dict``. Nothing is downloaded unless asked for.
    perceptual_imagenet_normalization : bool, default=False
        Feed the VGG ImageNet-normalised [0, 1] images (torchvision's preprocessing) instead
        of the [-1, 1] images, as the reference implementation does.
    perceptual_reduction : {"mean", "half_sum"}, default="mean"
        Combine the 16 per-layer mean squared feature differences by their mean (the reference
        implementation) or by half their sum (the paper's Eq. 2; 8 times larger).
    precision : {"float32", "bf16", "fp16"}, default="float32"
        ``"bf16"`` runs the VAE and the VGG under :func:`torch.autocast` with bfloat16 (CPU or
        CUDA); ``"fp16"`` (CUDA only) with float16 and a gradient scaler. Losses and outputs
        are float32.
    channels_last : bool, default=False
        Use the channels-last memory format for the module and the batches (can speed up
        convolutions, notably with ``"bf16"``).
    gradient_clip_norm : float or None, default=10.0
        Clip the gradient norm of the VAE's parameters to this value (after unscaling with
        ``"fp16"``), as the reference implementation does; None does not clip. skorch's
        ``GradientNormClipping`` callback clips, as ``callbacks_``'s ``"gradient_clipping"``
        (so ``callbacks="disable"`` switches the clipping off too).
    augment : None, "hflip", "hflip_crop" or callable, default=None
        Augmentation of the training batches, drawn anew every time an image is seen.
        ``"hflip"`` flips each image left-right with probability 0.5 (the reference
        implementation's ``RandomHorizontalFlip(0.5)``); ``"hflip_crop"`` flips, then crops
        80-100% of the image's area (aspect ratio 3/4 to 4/3) and resizes it back, as
        torchvision's ``RandomResizedCrop(size, scale=(0.8, 1.0))``; a callable, such as a
        ``torchvision.transforms.v2`` pipeline, is applied to **each image** of a batch, a
        (C, H, W) float tensor in [0, 1], and must return an image of the same shape. The
        draws come from torch's CPU generator, which ``random_state`` seeds, so a seeded fit
        is reproducible (the named augmentations draw the same on any device). Only training
        steps are augmented: a validation split, ``transform``, ``reconstruct``, the scores
        and ``latent_activity_`` see the images as given. None (the default) does not
        augment. The classifiers take the same values.
    checkpoint : None or path-like, default=None
        A directory that makes the fit resumable: after every epoch the network's
        parameters, the optimizer's (and gradient scaler's) state, the history and torch's
        random generators are saved there, atomically (skorch's ``Checkpoint``). A fit
        started again with the same directory (after the process was killed, say) loads the
        last saved epoch (skorch's ``LoadInitState``) and trains only the epochs left of
        ``max_epochs``; a fit that had ended is loaded as it ended and not trained further.
        One directory per fit. None saves nothing.
    random_state : int or None, default=None
        Seeds torch when the module is initialised: weights, batch order, the flips of
        ``augment`` and the latent samples of training are reproducible.
    optimizer, lr, max_epochs, batch_size, train_split, device, verbose, callbacks
        As in skorch; defaults of the study: Adam, 1e-4, 15 epochs, batches of 64; no
        validation split.
    **kwargs
        Any other skorch parameter (``iterator_train__shuffle``, ``optimizer__*`` …).

    Attributes
    ----------
    module_ : ResidualVAE
        The fitted network.
    criterion_ : PerceptualLoss
        The perceptual loss (its VGG is outside every ``state_dict``).
    input_shape_ : tuple of int
        ``(C, H, W)`` of the training images.
    latent_shape_ : tuple of int
        ``(latent_channels, H / 2**n_stages, W / 2**n_stages)``.
    n_features_in_ : int
        ``C * H * W``.
    latent_activity_ : ndarray of shape (latent size,)
        Variance over the training images of each latent element's posterior mean (the
        activity of Burda et al.).
    active_units_ : ndarray of bool of shape (latent size,)
        ``latent_activity_ > 0.01``: the elements the VAE uses (``uncertainty(kind=
        "active_latent_std")``).
    history_ : skorch History
        Per epoch ``train_loss`` and its terms ``train_mse``, ``train_kl``,
        ``train_perceptual`` (and ``valid_*`` with a validation split).

    See Also
    --------
    fairskl.metrics.make_reconstruction_scorer : Per-group reconstruction-error scorers.

    References
    ----------
    .. [1] López-Pérez, Hauberg, Feragen, "Are generative models fair? A study of racial bias
       in dermatological image generation", arXiv:2501.11752, 2025.

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl import PerceptualVAE
    >>> X = np.random.RandomState(0).uniform(size=(16, 3, 32, 32)).astype("float32")
    >>> vae = PerceptualVAE(channel_width=8, latent_channels=4, perceptual_weight=0,
    ...                     max_epochs=1, batch_size=8, random_state=0, verbose=0).fit(X)
    >>> vae.transform(X).shape  # 4 channels × 4 × 4
    (16, 64)
    >>> vae.reconstruct(X).shape, vae.sample(2, random_state=0).shape
    ((16, 3, 32, 32), (2, 3, 32, 32))
    >>> {"train_mse", "train_kl", "train_perceptual"} <= set(vae.history[-1])
    True
    """

    #: the range of the images it trains on (for TrainingMixin's augmentation)
    _image_range = (-1.0, 1.0)
    #: scikit-learn's rules for the parameters that are not skorch's
    _parameter_constraints = {
        **TrainingMixin._parameter_constraints,
        "image_size": [None, Interval(numbers.Integral, 32, None, closed="left")],
        "resize": [StrOptions(set(RESIZE_MODES))],
        "latent_channels": [Interval(numbers.Integral, 1, None, closed="left")],
        "channel_width": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_stages": [Interval(numbers.Integral, 1, None, closed="left")],
        "norm": [StrOptions(set(NORMS))],
        "beta": [Interval(numbers.Real, 0, None, closed="left")],
        "perceptual_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "perceptual_weights": [None, str, os.PathLike],
        "perceptual_imagenet_normalization": ["boolean"],
        "perceptual_reduction": [StrOptions(set(LAYER_REDUCTIONS))],
        "gradient_clip_norm": [None, Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": SEED,
    }

    def __init__(
        self,
        *,
        image_size=None,
        resize="squash",
        latent_channels=64,
        channel_width=64,
        n_stages=3,
        norm="batch",
        beta=1.0,
        perceptual_weight=1.0,
        perceptual_weights=None,
        perceptual_imagenet_normalization=False,
        perceptual_reduction="mean",
        precision="float32",
        channels_last=False,
        gradient_clip_norm=10.0,
        augment=None,
        checkpoint=None,
        random_state=None,
        criterion=PerceptualLoss,
        optimizer=torch.optim.Adam,
        lr=1e-4,
        max_epochs=15,
        batch_size=64,
        train_split=None,
        iterator_train__shuffle=True,
        **kwargs,
    ):
        super().__init__(
            module=ResidualVAE,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            iterator_train__shuffle=iterator_train__shuffle,
            **kwargs,
        )
        self.image_size = image_size
        self.resize = resize
        self.latent_channels = latent_channels
        self.channel_width = channel_width
        self.n_stages = n_stages
        self.norm = norm
        self.beta = beta
        self.perceptual_weight = perceptual_weight
        self.perceptual_weights = perceptual_weights
        self.perceptual_imagenet_normalization = perceptual_imagenet_normalization
        self.perceptual_reduction = perceptual_reduction
        self.precision = precision
        self.channels_last = channels_last
        self.gradient_clip_norm = gradient_clip_norm
        self.augment = augment
        self.checkpoint = checkpoint
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

    # -- skorch hooks --------------------------------------------------------------------------

    def initialize_module(self):
        limit_torch_threads()  # on a Dask worker: its share of the cores (see _parallel.py)
        if self.random_state is not None:
            torch.manual_seed(self.random_state)
        self.module_ = ResidualVAE(
            self.input_shape_[0], self.latent_channels, self.channel_width, self.n_stages,
            self.norm,
        )
        if self.channels_last:
            self.module_ = self.module_.to(memory_format=torch.channels_last)
        return self

    def initialize_criterion(self):
        kwargs = {"weights": self.perceptual_weights,
                  "imagenet_normalization": self.perceptual_imagenet_normalization,
                  "layer_reduction": self.perceptual_reduction,
                  **self.get_params_for("criterion")}
        self.criterion_ = self.initialized_instance(self.criterion, kwargs)
        self.criterion_ = self.criterion_.to(self.device)
        if self.perceptual_weight > 0 and isinstance(self.criterion_, PerceptualLoss):
            self.criterion_.features  # noqa: B018 - build the VGG now: bad weights fail early
        return self

    def get_all_learnable_params(self):
        yield from self.module_.named_parameters()  # the VGG of the loss is never trained

    def get_default_callbacks(self):
        callbacks = list(super().get_default_callbacks())
        extra = [
            (f"{prefix}_{term}", PassthroughScoring(name=f"{prefix}_{term}",
                                                    on_train=prefix == "train"))
            for prefix in ("train", "valid") for term in LOSS_TERMS
        ]
        # before the user's callbacks, which see the clipped gradients; None does not clip
        clipping = (CLIPPING, GradientNormClipping(self.gradient_clip_norm))
        return callbacks[:-1] + extra + [clipping] + callbacks[-1:]  # print_log stays last

    def set_params(self, **kwargs):
        super().set_params(**kwargs)
        clipping = dict(getattr(self, "callbacks_", [])).get(CLIPPING)
        if "gradient_clip_norm" in kwargs and clipping is not None:  # an initialized net
            clipping.gradient_clip_value = self.gradient_clip_norm
        return self

    def infer(self, x, **fit_params):
        if isinstance(x, Mapping):  # the images and their groups (for a grouped split)
            x = x["X"]
        with self._autocast():
            output = self.module_(self._to_device(x), **fit_params)
        return tuple(o.float() for o in output)  # losses and outputs in float32

    def get_loss(self, y_pred, y_true=None, X=None, training=False):
        """``MSE + beta * KL + perceptual_weight * perceptual``, each a mean (see the class
        docstring); the target is ``X`` itself, ``y_true`` is unused."""
        reconstruction, mu, log_var = y_pred
        X = self._to_device(X["X"] if isinstance(X, Mapping) else X)
        mse = F.mse_loss(reconstruction, X)
        kl = -0.5 * torch.mean(1 + log_var - mu.pow(2) - log_var.exp())
        loss = mse + self.beta * kl
        if self.perceptual_weight > 0:
            with self._autocast():
                perceptual = self.criterion_(reconstruction, X).float()
            loss = loss + self.perceptual_weight * perceptual
        else:
            perceptual = torch.zeros(())
        if not torch.isfinite(loss):
            epoch, batch = len(self.history), len(self.history[-1]["batches"]) + 1
            raise RuntimeError(
                f"PerceptualVAE: the loss became {loss.item()} in epoch {epoch}, batch {batch} "
                f"(MSE {mse.item():.4g}, KL {kl.item():.4g}, perceptual "
                f"{perceptual.item():.4g}). Lower lr, set gradient_clip_norm, or check X."
            )
        prefix = "train" if training else "valid"
        for name, term in zip(LOSS_TERMS, (mse, kl, perceptual), strict=True):
            self.history.record_batch(f"{prefix}_{name}", term.item())
        return loss

    # -- fitting -------------------------------------------------------------------------------

    def fit(self, X, y=None, **fit_params):
        """Fit the VAE on images N×C×H×W (float in [0, 1], or uint8); ``y`` is ignored.

        X may also be a dict (or skorch ``SliceDict``) ``{"X": images, "groups": groups}``:
        the groups (lesion, patient) travel with the images for a grouped validation split,
        :class:`~fairskl.model_selection.GroupedValidSplit` (``stratified=False``). Or a
        sequence of image paths (with ``image_size``), or a torch Dataset of ``(image,
        target)`` items such as :class:`~fairskl.datasets.ImageFiles`: the images are then
        read from disk batch by batch, in training and in every method that takes X.
        """
        self._validate_parameters()
        groups = _groups(X)
        X = self._check_X(X, reset=True)
        super().fit(_training_data(X, groups), None, **fit_params)
        return self._record_activity(X)

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train for ``max_epochs`` more epochs (initialising first if needed)."""
        if "_routing_method" in fit_params:  # called by skorch's fit, with prepared data
            return super().partial_fit(X, None, **fit_params)
        self._validate_parameters()
        groups = _groups(X)
        X = self._check_X(X, reset=not self.initialized_)
        super().partial_fit(_training_data(X, groups), None, **fit_params)
        return self._record_activity(X)

    def _record_activity(self, X):
        """``latent_activity_`` and ``active_units_`` on the training images (in [-1, 1])."""
        from fairskl.inspection._uncertainty import ACTIVITY_THRESHOLD

        (mu,) = self._batches(X, lambda x: self.module_.encode(x)[:1])
        self.latent_activity_ = mu.reshape(len(mu), -1).var(axis=0)
        self.active_units_ = self.latent_activity_ > ACTIVITY_THRESHOLD
        return self

    def _check_X(self, X, reset=False):
        """Validate images and scale them to [-1, 1] float32: an array, or a Dataset whose
        items are so scaled (image paths, a user's Dataset)."""
        if not reset:
            check_is_fitted(self, "input_shape_")
        if is_training_split(X, ScaledImages):  # skorch's split, already checked
            return X
        groups = _groups(X)
        if isinstance(X, Mapping):
            X = X["X"]
        if is_path_sequence(X):
            X = image_files(self, X, groups)
        if isinstance(X, torch.utils.data.Dataset):
            first = dataset_first_input(X, "X")  # one read: a file is decoded once
            if float(first.min()) < -1e-6 or float(first.max()) > 1 + 1e-6:
                raise ValueError(f"X[0] has values in [{float(first.min()):.4g}, "
                                 f"{float(first.max()):.4g}], but PerceptualVAE takes images "
                                 f"in [0, 1]; rescale the Dataset's images.")
            self._check_shape(first.shape, reset)
            return ScaledImages(X, groups)
        is_uint8 = getattr(X, "dtype", None) == np.uint8
        X = check_array(X, dtype=np.float32, allow_nd=True, input_name="X")
        if X.ndim != 4:
            raise ValueError(
                f"X must be images N×C×H×W, got an array of shape {X.shape}. Add a channel "
                f"axis to grey images (X[:, None]); move channels first from N×H×W×C "
                f"(X.transpose(0, 3, 1, 2))."
            )
        if is_uint8:
            X = X / np.float32(255.0)
        else:
            low, high = float(X.min()), float(X.max())
            if low < -1e-6 or high > 1 + 1e-6:
                raise ValueError(
                    f"X has values in [{low:.4g}, {high:.4g}], but PerceptualVAE takes float "
                    f"images in [0, 1] (or uint8 in 0..255). Divide by 255, or rescale."
                )
        self._check_shape(X.shape[1:], reset)
        return X * 2 - 1

    def _check_shape(self, shape, reset):
        """Set the input and latent shapes (``reset``) or check that images have them."""
        shape = tuple(shape)
        if reset:
            self._check_image_shape(shape)
            self.input_shape_ = shape
            self.n_features_in_ = int(np.prod(shape))
            side = shape[2] // 2**self.n_stages
            self.latent_shape_ = (self.latent_channels, side, side)
            self._n_features_out = int(np.prod(self.latent_shape_))
        elif shape != tuple(self.input_shape_):
            raise ValueError(
                f"X has images of shape {shape} (C, H, W), but PerceptualVAE was fitted "
                f"on {self.input_shape_}: give it images with {self.input_shape_[0]} channels "
                f"of {self.input_shape_[1]}×{self.input_shape_[2]} pixels."
            )

    def _check_image_shape(self, shape):
        channels, height, width = shape
        size = self.image_size
        if size is not None and size & (size - 1):
            raise ValueError(
                f"image_size must be None or a power of two >= 32 (32, 64, 128, ...), got "
                f"{size!r}."
            )
        if height != width or height < 32 or height & (height - 1):
            raise ValueError(
                f"X has images of {height}×{width} pixels, but PerceptualVAE needs square "
                f"images whose side is a power of two >= 32 (32, 64, 128, ...). Resize them, "
                f"e.g. with torch.nn.functional.interpolate."
            )
        if size is not None and height != size:
            raise ValueError(
                f"X has images of {height}×{width} pixels, but image_size={size}. Resize the "
                f"images or set image_size={height} (or None)."
            )
        if height < 2**self.n_stages:
            raise ValueError(
                f"n_stages={self.n_stages} halves the side {self.n_stages} times, more than "
                f"images of {height} pixels allow; use n_stages <= {int(np.log2(height))}."
            )

    # -- scikit-learn API ----------------------------------------------------------------------

    def _batches(self, X, function):
        """``function`` of each batch of a [-1, 1] array or :class:`ScaledImages`, in eval
        mode, without gradient; the outputs concatenated as numpy arrays."""
        self.module_.eval()
        if isinstance(X, torch.utils.data.Dataset):  # read by the DataLoader's workers
            batches = (x for x, _ in self.get_iterator(X, training=False))
        else:
            batches = (X[start:start + self.batch_size]
                       for start in range(0, len(X), self.batch_size))
        outputs = []
        with torch.no_grad(), self._autocast():
            for batch in batches:
                output = function(self._to_device(batch))
                outputs.append(tuple(o.float().cpu().numpy() for o in output))
        if not outputs:
            raise ValueError("X has no samples.")
        return tuple(np.concatenate(parts) for parts in zip(*outputs, strict=True))

    def transform(self, X, return_std=False):
        """Latent means, flattened: (n_samples, latent_channels × h × w).

        With ``return_std=True`` also the mean posterior standard deviation of each image
        (:meth:`latent_std`).
        """
        mu, log_var = self._batches(self._check_X(X), self.module_.encode)
        Z = mu.reshape(len(mu), -1)
        if return_std:
            return Z, self._mean_std(log_var)
        return Z

    @staticmethod
    def _mean_std(log_var):
        return np.exp(0.5 * log_var).reshape(len(log_var), -1).mean(axis=1)

    def latent_std(self, X):
        """Mean posterior standard deviation of each image: the study's uncertainty statistic.

        ``mean_j exp(log_var_j / 2)`` over the latent elements ``j``: (n_samples,).
        """
        return self.transform(X, return_std=True)[1]

    def uncertainty(self, X, kind="kl", *, n_samples=16, random_state=None):
        """Per-image uncertainty scores; higher means the VAE is less sure of the image.

        Parameters
        ----------
        X : array-like of shape (n_samples, C, H, W)
        kind : {"latent_std", "active_latent_std", "kl", "elbo", "iwae", "decoder_var"}, \
default="kl"
            ``"latent_std"``: the mean posterior std over every latent element (the study's
            statistic, :meth:`latent_std`); ``"active_latent_std"``: the same over the
            *active* elements only (``active_units_``: those whose posterior mean varies over
            the training images by more than 0.01); ``"kl"``: the KL divergence of the
            posterior from the prior, summed over the latent elements (nats);
            ``"elbo"``: the negative ELBO, ``KL`` plus the expected negative log-likelihood
            of the Gaussian decoder the loss implies, over ``n_samples`` posterior draws (nats,
            without the Gaussian's constant, which is the same for every image; the perceptual
            term is no likelihood and is left out); ``"iwae"``: the importance-weighted bound
            of Burda et al. with ``n_samples`` draws, a tighter estimate of ``-log p(x)``;
            ``"decoder_var"``: the variance of the reconstructions over ``n_samples``
            posterior draws, averaged over the pixels, on the [0, 1] scale. The user guide
            (:ref:`vae-uncertainty`) gives the equations.
        n_samples : int, default=16
            Posterior draws per image for ``"elbo"``, ``"iwae"`` and ``"decoder_var"``.
        random_state : int, RandomState instance or None, default=None
            Seeds the posterior draws.

        Returns
        -------
        ndarray of shape (n_samples,)

        See Also
        --------
        fairskl.inspection.ensemble_disagreement : Epistemic uncertainty over several VAEs.

        Examples
        --------
        >>> import numpy as np
        >>> from fairskl import PerceptualVAE
        >>> X = np.random.RandomState(0).uniform(size=(8, 3, 32, 32)).astype("float32")
        >>> vae = PerceptualVAE(channel_width=8, latent_channels=4, perceptual_weight=0,
        ...                     max_epochs=1, batch_size=8, random_state=0, verbose=0).fit(X)
        >>> vae.uncertainty(X, "kl").shape, vae.uncertainty(X, "iwae", n_samples=4).shape
        ((8,), (8,))
        """
        from fairskl.inspection._uncertainty import vae_uncertainty

        return vae_uncertainty(self, X, kind, n_samples=n_samples, random_state=random_state)

    def inverse_transform(self, X):
        """Decode flattened latents (n_samples, latent size) into images in [0, 1]."""
        check_is_fitted(self, "latent_shape_")
        Z = check_array(X, dtype=np.float32, input_name="X")
        if Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {Z.shape[1]} latent features, but PerceptualVAE's latent map "
                f"{self.latent_shape_} has {self._n_features_out}."
            )
        Z = Z.reshape(len(Z), *self.latent_shape_)
        (images,) = self._batches(Z, lambda z: (self.module_.decode(z),))
        return (images + 1) / 2

    def reconstruct(self, X):
        """Decode the latent mean of each image: images in [0, 1], shape of X."""
        return self.inverse_transform(self.transform(X))

    def sample(self, n_samples=1, random_state=None):
        """Decode ``n_samples`` draws of the prior N(0, I): images in [0, 1]."""
        check_is_fitted(self, "latent_shape_")
        rng = check_random_state(random_state)
        Z = rng.standard_normal((n_samples, self._n_features_out)).astype(np.float32)
        return self.inverse_transform(Z)

    def score_samples(self, X):
        """Negative reconstruction MSE of each image, on the [0, 1] scale: (n_samples,).

        uint8 images are divided by 255 first. The paper (and the loss) measure MSE on images
        in [-1, 1], where the same error is 4 times larger: multiply by -4 to compare.
        """
        X = self._check_X(X)
        if isinstance(X, torch.utils.data.Dataset):  # read batch by batch

            def errors(x):
                reconstruction = self.module_.decode(self.module_.encode(x)[0].float())
                return (((reconstruction - x) / 2).pow(2).flatten(1).mean(1),)

            return -self._batches(X, errors)[0]
        X01 = (X + 1) / 2
        errors = (self.reconstruct(X01) - X01) ** 2
        return -errors.reshape(len(errors), -1).mean(axis=1)

    def score(self, X, y=None):
        """Negative mean reconstruction MSE (higher is better), on the [0, 1] scale.

        ``-4 * score(X)`` is the MSE on the [-1, 1] scale of the paper's "MSE below 0.07".
        """
        return float(np.mean(self.score_samples(X)))


def _groups(X):
    """The per-sample groups of a dict X ``{"X": images, "groups": groups}`` (its
    ``"split_groups"`` first), or None."""
    if not isinstance(X, Mapping):
        return None
    if "X" not in X or set(X) - {"X", "groups", "split_groups"}:
        raise ValueError(
            f"A dict X needs the key 'X' (the images) and may have 'groups' (per-sample "
            f"groups, for a grouped validation split; or 'split_groups'), got keys "
            f"{sorted(X)}; e.g. SliceDict(X=images, groups=lesion_id)."
        )
    groups = X.get("split_groups", X.get("groups"))
    if groups is None:
        return None
    groups = np.asarray(groups, dtype=object).reshape(-1)
    if len(groups) != len(X["X"]):
        raise ValueError(f"X['groups'] has {len(groups)} values for {len(X['X'])} images; give "
                         f"one group per image.")
    return groups


def _training_data(X, groups):
    """X as skorch trains on it: the images, with their groups when there are some (a
    Dataset carries them itself)."""
    if groups is None or isinstance(X, torch.utils.data.Dataset):
        return X
    return {"X": X, "groups": encode_groups(groups)}


class ScaledImages(torch.utils.data.Dataset):
    """A Dataset of images in [0, 1] as PerceptualVAE trains on them: ``(2 x - 1, 0)``,
    with the ``groups`` of the dict X (else the Dataset's own) for a grouped split."""

    def __init__(self, dataset, groups=None):
        self.dataset = dataset
        self.groups = groups if groups is not None else getattr(dataset, "groups", None)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        item = self.dataset[index]
        x = item[0] if isinstance(item, tuple | list) else item
        return x * 2 - 1, torch.tensor(0)


# -- the reconstruction-grid callback -------------------------------------------------------------


class ReconstructionGrid(Callback):
    """Save a PNG of images (top row) over their reconstructions (bottom row) after each epoch.

    Parameters
    ----------
    path : str or path-like
        Where to save; ``{epoch}`` in it is replaced by the epoch number (otherwise each epoch
        overwrites the file). Written atomically.
    images : array-like of shape (n, C, H, W) or None, default=None
        Images to show (float in [0, 1] or uint8); None takes the first ``n_images`` of the
        training data.
    n_images : int, default=8
        Number of images shown when ``images`` is None.
    every : int, default=1
        Save every ``every`` epochs (and after the last one).
    """

    def __init__(self, path, images=None, n_images=8, every=1):
        self.path = path
        self.images = images
        self.n_images = n_images
        self.every = every

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        if self.images is not None:
            self.images_ = net._check_X(self.images, reset=False)
        else:
            X = X["X"] if isinstance(X, Mapping) else X  # the images of {"X", "groups"}
            if isinstance(X, torch.utils.data.Dataset):  # images read from disk
                self.images_ = torch.stack(
                    [X[i][0] for i in range(min(self.n_images, len(X)))]).numpy()
            else:
                self.images_ = np.asarray(X[: self.n_images])  # already in [-1, 1]

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if epoch % self.every == 0 or epoch == net.max_epochs:
            was_training = net.module_.training
            (reconstructions,) = net._batches(self.images_, lambda x: (net.module_(x)[0],))
            net.module_.train(was_training)
            self.save(self.images_, reconstructions, str(self.path).format(epoch=epoch))

    @staticmethod
    def save(images, reconstructions, path):
        """Write the grid of two rows; images and reconstructions in [-1, 1]."""
        import matplotlib.image

        rows = [np.concatenate(list(batch), axis=2) for batch in (images, reconstructions)]
        grid = np.clip((np.concatenate(rows, axis=1) + 1) / 2, 0, 1).transpose(1, 2, 0)
        if grid.shape[2] == 1:
            grid = grid[:, :, 0]
        with atomic_path(path) as tmp:
            matplotlib.image.imsave(tmp, grid, format="png", cmap="gray")
