"""Decode and resize images once: a per-(data set, image size, resize mode) array cache.

The cache of one data set at one image size (and resize mode: the key of a ``"crop"`` cache
ends in ``_crop``, so squashed and cropped images never mix) is two files under
``<data_home>/fairskl_cache/``:

- ``<key>.json``, the manifest: for every source file its path, size in bytes and modification
  time (ns), and the row of the array that holds it (or the error it failed with);
- ``<key>-<token>.npy``, the decoded, resized images (uint8 for photographs), one per row.

Both are written with :func:`fairskl._io.atomic_path` (temporary file, fsync, rename) and the
array first: the manifest, written last, is the commit point, and it names the array by a fresh
token. An interrupt at any moment leaves either the previous cache or the new one, never a
manifest that points at a half-written array; a manifest whose array is missing or does not
have the recorded shape is ignored. When some sources change (size or mtime), only those are
decoded again and the cache is rewritten.
"""

import contextlib
import json
import os
import secrets
import warnings
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.utils.parallel import Parallel, delayed

from fairskl._io import atomic_path
from fairskl.exceptions import DataWarning

CACHE_VERSION = 1
_CHUNK = 64  # images decoded per parallel task


RESIZE_MODES = ("squash", "crop")


def check_resize(resize):
    """Raise a ValueError naming the argument, the value and the choices if ``resize`` is bad."""
    if not isinstance(resize, str) or resize not in RESIZE_MODES:
        raise ValueError(
            f"resize must be 'squash' or 'crop', got {resize!r}. 'squash' resizes the whole "
            "image to image_size x image_size (aspect ratio not kept); 'crop' resizes its "
            "short side to image_size and keeps the centre square (torchvision's "
            "Resize(image_size) + CenterCrop(image_size), as the VAE study's reference)."
        )


def crop_box(width, height, image_size):
    """``(new_width, new_height, box)``: torchvision's ``Resize(image_size)`` then
    ``CenterCrop(image_size)`` of a ``width`` x ``height`` image.

    The short side becomes ``image_size`` and the long one ``int(image_size * long / short)``
    (truncated, as torchvision does); the crop starts at ``round((new - image_size) / 2)``
    on each axis (Python's round, as torchvision's ``center_crop``). ``box`` is Pillow's
    ``(left, upper, right, lower)``.
    """
    short, long = sorted((width, height))
    new_long = int(image_size * long / short)
    new_w, new_h = (image_size, new_long) if width <= height else (new_long, image_size)
    left = int(round((new_w - image_size) / 2.0))
    top = int(round((new_h - image_size) / 2.0))
    return new_w, new_h, (left, top, left + image_size, top + image_size)


def decode_image(path, image_size, mode="RGB", resize="squash"):
    """Decode an image file and resize it to ``image_size`` x ``image_size``: (H, W, C) uint8.

    ``resize="squash"`` resizes the whole image (the aspect ratio is not kept);
    ``resize="crop"`` resizes its short side to ``image_size``, keeping the aspect ratio, and
    keeps the centre ``image_size`` x ``image_size`` square, as torchvision's
    ``Resize(image_size)`` + ``CenterCrop(image_size)`` do on a Pillow image (:func:`crop_box`).
    Both use Pillow's antialiased bilinear filter. JPEGs are first decoded directly at the
    smallest DCT scale that is still at least ``image_size`` on each side (``Image.draft``),
    which makes large photographs cheap; the crop geometry is computed from the original size.
    """
    check_resize(resize)
    with Image.open(path) as im:
        width, height = im.size
        im.draft(mode, (image_size, image_size))
        im = im.convert(mode)
        if resize == "squash":
            im = im.resize((image_size, image_size), Image.Resampling.BILINEAR)
        else:
            new_w, new_h, box = crop_box(width, height, image_size)
            im = im.resize((new_w, new_h), Image.Resampling.BILINEAR).crop(box)
    arr = np.asarray(im, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def to_float(images):
    """(N, H, W, C) cached array -> (N, C, H, W) float32 in [0, 1] (uint8 is divided by 255)."""
    out = np.empty((images.shape[0], images.shape[3], images.shape[1], images.shape[2]),
                   dtype=np.float32)
    scale = np.float32(1 / 255 if images.dtype == np.uint8 else 1)
    for start in range(0, len(out), 256):  # chunks: the transposed reads stay in the cache
        sl = slice(start, start + 256)
        np.multiply(images[sl].transpose(0, 3, 1, 2), scale, out=out[sl], casting="unsafe")
    return out


def _decode_many(decoder, paths):
    """Decode a chunk; a file that fails gives its error message instead of an array."""
    results = []
    for p in paths:
        try:
            results.append(decoder(p))
        except Exception as exc:  # noqa: BLE001 - any decoder error is reported per file
            results.append(f"{type(exc).__name__}: {exc}")
    return results


def _stat(path):
    st = os.stat(path)
    return [str(path), int(st.st_size), int(st.st_mtime_ns)]


def _read_cache(cache_file, meta):
    """Return ``(entries dict, array)`` of a valid cache, or None when absent or unusable."""
    manifest_path = Path(f"{cache_file}.json")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("version") != CACHE_VERSION or manifest.get("meta") != meta:
            return None
        array = np.load(manifest_path.parent / manifest["array"], mmap_mode="r",
                        allow_pickle=False)
        if (list(array.shape) != manifest["shape"] or str(array.dtype) != manifest["dtype"]):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    entries = {(p, size, mtime): (row, err) for p, size, mtime, row, err in manifest["entries"]}
    return entries, array, manifest


def _write_cache(cache_file, meta, entries, array):
    """Write the array, then the manifest (the commit point), then remove the old array."""
    cache_file = Path(cache_file)
    manifest_path = Path(f"{cache_file}.json")
    old = None
    with contextlib.suppress(OSError, ValueError):
        old = json.loads(manifest_path.read_text(encoding="utf-8")).get("array")
    name = f"{cache_file.name}-{secrets.token_hex(8)}.npy"
    with atomic_path(cache_file.parent / name) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
    manifest = {"version": CACHE_VERSION, "meta": meta, "array": name,
                "shape": list(array.shape), "dtype": str(array.dtype), "entries": entries}
    try:
        with atomic_path(manifest_path) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(manifest, f)
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(cache_file.parent / name)
        raise
    if old and old != name:
        with contextlib.suppress(OSError):
            os.unlink(cache_file.parent / old)


def load_images(paths, *, decoder, cache_file=None, n_jobs=None, on_error="warn", meta=None,
                item_shape=(0, 0, 0), item_dtype=np.uint8):
    """Decoded images of ``paths``, from the cache where the source files are unchanged.

    Parameters
    ----------
    paths : list of Path
        Existing source files, one per row.
    decoder : callable
        ``decoder(path) -> ndarray (H, W, C)``, the same shape and dtype for every file.
    cache_file : Path or None
        Cache stem (``<stem>.json`` + ``<stem>-<token>.npy``); None disables the cache.
    n_jobs : int or None
        Parallel decoding (threads: Pillow releases the GIL while decoding and resizing).
    on_error : {"warn", "raise"}
        What to do with a file that cannot be decoded: skip it (the caller warns) or raise.
    meta : dict
        Identifies the cache (data set, image size, mode); a manifest with other meta is
        ignored.
    item_shape, item_dtype : tuple and dtype
        Shape (H, W, C) and dtype of the empty result when no image could be decoded.

    Returns
    -------
    images : ndarray of shape (n_decoded, H, W, C)
    keep : ndarray of bool of shape (len(paths),)
        Which paths were decoded.
    failures : list of (Path, str)
        The paths that could not be decoded, with the error.
    """
    meta = dict(meta or {})
    stats = [_stat(p) for p in paths]
    cached = _read_cache(cache_file, meta) if cache_file is not None else None
    entries, array = (cached[0], cached[1]) if cached else ({}, None)

    results = [None] * len(paths)  # ("cache", row) | ("new", array) | ("error", message)
    todo = []
    for i, (p, size, mtime) in enumerate(stats):
        hit = entries.get((p, size, mtime))
        if hit is None:
            todo.append(i)
        elif hit[1] is not None:
            results[i] = ("error", hit[1])
        else:
            results[i] = ("cache", hit[0])

    if todo:
        chunks = [todo[s:s + _CHUNK] for s in range(0, len(todo), _CHUNK)]
        decoded = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(_decode_many)(decoder, [paths[i] for i in chunk]) for chunk in chunks
        )
        for chunk, out in zip(chunks, decoded, strict=True):
            for i, res in zip(chunk, out, strict=True):
                results[i] = ("error", res) if isinstance(res, str) else ("new", res)

    failures = [(Path(paths[i]), r[1]) for i, r in enumerate(results) if r[0] == "error"]
    if failures and on_error == "raise":
        path, err = failures[0]
        raise OSError(
            f"cannot decode the image {str(path)!r} ({err}); {len(failures)} of {len(paths)} "
            "images failed. Replace the file, or pass on_error='warn' to skip undecodable "
            "images with a warning."
        )
    keep = np.array([r[0] != "error" for r in results], dtype=bool)
    good = [r for r in results if r[0] != "error"]
    hits = [r[1] for r in good if r[0] == "cache"]
    if array is not None and len(hits) == len(good) == len(array) and hits == sorted(hits):
        images = array  # every row from the cache, in its order: no copy
    elif good:
        first = next((r[1] for r in good if r[0] == "new"), None)
        shape, dtype = (first.shape, first.dtype) if first is not None else (
            array.shape[1:], array.dtype)
        images = np.empty((len(good),) + tuple(shape), dtype=dtype)
        cache_rows = [(j, r[1]) for j, r in enumerate(good) if r[0] == "cache"]
        if cache_rows:
            dst, src = np.array(cache_rows).T
            order = np.argsort(src)  # read the memmap in file order
            images[dst[order]] = array[src[order]]
        for j, r in enumerate(good):
            if r[0] == "new":
                images[j] = r[1]
    else:
        images = np.empty((0,) + tuple(item_shape), dtype=item_dtype)

    same_sources = cached is not None and [e[:3] for e in cached[2]["entries"]] == stats
    if cache_file is not None and (todo or not same_sources):
        rows = iter(range(len(good)))
        manifest_entries = [
            s + ([next(rows), None] if r[0] != "error" else [-1, r[1]])
            for s, r in zip(stats, results, strict=True)
        ]
        try:
            _write_cache(cache_file, meta, manifest_entries, images)
        except OSError as exc:
            warnings.warn(
                f"could not write the image cache {str(cache_file)!r} ({exc}); the images "
                "will be decoded again next time. Make data_home writable or pass cache=False.",
                DataWarning,
                stacklevel=3,
            )
    return images, keep, failures
