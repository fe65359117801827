"""How fairskl's networks train: mixed precision and augmented training batches.

:class:`TrainingMixin` goes before skorch's ``NeuralNet`` (or ``NeuralNetClassifier``) in the
bases of the classifiers and of PerceptualVAE, and reads their parameters ``precision``,
``channels_last`` and ``augment``; it owns the training step (augmentation, autocast, the fp16
gradient scaler, gradient clipping).
"""

from collections.abc import Mapping

import torch
from skorch.utils import TeeGenerator, to_tensor
from torch import nn

from fairskl._augment import augment_images, check_augment

__all__ = ["PRECISIONS", "TrainingMixin"]

PRECISIONS = ("float32", "bf16", "fp16")


class TrainingMixin:
    """The training step and the checkpoints of a skorch net (see the module docstring)."""

    #: the range of the images the network trains on; a user's augmentation pipeline gets
    #: them on [0, 1]
    _image_range = (0.0, 1.0)

    def __setattr__(self, name, value):
        if name == "augment":
            # a torchvision v2 pipeline is an nn.Module, which skorch would take for a part
            # of the network (and refuse outside initialize): it is a plain parameter
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _check_training_params(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}.")
        if self.precision == "fp16" and torch.device(self.device).type != "cuda":
            raise ValueError(
                f"precision='fp16' needs a CUDA device (it uses a gradient scaler), got "
                f"device={self.device!r}; use precision='bf16' on CPU."
            )
        check_augment(self.augment)
        if not isinstance(self.channels_last, bool):
            raise ValueError(f"channels_last must be True or False, got {self.channels_last!r}.")

    def _gradient_clip_norm(self):
        """The norm to clip the gradients to, or None."""
        return None

    def initialize(self):
        self._check_training_params()
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
        clip_norm = self._gradient_clip_norm()
        if self.precision != "fp16" and clip_norm is None:
            return super().train_step(batch, **fit_params)
        # gradient scaling or clipping: one step without skorch's optimizer closure
        self.optimizer_.zero_grad()
        step = self.train_step_single(batch, **fit_params)
        self.grad_scaler_.unscale_(self.optimizer_)
        if clip_norm is not None:
            nn.utils.clip_grad_norm_([p for _, p in self.get_all_learnable_params()], clip_norm)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        self.grad_scaler_.step(self.optimizer_)
        self.grad_scaler_.update()
        return step
