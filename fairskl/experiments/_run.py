"""The plumbing both ``fairskl reproduce`` studies share: scales, output folders, checks. The
studies are in ``_nir_study.py`` and ``_vae_study.py``."""

import json
import shutil
from pathlib import Path

from fairskl._io import write_text

# -- plumbing ----------------------------------------------------------------------------------


def _config(scales, scale, settings=None, **extra):
    """The settings of ``scale`` (a name, or a dict overriding "small"), then ``settings``."""
    settings = dict(settings or {})
    given = set(settings) | (set(scale) if isinstance(scale, dict) else set())
    unknown = sorted(given - set(scales["small"]))
    if unknown:
        raise ValueError(f"unknown settings {unknown}; the settings are "
                         f"{sorted(scales['small'])}.")
    if isinstance(scale, dict):
        return {"scale": "custom", **scales["small"], **scale, **settings, **extra}
    if scale not in scales:
        raise ValueError(f"scale={scale!r} is not one of {sorted(scales)}, or a dict of "
                         f"settings.")
    return {"scale": scale, **scales[scale], **settings, **extra}


def _check_out(out_dir, resume, overwrite, config):
    """Refuse a non-empty ``out_dir`` without resume/overwrite, or one holding another run."""
    out = Path(out_dir)
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other; choose one.")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file; give a folder.")
    if not (out.exists() and any(out.iterdir())):
        return
    if overwrite:
        if not (out / "config.json").exists():
            raise ValueError(f"--overwrite: {str(out)!r} does not hold an earlier fairskl run "
                             f"(no config.json), so it is not deleted. Choose another --out.")
        return
    if not resume:
        raise FileExistsError(
            f"--out {str(out)!r} exists and is not empty. Pass --resume to continue the run "
            f"saved there, --overwrite to replace it, or choose another --out."
        )
    saved = out / "config.json"
    if saved.exists():
        old = json.loads(saved.read_text(encoding="utf-8"))
        new = json.loads(json.dumps(config, default=str))
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if changed:
            raise ValueError(f"--resume: {str(out)!r} holds a run with other {changed}. "
                             f"Use --overwrite or another --out.")


def _check_device(device):
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ValueError(f"--device {device!r} is not a torch device; use cpu or cuda.") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch sees no CUDA device here; use --device cpu.")


def _check_perceptual_weights(weights):
    """Load the VGG19 weights now, so that a missing file or download fails before any work."""
    from fairskl._perceptual import vgg19_features

    try:
        vgg19_features(weights)
    except OSError as error:
        raise ValueError(
            f"cannot load the VGG19 weights {weights!r} ({error}). Without network, download "
            f"torchvision's VGG19_Weights.IMAGENET1K_V1 elsewhere and pass "
            f"--perceptual-weights PATH to the .pth file."
        ) from None


def _prepare_out(out_dir, overwrite, config):
    out = Path(out_dir)
    if overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "config.json", json.dumps(config, indent=1, default=str))
    return out
