"""The transfer testbed: a small CNN pretrained once on a source task, then fine-tuned.

The NIR paper's mechanism is stated for transfer-learned networks (an ImageNet-pretrained
backbone fine-tuned on the diagnosis). At CPU scale the source task is a generated one whose
label has nothing to do with the diagnosis: the acquisition of the image (skin type, hair,
dermoscope vignette), learnt on images where none of them tells the diagnosis or the
patient's sex and age. The pretrained body is cached on disk, as the data sets' images are.
"""

import numbers
import os

import joblib
import numpy as np
import torch
from sklearn.utils._param_validation import Interval, validate_params

from fairskl._constraints import VERBOSE
from fairskl._io import atomic_path

__all__ = ["pretrain_small_cnn"]

#: bumped when the source task or its training changes, so that an old cache is not reused
SOURCE_PROTOCOL = 1
#: the source task's seed, away from the studies' data seeds (seed, seed + 1, seed + 2)
SOURCE_SEED_OFFSET = 1000


@validate_params(
    {
        "image_size": [Interval(numbers.Integral, 16, None, closed="left")],
        "n_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "data_home": [str, os.PathLike, None],
        "random_state": [Interval(numbers.Integral, 0, None, closed="left")],
        "verbose": VERBOSE,
    },
    prefer_skip_nested_validation=True,
)
def pretrain_small_cnn(image_size=32, *, n_samples=6000, max_epochs=6, lr=1e-3, batch_size=64,
                       data_home=None, random_state=0, verbose=0):
    """Pretrain ``small_cnn`` on a source task unrelated to the diagnosis; return its path.

    The source task classifies each image of :func:`~fairskl.datasets.make_skin_lesions`
    (``bias=0``: the diagnosis independent of sex and age; ``artefact_strength=0``: hair and
    vignette in half of the images, whoever the patient) into 24 acquisition classes:
    Fitzpatrick skin type (6) × hair (2) × vignette (2). The body (the convolutional blocks,
    not the 24-way head) learns the image's tone, hair and vignette, as an ImageNet body learns
    generic textures; fine-tuned on the biased task with ``backbone="small_cnn",
    weights=path``, it starts with features that can carry the groups' artefacts, the setting
    the NIR paper describes. Trained once per setting and cached in
    ``<data_home>/fairskl_cache/pretrained/`` (written atomically).

    Parameters
    ----------
    image_size : int, default=32
        Side of the source images; the body then fits images of that size best.
    n_samples : int, default=6000
        Source images.
    max_epochs : int, default=6
        Epochs of the source training (Adam, cosine decay of ``lr``).
    lr : float, default=1e-3
    batch_size : int, default=64
    data_home : str or path-like, default=None
        Where the cache lives (:func:`fairskl.datasets.get_data_home`).
    random_state : int, default=0
        Seeds the source images (offset by 1000 from the studies' seeds) and the training.
    verbose : int, default=0
        skorch's per-epoch log of the source training.

    Returns
    -------
    path : pathlib.Path
        A ``state_dict`` of :class:`fairskl._backbones.SmallCNNBody` (3 input channels).

    Examples
    --------
    >>> import tempfile
    >>> from fairskl import NIRClassifier
    >>> from fairskl.experiments import pretrain_small_cnn
    >>> path = pretrain_small_cnn(16, n_samples=200, max_epochs=1, data_home=tempfile.mkdtemp())
    >>> net = NIRClassifier("small_cnn", weights=str(path), lr=3e-4)  # fine-tune from it
    >>> path == pretrain_small_cnn(16, n_samples=200, max_epochs=1, data_home=path.parents[2])
    True
    """
    from skorch.callbacks import LRScheduler

    from fairskl import NIRClassifier
    from fairskl.datasets import get_data_home, make_skin_lesions

    settings = dict(protocol=SOURCE_PROTOCOL, image_size=int(image_size),
                    n_samples=int(n_samples), max_epochs=int(max_epochs), lr=float(lr),
                    batch_size=int(batch_size), random_state=int(random_state))
    path = (get_data_home(data_home) / "fairskl_cache" / "pretrained"
            / f"small_cnn_{joblib.hash(settings)[:16]}.pt")
    if path.exists():
        return path
    data = make_skin_lesions(n_samples, image_size, bias=0.0, artefact_strength=0.0,
                             random_state=random_state + SOURCE_SEED_OFFSET, as_frame=True)
    target = ((data.frame["skin_type"].to_numpy(dtype=int) - 1) * 4
              + 2 * data.frame["has_hair"].to_numpy(dtype=int)
              + data.frame["has_vignette"].to_numpy(dtype=int))
    net = NIRClassifier(
        "small_cnn", lambda_nir=0.0, max_epochs=max_epochs, lr=lr, batch_size=batch_size,
        random_state=random_state, verbose=verbose, classes=np.arange(24),
        callbacks=[("lr_schedule", LRScheduler("CosineAnnealingLR", T_max=max_epochs))],
    ).fit(data.images, target)
    with atomic_path(path) as tmp:
        torch.save(net.module_.body.state_dict(), tmp)
    return path
