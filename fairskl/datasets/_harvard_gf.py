"""Harvard-GF: OCT retinal nerve fibre layer thickness maps for glaucoma, with race and sex."""

import functools

import numpy as np
import pandas as pd
from PIL import Image

from fairskl.datasets._base import (
    LoaderOptions,
    build_bunch,
    get_data_home,
    missing_layout_error,
    warn_left_out,
)

__all__ = ["load_harvard_glaucoma"]

NAME = "Harvard-GF"
SOURCE = ("https://ophai.hms.harvard.edu/datasets/harvard-gf3300/ and "
          "https://github.com/Harvard-Ophthalmology-AI-Lab/Harvard-GF (CC BY-NC-ND 4.0)")
LAYOUT = """\
    <data_home>/harvard-gf/
        train/<patient>.npz       (one file per patient, e.g. data_0001.npz, with the keys
        val/<patient>.npz          rnflt, glaucoma, age, male, race, and optionally
        test/<patient>.npz         ethnicity, language, maritalstatus)"""
SPLITS = ("train", "val", "test")
REQUIRED = ["rnflt", "glaucoma", "age", "male", "race"]
RNFLT_MAX = 350.0  # micrometres; the maps are clipped to [0, RNFLT_MAX] and divided by it
CODES = {
    "race": {0: "Asian", 1: "Black", 2: "White"},
    "ethnicity": {0: "Non-Hispanic", 1: "Hispanic", -1: "unknown"},
    "language": {0: "English", 1: "Spanish", 2: "Other", -1: "unknown"},
    "maritalstatus": {0: "Married or Partnered", 1: "Single", 2: "Divorced", 3: "Widowed",
                      4: "Legally Separated", -1: "unknown"},
}
ALIASES = {  # strings accepted besides the names above (lower case)
    "race": {"black or african american": "Black", "white or caucasian": "White"},
    "maritalstatus": {"married": "Married or Partnered",
                      "married/civil union/life partner": "Married or Partnered"},
    "language": {"others": "Other"},
}

DESCR = f"""\
.. _harvard_gf_dataset:

Harvard-GF (Harvard Glaucoma Fairness)
--------------------------------------

3,300 patients (2,100 train / 300 validation / 900 test), one OCT retinal nerve fibre layer
thickness (RNFLT) map of 200x200 per patient, with a glaucoma label and balanced racial groups
(Asian, Black, White) [Luo et al., IEEE TMI 2024]. Licence: CC BY-NC-ND 4.0 (non-commercial
research only). Source: {SOURCE}.

Layout expected under data_home:

{LAYOUT}

:Target: ``glaucoma`` (0 no, 1 yes).
:Sensitive features: ``race`` (Asian / Black / White; the npz holds the codes 0 / 1 / 2 or
    the names; any other value raises rather than being mapped to a group), ``sex`` (from
    ``male``), ``age`` (years), ``ethnicity``, ``language`` and ``maritalstatus`` (decoded from
    their codes; -1 or an absent key is "unknown").
:Groups: the file name (one file per patient).
:Images: float32, shape (n, 1, image_size, image_size): the RNFLT map clipped to
    [0, {RNFLT_MAX:g}] micrometres, divided by {RNFLT_MAX:g} and resized (bilinear).
"""


class _FormatError(ValueError):
    """A readable file whose content does not follow the owners' format: never skipped."""


def _scalar(value):
    arr = np.asarray(value)
    return arr.item() if arr.size == 1 else arr


def decode_attribute(key, value, path):
    """Map an int code or a name of ``key`` to its name; raise on anything else."""
    value = _scalar(value)
    names = CODES[key]
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        text = value.strip().lower()
        by_name = {n.lower(): n for n in names.values()} | ALIASES.get(key, {})
        if text in by_name:
            return by_name[text]
        if text.lstrip("-").isdigit():
            value = int(text)
    if isinstance(value, int | float | np.integer | np.floating) and float(value).is_integer():
        if int(value) in names:
            return names[int(value)]
    raise _FormatError(
        f"{NAME}: {path.name} has {key}={value!r}, which is not a known {key}. Expected one of "
        f"the codes {sorted(names)} or the names {sorted(set(names.values()))}; fairskl does not "
        f"guess a group for an unknown value. Fix the file or leave it out of the folder."
    )


def _read_record(path):
    """The scalar attributes of one patient file (the RNFLT map is read by the decoder)."""
    with np.load(path, allow_pickle=False) as npz:
        missing = [k for k in REQUIRED if k not in npz.files]
        if missing:
            raise _FormatError(
                f"{NAME}: {path.name} misses the key(s) {missing} (it has {npz.files}); "
                f"expected the keys {REQUIRED} of the owners' files."
            )
        rec = {"glaucoma": int(_scalar(npz["glaucoma"])), "age": float(_scalar(npz["age"])),
               "male": int(_scalar(npz["male"]))}
        for key in CODES:
            rec[key] = decode_attribute(key, npz[key], path) if key in npz.files else "unknown"
    return rec


def decode_rnflt(path, image_size):
    """RNFLT map -> (image_size, image_size, 1) float32 in [0, 1]."""
    with np.load(path, allow_pickle=False) as npz:
        rnflt = np.asarray(npz["rnflt"], dtype=np.float32)
    rnflt = np.squeeze(rnflt)
    if rnflt.ndim != 2:
        raise ValueError(f"rnflt must be a 2-D map, got shape {rnflt.shape}")
    scaled = np.clip(rnflt, 0, RNFLT_MAX) / np.float32(RNFLT_MAX)
    im = Image.fromarray(scaled, mode="F").resize((image_size, image_size),
                                                  Image.Resampling.BILINEAR)
    return np.clip(np.asarray(im, dtype=np.float32), 0, 1)[:, :, None]


def load_harvard_glaucoma(
    *,
    data_home=None,
    split="all",
    image_size=64,
    as_frame=False,
    return_paths=False,
    cache=True,
    n_jobs=None,
    on_error="warn",
):
    """Load the Harvard-GF glaucoma RNFLT maps with race, sex and age (user-provided files).

    Reads the per-patient ``.npz`` files of ``<data_home>/harvard-gf/{train,val,test}/``.
    Files that cannot be read are skipped and counted in a
    :class:`~fairskl.exceptions.DataWarning` (or raise with ``on_error="raise"``); a file
    with an unknown race (or other attribute) code raises a ValueError naming it.

    Read more in the :ref:`User Guide <harvard_gf_loader>`.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding ``harvard-gf/``; None means :func:`get_data_home`.

    split : {"all", "train", "val", "test"}, default="all"
        The owners' split to load; "all" loads the three, in that order.

    image_size : int, default=64
        Side of the square maps returned, in pixels.

    as_frame : bool, default=False
        If True, ``target`` is a Series and ``frame`` the attributes of each file, with its
        ``split`` and ``path``.

    return_paths : bool, default=False
        If True, ``images`` holds the file paths (str) and no map is decoded or cached.

    cache : bool, default=True
        Read and write the map cache under ``<data_home>/fairskl_cache/``.

    n_jobs : int, default=None
        Threads decoding maps. None means 1.

    on_error : {"warn", "raise"}, default="warn"
        A file that cannot be read is skipped and counted in a warning, or raises.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        images : ndarray of shape (n, 1, image_size, image_size), float32 in [0, 1], or of str
            The scaled RNFLT maps (paths if ``return_paths``).
        target : ndarray of shape (n,) of int, or Series named "glaucoma"
            0 for no glaucoma, 1 for glaucoma.
        target_names : list of str
            ``["no glaucoma", "glaucoma"]``.
        sensitive : DataFrame of shape (n, 6)
            ``race``, ``sex``, ``age``, ``ethnicity``, ``language``, ``maritalstatus``.
        groups : ndarray of shape (n,) of str
            ``<split>/<file stem>``, one per patient.
        split : ndarray of shape (n,) of str
            The owners' split of each row.
        frame : DataFrame or None
            If ``as_frame``, the attributes read from each file, its split and its path.
        DESCR : str
            Description of the data set.

    References
    ----------
    .. [1] Y. Luo et al., "Harvard Glaucoma Fairness: A Retinal Nerve Disease Dataset for
       Fairness Learning and Fair Identity Normalization", IEEE Transactions on Medical
       Imaging, 43(7), 2623-2633, 2024.

    Examples
    --------
    >>> import tempfile
    >>> from fairskl.datasets import load_harvard_glaucoma
    >>> from fairskl.datasets._fixtures import write_harvard_gf
    >>> home = write_harvard_gf(tempfile.mkdtemp(), n_samples=6, random_state=0)
    >>> data = load_harvard_glaucoma(data_home=home, split="train", image_size=16)
    >>> data.images.shape[1:], sorted(set(data.split))
    ((1, 16, 16), ['train'])
    """
    options = LoaderOptions(data_home=data_home, image_size=image_size, cache=cache,
                            n_jobs=n_jobs, on_error=on_error, return_paths=return_paths,
                            as_frame=as_frame)
    if split not in ("all",) + SPLITS:
        raise ValueError(f"split must be one of ['all', 'train', 'val', 'test'], got {split!r}.")
    home = get_data_home(data_home) / "harvard-gf"
    splits = SPLITS if split == "all" else (split,)
    kw = {"name": NAME, "layout": LAYOUT, "source": SOURCE}
    if not home.is_dir():
        raise missing_layout_error("the folder", home, **kw)
    for s in splits:
        if not (home / s).is_dir():
            raise missing_layout_error(f"the {s} folder", home / s, **kw)

    records, paths, failures = [], [], []
    for s in splits:
        for path in sorted((home / s).glob("*.npz")):
            try:
                rec = _read_record(path)
            except _FormatError:
                raise
            except Exception as exc:  # noqa: BLE001 - unreadable file (zip, pickle, EOF...)
                failures.append((path, exc))
                continue
            rec.update(split=s, patient=f"{s}/{path.stem}")
            records.append(rec)
            paths.append(path)
    if failures and on_error == "raise":
        path, exc = failures[0]
        raise OSError(f"{NAME}: cannot read {str(path)!r} ({exc}). Pass on_error='warn' to "
                      "skip unreadable files with a warning.") from exc
    n_files = len(records) + len(failures)
    warn_left_out(NAME, len(failures), n_files, "the .npz file could not be read",
                  [f"{p.name}: {e}" for p, e in failures])
    if not records:
        raise missing_layout_error(f"no readable .npz file in {list(splits)}; the folder", home,
                                   **kw)

    frame = pd.DataFrame.from_records(records)
    sensitive = pd.DataFrame({
        "race": pd.Categorical(frame["race"], categories=["Asian", "Black", "White"]),
        "sex": pd.Categorical(np.where(frame["male"] == 1, "male", "female"),
                              categories=["female", "male"]),
        "age": frame["age"].astype("float64"),
    })
    for key in ("ethnicity", "language", "maritalstatus"):
        cats = list(dict.fromkeys(v for c, v in sorted(CODES[key].items()) if c >= 0))
        sensitive[key] = pd.Categorical(frame[key], categories=cats + ["unknown"])
    return build_bunch(
        options, name=NAME, descr=DESCR, cache_key=f"harvard-gf_{split}", frame=frame,
        paths=paths, target=frame["glaucoma"].to_numpy(np.int64), target_name="glaucoma",
        target_names=["no glaucoma", "glaucoma"], sensitive=sensitive,
        groups=frame["patient"].to_numpy(dtype=object),
        decoder=functools.partial(decode_rnflt, image_size=image_size), mode="RNFLT",
        channels=1, item_dtype=np.float32, extra={"split": frame["split"].to_numpy(dtype=object)},
    )
