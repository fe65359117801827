"""The run directory both ``fairskl reproduce`` studies share: settings, checks, notes, report.

A study makes one :class:`RunDirectory`, checks it before any work (:meth:`RunDirectory.check`),
creates it (:meth:`RunDirectory.prepare`), collects its notes (:meth:`RunDirectory.note`,
:meth:`RunDirectory.notes_from_warnings`) and writes its report (:meth:`RunDirectory.finish`).
"""

import json
import numbers
import os
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path

from sklearn.utils._param_validation import Interval

from fairskl._constraints import VERBOSE
from fairskl._io import write_text
from fairskl.exceptions import FairnessWarning
from fairskl.experiments._checkpoint import changed_settings

#: the declared rules of the arguments both reproductions take (validate_params)
RUN_CONSTRAINTS = {
    "out_dir": [str, os.PathLike],
    "data_home": [str, os.PathLike, None],
    "settings": [dict, None],
    "device": [str],
    "resume": ["boolean"],
    "overwrite": ["boolean"],
    "random_state": [Interval(numbers.Integral, 0, None, closed="left")],
    "verbose": VERBOSE,
}


def resolve_config(scales, scale, settings=None, **extra):
    """The settings of ``scale`` (a name, or a dict overriding "small"), then ``settings``."""
    settings = dict(settings or {})
    given = set(settings) | (set(scale) if isinstance(scale, dict) else set())
    unknown = sorted(given - set(scales["small"]))
    if unknown:
        raise ValueError(f"unknown settings {unknown}; the settings are "
                         f"{sorted(scales['small'])}.")
    if isinstance(scale, dict):
        return {"scale": "custom", **scales["small"], **scale, **settings, **extra}
    return {"scale": scale, **scales[scale], **settings, **extra}  # a name the callers declare


class RunDirectory:
    """One reproduction's output folder and what it writes there.

    Parameters
    ----------
    out_dir : str or path-like
        The folder. An existing non-empty one needs ``resume`` (the same settings) or
        ``overwrite`` (only a folder holding an earlier run, with its ``config.json``).
    config : dict
        The run's settings (:func:`resolve_config`), saved as ``config.json``.
    resume, overwrite : bool, default=False
    verbose : int, default=1
        0 is silent; else progress lines and notes are printed.

    Attributes
    ----------
    path : pathlib.Path
    notes : list of str
        What the report says about this run's data and choices (warnings included).
    """

    def __init__(self, out_dir, config, *, resume=False, overwrite=False, verbose=1):
        self.path = Path(out_dir)
        self.config = config
        self.resume = resume
        self.overwrite = overwrite
        self.verbose = verbose
        self.notes = []

    def say(self, *args, **kwargs):
        """Print a progress line unless ``verbose=0``."""
        if self.verbose:
            print(*args, **kwargs)

    def note(self, text):
        """Say ``text`` and keep it for the report."""
        self.say(text)
        self.notes.append(text)

    def check(self, device, *, backbone=None, weights=None, perceptual_weights=None):
        """Everything that can fail before any work: the device, the backbone's and the VGG19
        weights (loaded now) and the folder (refuse a non-empty one without resume/overwrite,
        or one holding another run)."""
        from fairskl._backbones import torchvision_model
        from fairskl._perceptual import vgg19_features

        check_device(device)
        if weights is not None:
            _check_weights(lambda: torchvision_model(backbone, weights), backbone, weights,
                           "ResNet18_Weights", "--weights")
        if perceptual_weights is not None:
            _check_weights(lambda: vgg19_features(perceptual_weights), "VGG19",
                           perceptual_weights, "VGG19_Weights", "--perceptual-weights")
        self._check_folder()

    def prepare(self):
        """Create the folder (emptied with ``overwrite``) and write ``config.json``."""
        if self.overwrite and self.path.exists():
            shutil.rmtree(self.path)
        # write_text creates the folder
        write_text(self.path / "config.json", json.dumps(self.config, indent=1, default=str))

    def write_csv(self, **tables):
        """Write each table to ``<name>.csv`` in the folder (atomically, without the index)."""
        for name, table in tables.items():
            write_text(self.path / f"{name}.csv", table.to_csv(index=False))

    @contextmanager
    def notes_from_warnings(self):
        """Collect the :class:`~fairskl.FairnessWarning` s raised inside as notes: said now, in
        the list this yields (the caller decides where they go); other warnings are re-raised
        as they were."""
        notes = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FairnessWarning)
            yield notes
        for warning in caught:
            if issubclass(warning.category, FairnessWarning):
                self.say(f"note: {warning.message}")
                notes.append(str(warning.message))
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                       warning.lineno)

    def finish(self, report):
        """Write ``report`` (with the settings as its footer) and return ``report.md``'s path."""
        report.footer(self.config)
        path = report.write(self.path)[0]
        self.say(f"report: {path}")
        return path

    def _check_folder(self):
        out = self.path
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other; choose one.")
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {str(out)!r} is a file; give a folder.")
        if not (out.exists() and any(out.iterdir())):
            return
        saved = out / "config.json"
        if self.overwrite and not saved.exists():
            raise ValueError(f"--overwrite: {str(out)!r} does not hold an earlier fairskl "
                             f"run (no config.json), so it is not deleted. Choose another "
                             f"--out.")
        if not (self.overwrite or self.resume):
            raise FileExistsError(
                f"--out {str(out)!r} exists and is not empty. Pass --resume to continue the "
                f"run saved there, --overwrite to replace it, or choose another --out."
            )
        if self.resume and saved.exists():
            changed = changed_settings(saved, json.loads(json.dumps(self.config, default=str)))
            if changed:
                raise ValueError(f"--resume: {str(out)!r} holds a run with other {changed}. "
                                 f"Use --overwrite or another --out.")


def check_device(device):
    """Refuse a device torch does not know, or CUDA where there is none."""
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ValueError(f"--device {device!r} is not a torch device; use cpu or cuda.") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch sees no CUDA device here; use --device cpu.")


def _check_weights(load, name, weights, enum, option):
    """Call ``load``; a missing file or download (no network) is a ValueError saying what to
    pass instead."""
    try:
        load()
    except OSError as error:
        raise ValueError(
            f"cannot load the {name} weights {weights!r} ({error}). Without network, download "
            f"torchvision's {enum}.IMAGENET1K_V1 elsewhere and pass {option} PATH to the .pth "
            f"file."
        ) from None
