"""PAD-UFES-20: smartphone images of skin lesions with gender, age and Fitzpatrick type."""

import pandas as pd

from fairskl.datasets._base import (
    LoaderOptions,
    build_bunch,
    check_malignant_target,
    diagnosis_target,
    female_male,
    fitzpatrick_type,
    get_data_home,
    read_metadata,
    rows_with_images,
    skin_group,
)

__all__ = ["load_pad_ufes20"]

NAME = "PAD-UFES-20"
SOURCE = "https://data.mendeley.com/datasets/zr7vgbcyr2/1 (Mendeley Data; CC BY 4.0)"
LAYOUT = """\
    <data_home>/pad-ufes-20/
        metadata.csv              (columns patient_id, lesion_id, age, gender, fitspatrick,
                                   diagnostic, img_id, ...)
        images/**/<img_id>        (any sub-folders, e.g. images/imgs_part_1/PAT_46_881_939.png)"""
REQUIRED = ["patient_id", "lesion_id", "age", "gender", "fitspatrick", "diagnostic", "img_id"]
DIAGNOSES = ("ACK", "BCC", "MEL", "NEV", "SCC", "SEK")
MALIGNANT = ("BCC", "MEL", "SCC")

DESCR = f"""\
.. _pad_ufes20_dataset:

PAD-UFES-20
-----------

2,298 smartphone photographs of 1,641 skin lesions of 1,373 patients, from the Dermatological
and Surgical Assistance Program of the Federal University of Espirito Santo, Brazil [Pacheco et
al., Data in Brief 2020]. Licence: CC BY 4.0. Source: {SOURCE}.

Layout expected under data_home:

{LAYOUT}

:Target: ``malignant`` (default): 1 for the skin cancers BCC, MEL and SCC (the data set
    paper's grouping), 0 for ACK, NEV and SEK; configurable with ``malignant=``.
    ``target="diagnostic"`` gives the six diagnoses as codes.
:Sensitive features: ``gender`` (female / male / unknown), ``age`` (years), ``fitzpatrick``
    (1-6 from the CSV column spelled ``fitspatrick``; NaN where missing) and ``skin_group``
    (light 1-2 / medium 3-4 / dark 5-6 / unknown). The CSV misses gender and skin type for
    804 of its rows: they are kept as "unknown".
:Groups: ``patient_id`` (a patient can have several lesions and images).
:Images: float32, shape (n, 3, image_size, image_size), in [0, 1]. By default
    (``resize="squash"``) the whole photograph is resized (aspect ratio not kept);
    ``resize="crop"`` resizes its short side to image_size and keeps the centre square.
"""


def load_pad_ufes20(
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
    """Load the PAD-UFES-20 smartphone skin-lesion images (user-provided files).

    Reads ``<data_home>/pad-ufes-20/metadata.csv`` and finds each ``img_id`` anywhere under
    ``<data_home>/pad-ufes-20/images/`` (the download splits them in ``imgs_part_*``
    folders). CSV rows without an image are left out with a
    :class:`~fairskl.exceptions.DataWarning`; rows with unknown gender or skin type are kept.

    Read more in the :ref:`User Guide <pad_ufes20_loader>`.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding ``pad-ufes-20/``; None means :func:`get_data_home`.

    image_size : int, default=64
        Side of the square images returned, in pixels.

    resize : {"squash", "crop"}, default="squash"
        How a photograph becomes a square: "squash" resizes the whole photograph to
        ``image_size`` x ``image_size`` (aspect ratio not kept); "crop" resizes its short side
        to ``image_size`` and keeps the centre square (torchvision's ``Resize`` +
        ``CenterCrop``, the preprocessing of the VAE study's reference implementation). The
        two modes are cached apart.

    target : {"malignant", "diagnostic"}, default="malignant"
        Binary cancer (1) / not (0), or the six diagnoses as codes into ``target_names``.

    malignant : tuple of str, default=("BCC", "MEL", "SCC")
        The diagnoses counted as malignant when ``target="malignant"``.

    images_dir : str or path-like, default=None
        Folder searched recursively for the images, if not ``<data_home>/pad-ufes-20/images``.

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
            ``["benign", "malignant"]``, or the six diagnoses.
        sensitive : DataFrame of shape (n, 4)
            ``gender`` (female / male / unknown), ``age``, ``fitzpatrick`` (1-6 or NaN) and
            ``skin_group`` (light / medium / dark / unknown).
        groups : ndarray of shape (n,) of str
            ``patient_id``.
        frame : DataFrame or None
            If ``as_frame``, the CSV rows kept, the target and the image path.
        DESCR : str
            Description of the data set.

    References
    ----------
    .. [1] A. G. C. Pacheco et al., "PAD-UFES-20: A skin lesion dataset composed of patient
       data and clinical images collected from smartphones", Data in Brief, 32, 106221, 2020.

    Examples
    --------
    >>> import tempfile
    >>> from fairskl.datasets import load_pad_ufes20
    >>> from fairskl.datasets._fixtures import write_pad_ufes20
    >>> home = write_pad_ufes20(tempfile.mkdtemp(), n_samples=5, random_state=0)
    >>> data = load_pad_ufes20(data_home=home, image_size=16, as_frame=True)
    >>> data.images.shape, data.target.name
    ((5, 3, 16, 16), 'malignant')
    """
    options = LoaderOptions(data_home=data_home, image_size=image_size, resize=resize,
                            cache=cache, n_jobs=n_jobs, on_error=on_error,
                            return_paths=return_paths, as_frame=as_frame)
    malignant = check_malignant_target(target, malignant, level="diagnostic",
                                       diagnoses=DIAGNOSES, name=NAME)
    home = get_data_home(data_home) / "pad-ufes-20"
    kw = {"name": NAME, "layout": LAYOUT, "source": SOURCE}
    csv = read_metadata(home / "metadata.csv", required=REQUIRED, **kw)
    images_dir = images_dir if images_dir is not None else home / "images"
    frame, paths = rows_with_images(csv, csv["img_id"].astype(str), [images_dir],
                                    where=f"under {str(images_dir)!r}", recursive=True, **kw)
    diagnostic = frame["diagnostic"].astype(str).str.strip().str.upper()
    bad = sorted(set(diagnostic) - set(DIAGNOSES))
    if bad:
        raise ValueError(f"{NAME}: unknown diagnostic(s) {bad}; expected {list(DIAGNOSES)}.")
    y, target_names = diagnosis_target(diagnostic, target=target, malignant=malignant,
                                       categories=DIAGNOSES)
    fst = fitzpatrick_type(frame["fitspatrick"])
    sensitive = pd.DataFrame({
        "gender": female_male(frame["gender"]),
        "age": pd.to_numeric(frame["age"], errors="coerce"),
        "fitzpatrick": fst,
        "skin_group": skin_group(fst),
    })
    return build_bunch(
        options, name=NAME, descr=DESCR, cache_key="pad-ufes-20", frame=frame, paths=paths,
        target=y, target_name=target, target_names=target_names, sensitive=sensitive,
        groups=frame["patient_id"].astype(str).to_numpy(dtype=object),
    )
