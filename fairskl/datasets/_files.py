"""Images read from disk on access: training on collections that do not fit in memory."""

import os

import numpy as np
import torch
from torch.utils.data import Dataset

from fairskl.datasets._cache import check_resize, decode_image

__all__ = ["ImageFiles"]

_INV_255 = float(np.float32(1 / 255))


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
    mode : {"RGB", "L"}, default="RGB"
        Pillow mode: 3 channels, or 1 (grey).

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

    def __init__(self, paths, y=None, *, image_size=64, resize="squash", mode="RGB"):
        if isinstance(paths, str | os.PathLike) or not hasattr(paths, "__len__"):
            raise TypeError(f"paths must be a sequence of image paths, got "
                            f"{type(paths).__name__}.")
        self.paths = [os.fspath(p) for p in paths]
        if not self.paths:
            raise ValueError("paths is empty; pass at least one image file.")
        if y is not None:
            y = np.asarray(y)
            if y.ndim != 1 or len(y) != len(self.paths):
                raise ValueError(f"y must have one value per path ({len(self.paths)}), got "
                                 f"shape {y.shape}.")
        if not isinstance(image_size, int | np.integer) or image_size < 1:
            raise ValueError(f"image_size must be a positive int, got {image_size!r}.")
        check_resize(resize)
        if mode not in ("RGB", "L"):
            raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}.")
        self.y = y
        self.image_size = int(image_size)
        self.resize = resize
        self.mode = mode

    @property
    def image_shape(self):
        return (3 if self.mode == "RGB" else 1, self.image_size, self.image_size)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        path = self.paths[index]
        try:
            image = decode_image(path, self.image_size, self.mode, self.resize)
        except (OSError, ValueError, SyntaxError) as exc:  # Pillow's errors for bad files
            raise OSError(f"cannot read image {index} of {len(self)}, {path!r}: "
                          f"{type(exc).__name__}: {exc}. Remove it from the paths, or "
                          f"replace the file.") from exc
        image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        image = image.to(torch.float32).mul_(_INV_255)  # as the loaders' arrays, to the bit
        target = 0 if self.y is None else self.y[index]
        return image, torch.as_tensor(target)

    def __repr__(self):
        return (f"ImageFiles({len(self)} files, image_size={self.image_size}, "
                f"resize={self.resize!r}, mode={self.mode!r})")
