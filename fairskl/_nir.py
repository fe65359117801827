"""Neuron Incidence Redistribution (NIR): the penalty on penultimate-layer neuron incidence."""

import copy
import numbers

import numpy as np
import torch
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)
from skorch import NeuralNetClassifier
from skorch.callbacks import PassthroughScoring
from skorch.utils import to_numpy
from torch import nn

from fairskl._backbones import NIRNetwork, build_network
from fairskl._parallel import limit_torch_threads

__all__ = ["NIRClassifier", "nir_penalty"]

NORMALIZATIONS = ("global", "standardize", "mean", None)
PRECISIONS = ("float32", "bf16")


def nir_penalty(features, probabilities, *, normalize="global", eps=1e-8):
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
    normalize : {"global", "standardize", "mean", None}, default="global"
        ``"global"`` divides the raw variance by the variance of all activations of the batch:
        invariant to a shift and a scale common to all neurons, so the network cannot lower it
        by moving or shrinking every activation, and one λ means the same for any backbone.
        ``"standardize"`` first standardises each neuron over the batch (zero mean, unit
        variance): invariant to any shift and positive scale of each neuron too. ``"mean"``
        divides each class's incidence by its mean absolute value (the squared coefficient of
        variation; invariant to a common scale only, so a common offset lowers it). ``None``
        uses the raw activations, the literal form of the paper's description (invariant to a
        common shift only, so shrinking the activations lowers it). The default was chosen on
        held-out evidence, in the user guide.
    eps : float, default=1e-8
        Added to denominators, so a class with (near) zero total probability in the batch, or
        a neuron that is constant over it, gives zero instead of NaN or inf.

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
    >>> h = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # one neuron follows the class
    >>> round(float(nir_penalty(h, torch.tensor([0.9, 0.2]))), 4)
    0.5454
    >>> round(float(nir_penalty(10 * h + 5, torch.tensor([0.9, 0.2]))), 4)  # the head undoes it
    0.5454
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
    if normalize == "standardize":
        centred = features - features.mean(dim=0, keepdim=True)
        features = centred / (centred.square().mean(dim=0, keepdim=True) + eps).sqrt()
    weights = probabilities / (probabilities.sum(dim=0, keepdim=True) + eps)  # (N, C)
    incidence = weights.T.to(features.dtype) @ features  # (C, D)
    if normalize == "mean":
        incidence = incidence / (incidence.abs().mean(dim=1, keepdim=True) + eps)
    penalty = incidence.var(dim=1, unbiased=False).mean()
    if normalize == "global":
        penalty = penalty / (features.var(unbiased=False) + eps)
    return penalty


class NIRClassifier(NeuralNetClassifier):
    """Image (or tabular) classifier trained with the NIR fairness regulariser.

    A skorch :class:`~skorch.classifier.NeuralNetClassifier` whose loss is the cross-entropy plus
    ``lambda_nir`` times :func:`nir_penalty` of each batch (skorch's ``RegularizedNet`` pattern).
    The penalty spreads the probability-weighted incidence of the penultimate neurons; it needs
    no demographic labels, so ``fit`` never sees sensitive features — route them to fairness
    scorers instead (:func:`~fairskl.metrics.make_fairness_scorer`). See the
    :ref:`user guide <nir>` for the equations.

    The network has one logit per class (softmax cross-entropy; for two classes this is the
    same model as one sigmoid output).

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="resnet18"
        A torchvision classification model by name (its classifier is replaced by a linear
        head sized from the data, its first convolution adapted to the number of channels),
        ``"small_cnn"`` (three conv blocks, 64 penultimate neurons: fast on a CPU for images
        of 16–64 pixels), ``"mlp"`` for 2-D tabular X, or a module whose ``forward`` returns
        ``(logits, penultimate)``.
    lambda_nir : float, default=0.1
        Weight λ ≥ 0 of the NIR penalty; 0 gives the plain classifier.
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
    nir_normalize : {"global", "standardize", "mean", None}, default="global"
        Passed to :func:`nir_penalty` as ``normalize``: which changes of the penultimate
        features the penalty ignores (see the :ref:`user guide <nir-invariance>`).
    precision : {"float32", "bf16"}, default="float32"
        ``"bf16"`` runs the network's forward pass under :func:`torch.autocast` with bfloat16
        (on CPU and CUDA); the losses and the outputs stay float32.
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
        As in skorch; defaults: cross-entropy, Adam, 1e-3, 10, 64, no validation split.
    **kwargs
        Any other skorch parameter (``iterator_train__shuffle``, ``module__*`` …).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels, in the order of ``predict_proba``'s columns.
    n_features_in_ : int
        Number of values per sample (C·H·W for images).
    module_ : NIRNetwork
        The fitted network.
    history_ : skorch History
        Per epoch ``train_loss`` (= ``train_ce`` + λ ``train_nir``), ``train_ce``,
        ``train_nir`` and, with a validation split, their ``valid_`` counterparts.

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

    def __init__(
        self,
        backbone="resnet18",
        *,
        lambda_nir=0.1,
        weights=None,
        input_normalization="auto",
        nir_normalize="global",
        precision="float32",
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
        self.lambda_nir = lambda_nir
        self.weights = weights
        self.input_normalization = input_normalization
        self.nir_normalize = nir_normalize
        self.precision = precision
        self.hidden_sizes = hidden_sizes
        self.random_state = random_state

    def _get_param_names(self):
        # the module is built from `backbone` at fit time, so it is not a parameter of its own;
        # skorch's private bookkeeping (e.g. _params_to_validate) is not one either
        return [
            name for name in super()._get_param_names()
            if name != "module" and not name.startswith("_")
        ]

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
        return self

    def get_default_callbacks(self):
        callbacks = list(super().get_default_callbacks())
        extra = [
            (name, PassthroughScoring(name=name, on_train=name.startswith("train")))
            for name in ("train_ce", "train_nir", "valid_ce", "valid_nir")
        ]
        return callbacks[:-1] + extra + callbacks[-1:]  # print_log stays last

    def infer(self, x, **fit_params):
        device_type = torch.device(self.device).type
        with torch.autocast(device_type, torch.bfloat16, enabled=self.precision == "bf16"):
            output = super().infer(x, **fit_params)
        if not (isinstance(output, tuple) and len(output) == 2):
            raise TypeError(
                f"The module must return (logits, penultimate) for NIR, got "
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
        ce = super().get_loss(logits, y_true, X=X, training=training)
        probabilities = torch.softmax(logits, dim=1)
        if self.lambda_nir == 0:
            with torch.no_grad():
                nir = nir_penalty(features, probabilities, normalize=self.nir_normalize)
            loss = ce
        else:
            nir = nir_penalty(features, probabilities, normalize=self.nir_normalize)
            loss = ce + self.lambda_nir * nir
        if not torch.isfinite(loss):
            epoch, batch = len(self.history), len(self.history[-1]["batches"]) + 1
            raise RuntimeError(
                f"NIRClassifier: the loss became {loss.item()} in epoch {epoch}, batch {batch} "
                f"(cross-entropy {ce.item():.4g}, NIR {nir.item():.4g}). Lower lr or "
                f"lambda_nir, or check X for extreme values."
            )
        prefix = "train" if training else "valid"
        self.history.record_batch(f"{prefix}_ce", ce.item())
        self.history.record_batch(f"{prefix}_nir", nir.item())
        return loss

    # -- scikit-learn API ----------------------------------------------------------------------

    def fit(self, X, y, **fit_params):
        """Fit the network on images N×C×H×W (float, or uint8 scaled by 1/255) or 2-D X."""
        X, y = self._prepare(X, y)
        return super().fit(X, y, **fit_params)

    def partial_fit(self, X, y, classes=None, **fit_params):
        """Train for ``max_epochs`` more epochs (initialising first if needed)."""
        if "_routing_method" in fit_params:  # called by skorch's fit, with prepared data
            return super().partial_fit(X, y, classes=classes, **fit_params)
        if self.initialized_ and hasattr(self, "label_encoder_"):
            X, y = self._check_X(X), self.label_encoder_.transform(column_or_1d(y))
        else:
            X, y = self._prepare(X, y, classes)
        return super().partial_fit(X, y, classes=classes, **fit_params)

    def _prepare(self, X, y, classes=None):
        """Validate the parameters and the data; encode the labels (data-dependent state)."""
        if (
            not isinstance(self.lambda_nir, numbers.Real)
            or not np.isfinite(self.lambda_nir)
            or self.lambda_nir < 0
        ):
            raise ValueError(
                f"lambda_nir must be a finite number >= 0 (0 = no NIR penalty), got "
                f"{self.lambda_nir!r}."
            )
        if self.nir_normalize not in NORMALIZATIONS:
            raise ValueError(
                f"nir_normalize must be one of {NORMALIZATIONS}, got {self.nir_normalize!r}."
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}.")
        X = self._check_X(X, reset=True)
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
        return X, self.label_encoder_.transform(y).astype(np.int64)

    @property
    def classes_(self):
        return self.label_encoder_.classes_

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``."""
        return super().predict_proba(self._check_X(X))

    def predict(self, X):
        """The most probable label of each sample."""
        if isinstance(X, torch.utils.data.Dataset):
            # skorch's own scoring (valid_acc) compares with the encoded targets it holds
            return super().predict(X)
        proba = self.predict_proba(X)  # checks that the classifier is fitted
        return self.classes_[proba.argmax(axis=1)]

    def decision_function(self, X):
        """The logits: (n_samples,) logit of ``classes_[1]`` for two classes, else one column
        per class."""
        logits = to_numpy(self.forward(self._check_X(X), training=False)[0])
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def penultimate(self, X):
        """The penultimate activations (after global pooling): (n_samples, n_neurons)."""
        return to_numpy(self.forward(self._check_X(X), training=False)[1])

    def _check_X(self, X, reset=False):
        if not reset:
            check_is_fitted(self, "label_encoder_")
        if isinstance(X, torch.utils.data.Dataset):  # skorch's validation data, already checked
            return X
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
                f"X has {int(np.prod(X.shape[1:]))} features, but NIRClassifier is expecting "
                f"{self.n_features_in_} features as input (samples of shape {X.shape[1:]} "
                f"instead of {self.input_shape_})."
            )
        return X
