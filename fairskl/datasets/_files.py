"""Images read from disk on access: training on collections that do not fit in memory."""

import os
import zipfile

import numpy as np
import torch
from torch.utils.data import Dataset

from fairskl.datasets._cache import check_resize, decode_image
from fairskl.datasets._harvard_gf import decode_rnflt

__all__ = ["ImageFiles", "as_image_files", "is_path_sequence"]

_INV_255 = float(np.float32(1 / 255))
MODES = ("RGB", "L", "RNFLT")


class ImageFiles(Dataset):
    """Image files decoded and resized when an item is read, as a torch ``Dataset``.

    Each item is ``(image, target)``: the image as a float32 tensor (C, H, W) in [0, 1],
    decoded and resized like the loaders' cached arrays (:func:`load_ham10000` and the others,
    which return these paths with ``return_paths=True``), and its target (a placeholder 0
    without ``y``), so that skorch-based estimators and a :class:`~torch.utils.data.DataLoader`
    with worker processes (``iterator_train__num_workers``) read a collection that does not
    fit in memory. Nothing is cached: each read decodes the file again.

    Parameters
    ----------
    paths : sequence of str or path-like
        One image file per sample.
    y : array-like of shape (n_samples,), default=None
        Targets, returned with each image.
    image_size : int, default=64
        Side of the square images returned.
    resize : {"squash", "crop"}, default="squash"
        As the loaders' ``resize``: the whole image to the square, or its short side to
        ``image_size`` and the centre square.
    mode : {"RGB", "L", "RNFLT"}, default="RGB"
        Pillow mode: 3 channels, or 1 (grey); ``"RNFLT"``: Harvard-GF's per-patient ``.npz``
        files, whose retinal nerve fibre layer thickness map is scaled to [0, 1] and resized
        (one channel), as :func:`~fairskl.datasets.load_harvard_glaucoma` does.
    groups : array-like of shape (n_samples,), default=None
        The group (lesion, patient) of each file, which
        :class:`~fairskl.model_selection.GroupedValidSplit` keeps on one side of a fit's
        validation split.

    Attributes
    ----------
    image_shape : tuple of int
        ``(C, image_size, image_size)``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from PIL import Image
    >>> from fairskl.datasets import ImageFiles
    >>> folder = Path(tempfile.mkdtemp())
    >>> for i in range(3):
    ...     Image.fromarray(np.full((40, 30, 3), 60 * i, np.uint8)).save(folder / f"{i}.png")
    >>> data = ImageFiles(sorted(folder.glob("*.png")), y=[0, 1, 0], image_size=16)
    >>> image, target = data[1]
    >>> tuple(image.shape), image.dtype, round(float(image.max()), 3), int(target)
    ((3, 16, 16), torch.float32, 0.235, 1)
    """

    def __init__(self, paths, y=None, *, image_size=64, resize="squash", mode="RGB",
                 groups=None):
        if isinstance(paths, str | os.PathLike) or not hasattr(paths, "__len__"):
            raise TypeError(f"paths must be a sequence of image paths, got "
                            f"{type(paths).__name__}.")
        self.paths = [os.fspath(p) for p in paths]
        if not self.paths:
            raise ValueError("paths is empty; pass at least one image file.")
        y, groups = (None if v is None else np.asarray(v) for v in (y, groups))
        for name, values in (("y", y), ("groups", groups)):
            if values is not None and (values.ndim != 1 or len(values) != len(self.paths)):
                raise ValueError(f"{name} must have one value per path ({len(self.paths)}), "
                                 f"got shape {values.shape}.")
        if not isinstance(image_size, int | np.integer) or image_size < 1:
            raise ValueError(f"image_size must be a positive int, got {image_size!r}.")
        check_resize(resize)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        if mode == "RNFLT" and resize != "squash":
            raise ValueError(f"mode='RNFLT' resizes the whole map; resize must be 'squash', got "
                             f"{resize!r}.")
        self.y = y
        self.groups = groups
        self.image_size = int(image_size)
        self.resize = resize
        self.mode = mode

    @property
    def image_shape(self):
        return (3 if self.mode == "RGB" else 1, self.image_size, self.image_size)

    def subset(self, indices):
        """The files at ``indices`` (ints or a boolean mask), with their targets and groups,
        as a new ImageFiles."""
        indices = np.arange(len(self))[np.asarray(indices)]
        pick = (lambda v: None if v is None else v[indices])  # noqa: E731
        return ImageFiles([self.paths[i] for i in indices], pick(self.y),
                          image_size=self.image_size, resize=self.resize, mode=self.mode,
                          groups=pick(self.groups))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        path = self.paths[index]
        try:
            image = self._decode(path)
        except (OSError, ValueError, SyntaxError, KeyError, zipfile.BadZipFile) as exc:
            # Pillow's errors for bad images; numpy's for a bad .npz
            raise OSError(f"cannot read image {index} of {len(self)}, {path!r}: "
                          f"{type(exc).__name__}: {exc}. Remove it from the paths, or "
                          f"replace the file.") from exc
        return image, torch.as_tensor(self._target(index))

    def _decode(self, path):
        """The image of one file as a (C, H, W) float32 tensor, equal to the loaders' array."""
        if self.mode == "RNFLT":
            return torch.from_numpy(decode_rnflt(path, self.image_size).transpose(2, 0, 1)
                                    .copy())
        image = decode_image(path, self.image_size, self.mode, self.resize)
        image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return image.to(torch.float32).mul_(_INV_255)  # as the loaders' arrays, to the bit

    def _target(self, index):
        return 0 if self.y is None else self.y[index]

    def __repr__(self):
        return (f"ImageFiles({len(self)} files, image_size={self.image_size}, "
                f"resize={self.resize!r}, mode={self.mode!r})")


def is_path_sequence(X):
    """Whether X is a sequence of image paths: a list, tuple, 1-D array or pandas Series of
    str or path-like (checked on every element)."""
    if isinstance(X, str | bytes | os.PathLike | dict) or not hasattr(X, "__len__"):
        return False
    if isinstance(X, np.ndarray) and (X.ndim != 1 or X.dtype.kind not in "UO"):
        return False
    if not isinstance(X, list | tuple | np.ndarray) and not hasattr(X, "to_numpy"):
        return False
    values = X.to_numpy() if hasattr(X, "to_numpy") else X
    if getattr(values, "ndim", 1) != 1:
        return False
    return len(values) > 0 and all(isinstance(v, str | os.PathLike) for v in values)


def as_image_files(paths, *, image_size, resize="squash", groups=None):
    """Image paths given as an estimator's X, as :class:`ImageFiles`: Harvard-GF's ``.npz``
    files as RNFLT maps (one channel), any other file as an RGB image."""
    paths = [os.fspath(p) for p in (paths.to_numpy() if hasattr(paths, "to_numpy") else paths)]
    npz = [p.lower().endswith(".npz") for p in paths]
    if any(npz) and not all(npz):
        raise ValueError(f"X mixes .npz files ({sum(npz)}) and images ({len(npz) - sum(npz)}); "
                         f"give one kind of file.")
    mode = "RNFLT" if npz[0] else "RGB"
    return ImageFiles(paths, image_size=image_size, resize="squash" if npz[0] else resize,
                      mode=mode, groups=groups)
