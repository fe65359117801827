"""Augmentation of training batches, one vocabulary for the classifiers and PerceptualVAE.

``augment=None`` leaves the batches as they are; ``"hflip"`` flips each image left-right with
probability 0.5 (torchvision's ``RandomHorizontalFlip(0.5)``); ``"hflip_crop"`` flips, then
takes a random crop of each image and resizes it back to the image's size (torchvision's
``RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(3/4, 4/3))``); a callable (typically a
``torchvision.transforms.v2`` pipeline) is applied to each image in turn. Every draw comes from
torch's global CPU generator, which the estimators seed with their ``random_state``, so a
seeded fit is reproducible and the draws do not depend on the device.
"""

import math

import torch
from torch.nn import functional as F

__all__ = ["AUGMENTATIONS", "augment_images", "resized_crop"]

#: the named augmentations
AUGMENTATIONS = ("hflip", "hflip_crop")
#: "hflip_crop": the share of the image's area a crop covers, and its aspect ratio (w / h)
CROP_SCALE = (0.8, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
#: draws of a crop box per image before falling back to the whole image (as torchvision)
CROP_ATTEMPTS = 10


def augment_images(X, augment, *, value_range=(0.0, 1.0)):
    """The images of a training batch, augmented.

    Parameters
    ----------
    X : torch.Tensor of shape (n, C, H, W)
        Float images, on any device.
    augment : None, "hflip", "hflip_crop" or callable
        See the module docstring. A callable gets one image at a time, a (C, H, W) float
        tensor in [0, 1] (``value_range`` is mapped to [0, 1] and back), and must return an
        image of the same shape.
    value_range : (float, float), default=(0.0, 1.0)
        The range of the images in ``X`` (PerceptualVAE works on [-1, 1]).

    Returns
    -------
    torch.Tensor of the shape, dtype and device of X
    """
    if augment is None:
        return X
    if not isinstance(augment, str):
        return _each_image(X, augment, value_range)
    # torch's global CPU generator: seeded with random_state, the same draws on any device
    flip = (torch.rand(len(X)) < 0.5).to(X.device).view(-1, *[1] * (X.ndim - 1))
    X = torch.where(flip, X.flip(-1), X)
    if augment == "hflip_crop":
        X = resized_crop(X, _crop_boxes(len(X), *X.shape[-2:]))
    return X


def _crop_boxes(n, height, width):
    """Random boxes ``(left, top, width, height)`` in pixels, one per image, as torchvision's
    ``RandomResizedCrop.get_params`` draws them: an area of ``CROP_SCALE`` of the image's, an
    aspect ratio log-uniform in ``CROP_RATIO``, the first of ``CROP_ATTEMPTS`` draws that fits
    in the image (else the whole image), at a uniform position."""
    area = torch.empty(n, CROP_ATTEMPTS).uniform_(*CROP_SCALE) * (height * width)
    log_ratio = torch.empty(n, CROP_ATTEMPTS).uniform_(*map(math.log, CROP_RATIO))
    w = torch.sqrt(area * torch.exp(log_ratio))
    h = torch.sqrt(area / torch.exp(log_ratio))
    fits = (w <= width) & (h <= height)
    first = fits.float().argmax(dim=1)  # the first draw that fits (0 when none does)
    rows = torch.arange(n)
    w = torch.where(fits.any(dim=1), w[rows, first], torch.tensor(float(width)))
    h = torch.where(fits.any(dim=1), h[rows, first], torch.tensor(float(height)))
    position = torch.rand(n, 2)
    return torch.stack([position[:, 0] * (width - w), position[:, 1] * (height - h), w, h], 1)


def resized_crop(X, boxes):
    """Crop each image to its box and resize it back to the image's size (bilinear).

    Parameters
    ----------
    X : torch.Tensor of shape (n, C, H, W)
    boxes : torch.Tensor of shape (n, 4)
        ``(left, top, width, height)`` of each crop in pixels (fractional values allowed),
        inside the image.

    Returns
    -------
    torch.Tensor of the shape of X
        Pixel ``(i, j)`` of the output samples the input at ``(top + (i + 0.5) * height / H,
        left + (j + 0.5) * width / W)`` (pixel centres at half-integers), as resizing the
        crop with ``F.interpolate(..., mode="bilinear", align_corners=False)`` does, except
        on the outer rows and columns, which interpolate with the pixels beyond the crop
        (within the image) rather than repeating the crop's border.
    """
    n, _, height, width = X.shape
    left, top, w, h = boxes.to(device=X.device, dtype=X.dtype).unbind(1)
    zero = torch.zeros_like(w)
    # normalised coordinates in [-1, 1] (align_corners=False): the output's [-1, 1] maps
    # onto the box
    theta = torch.stack([
        torch.stack([w / width, zero, (2 * left + w) / width - 1], 1),
        torch.stack([zero, h / height, (2 * top + h) / height - 1], 1),
    ], 1)
    grid = F.affine_grid(theta, list(X.shape), align_corners=False)
    return F.grid_sample(X, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _each_image(X, pipeline, value_range):
    """A user's pipeline applied to each image on the [0, 1] scale."""
    low, high = value_range
    images = (X - low) / (high - low)
    out = []
    for image in images:
        result = pipeline(image)
        if not isinstance(result, torch.Tensor) or result.shape != image.shape:
            got = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result)
            raise ValueError(
                f"The augment pipeline must return each image as a tensor of its shape "
                f"{tuple(image.shape)} (C, H, W), got {got}. Resize or crop back to the "
                f"image's size inside the pipeline, e.g. v2.RandomResizedCrop({image.shape[-1]})."
            )
        out.append(result.as_subclass(torch.Tensor))
    return torch.stack(out).to(X.dtype) * (high - low) + low
