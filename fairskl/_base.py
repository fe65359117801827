"""The shared base of fairskl's classifiers: a skorch classifier with a regularised loss.

Every method of the mitigation family (NIR, CVaR-DRO, JTT, spectral decoupling, group-balanced
reweighting) is the same network — a backbone returning ``(logits, penultimate)`` — trained
with its own loss. The base owns what they share: building the backbone, label encoding, input
checks (images or tabular rows, uint8 scaled, X as an array or a dict ``{"X": ..., "groups":
...}``), per-sample losses, per-sample weights carried inside X, and the history of each term
of the loss; :class:`~fairskl._training.TrainingMixin` owns the training step (augmentation,
bf16/fp16 autocast, the gradient scaler, channels-last batches). A method overrides
:meth:`_RegularizedClassifier.regularized_loss` (and, for a training schedule, ``fit``).
"""

import copy
import numbers
import os
from collections.abc import Mapping

import numpy as np
import skorch.dataset
import torch
from scipy.sparse import issparse
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)
from skorch import NeuralNetClassifier
from skorch.callbacks import PassthroughScoring
from skorch.utils import to_numpy, to_tensor
from torch import nn

from fairskl._backbones import NIRNetwork, build_network
from fairskl._constraints import SEED
from fairskl._parallel import limit_torch_threads
from fairskl._training import TrainingMixin
from fairskl.datasets._cache import RESIZE_MODES
from fairskl.datasets._files import as_image_files, is_path_sequence
from fairskl.model_selection._split import encode_groups

#: keys a user may put in a dict X: the inputs, per-sample groups for methods that use them,
#: and per-sample groups (lesion, patient) for a grouped validation split when they differ
X_KEYS = ("X", "groups", "split_groups")
#: skorch's own datasets (the training data it splits for validation): passed through
#: The parameters every method shares, for the methods' docstrings ("%(shared)s").
SHARED_PARAMETERS = """\
    weights : None, str or path-like, default=None
        Initial weights of a torchvision backbone: None (random), ``"DEFAULT"`` or a weights
        enum name such as ``"IMAGENET1K_V1"`` (downloaded by torchvision), or the path of a
        local ``state_dict`` of that torchvision model.
    input_normalization : "auto", None or (mean, std), default="auto"
        Scaling of the inputs inside the network, before the backbone: ``"auto"`` applies the
        per-channel mean and std that pretrained ``weights`` were trained with (the weights
        enum's own preprocessing; ImageNet's for a local state_dict of a torchvision model;
        nothing for random weights), so X stays in [0, 1]; None never scales; a pair of
        per-channel sequences scales by those. RGB statistics are averaged for grey inputs.
    precision : {"float32", "bf16", "fp16"}, default="float32"
        ``"bf16"`` runs the network's forward pass under :func:`torch.autocast` with bfloat16
        (on CPU and CUDA; on a CPU without native bf16 it is many times slower);
        ``"fp16"`` (CUDA only) with float16 and a :class:`torch.amp.GradScaler`. The losses
        and the outputs stay float32.
    channels_last : bool, default=False
        Use the channels-last memory format for the network and the image batches (can speed
        up convolutions on a GPU, notably with ``"bf16"``/``"fp16"``); no effect on 2-D X.
    augment : None, "hflip", "hflip_crop" or callable, default=None
        Augmentation of the training batches (images only), drawn anew every time an image is
        seen: ``"hflip"`` flips each image left-right with probability 0.5; ``"hflip_crop"``
        flips, then crops 80-100% of the image's area (aspect ratio 3/4 to 4/3) and resizes
        it back, as torchvision's ``RandomResizedCrop(size, scale=(0.8, 1.0))``; a callable,
        such as a ``torchvision.transforms.v2`` pipeline, is applied to **each image** of a
        batch, a (C, H, W) float tensor in [0, 1], and must return an image of the same
        shape. The draws come from torch's CPU generator, which ``random_state`` seeds, so a
        seeded fit is reproducible. Validation batches and ``predict``/``predict_proba``/
        ``penultimate`` see the images as given. PerceptualVAE takes the same values.
    image_size : int or None, default=None
        Side of the square images that **image paths** given as X (a list or array of file
        paths, e.g. a loader's ``return_paths=True`` images) are decoded to, with
        :class:`~fairskl.datasets.ImageFiles` in the DataLoader's workers
        (``iterator_train__num_workers``); Harvard-GF's ``.npz`` files are read as its
        RNFLT maps. None refuses paths. Arrays and Datasets are used as they are.
    resize : {"squash", "crop"}, default="squash"
        How image paths are resized, as the loaders' ``resize``: the whole image to the
        square, or its short side to ``image_size`` and the centre square.
    checkpoint : None or path-like, default=None
        A directory that makes the fit resumable: after every epoch the network's
        parameters, the optimizer's (and gradient scaler's) state, the history and torch's
        random generators are saved there, atomically (skorch's ``Checkpoint``). A fit
        started again with the same directory (after the process was killed, say) loads the
        last saved epoch (skorch's ``LoadInitState``) and trains only the epochs left of
        ``max_epochs``; a fit that had ended (all its epochs, or early stopping) is loaded
        as it ended and not trained further. One directory per fit: a search over
        parameters must not share one. None saves nothing.
    hidden_sizes : tuple of int, default=(64, 64)
        Hidden layers of the ``"mlp"`` backbone.
    random_state : int or None, default=None
        Seeds torch when the module is initialised, so the weights of a named backbone and the
        batch order are reproducible. A user module is deep-copied as it is, so every fit (and
        every grid-search candidate) starts from the weights it had when constructed: seed
        torch before constructing it.
    classes : array-like or None, default=None
        All labels, when y may lack some (as in skorch): ``classes_`` is their sorted list and
        a label of y outside it is an error. None takes the labels from y.
    criterion, optimizer, lr, max_epochs, batch_size, train_split, device, verbose, callbacks
        As in skorch; defaults: cross-entropy, Adam, 1e-3, 10, 64, no validation split. The
        criterion gives per-sample losses (its ``reduction`` is set to ``"none"``); the method
        reduces them.
    **kwargs
        Any other skorch parameter (``iterator_train__shuffle``, ``module__*`` …).
"""

SHARED_ATTRIBUTES = """\
    classes_ : ndarray of shape (n_classes,)
        The labels, in the order of ``predict_proba``'s columns.
    n_features_in_ : int
        Number of values per sample (C·H·W for images).
    module_ : NIRNetwork
        The fitted network.
"""


class _RegularizedClassifier(TrainingMixin, NeuralNetClassifier):
    """A skorch classifier on a ``(logits, penultimate)`` backbone with a method's own loss.

    Subclasses set ``_loss_terms`` (the names recorded per batch, e.g. ``("ce", "nir")``) and
    override :meth:`regularized_loss`; their ``__init__`` takes ``backbone``, their own
    parameters and ``**kwargs`` for the shared ones, and sets their own parameters after
    calling this ``__init__`` (skorch rejects unknown keyword arguments).
    """

    _loss_terms = ("ce",)
    #: what else to change when the loss diverges, for the error message
    _strength_hint = ""
    #: scikit-learn's rules for the shared parameters; a method adds its own
    _parameter_constraints = {
        **TrainingMixin._parameter_constraints,
        "backbone": [str, nn.Module],
        "weights": [None, str, os.PathLike],
        "input_normalization": [StrOptions({"auto"}), None, "array-like"],
        "image_size": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "resize": [StrOptions(set(RESIZE_MODES))],
        "hidden_sizes": ["array-like"],
        "random_state": SEED,
    }

    def __init__(
        self,
        backbone="resnet18",
        *,
        weights=None,
        input_normalization="auto",
        precision="float32",
        channels_last=False,
        augment=None,
        image_size=None,
        resize="squash",
        checkpoint=None,
        hidden_sizes=(64, 64),
        random_state=None,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=10,
        batch_size=64,
        train_split=None,
        iterator_train__shuffle=True,
        **kwargs,
    ):
        # a user nn.Module must be stored before skorch's __init__: afterwards skorch only lets
        # torch modules be set inside initialize_module
        self.backbone = backbone
        super().__init__(
            module=NIRNetwork,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            iterator_train__shuffle=iterator_train__shuffle,
            **kwargs,
        )
        self.weights = weights
        self.input_normalization = input_normalization
        self.precision = precision
        self.channels_last = channels_last
        self.augment = augment
        self.image_size = image_size
        self.resize = resize
        self.checkpoint = checkpoint
        self.hidden_sizes = hidden_sizes
        self.random_state = random_state

    # -- the method's loss ---------------------------------------------------------------------

    def regularized_loss(self, logits, features, losses, sample_weight):
        """The batch's loss and the terms to record.

        Parameters
        ----------
        logits : torch.Tensor of shape (batch, n_classes)
        features : torch.Tensor of shape (batch, n_neurons)
            Penultimate activations.
        losses : torch.Tensor of shape (batch,)
            Per-sample losses of the criterion (cross-entropy by default).
        sample_weight : torch.Tensor of shape (batch,) or None
            Per-sample weights of the method (carried inside X), or None.

        Returns
        -------
        loss : torch.Tensor
            Scalar to minimise.
        terms : dict
            Name (one of ``_loss_terms``) -> scalar tensor, recorded per batch.
        """
        ce = losses.mean()
        return ce, {"ce": ce}

    # -- skorch hooks --------------------------------------------------------------------------

    def initialize_module(self):
        limit_torch_threads()  # on a Dask worker: its share of the cores (see _parallel.py)
        if self.random_state is not None:
            torch.manual_seed(self.random_state)
        if isinstance(self.backbone, nn.Module):
            self.module_ = copy.deepcopy(self.backbone)  # a fresh copy per fit, like clone
        else:
            self.module_ = build_network(
                self.backbone, weights=self.weights, input_shape=self.input_shape_,
                n_classes=len(self.classes_), hidden_sizes=self.hidden_sizes,
                input_normalization=self.input_normalization,
            )
        if self.channels_last:  # converts the 4-D weights (convolutions) only
            self.module_ = self.module_.to(memory_format=torch.channels_last)
        return self

    def initialize_criterion(self):
        super().initialize_criterion()
        if hasattr(self.criterion_, "reduction"):
            self.criterion_.reduction = "none"  # per-sample losses; the method reduces them
        return self

    def get_default_callbacks(self):
        callbacks = list(super().get_default_callbacks())
        extra = [
            (name, PassthroughScoring(name=name, on_train=name.startswith("train")))
            for prefix in ("train", "valid") for name in
            (f"{prefix}_{term}" for term in self._loss_terms)
        ]
        return callbacks[:-1] + extra + callbacks[-1:]  # print_log stays last

    def infer(self, x, **fit_params):
        if isinstance(x, Mapping):  # the network sees the inputs; weights are for the loss
            x = x["X"]
        with self._autocast():
            output = super().infer(self._to_device(x), **fit_params)
        if not (isinstance(output, tuple) and len(output) == 2):
            raise TypeError(
                f"The module must return (logits, penultimate) for {type(self).__name__}, got "
                f"{type(output).__name__}. Wrap your backbone so that forward returns both, e.g. "
                f"'features = self.body(x); return self.head(features), features'."
            )
        if output[0].ndim != 2 or output[0].shape[1] != len(self.classes_):
            raise ValueError(
                f"The module returns logits of shape {tuple(output[0].shape)}, but there are "
                f"{len(self.classes_)} classes {self.classes_.tolist()}: it needs one logit per "
                f"class, shape (batch, {len(self.classes_)})."
            )
        return tuple(o.float() for o in output)  # loss, penalty and outputs in float32

    def get_loss(self, y_pred, y_true, X=None, training=False):
        logits, features = y_pred
        losses = self.criterion_(logits, to_tensor(y_true, device=self.device))
        if losses.ndim != 1:
            raise ValueError(
                f"The criterion must give one loss per sample for {type(self).__name__}, got "
                f"shape {tuple(losses.shape)}; use a criterion with a 'reduction' argument."
            )
        weight = X.get("sample_weight") if isinstance(X, Mapping) else None
        if weight is not None:
            weight = to_tensor(weight, device=self.device).float()
        loss, terms = self.regularized_loss(logits, features, losses, weight)
        if not torch.isfinite(loss):
            epoch, batch = len(self.history), len(self.history[-1]["batches"]) + 1
            parts = ", ".join(f"{name} {value.item():.4g}" for name, value in terms.items())
            raise RuntimeError(
                f"{type(self).__name__}: the loss became {loss.item()} in epoch {epoch}, batch "
                f"{batch} ({parts}). Lower lr{self._strength_hint}, or check X for extreme "
                f"values."
            )
        prefix = "train" if training else "valid"
        for name, value in terms.items():
            self.history.record_batch(f"{prefix}_{name}", value.item())
        return loss

    # -- scikit-learn API ----------------------------------------------------------------------

    def fit(self, X, y=None, **fit_params):
        """Fit the network on images N×C×H×W (float, or uint8 scaled by 1/255) or 2-D X.

        X may also be a dict (or skorch ``SliceDict``) ``{"X": inputs, "groups": groups}``;
        methods that do not use groups ignore them, so one X serves a whole comparison. Or a
        torch Dataset of ``(image, target)`` items read from disk as training goes, e.g.
        :class:`fairskl.datasets.ImageFiles` (``y`` may then be None: its ``y``); with
        ``iterator_train__num_workers`` worker processes decode the images.
        """
        X, y, groups = self._prepare(X, y)
        return super().fit(self._training_data(X, y, groups), y, **fit_params)

    def partial_fit(self, X, y, classes=None, **fit_params):
        """Train for ``max_epochs`` more epochs (initialising first if needed)."""
        if "_routing_method" in fit_params:  # called by skorch's fit, with prepared data
            return super().partial_fit(X, y, classes=classes, **fit_params)
        if self.initialized_ and hasattr(self, "label_encoder_"):
            X, groups = self._check_X(X)
            y = self.label_encoder_.transform(column_or_1d(y))
        else:
            X, y, groups = self._prepare(X, y, classes)
        return super().partial_fit(self._training_data(X, y, groups), y, classes=classes,
                                   **fit_params)

    def _training_data(self, X, y, groups, sample_weight=None):
        """X as skorch trains on it: the array, or a dict with the method's sample weights
        (``sample_weight``, else :meth:`_sample_weight`'s) and the groups, which travel with
        the rows for a grouped validation split (:class:`~fairskl.model_selection.\
GroupedValidSplit`)."""
        weight = self._sample_weight(y, groups) if sample_weight is None else sample_weight
        if weight is not None:
            weight = weight.astype(np.float32)
        extras = {"sample_weight": weight,
                  "groups": None if groups is None else encode_groups(groups)}
        extras = {name: value for name, value in extras.items() if value is not None}
        if isinstance(X, torch.utils.data.Dataset):
            return StreamedInputs(X, y, extras)
        return {"X": X, **extras} if extras else X

    def _sample_weight(self, y, groups):
        """Per-sample weights of the training rows for the loss, or None (all equal)."""
        return None

    def _prepare(self, X, y, classes=None):
        """Validate the parameters and the data; encode the labels (data-dependent state)."""
        self._validate_parameters()
        X, groups = self._check_X(X, reset=True)
        if self.augment is not None and len(self.input_shape_) != 3:
            raise ValueError(
                f"augment={self.augment!r} augments images, but X has samples of shape "
                f"{tuple(self.input_shape_)}; pass images N×C×H×W, or augment=None."
            )
        if y is None and isinstance(getattr(X, "y", None), np.ndarray):
            y = X.y  # an ImageFiles with its targets
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target "
                             f"y is None (a Dataset X may hold them in a 'y' array attribute, "
                             f"as ImageFiles(paths, y) does).")
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        check_classification_targets(y)
        labels = self.classes if classes is None else classes  # partial_fit's argument first
        self.label_encoder_ = LabelEncoder().fit(y if labels is None else column_or_1d(labels))
        if len(self.label_encoder_.classes_) < 2:
            raise ValueError(
                f"y has one class {self.label_encoder_.classes_.tolist()}; a classifier needs "
                f"at least two."
            )
        unknown = np.setdiff1d(y, self.label_encoder_.classes_)
        if len(unknown):
            raise ValueError(
                f"y has labels {unknown.tolist()} that are not in classes="
                f"{self.label_encoder_.classes_.tolist()}; add them to classes, or pass "
                f"classes=None to take the labels from y."
            )
        return X, self.label_encoder_.transform(y).astype(np.int64), groups

    @property
    def classes_(self):
        return self.label_encoder_.classes_

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``, as float64.

        float64 as scikit-learn's classifiers give (skorch gives the network's float32):
        fairlearn's ``ThresholdOptimizer`` fails on float32 scores with pandas 3.
        """
        return super().predict_proba(self._check_X(X)[0]).astype(np.float64)

    def predict(self, X):
        """The most probable label of each sample."""
        if is_training_split(X):
            # skorch's own scoring (valid_acc) compares with the encoded targets it holds
            return super().predict(X)
        proba = self.predict_proba(X)  # checks that the classifier is fitted
        return self.classes_[proba.argmax(axis=1)]

    def decision_function(self, X):
        """The logits: (n_samples,) logit of ``classes_[1]`` for two classes, else one column
        per class."""
        logits = to_numpy(self.forward(self._check_X(X)[0], training=False)[0])
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def penultimate(self, X):
        """The penultimate activations (after global pooling): (n_samples, n_neurons)."""
        return to_numpy(self.forward(self._check_X(X)[0], training=False)[1])

    def _check_dataset(self, dataset, reset):
        """A torch Dataset of ``(image, target)`` (e.g. :class:`~fairskl.datasets.ImageFiles`):
        its input shape is read from its first item."""
        shape = tuple(dataset_first_input(dataset, "X").shape)
        if reset:
            self.input_shape_ = shape
            self.n_features_in_ = int(np.prod(shape))
        elif shape != tuple(self.input_shape_):
            raise ValueError(f"X gives inputs of shape {shape}, but {type(self).__name__} was "
                             f"fitted on {tuple(self.input_shape_)}.")
        return dataset

    def _check_X(self, X, reset=False):
        """The checked inputs and the per-sample groups of a dict X (or None).

        The inputs are a float32 array, or a Dataset: the user's, image paths read by
        :class:`~fairskl.datasets.ImageFiles`, or an array whose rows carry the
        ``"split_groups"`` of a dict X for a grouped validation split.
        """
        if not reset:
            check_is_fitted(self, "label_encoder_")
        if is_training_split(X):  # skorch's own split of the training data
            return X, None
        groups = split_groups = None
        if isinstance(X, Mapping) and not issparse(X):  # scipy's dok format is a dict
            unknown = sorted(set(X) - set(X_KEYS))
            if "X" not in X or unknown:
                raise ValueError(
                    f"A dict X needs the key 'X' (the inputs) and may have 'groups' (per-sample "
                    f"groups) and 'split_groups' (the lesion or patient of each sample, for "
                    f"GroupedValidSplit), got keys {sorted(X)}; e.g. SliceDict(X=images, "
                    f"groups=sex)."
                )
            groups, split_groups = (None if X.get(key) is None else
                                    column_or_1d(np.asarray(X[key], dtype=object))
                                    for key in ("groups", "split_groups"))
            X = X["X"]
            for values in (groups, split_groups):
                if values is not None:
                    check_consistent_length(X, values)
        if is_path_sequence(X):
            X = image_files(self, X, split_groups if split_groups is not None else groups)
        if isinstance(X, torch.utils.data.Dataset):  # images streamed from disk
            return self._check_dataset(X, reset), groups
        is_uint8 = getattr(X, "dtype", None) == np.uint8
        X = check_array(X, dtype=np.float32, allow_nd=True, input_name="X")
        if is_uint8:
            X /= 255.0
        if X.ndim not in (2, 4):
            raise ValueError(
                f"X must be images N×C×H×W or tabular N×F, got an array of shape {X.shape}. "
                f"Add a channel axis to grey images: X[:, None]."
            )
        if reset:
            self.input_shape_ = X.shape[1:]
            self.n_features_in_ = int(np.prod(X.shape[1:]))
        elif X.shape[1:] != self.input_shape_:
            raise ValueError(
                f"X has {int(np.prod(X.shape[1:]))} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input (samples of shape "
                f"{X.shape[1:]} instead of {self.input_shape_})."
            )
        if split_groups is not None:  # they travel with the rows, as a Dataset's groups do
            return ArrayRows(X, split_groups), groups
        return X, groups


def image_files(estimator, paths, groups=None):
    """Image paths given as an estimator's X, read by :class:`~fairskl.datasets.ImageFiles`
    at the estimator's ``image_size`` and ``resize``."""
    size = estimator.image_size
    if size is None:
        raise ValueError(
            f"X is a sequence of {len(paths)} image paths, but {type(estimator).__name__} has "
            f"image_size=None; set image_size to the side to decode them to, or pass "
            f"fairskl.datasets.ImageFiles(paths, y, image_size=...)."
        )
    return as_image_files(paths, image_size=size, resize=estimator.resize, groups=groups)


class ArrayRows(torch.utils.data.Dataset):
    """The rows of a checked array as a Dataset of ``(row, 0)``, with per-row ``groups`` for
    :class:`~fairskl.model_selection.GroupedValidSplit`."""

    def __init__(self, X, groups):
        self.X, self.groups = X, groups

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return torch.from_numpy(self.X[index]), torch.tensor(0)

    def subset(self, indices):
        """The rows at ``indices`` with their groups, as a new ArrayRows."""
        return ArrayRows(self.X[indices], self.groups[indices])


def dataset_first_input(dataset, name):
    """The first input of a torch Dataset of ``(input, target)`` items, checked (its shape
    and values tell the estimators what the Dataset gives, from one read)."""
    if len(dataset) == 0:
        raise ValueError(f"{name} is an empty Dataset; it needs at least one sample.")
    item = dataset[0]
    x = item[0] if isinstance(item, tuple | list) else item
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(
            f"{name}[0] must give a float tensor (C, H, W) in [0, 1] (or a tuple whose first "
            f"element is one), got {type(x).__name__}"
            f"{'' if not isinstance(x, torch.Tensor) else ' of ' + str(x.dtype)}; "
            f"fairskl.datasets.ImageFiles reads image files so."
        )
    return x


def is_training_split(X, wrapper=None):
    """Whether ``X`` is the training data as skorch holds it during ``fit``: a skorch Dataset,
    the estimator's wrapper of a user's Dataset (``wrapper``; the classifiers'
    :class:`StreamedInputs` by default), or a Subset of one, as its validation split is. That
    is what skorch's scoring passes to ``predict`` while training, already checked. A user's
    own Dataset (a Subset of it too, e.g. from ``random_split``) is not: it is checked and
    gets the fitted estimator's answers (labels, a refitted last layer)."""
    if isinstance(X, torch.utils.data.Subset):
        X = X.dataset
    return isinstance(X, (skorch.dataset.Dataset, wrapper or StreamedInputs))


class StreamedInputs(torch.utils.data.Dataset):
    """A user's Dataset as skorch trains on it: its inputs, with the per-row ``extras`` of
    the method (sample weights, group codes ...: ``{"X": x, name: extras[name][i]}``) when
    there are some, as the rows of a dict X carry them; and the encoded targets."""

    def __init__(self, dataset, y, extras=None):
        self.dataset, self.y, self.extras = dataset, y, dict(extras or {})
        self.groups = getattr(dataset, "groups", None)  # for GroupedValidSplit

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        item = self.dataset[index]
        x = item[0] if isinstance(item, tuple | list) else item
        if self.extras:
            x = {"X": x, **{name: values[index] for name, values in self.extras.items()}}
        return x, self.y[index]


def weighted_loss(losses, sample_weight):
    """The weighted mean of per-sample losses, ``sum(w * l) / sum(w)``, and the terms to record
    (``ce``, the unweighted mean, and ``weighted_ce``)."""
    weighted = (sample_weight * losses).sum() / sample_weight.sum()
    return weighted, {"ce": losses.mean().detach(), "weighted_ce": weighted}
