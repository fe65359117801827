"""Shared plumbing of the real-data loaders: data home, layout and column checks, the Bunch."""

import numbers
import os
import warnings
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


def check_loader_params(image_size, on_error, n_jobs, resize="squash"):
    if (not isinstance(image_size, numbers.Integral) or isinstance(image_size, bool)
            or image_size < 1):
        raise ValueError(
            f"image_size must be an integer >= 1, got {image_size!r}. Pass the side of the "
            "square images in pixels, e.g. image_size=64."
        )
    if on_error not in ("warn", "raise"):
        raise ValueError(
            f"on_error must be 'warn' or 'raise', got {on_error!r}. 'warn' skips undecodable "
            "images and reports how many; 'raise' stops at the first one."
        )
    if n_jobs is not None and (not isinstance(n_jobs, numbers.Integral) or n_jobs == 0):
        raise ValueError(f"n_jobs must be None or a non-zero integer, got {n_jobs!r}.")
    _cache.check_resize(resize)


def warn_left_out(name, n_left, n_total, reason, examples=()):
    """Report rows left out of a data set; never drop silently."""
    if n_left:
        shown = ", ".join(str(e) for e in list(examples)[:3])
        more = f" (e.g. {shown})" if shown else ""
        warnings.warn(
            f"{name}: {n_left} of {n_total} metadata rows left out: {reason}{more}.",
            DataWarning,
            stacklevel=3,
        )


#: the one age cut of fairskl's binary age groups: "60+" from this age (the NIR paper's)
AGE_CUT = 60


def age_binary(age):
    """Ages as the categorical ``"<60"`` / ``"60+"`` (:data:`AGE_CUT`), ``"unknown"`` where the
    age is missing: a missing age is never counted as younger."""
    age = pd.to_numeric(pd.Series(age), errors="coerce").astype("float64")
    binary = np.where(age.isna(), "unknown", np.where(age >= AGE_CUT, "60+", "<60"))
    return pd.Categorical(binary, categories=["<60", "60+", "unknown"])


def build_bunch(*, name, frame, paths, target, target_name, target_names, sensitive, groups,
                descr, image_size, mode, decoder, data_home, cache, cache_key, n_jobs,
                on_error, return_paths, as_frame, item_shape, item_dtype=np.uint8, extra=None,
                resize="squash"):
    """Decode (or read from the cache) the images of the kept rows and assemble the Bunch.

    ``frame``, ``paths``, ``target``, ``sensitive``, ``groups`` and the arrays of ``extra``
    are aligned row by row; rows whose image cannot be decoded are left out of all of them
    (with a warning). A ``resize`` other than "squash" is part of the cache key and of the
    manifest's meta (a "squash" cache keeps the key and meta it had before ``resize``
    existed, so existing caches stay valid).
    """
    paths = [os.fspath(p) for p in paths]
    if return_paths:
        images = np.array(paths, dtype=object)
        keep = np.ones(len(paths), dtype=bool)
    else:
        meta = {"dataset": name, "image_size": int(image_size), "mode": mode}
        if resize != "squash":
            cache_key, meta = f"{cache_key}_{resize}", {**meta, "resize": resize}
        cache_file = (get_data_home(data_home) / "fairskl_cache" / cache_key) if cache else None
        images, keep, failures = _cache.load_images(
            paths, decoder=decoder, cache_file=cache_file, n_jobs=n_jobs, on_error=on_error,
            meta=meta,
            item_shape=item_shape, item_dtype=item_dtype,
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
    if as_frame:
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
