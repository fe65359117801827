"""``fairskl reproduce vae-fairness`` end to end, and the plumbing both studies share (scales,
output folders, checks); the NIR study is in ``_nir_study.py``."""

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from fairskl._io import write_text
from fairskl.experiments._report import Report, interval, save_figure
from fairskl.experiments._study_data import vae_data

__all__ = ["reproduce_vae_fairness"]

VAE_SCALES = {
    "small": dict(n_samples=3000, image_size=32, n_stages=2, channel_width=16,
                  latent_channels=16, max_epochs=10, lr=1e-3, n_train=600, n_test_per_group=150,
                  n_repeats=4, perceptual_weight=0.0, perceptual_weights=None),
    "paper": dict(n_samples=12000, image_size=64, n_stages=3, channel_width=64,
                  latent_channels=64, max_epochs=15, lr=1e-4, n_train=1668, n_test_per_group=500,
                  n_repeats=10, perceptual_weight=1.0, perceptual_weights="IMAGENET1K_V1"),
}
def reproduce_vae_fairness(out_dir, *, data="synthetic", data_home=None, scale="small",
                           device="cpu", resume=False, overwrite=False, random_state=0,
                           perceptual_weights=None, verbose=1):
    """The VAE fairness study: per-group reconstruction error and latent std by training mix.

    Runs :func:`representation_study` with a :class:`~fairskl.PerceptualVAE` on light
    (Fitzpatrick 1–2) vs dark (5–6) skin, with training sets of 100% light, 50/50 and 100%
    dark, and writes ``results.csv``, ``samples.csv``, the figures and ``report.md`` /
    ``report.html`` next to the paper's findings. Each (repeat, mix) is checkpointed in
    ``out_dir/checkpoints``, so ``resume=True`` continues an interrupted run.

    Parameters
    ----------
    out_dir : str or path-like
    data : {"synthetic", "fitzpatrick17k"}, default="synthetic"
    data_home : str or path-like, default=None
    scale : {"small", "paper"} or dict, default="small"
        A dict overrides some settings of ``"small"`` (see the example). ``"small"``: a narrow
        two-stage VAE on 32-pixel images without the perceptual term, 4 repeats of 600
        training images, 10 epochs (minutes on a CPU). ``"paper"``: the study's VAE and
        protocol (64×64, latent 8×8×64, VGG19 perceptual loss, 10 repeats); meant for a GPU.
    device : str, default="cpu"
    resume, overwrite : bool, default=False
        As in :func:`reproduce_nir`.
    random_state : int, default=0
    perceptual_weights : str or path-like, default=None
        Overrides the scale's VGG19 weights (e.g. a local ``.pth`` state_dict).
    verbose : int, default=1

    Returns
    -------
    report : pathlib.Path
        The ``report.md`` written.

    See Also
    --------
    representation_study : The protocol it runs.

    Examples
    --------
    >>> import tempfile
    >>> from fairskl.experiments import reproduce_vae_fairness
    >>> tiny = dict(n_samples=600, image_size=32, channel_width=8, latent_channels=4,
    ...             max_epochs=1, n_train=40, n_test_per_group=10, n_repeats=1)
    >>> path = reproduce_vae_fairness(tempfile.mkdtemp(), scale=tiny, verbose=0)
    >>> sorted(p.name for p in path.parent.glob("*.csv"))
    ['results.csv', 'samples.csv']
    """
    from fairskl import PerceptualVAE
    from fairskl.experiments import (
        plot_error_by_label,
        plot_prevalence,
        plot_representation_study,
        representation_study,
    )

    config = _config(VAE_SCALES, scale, data=data, device=device, random_state=random_state)
    report = Report(f"Are generative models fair? VAE on {data} ({config['scale']} scale)")
    if perceptual_weights is not None:
        config.update(perceptual_weights=str(perceptual_weights), perceptual_weight=1.0)
    _check_device(device)
    if config["perceptual_weight"] > 0 and config["perceptual_weights"] is not None:
        _check_perceptual_weights(config["perceptual_weights"])
    _check_out(out_dir, resume, overwrite, config)
    X, groups, labels, notes = vae_data(data, config, data_home, random_state)
    out = _prepare_out(out_dir, overwrite, config)
    say = print if verbose else (lambda *a, **k: None)
    for note in notes:
        say(note)
    vae = PerceptualVAE(
        image_size=config["image_size"], n_stages=config["n_stages"],
        channel_width=config["channel_width"], latent_channels=config["latent_channels"],
        perceptual_weight=config["perceptual_weight"],
        perceptual_weights=config["perceptual_weights"], max_epochs=config["max_epochs"],
        lr=config["lr"], device=device, verbose=0,
    )
    n_cells = config["n_repeats"] * 3
    say(f"representation study: {n_cells} fits of {config['n_train']} images, "
        f"tests of {config['n_test_per_group']} per group")
    with warnings.catch_warnings():
        if config["perceptual_weight"] == 0:
            warnings.filterwarnings("ignore", message=".*perceptual_weights=None.*")
        results, samples = representation_study(
            vae, X, groups=groups, n_train=config["n_train"],
            n_test_per_group=config["n_test_per_group"], n_repeats=config["n_repeats"],
            random_state=random_state, checkpoint_dir=out / "checkpoints", return_samples=True,
            verbose=verbose,
        )
    write_text(out / "results.csv", results.to_csv(index=False))
    write_text(out / "samples.csv", samples.to_csv(index=False))

    axes = plot_representation_study(results)
    axes[0].figure.suptitle("Per-group scores by training mix (each box: repeats)")
    save_figure(axes[0].figure, out / "by_mix.png")
    axes = plot_prevalence(labels, groups)
    axes[0].figure.suptitle("Condition prevalence per group")
    save_figure(axes[0].figure, out / "prevalence.png")
    ax = plot_error_by_label(samples, labels.iloc[:, -1].to_numpy(), min_count=3)
    save_figure(ax.figure, out / "error_by_label.png")

    _vae_report(report, results, notes)
    report.figure(out / "by_mix.png", "Reconstruction MSE and latent std per group, by mix")
    report.figure(out / "prevalence.png", "Condition prevalence per group")
    report.figure(out / "error_by_label.png", "Mean reconstruction MSE per label, light vs dark")
    report.footer(config)
    path = report.write(out)[0]
    say(f"report: {path}")
    return path


def _vae_report(report, results, notes):
    by_repeat = results.pivot_table(index=["mix", "repeat"], columns=["metric", "group"],
                                    values="value", observed=True)
    rows = []
    for mix in results["mix"].cat.categories:
        cell = by_repeat.loc[mix]
        row = {"training mix": mix}
        for metric in ("reconstruction_mse", "latent_std"):
            for group in ("light", "dark"):
                values = cell[(metric, group)]
                row[f"{metric} {group}"] = _mean_ci(values)
            diff = cell[(metric, "dark")] - cell[(metric, "light")]
            row[f"{metric} dark − light"] = _mean_ci(diff, fmt=".4f")
        rows.append(row)
    mse = results[results.metric == "reconstruction_mse"]
    shares = results.groupby("mix", observed=True)["train_share"].agg(["min", "max"])
    balanced = shares.index[(shares["min"] == shares["max"])]
    if len(balanced):
        cell = by_repeat.loc[balanced[0], "reconstruction_mse"]
        better = (f"light better in {(cell['light'] < cell['dark']).mean():.0%} of the "
                  f"{len(cell)} repeats of the balanced mix")
    else:
        better = "no balanced mix in this run"
    report.text("Means over repeats with a 95% t-interval. MSE is on images in [0, 1].")
    for note in notes:
        report.text(note)
    report.heading("Per-group results by training mix")
    report.table(pd.DataFrame(rows).set_index("training mix").T)
    report.heading("The paper's findings next to ours")
    report.table(pd.DataFrame([
        {"finding": "per-group MSE < 0.07", "paper": "yes",
         "ours": f"max {mse['value'].max():.4f}"},
        {"finding": "light reconstructed better than dark, even when balanced", "paper": "yes",
         "ours": better},
        {"finding": "no group difference in latent std", "paper": "yes",
         "ours": "see the dark − light interval of latent_std above"},
    ]).set_index("finding"))


def _mean_ci(values, fmt=".4f"):
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = values.mean()
    if len(values) < 2:
        return f"{mean:{fmt}}"
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return interval(mean, mean - half, mean + half, fmt=fmt)


# -- plumbing ----------------------------------------------------------------------------------


def _config(scales, scale, **extra):
    if isinstance(scale, dict):
        unknown = sorted(set(scale) - set(scales["small"]))
        if unknown:
            raise ValueError(f"scale has unknown settings {unknown}; the settings are "
                             f"{sorted(scales['small'])}.")
        return {"scale": "custom", **scales["small"], **scale, **extra}
    if scale not in scales:
        raise ValueError(f"scale={scale!r} is not one of {sorted(scales)}, or a dict of "
                         f"settings.")
    return {"scale": scale, **scales[scale], **extra}


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
