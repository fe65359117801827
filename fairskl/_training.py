"""How fairskl's networks train: mixed precision, augmented training batches, resumable fits.

:class:`TrainingMixin` goes before skorch's ``NeuralNet`` (or ``NeuralNetClassifier``) in the
bases of the classifiers and of PerceptualVAE, and reads their parameters ``precision``,
``channels_last``, ``augment`` and ``checkpoint``; it owns the parameters' names and their
validation (``_parameter_constraints``), the training step (augmentation, autocast, the fp16
gradient scaler) and the checkpoint callbacks.

A checkpoint directory holds one complete set of files per saved epoch, written into a staging
directory and then published by renaming it and atomically replacing ``checkpoint.json``,
which names the set to load: a process killed at any moment leaves the last published set
intact, and an unpublished one is removed by the next save. Nothing is fsync'ed: the guarantee
holds against a killed process, not against a machine that loses power.
"""

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from sklearn.utils._param_validation import StrOptions, validate_parameter_constraints
from skorch.callbacks import Checkpoint, LoadInitState
from skorch.utils import TeeGenerator, to_tensor

from fairskl._augment import AUGMENTATIONS, augment_images
from fairskl._io import write_text

__all__ = ["PRECISIONS", "ResumableCheckpoint", "ResumeFromCheckpoint", "TrainingMixin"]

PRECISIONS = ("float32", "bf16", "fp16")
#: the file naming the published set of a checkpoint directory
POINTER = "checkpoint.json"
RNG_FILE = "rng_state.pt"
EPOCH_PREFIX = "epoch_"
STAGING_PREFIX = ".staging-"


class TrainingMixin:
    """The training step and the checkpoints of a skorch net (see the module docstring)."""

    #: the range of the images the network trains on; a user's augmentation pipeline gets
    #: them on [0, 1]
    _image_range = (0.0, 1.0)
    #: the names of the checkpoint callbacks in ``callbacks_``
    _load_name, _save_name = "resume_from_checkpoint", "checkpoint"
    #: scikit-learn's rules for the parameters read here; an estimator adds its own
    #: (``{**TrainingMixin._parameter_constraints, ...}``)
    _parameter_constraints = {
        "precision": [StrOptions(set(PRECISIONS))],
        "channels_last": ["boolean"],
        "augment": [None, StrOptions(set(AUGMENTATIONS)), callable],
        "checkpoint": [None, str, os.PathLike],
    }

    def __setattr__(self, name, value):
        if name == "augment":
            # a torchvision v2 pipeline is an nn.Module, which skorch would take for a part
            # of the network (and refuse outside initialize): it is a plain parameter
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _validate_parameters(self):
        """Check the parameters: each against ``_parameter_constraints`` (skorch's own
        ``_validate_params`` checks only the names of prefixed ones), then the rules that
        involve two of them (:meth:`_check_params`)."""
        validate_parameter_constraints(
            self._parameter_constraints,
            {name: getattr(self, name) for name in self._parameter_constraints},
            caller_name=type(self).__name__,
        )
        if self.precision == "fp16" and torch.device(self.device).type != "cuda":
            raise ValueError(
                f"precision='fp16' needs a CUDA device (it uses a gradient scaler), got "
                f"device={self.device!r}; use precision='bf16' on CPU."
            )
        self._check_params()

    def _check_params(self):
        """Raise for a combination of parameters that the constraints cannot express."""

    def _get_param_names(self):
        # the module is built from the estimator's parameters at fit time (a backbone, the
        # architecture), so it is not a parameter of its own; skorch's private bookkeeping
        # (e.g. _params_to_validate) is not one either
        return [
            name for name in super()._get_param_names()
            if name != "module" and not name.startswith("_")
        ]

    def initialize(self):
        self._validate_parameters()
        super().initialize()
        self.grad_scaler_ = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        return self

    # -- the training step ---------------------------------------------------------------------

    def _autocast(self):
        device_type = torch.device(self.device).type
        dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16
        return torch.autocast(device_type, dtype, enabled=self.precision != "float32")

    def _to_device(self, X):
        X = to_tensor(X, device=self.device)
        if self.channels_last and X.ndim == 4:
            X = X.contiguous(memory_format=torch.channels_last)
        return X

    def _augment_batch(self, batch):
        """The training batch with its images augmented (``augment``); as is for None."""
        if self.augment is None:
            return batch
        Xi, yi = batch

        def augment(images):
            images = to_tensor(images, device=self.device)
            return augment_images(images, self.augment, value_range=self._image_range)

        if isinstance(Xi, Mapping):  # the images and per-sample extras (weights, groups)
            return {**Xi, "X": augment(Xi["X"])}, yi
        return augment(Xi), yi

    def train_step_single(self, batch, **fit_params):
        if self.precision != "fp16":
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = batch
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self.grad_scaler_.scale(loss).backward()
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch, **fit_params):
        # augmented once per step, outside skorch's optimizer closure (which an optimizer such
        # as LBFGS calls several times)
        batch = self._augment_batch(batch)
        if self.precision != "fp16":
            return super().train_step(batch, **fit_params)
        # gradient scaling: one step without skorch's optimizer closure; the callbacks (such as
        # skorch's GradientNormClipping) see the unscaled gradients
        self.optimizer_.zero_grad()
        step = self.train_step_single(batch, **fit_params)
        self.grad_scaler_.unscale_(self.optimizer_)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        self.grad_scaler_.step(self.optimizer_)
        self.grad_scaler_.update()
        return step

    # -- resumable fits ------------------------------------------------------------------------

    def _checkpoint_directory(self):
        return Path(self.checkpoint)

    def initialize_callbacks(self):
        super().initialize_callbacks()
        if self.checkpoint is None:
            return self
        names = {name for name, _ in self.callbacks_}
        taken = names & {self._load_name, self._save_name}
        if taken:
            raise ValueError(
                f"checkpoint= adds callbacks named {self._load_name!r} and {self._save_name!r}, "
                f"but callbacks already has {sorted(taken)}; rename yours."
            )
        save = ResumableCheckpoint(self._checkpoint_directory()).initialize()
        load = ResumeFromCheckpoint(save).initialize()
        # loaded before every other callback starts (scoring callbacks read their best score
        # from the history), saved after every other callback ended the epoch
        self.callbacks_ = [(self._load_name, load), *self.callbacks_, (self._save_name, save)]
        return self

    def fit_loop(self, X, y=None, epochs=None, *, _routing_method="fit", **fit_params):
        if epochs is None and _routing_method == "fit":
            epochs = self._remaining_epochs(self.max_epochs)
        return super().fit_loop(X, y, epochs=epochs, _routing_method=_routing_method,
                                **fit_params)

    def _remaining_epochs(self, epochs):
        """The epochs left of a fit of ``epochs`` epochs: all of them unless a checkpoint was
        loaded; none after a finished fit; else ``epochs`` less those in the loaded history."""
        load = dict(getattr(self, "callbacks_", [])).get(self._load_name)
        if not isinstance(load, ResumeFromCheckpoint) or not load.loaded_:
            return epochs
        return 0 if load.finished_ else max(epochs - len(self.history), 0)


class ResumableCheckpoint(Checkpoint):
    """skorch's :class:`~skorch.callbacks.Checkpoint` of every epoch, published atomically.

    Saves the module's parameters, the optimizer's and criterion's state, the gradient
    scaler's state, the history and torch's random number generators after every epoch, as
    one set of files in ``dirname/epoch_NNNN-XXXX/`` (see the module docstring); when
    training ends (all epochs, early stopping) it saves the final state, marked finished.

    Parameters
    ----------
    dirname : path-like
        The checkpoint directory.
    """

    def __init__(self, dirname, **kwargs):
        kwargs = {"f_grad_scaler": "grad_scaler.pt", **kwargs}
        super().__init__(monitor=None, dirname=str(dirname), event_name=None, **kwargs)

    def on_epoch_end(self, net, **kwargs):
        self.save_model(net)

    def initialize(self):
        super().initialize()
        self.published_ = None  # (epoch, finished) of the set checkpoint.json names
        return self

    def on_train_end(self, net, **kwargs):
        # an epoch cut short (Ctrl-C, which skorch takes as the end of training) is not saved:
        # the fit resumes at its last full epoch; a finished fit loaded as is is not saved again
        epoch = len(net.history)
        if epoch and "train_batch_count" in net.history[-1] and self.published_ != (epoch, True):
            self.save_model(net, finished=True)

    def save_model(self, net, finished=False):
        root = Path(self.dirname)
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=STAGING_PREFIX))
        epoch = len(net.history)
        # a name no earlier set has (the staging directory's random part): the published set
        # is never overwritten, only removed once checkpoint.json names its successor
        name = f"{EPOCH_PREFIX}{epoch:04d}{'_final' if finished else ''}-" + \
            staging.name.removeprefix(STAGING_PREFIX)
        try:
            self.dirname = str(staging)  # skorch's save_model writes into dirname
            try:
                super().save_model(net)
            finally:
                self.dirname = str(root)
            torch.save(_rng_state(), staging / RNG_FILE)
            os.rename(staging, root / name)
            write_text(root / POINTER, json.dumps({
                "estimator": type(net).__name__, "epoch": epoch, "directory": name,
                "finished": finished,
            }))
            self.published_ = (epoch, finished)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for path in root.iterdir():  # earlier sets, and staging left by a killed run
            if path.name != name and path.is_dir() and path.name.startswith(
                    (EPOCH_PREFIX, STAGING_PREFIX)):
                shutil.rmtree(path, ignore_errors=True)

    def _save_params(self, f, net, f_name, log_name):
        # skorch logs a failed save and carries on; a set with a file missing must not be
        # published
        net.save_params(**{f_name: f, "use_safetensors": self.use_safetensors})


class ResumeFromCheckpoint(LoadInitState):
    """skorch's :class:`~skorch.callbacks.LoadInitState` for a :class:`ResumableCheckpoint`.

    When training begins, loads the set that ``checkpoint.json`` names (nothing when there is
    none): parameters, optimizer, criterion and gradient-scaler state, history and the random
    number generators, so that the fit goes on as if it had never stopped.

    Attributes
    ----------
    loaded_ : bool
        Whether a set was loaded when this training began.
    finished_ : bool
        Whether the loaded set is the end of a finished fit.
    """

    def initialize(self):
        super().initialize()
        self.loaded_ = self.finished_ = False
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        if self.did_load_:  # a later training of the same net (warm_start, partial_fit)
            self.loaded_ = self.finished_ = False
            return
        self.did_load_ = True
        root = Path(self.checkpoint.dirname)
        if not (root / POINTER).is_file():
            return
        state = json.loads((root / POINTER).read_text(encoding="utf-8"))
        directory = root / state["directory"]
        if state["estimator"] != type(net).__name__:
            raise ValueError(
                f"The checkpoint in {root} was written by a {state['estimator']}, not a "
                f"{type(net).__name__}; give each fit its own checkpoint directory."
            )
        try:
            self.checkpoint.dirname = str(directory)
            net.load_params(checkpoint=self.checkpoint, use_safetensors=self.use_safetensors)
            rng = torch.load(directory / RNG_FILE, weights_only=True)
        except (RuntimeError, KeyError, ValueError) as error:
            raise ValueError(
                f"The checkpoint in {root} (epoch {state['epoch']}) does not fit this "
                f"{type(net).__name__}: {error}. Was it written by a fit with other "
                f"parameters or data? Give each fit its own checkpoint directory."
            ) from error
        finally:
            self.checkpoint.dirname = str(root)
        _set_rng_state(rng)
        self.loaded_, self.finished_ = True, bool(state["finished"])
        self.checkpoint.published_ = (state["epoch"], self.finished_)


def _rng_state():
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def _set_rng_state(state):
    torch.set_rng_state(state["cpu"])
    if torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        with contextlib.suppress(RuntimeError):
            torch.cuda.set_rng_state_all(state["cuda"])
