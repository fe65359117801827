"""Shared plumbing of the data sets: data home, argument, layout and column checks, the Bunch."""

import functools
import numbers
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from fairskl.datasets import _cache
from fairskl.exceptions import DataWarning

__all__ = ["get_data_home"]

ENV_VAR = "FAIRSKL_DATA"
DEFAULT_HOME = "~/fairskl_data"


def get_data_home(data_home=None):
    """Return the folder that holds the real data sets (and fairskl's image cache).

    By default it is ``~/fairskl_data``; the environment variable ``FAIRSKL_DATA`` overrides
    the default, and an explicit ``data_home`` overrides both. ``~`` is expanded. The folder
    is not created: the loaders need the data sets to be there already.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder to use. None means ``$FAIRSKL_DATA`` if set, else ``~/fairskl_data``.

    Returns
    -------
    data_home : pathlib.Path
        The folder, with ``~`` expanded.

    See Also
    --------
    sklearn.datasets.get_data_home : The same idea for scikit-learn's downloads.

    Examples
    --------
    >>> import os
    >>> from pathlib import Path
    >>> from fairskl.datasets import get_data_home
    >>> get_data_home("/data/skin").as_posix()
    '/data/skin'
    >>> saved = os.environ.pop("FAIRSKL_DATA", None)
    >>> get_data_home() == Path.home() / "fairskl_data"
    True
    >>> os.environ["FAIRSKL_DATA"] = "/mnt/datasets"
    >>> get_data_home().as_posix()
    '/mnt/datasets'
    >>> if saved is None:
    ...     del os.environ["FAIRSKL_DATA"]
    ... else:
    ...     os.environ["FAIRSKL_DATA"] = saved
    """
    if data_home is None:
        data_home = os.environ.get(ENV_VAR) or DEFAULT_HOME
    return Path(os.path.expanduser(os.fspath(data_home)))


def missing_layout_error(what, path, *, name, layout, source):
    """The one error a loader raises when a folder or file of the layout is absent."""
    return FileNotFoundError(
        f"{name}: {what} {str(path)!r} does not exist. fairskl expects this layout under "
        f"data_home (the data_home argument, else $FAIRSKL_DATA, else ~/fairskl_data):\n"
        f"{layout}\nThe data set is not distributed with fairskl: download it from its "
        f"owners, {source}, and place the files as shown (or pass data_home=...)."
    )


def read_metadata(path, *, name, required, layout, source, **read_csv_kw):
    """Read a metadata CSV; raise one error if it is absent or misses required columns."""
    path = Path(path)
    if not path.is_file():
        raise missing_layout_error("the metadata file", path, name=name, layout=layout,
                                   source=source)
    frame = pd.read_csv(path, **read_csv_kw)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name}: the metadata file {str(path)!r} misses the column(s) {missing} "
            f"(it has {list(frame.columns)}). fairskl reads the CSV as the data set's owners "
            f"distribute it; restore the original file or rename the columns back."
        )
    return frame


def check_image_dirs(dirs, *, name, layout, source):
    """Raise one error if none of the image folders exists; return those that exist."""
    dirs = [Path(d) for d in dirs]
    present = [d for d in dirs if d.is_dir()]
    if not present:
        where = " and ".join(str(d) for d in dirs)
        what = "the image folder" if len(dirs) == 1 else "none of the image folders"
        raise missing_layout_error(what, where, name=name, layout=layout, source=source)
    return present


def index_files(dirs, *, recursive=False):
    """Map file name -> path (str) of the files in ``dirs``; the first folder wins on duplicates.

    ``os.scandir`` tells files from folders without a stat call per file, which keeps a cached
    load of tens of thousands of images fast.
    """
    found = {}
    stack = [os.fspath(d) for d in reversed(dirs)]
    while stack:
        subdirs = []
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                if entry.is_file():
                    found.setdefault(entry.name, entry.path)
                elif recursive and entry.is_dir():
                    subdirs.append(entry.path)
        stack.extend(sorted(subdirs, reverse=True))
    return found


def rows_with_images(csv, file_names, dirs, *, where, recursive=False, name, layout, source):
    """The rows of ``csv`` that have an image file in ``dirs``, and the path of each.

    ``file_names`` holds the image file name of each row of ``csv``. The other rows are left
    out with a warning whose reason is "no image file ``where``" (e.g. ``where="in 'images'"``).
    Raises the layout error if none of ``dirs`` exists.

    Returns
    -------
    frame : DataFrame
        The rows kept, with a fresh index.
    paths : list of str
        The image file of each row kept.
    """
    present = index_files(check_image_dirs(dirs, name=name, layout=layout, source=source),
                          recursive=recursive)
    found = file_names.isin(present.keys()).to_numpy()
    warn_left_out(name, int((~found).sum()), len(csv), f"no image file {where}",
                  file_names[~found], stacklevel=4)
    return csv.loc[found].reset_index(drop=True), [present[n] for n in file_names[found]]


def check_number(name, value, *, valid, expected, advice, integer=False):
    """Raise a ValueError unless ``value`` is a number (not a bool) for which ``valid`` holds.

    The message reads ``f"{name} must be {expected}, got {value!r}{advice}"``; ``integer``
    asks for an integral number.
    """
    kind = numbers.Integral if integer else numbers.Real
    if not isinstance(value, kind) or isinstance(value, bool) or not valid(value):
        raise ValueError(f"{name} must be {expected}, got {value!r}{advice}")


def check_loader_params(image_size, on_error, n_jobs, resize="squash"):
    check_number("image_size", image_size, valid=lambda v: v >= 1, integer=True,
                 expected="an integer >= 1",
                 advice=". Pass the side of the square images in pixels, e.g. image_size=64.")
    if on_error not in ("warn", "raise"):
        raise ValueError(
            f"on_error must be 'warn' or 'raise', got {on_error!r}. 'warn' skips undecodable "
            "images and reports how many; 'raise' stops at the first one."
        )
    if n_jobs is not None and (not isinstance(n_jobs, numbers.Integral) or n_jobs == 0):
        raise ValueError(f"n_jobs must be None or a non-zero integer, got {n_jobs!r}.")
    _cache.check_resize(resize)


@dataclass(frozen=True, kw_only=True)
class LoaderOptions:
    """The arguments every real-data loader takes, checked once (as each loader documents them).

    ``resize`` is "squash" for a loader without the argument.
    """

    data_home: str | os.PathLike | None
    image_size: int
    cache: bool
    n_jobs: int | None
    on_error: str
    return_paths: bool
    as_frame: bool
    resize: str = "squash"

    def __post_init__(self):
        check_loader_params(self.image_size, self.on_error, self.n_jobs, self.resize)


def check_malignant_target(target, malignant, *, level, diagnoses, name, hint=""):
    """Check the ``target`` and ``malignant`` of a loader of diagnoses; return ``malignant``.

    ``target`` must be "malignant" or ``level`` (the diagnoses as codes), and ``malignant`` (a
    string or a collection of them, returned as a tuple) a non-empty subset of ``diagnoses``.
    ``hint`` ends the error message about ``malignant``.
    """
    if target not in ("malignant", level):
        raise ValueError(f"target must be 'malignant' or {level!r}, got {target!r}.")
    malignant = (malignant,) if isinstance(malignant, str) else tuple(malignant)
    unknown = sorted(set(malignant) - set(diagnoses))
    if unknown or not malignant:
        hint = f" {hint}" if hint else ""
        raise ValueError(
            f"malignant must be a non-empty subset of the {name} diagnoses {list(diagnoses)}, "
            f"got {list(malignant)} (unknown: {unknown}).{hint}"
        )
    return malignant


def diagnosis_target(diagnoses, *, target, malignant, categories):
    """The target and target names of a loader of diagnoses.

    ``target="malignant"`` gives 1 where the diagnosis is in ``malignant``, else 0, with the
    names benign / malignant; any other ``target`` gives the diagnoses as codes into
    ``categories``.
    """
    if target == "malignant":
        return diagnoses.isin(malignant).to_numpy().astype(np.int64), ["benign", "malignant"]
    return pd.Categorical(diagnoses, categories=categories).codes.astype(np.int64), list(categories)


def warn_left_out(name, n_left, n_total, reason, examples=(), *, stacklevel=3):
    """Report rows left out of a data set; never drop silently.

    ``stacklevel`` is that of :func:`warnings.warn` as seen from here: 3 points at the caller
    of the function that calls this one.
    """
    if n_left:
        shown = ", ".join(str(e) for e in list(examples)[:3])
        more = f" (e.g. {shown})" if shown else ""
        warnings.warn(
            f"{name}: {n_left} of {n_total} metadata rows left out: {reason}{more}.",
            DataWarning,
            stacklevel=stacklevel,
        )


#: the one age cut of fairskl's binary age groups: "60+" from this age (the NIR paper's)
AGE_CUT = 60


def age_binary(age):
    """Ages as the categorical ``"<60"`` / ``"60+"`` (:data:`AGE_CUT`), ``"unknown"`` where the
    age is missing: a missing age is never counted as younger."""
    age = pd.to_numeric(pd.Series(age), errors="coerce").astype("float64")
    binary = np.where(age.isna(), "unknown", np.where(age >= AGE_CUT, "60+", "<60"))
    return pd.Categorical(binary, categories=["<60", "60+", "unknown"])


def female_male(values):
    """A sex (or gender) column as the categorical female / male / unknown.

    Case and surrounding white space are ignored; any other value, or a missing one, is
    "unknown".
    """
    sex = values.astype("string").str.strip().str.lower()
    sex = sex.where(sex.isin(["female", "male"]), "unknown").fillna("unknown")
    return pd.Categorical(sex, categories=["female", "male", "unknown"])


def build_bunch(options, *, name, frame, paths, target, target_name, target_names, sensitive,
                groups, descr, cache_key, decoder=None, mode="RGB", channels=3,
                item_dtype=np.uint8, extra=None):
    """Decode (or read from the cache) the images of the kept rows and assemble the Bunch.

    ``options`` is the loader's :class:`LoaderOptions`. ``frame``, ``paths``, ``target``,
    ``sensitive``, ``groups`` and the arrays of ``extra`` are aligned row by row; rows whose
    image cannot be decoded are left out of all of them (with a warning). ``decoder`` maps a
    path to an array of shape (image_size, image_size, channels); None means the photographs'
    RGB decoder (:func:`~fairskl.datasets._cache.decode_image` with ``options.resize``).

    The cache file is ``<cache_key>_<image_size>px``. A ``resize`` other than "squash" is part
    of the cache key and of the manifest's meta (a "squash" cache keeps the key and meta it had
    before ``resize`` existed, so existing caches stay valid).
    """
    image_size, resize = options.image_size, options.resize
    paths = [os.fspath(p) for p in paths]
    if options.return_paths:
        images = np.array(paths, dtype=object)
        keep = np.ones(len(paths), dtype=bool)
    else:
        if decoder is None:
            decoder = functools.partial(_cache.decode_image, image_size=image_size, mode="RGB",
                                        resize=resize)
        cache_key = f"{cache_key}_{image_size}px"
        meta = {"dataset": name, "image_size": int(image_size), "mode": mode}
        if resize != "squash":
            cache_key, meta = f"{cache_key}_{resize}", {**meta, "resize": resize}
        cache_file = (get_data_home(options.data_home) / "fairskl_cache" / cache_key
                      if options.cache else None)
        images, keep, failures = _cache.load_images(
            paths, decoder=decoder, cache_file=cache_file, n_jobs=options.n_jobs,
            on_error=options.on_error, meta=meta,
            item_shape=(image_size, image_size, channels), item_dtype=item_dtype,
        )
        warn_left_out(name, len(failures), len(paths), "image could not be decoded",
                      [f"{os.path.basename(p)}: {err}" for p, err in failures])
        images = _cache.to_float(images)

    frame = frame.loc[keep].reset_index(drop=True)
    sensitive = sensitive.loc[keep].reset_index(drop=True)
    target = np.asarray(target)[keep]
    groups = np.asarray(groups)[keep]
    extra = {k: np.asarray(v)[keep] for k, v in (extra or {}).items()}
    frame["path"] = [p for p, k in zip(paths, keep, strict=True) if k]
    if options.as_frame:
        target = pd.Series(target, name=target_name)
        if target_name not in frame:
            frame[target_name] = target
    else:
        frame = None
    return Bunch(images=images, target=target, target_names=list(target_names),
                 sensitive=sensitive, groups=groups, frame=frame, DESCR=descr, **extra)


def skin_group(fitzpatrick):
    """Fitzpatrick 1-6 (NaN unknown) -> light (1-2) / medium (3-4) / dark (5-6) / unknown."""
    fst = pd.Series(fitzpatrick, dtype="float64")
    group = np.select([fst.isin([1, 2]), fst.isin([3, 4]), fst.isin([5, 6])],
                      ["light", "medium", "dark"], "unknown")
    return pd.Categorical(group, categories=["light", "medium", "dark", "unknown"])


def fitzpatrick_type(values):
    """A Fitzpatrick column -> float 1-6; NaN for -1 (unknown), missing or non-numeric."""
    fst = pd.to_numeric(values, errors="coerce")
    return fst.where(fst.between(1, 6)).astype("float64")
