"""Fitzpatrick17k: clinical images of 114 skin conditions with Fitzpatrick skin types."""

from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from fairskl.datasets import _download
from fairskl.datasets._base import (
    LoaderOptions,
    build_bunch,
    fitzpatrick_type,
    get_data_home,
    index_files,
    read_metadata,
    rows_with_images,
    skin_group,
    warn_left_out,
)

__all__ = ["load_fitzpatrick17k"]

NAME = "Fitzpatrick17k"
SOURCE = "https://github.com/mattgroh/fitzpatrick17k (CSV with image URLs; CC BY-NC-SA 3.0)"
CSV_URL = "https://raw.githubusercontent.com/mattgroh/fitzpatrick17k/main/fitzpatrick17k.csv"
LAYOUT = """\
    <data_home>/fitzpatrick17k/
        fitzpatrick17k.csv        (columns md5hash, fitzpatrick_scale, label,
                                   nine_partition_label, three_partition_label, url, ...)
        images/<md5hash>.jpg      (one file per CSV row; a subset is fine)"""
REQUIRED = ["md5hash", "fitzpatrick_scale", "label", "nine_partition_label",
            "three_partition_label", "url"]
TARGETS = ("label", "nine_partition_label", "three_partition_label")

DESCR = f"""\
.. _fitzpatrick17k_dataset:

Fitzpatrick17k
--------------

16,577 clinical photographs of 114 skin conditions from two online dermatology atlases, each
annotated with a Fitzpatrick skin type (FST) [Groh et al., CVPR Workshops 2021]. The images are
not distributed with the CSV: the owners' repository lists their source URLs, and many URLs no
longer answer, so users usually hold a subset. Licence: CC BY-NC-SA 3.0. Source: {SOURCE}.

Layout expected under data_home:

{LAYOUT}

:Target: one of the CSV's label levels: ``label`` (114 conditions), ``nine_partition_label``
    (9 groups) or ``three_partition_label`` (benign / malignant / non-neoplastic); integer codes
    into ``target_names`` (the sorted labels of the whole CSV, so codes do not depend on which
    images are present).
:Sensitive features: ``fitzpatrick`` (FST 1-6 from ``fitzpatrick_scale``; NaN where the CSV
    has -1, i.e. unknown) and ``skin_group``: light (FST 1-2), medium (3-4), dark (5-6) or
    unknown. The Fitzpatrick17k fairness study compares light with dark and leaves medium and
    unknown out. ``fitzpatrick_centaur`` is the CSV's second FST annotation (1-6; NaN where
    it is -1 or absent), for checking how much the groups depend on the annotator.
:Source: ``source`` (a Bunch attribute, and a categorical column of ``frame``): the atlas
    each image comes from, the host of its ``url`` without ``www.`` up to the first dot
    (``dermaamin`` or ``atlasdermatologico``; ``unknown`` where the CSV has no url). The
    atlases hold different mixes of skin types (in the full CSV, 10.6% of the light but 38.9%
    of the dark images with a url come from atlasdermatologico), so a gap between the skin
    groups can partly be a gap between the sources.
:Groups: ``md5hash`` (one image per hash; the CSV has no patient identifier).
:Images: float32, shape (n, 3, image_size, image_size), in [0, 1]. By default
    (``resize="squash"``) the whole photograph is resized (aspect ratio not kept);
    ``resize="crop"`` resizes its short side to image_size and keeps the centre square.
"""


def url_source(url):
    """Short name of an image's source: the host of ``url`` without a leading ``www.``, up
    to its first dot (``"https://www.dermaamin.com/..."`` -> ``"dermaamin"``); ``"unknown"``
    for a missing url or one without a host."""
    if not isinstance(url, str) or not url.strip():
        return "unknown"
    host = (urlsplit(url.strip()).hostname or "").removeprefix("www.")
    return host.split(".")[0] or "unknown"


def _download_missing(csv, images_dir, present, *, n_jobs, n_retries, timeout):
    """Fetch the images of the CSV rows without a file; report failures with a warning."""
    todo = [(u, images_dir / f"{h}.jpg") for h, u in zip(csv["md5hash"], csv["url"], strict=True)
            if f"{h}.jpg" not in present and isinstance(u, str) and u]
    results = _download.fetch_many(todo, n_jobs=n_jobs, n_retries=n_retries, timeout=timeout)
    failed = [(u, err) for u, _, err in results if err]
    warn_left_out(NAME, len(failed), len(csv), "the image could not be downloaded",
                  [f"{u} ({err})" for u, err in failed])


def load_fitzpatrick17k(
    *,
    data_home=None,
    image_size=64,
    resize="squash",
    target="three_partition_label",
    images_dir=None,
    as_frame=False,
    return_paths=False,
    cache=True,
    n_jobs=None,
    on_error="warn",
    download_if_missing=False,
    n_retries=3,
    timeout=30.0,
):
    """Load the Fitzpatrick17k clinical images with Fitzpatrick skin types (user-provided files).

    Reads ``<data_home>/fitzpatrick17k/fitzpatrick17k.csv`` and the images
    ``<data_home>/fitzpatrick17k/images/<md5hash>.jpg``. CSV rows without an image file are
    left out with a :class:`~fairskl.exceptions.DataWarning` that counts them. Decoded, resized
    images are cached under ``<data_home>/fairskl_cache/`` (see :ref:`datasets_cache`).

    Read more in the :ref:`User Guide <fitzpatrick17k_loader>`.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding ``fitzpatrick17k/``; None means :func:`get_data_home`.

    image_size : int, default=64
        Side of the square images returned, in pixels.

    resize : {"squash", "crop"}, default="squash"
        How a photograph becomes a square: "squash" resizes the whole photograph to
        ``image_size`` x ``image_size`` (aspect ratio not kept); "crop" resizes its short side
        to ``image_size`` and keeps the centre square (torchvision's ``Resize`` +
        ``CenterCrop``, the preprocessing of the VAE study's reference implementation). The
        two modes are cached apart.

    target : {"label", "nine_partition_label", "three_partition_label"}, \
default="three_partition_label"
        Level of the label hierarchy used as target.

    images_dir : str or path-like, default=None
        Folder of the ``<md5hash>.jpg`` files, if not ``<data_home>/fitzpatrick17k/images``.

    as_frame : bool, default=False
        If True, ``target`` is a Series and ``frame`` the CSV rows kept, with a ``path`` column.

    return_paths : bool, default=False
        If True, ``images`` holds the image paths (str) and nothing is decoded or cached.

    cache : bool, default=True
        Read and write the image cache under ``<data_home>/fairskl_cache/``.

    n_jobs : int, default=None
        Threads decoding images (and downloading, with ``download_if_missing``). None means 1.

    on_error : {"warn", "raise"}, default="warn"
        An image that cannot be decoded is skipped and counted in a warning, or raises OSError.

    download_if_missing : bool, default=False
        If True, fetch the CSV (if absent) and the images of rows without a file from the URLs
        in the CSV, resuming partial files and retrying transient failures. Needs network; URLs
        that fail are counted in a warning and their rows left out.

    n_retries : int, default=3
        Retries per URL when downloading.

    timeout : float, default=30.0
        Seconds before a download attempt is abandoned.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        images : ndarray of shape (n, 3, image_size, image_size), float32 in [0, 1], or of str
            The images (paths if ``return_paths``).
        target : ndarray of shape (n,) of int, or Series
            Codes into ``target_names``.
        target_names : list of str
            Sorted labels of the ``target`` level over the whole CSV.
        sensitive : DataFrame of shape (n, 3)
            ``fitzpatrick`` (float, 1-6 or NaN), ``skin_group`` (categorical light / medium /
            dark / unknown) and ``fitzpatrick_centaur`` (float, the CSV's second FST
            annotation, 1-6 or NaN; NaN everywhere if the CSV lacks the column).
        groups : ndarray of shape (n,) of str
            ``md5hash`` of each image.
        source : ndarray of shape (n,) of str
            The atlas of each image, from the host of its ``url``: ``"dermaamin"``,
            ``"atlasdermatologico"``, ... or ``"unknown"`` where the CSV has no url.
        frame : DataFrame or None
            If ``as_frame``, the CSV rows kept, the target, the image path and ``source``
            (categorical; categories: the sources of the whole CSV).
        DESCR : str
            Description of the data set.

    See Also
    --------
    load_ham10000, load_pad_ufes20 : The dermoscopy and smartphone skin-lesion data sets.
    fairskl.model_selection.train_val_test_split : Splits stratified by label and skin group.

    References
    ----------
    .. [1] M. Groh et al., "Evaluating deep neural networks trained on clinical images in
       dermatology with the Fitzpatrick 17k dataset", CVPR Workshops, 2021.

    Examples
    --------
    A missing data set gives one error naming the expected layout and where to get it:

    >>> import tempfile
    >>> from fairskl.datasets import load_fitzpatrick17k
    >>> try:
    ...     load_fitzpatrick17k(data_home=tempfile.mkdtemp())
    ... except FileNotFoundError as exc:
    ...     print(str(exc).splitlines()[1].strip())
    <data_home>/fitzpatrick17k/

    On files in the expected layout (here tiny generated ones):

    >>> from fairskl.datasets._fixtures import write_fitzpatrick17k
    >>> home = write_fitzpatrick17k(tempfile.mkdtemp(), n_samples=6, random_state=0)
    >>> data = load_fitzpatrick17k(data_home=home, image_size=16)
    >>> data.images.shape, list(data.sensitive.columns)
    ((6, 3, 16, 16), ['fitzpatrick', 'skin_group', 'fitzpatrick_centaur'])
    >>> sorted(set(data.source))
    ['atlasdermatologico', 'dermaamin']
    """
    options = LoaderOptions(data_home=data_home, image_size=image_size, resize=resize,
                            cache=cache, n_jobs=n_jobs, on_error=on_error,
                            return_paths=return_paths, as_frame=as_frame)
    if target not in TARGETS:
        raise ValueError(f"target must be one of {list(TARGETS)}, got {target!r}.")
    home = get_data_home(data_home) / "fitzpatrick17k"
    csv_path = home / "fitzpatrick17k.csv"
    if download_if_missing and not csv_path.is_file():
        _download.fetch(CSV_URL, csv_path, n_retries=n_retries, timeout=timeout)
    kw = {"name": NAME, "layout": LAYOUT, "source": SOURCE}
    csv = read_metadata(csv_path, required=REQUIRED, dtype={"md5hash": str}, **kw)
    images_dir = Path(images_dir) if images_dir is not None else home / "images"
    if download_if_missing:
        images_dir.mkdir(parents=True, exist_ok=True)
        _download_missing(csv, images_dir, index_files([images_dir]), n_jobs=n_jobs,
                          n_retries=n_retries, timeout=timeout)
    sources = csv["url"].map(url_source)
    csv["source"] = pd.Categorical(sources, categories=sorted(sources.unique()))
    frame, paths = rows_with_images(csv, csv["md5hash"].astype(str) + ".jpg", [images_dir],
                                    where=f"in {str(images_dir)!r}", **kw)
    target_names = sorted(csv[target].dropna().astype(str).unique())

    fst = fitzpatrick_type(frame["fitzpatrick_scale"])
    centaur = (fitzpatrick_type(frame["fitzpatrick_centaur"]) if "fitzpatrick_centaur" in frame
               else pd.Series(np.nan, index=frame.index))
    sensitive = pd.DataFrame({"fitzpatrick": fst, "skin_group": skin_group(fst),
                              "fitzpatrick_centaur": centaur})
    return build_bunch(
        options, name=NAME, descr=DESCR, cache_key="fitzpatrick17k", frame=frame, paths=paths,
        target=pd.Categorical(frame[target].astype(str), categories=target_names).codes.astype(
            np.int64),
        target_name=target, target_names=target_names, sensitive=sensitive,
        groups=frame["md5hash"].to_numpy(dtype=object),
        extra={"source": np.asarray(frame["source"].astype(str), dtype=object)},
    )
