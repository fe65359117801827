"""HAM10000: dermoscopy images of pigmented lesions with patient sex and age."""

from pathlib import Path

import numpy as np
import pandas as pd

from fairskl.datasets._base import (
    LoaderOptions,
    age_binary,
    build_bunch,
    check_malignant_target,
    diagnosis_target,
    female_male,
    get_data_home,
    read_metadata,
    rows_with_images,
)

__all__ = ["load_ham10000"]

NAME = "HAM10000"
SOURCE = ("https://doi.org/10.7910/DVN/DBW86T (Harvard Dataverse; CC BY-NC 4.0) or the "
          "ISIC archive, https://challenge.isic-archive.com/data/#2018")
LAYOUT = """\
    <data_home>/ham10000/
        HAM10000_metadata.csv                (columns lesion_id, image_id, dx, age, sex, ...)
        HAM10000_images_part_1/<image_id>.jpg
        HAM10000_images_part_2/<image_id>.jpg"""
REQUIRED = ["lesion_id", "image_id", "dx", "age", "sex"]
DX = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
MALIGNANT = ("mel", "akiec")
AGE_BINS = [0, 20, 40, 60, 80, np.inf]
AGE_GROUPS = ["0-19", "20-39", "40-59", "60-79", "80+"]

DESCR = f"""\
.. _ham10000_dataset:

HAM10000
--------

10,015 dermoscopy images of 7,470 pigmented skin lesions (several images per lesion) from the
Medical University of Vienna (ViDIR) and Cliff Rosendahl's practice in Queensland [Tschandl et
al., Scientific Data 2018]. Licence: CC BY-NC 4.0. Source: {SOURCE}.

Layout expected under data_home:

{LAYOUT}

:Target: ``malignant`` (default): 1 if ``dx`` is one of the ``malignant`` codes, default
    mel (melanoma) + akiec (actinic keratosis / intraepithelial carcinoma), as in the fairness
    studies of HAM10000; some studies add bcc (basal cell carcinoma): pass
    ``malignant=("mel", "akiec", "bcc")``. ``target="dx"`` gives the seven diagnoses
    (akiec, bcc, bkl, df, mel, nv, vasc) as codes.
:Sensitive features: ``sex`` (female / male / unknown), ``age`` (years, NaN where unknown),
    ``age_group`` (0-19 / 20-39 / 40-59 / 60-79 / 80+ / unknown) and ``age_binary``
    (<60 / 60+ / unknown; a patient aged exactly 60 is in 60+). Rows with unknown sex or age
    are kept, in the "unknown" category (the CSV has 57 of each), never dropped.
:Groups: ``lesion_id``: split by it, or images of one lesion land on both sides.
:Images: float32, shape (n, 3, image_size, image_size), in [0, 1] (600x450 originals). By
    default (``resize="squash"``) the whole photograph is resized (aspect ratio not kept);
    ``resize="crop"`` resizes its short side to image_size and keeps the centre square.
"""


def ham_sensitive(frame):
    """The sensitive features of HAM10000 rows: sex, age, age_group, age_binary."""
    age = pd.to_numeric(frame["age"], errors="coerce").astype("float64")
    group = pd.cut(age, AGE_BINS, right=False, labels=AGE_GROUPS)
    group = group.cat.add_categories("unknown").fillna("unknown")
    return pd.DataFrame({
        "sex": female_male(frame["sex"]),
        "age": age,
        "age_group": group,
        "age_binary": age_binary(age.to_numpy()),
    }).reset_index(drop=True)


def load_ham10000(
    *,
    data_home=None,
    image_size=64,
    resize="squash",
    target="malignant",
    malignant=MALIGNANT,
    images_dir=None,
    as_frame=False,
    return_paths=False,
    cache=True,
    n_jobs=None,
    on_error="warn",
):
    """Load the HAM10000 dermoscopy images with sex and age (user-provided files).

    Reads ``<data_home>/ham10000/HAM10000_metadata.csv`` and the images
    ``<image_id>.jpg`` in ``HAM10000_images_part_1/`` and ``HAM10000_images_part_2/``. CSV
    rows without an image are left out with a :class:`~fairskl.exceptions.DataWarning`; rows
    with unknown sex or age are kept and marked "unknown".

    Read more in the :ref:`User Guide <ham10000_loader>`.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding ``ham10000/``; None means :func:`get_data_home`.

    image_size : int, default=64
        Side of the square images returned, in pixels.

    resize : {"squash", "crop"}, default="squash"
        How a photograph becomes a square: "squash" resizes the whole photograph to
        ``image_size`` x ``image_size`` (aspect ratio not kept); "crop" resizes its short side
        to ``image_size`` and keeps the centre square (torchvision's ``Resize`` +
        ``CenterCrop``, the preprocessing of the VAE study's reference implementation). The
        two modes are cached apart.

    target : {"malignant", "dx"}, default="malignant"
        Binary malignant (1) / benign (0), or the seven diagnoses as codes into
        ``target_names``.

    malignant : tuple of str, default=("mel", "akiec")
        The ``dx`` codes counted as malignant when ``target="malignant"``; add ``"bcc"`` for
        the broader definition.

    images_dir : str, path-like or list of them, default=None
        Folder(s) of the ``<image_id>.jpg`` files, if not the two ``HAM10000_images_part_*``.

    as_frame : bool, default=False
        If True, ``target`` is a Series and ``frame`` the CSV rows kept, with a ``path`` column.

    return_paths : bool, default=False
        If True, ``images`` holds the image paths (str) and nothing is decoded or cached.

    cache : bool, default=True
        Read and write the image cache under ``<data_home>/fairskl_cache/``.

    n_jobs : int, default=None
        Threads decoding images. None means 1.

    on_error : {"warn", "raise"}, default="warn"
        An image that cannot be decoded is skipped and counted in a warning, or raises OSError.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        images : ndarray of shape (n, 3, image_size, image_size), float32 in [0, 1], or of str
            The images (paths if ``return_paths``).
        target : ndarray of shape (n,) of int, or Series
            Codes into ``target_names``; a Series named after ``target`` if ``as_frame``.
        target_names : list of str
            ``["benign", "malignant"]``, or the seven ``dx`` codes.
        sensitive : DataFrame of shape (n, 4)
            ``sex`` (female / male / unknown), ``age`` (NaN if unknown), ``age_group``
            (0-19 / 20-39 / 40-59 / 60-79 / 80+ / unknown) and ``age_binary`` (<60 / 60+ /
            unknown; 60 is in 60+).
        groups : ndarray of shape (n,) of str
            ``lesion_id``.
        frame : DataFrame or None
            If ``as_frame``, the CSV rows kept, the target and the image path.
        DESCR : str
            Description of the data set.

    See Also
    --------
    fairskl.model_selection.train_val_test_split : Split by ``groups`` so that no lesion
        is on two sides.

    References
    ----------
    .. [1] P. Tschandl, C. Rosendahl and H. Kittler, "The HAM10000 dataset, a large collection
       of multi-source dermatoscopic images of common pigmented skin lesions", Scientific
       Data, 5, 180161, 2018.

    Examples
    --------
    >>> import tempfile
    >>> from fairskl.datasets import load_ham10000
    >>> from fairskl.datasets._fixtures import write_ham10000
    >>> home = write_ham10000(tempfile.mkdtemp(), n_samples=8, random_state=0)
    >>> data = load_ham10000(data_home=home, image_size=16, malignant=("mel", "akiec", "bcc"))
    >>> data.images.shape, data.target_names
    ((8, 3, 16, 16), ['benign', 'malignant'])
    >>> list(data.sensitive.columns)
    ['sex', 'age', 'age_group', 'age_binary']
    """
    options = LoaderOptions(data_home=data_home, image_size=image_size, resize=resize,
                            cache=cache, n_jobs=n_jobs, on_error=on_error,
                            return_paths=return_paths, as_frame=as_frame)
    malignant = check_malignant_target(target, malignant, level="dx", diagnoses=DX, name=NAME,
                                       hint="E.g. malignant=('mel', 'akiec', 'bcc').")
    home = get_data_home(data_home) / "ham10000"
    kw = {"name": NAME, "layout": LAYOUT, "source": SOURCE}
    csv = read_metadata(home / "HAM10000_metadata.csv", required=REQUIRED, **kw)
    if images_dir is None:
        dirs = [home / "HAM10000_images_part_1", home / "HAM10000_images_part_2"]
    else:
        dirs = [images_dir] if isinstance(images_dir, str | Path) else list(images_dir)
    where = " or ".join(str(Path(d).name) for d in dirs)
    frame, paths = rows_with_images(csv, csv["image_id"].astype(str) + ".jpg", dirs,
                                    where=f"in {where}", **kw)
    dx = frame["dx"].astype(str).str.strip().str.lower()
    bad = sorted(set(dx) - set(DX))
    if bad:
        raise ValueError(f"{NAME}: unknown dx code(s) {bad} in the metadata; expected {list(DX)}.")
    y, target_names = diagnosis_target(dx, target=target, malignant=malignant, categories=DX)
    return build_bunch(
        options, name=NAME, descr=DESCR, cache_key="ham10000", frame=frame, paths=paths,
        target=y, target_name=target, target_names=target_names, sensitive=ham_sensitive(frame),
        groups=frame["lesion_id"].astype(str).to_numpy(dtype=object),
    )
