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
from fairskl.experiments._representation import UNCERTAINTY_SCORES
from fairskl.experiments._study_data import vae_data

__all__ = ["reproduce_vae_fairness"]

#: The VAE study's settings. "paper" follows the reference implementation (LukeDitria/CNN-VAE)
#: in the loss and the training; "small" keeps its loss (with a random VGG19 unless weights are
#: given) and shrinks the rest to a CPU budget. The user guide's VAE page tabulates both.
_VAE_REFERENCE_LOSS = dict(perceptual_weight=1.0, perceptual_imagenet_normalization=False,
                           perceptual_reduction="mean", gradient_clip_norm=10.0)
VAE_SCALES = {
    "small": dict(n_samples=3000, image_size=32, n_stages=2, channel_width=16,
                  latent_channels=16, max_epochs=3, batch_size=32, lr=1e-3, n_train=300,
                  n_test_per_group=150, n_repeats=3, perceptual_weights=None, amp=False,
                  **_VAE_REFERENCE_LOSS),
    "paper": dict(n_samples=12000, image_size=64, n_stages=3, channel_width=64,
                  latent_channels=64, max_epochs=15, batch_size=64, lr=1e-4, n_train=1668,
                  n_test_per_group=500, n_repeats=10, perceptual_weights="IMAGENET1K_V1",
                  amp=True, **_VAE_REFERENCE_LOSS),
}
def reproduce_vae_fairness(out_dir, *, data="synthetic", data_home=None, scale="small",
                           device="cpu", resume=False, overwrite=False, random_state=0,
                           perceptual_weights=None, verbose=1):
    """The VAE fairness study: per-group reconstruction error and latent std by training mix.

    Runs :func:`representation_study` with a :class:`~fairskl.PerceptualVAE` on light
    (Fitzpatrick 1–2) vs dark (5–6) skin, with training sets of 100% light, 50/50 and 100%
    dark, and writes ``results.csv``, ``samples.csv`` (every score per test image, the
    uncertainty scores of :meth:`~fairskl.PerceptualVAE.uncertainty` included),
    ``uncertainty.csv`` (per repeat and mix, each score's AUROC for dark vs light and its rank
    correlation with the MSE), the figures and ``report.md`` /
    ``report.html`` next to the paper's findings. Each (repeat, mix) is checkpointed in
    ``out_dir/checkpoints``, so ``resume=True`` continues an interrupted run.

    Parameters
    ----------
    out_dir : str or path-like
    data : {"synthetic", "fitzpatrick17k"}, default="synthetic"
    data_home : str or path-like, default=None
    scale : {"small", "paper"} or dict, default="small"
        A dict overrides some settings of ``"small"`` (see the example). Both train with the
        reference implementation's loss (MSE + KL + the VGG19 perceptual term on all 16 conv
        layers, inputs in [-1, 1], gradients clipped at 10). ``"small"``: a narrow two-stage
        VAE on 32-pixel images with a fixed random VGG19 (unless ``perceptual_weights`` is
        given), 3 repeats of 300 training images, 3 epochs (minutes on a CPU).
        ``"paper"``: the study's VAE and protocol (64×64, latent 8×8×64, ImageNet VGG19,
        10 repeats, lr 1e-4, AMP: float16 with a gradient scaler on CUDA); meant for a GPU.
    device : str, default="cpu"
    resume, overwrite : bool, default=False
        As in :func:`reproduce_nir`.
    random_state : int, default=0
    perceptual_weights : str or path-like, default=None
        Overrides the scale's VGG19 weights (e.g. a local ``.pth`` state_dict). The report
        says which VGG19 was used.
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
    ['results.csv', 'samples.csv', 'uncertainty.csv']
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
    config["precision"] = _vae_precision(config["amp"], device)
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
        perceptual_weights=config["perceptual_weights"],
        perceptual_imagenet_normalization=config["perceptual_imagenet_normalization"],
        perceptual_reduction=config["perceptual_reduction"],
        gradient_clip_norm=config["gradient_clip_norm"], precision=config["precision"],
        max_epochs=config["max_epochs"], batch_size=config["batch_size"], lr=config["lr"],
        device=device, verbose=0,
    )
    notes.append(_vae_loss_note(config))
    n_cells = config["n_repeats"] * 3
    say(f"representation study: {n_cells} fits of {config['n_train']} images, "
        f"tests of {config['n_test_per_group']} per group")
    with warnings.catch_warnings():  # the random VGG19 is said in the report instead
        warnings.filterwarnings("ignore", message=".*perceptual_weights=None.*")
        results, samples = representation_study(
            vae, X, groups=groups, n_train=config["n_train"],
            n_test_per_group=config["n_test_per_group"], n_repeats=config["n_repeats"],
            scoring=["reconstruction_mse", "latent_std", *UNCERTAINTY_SCORES],
            random_state=random_state, checkpoint_dir=out / "checkpoints", return_samples=True,
            verbose=verbose,
        )
    write_text(out / "results.csv", results.to_csv(index=False))
    write_text(out / "samples.csv", samples.to_csv(index=False))

    uncertainty = _uncertainty_table(samples)
    write_text(out / "uncertainty.csv", uncertainty.to_csv(index=False))
    axes = plot_representation_study(results, ["reconstruction_mse", "latent_std"])
    axes[0].figure.suptitle("Per-group scores by training mix (each box: repeats)")
    save_figure(axes[0].figure, out / "by_mix.png")
    axes = plot_prevalence(labels, groups)
    axes[0].figure.suptitle("Condition prevalence per group")
    save_figure(axes[0].figure, out / "prevalence.png")
    axes = plot_error_by_label(samples, labels.iloc[:, -1].to_numpy(), min_count=3)
    axes[0].figure.suptitle(f"Mean reconstruction MSE ([0, 1] scale) per {labels.columns[-1]}, "
                            f"light vs dark, per training mix")
    save_figure(axes[0].figure, out / "error_by_label.png")

    _vae_report(report, results[results.metric.isin(["reconstruction_mse", "latent_std"])],
                notes)
    _uncertainty_report(report, uncertainty)
    report.figure(out / "by_mix.png", "Reconstruction MSE and latent std per group, by mix")
    report.figure(out / "prevalence.png", "Condition prevalence per group")
    report.figure(out / "error_by_label.png",
                  "Mean reconstruction MSE per label, light vs dark, one panel per training mix")
    report.footer(config)
    path = report.write(out)[0]
    say(f"report: {path}")
    return path


#: The paper reports MSE on images in [-1, 1] (the reference's Normalize(0.5, 0.5)); fairskl's
#: reconstruction_mse is on [0, 1]. The same error is 4 times larger on [-1, 1].
PAPER_MSE_SCALE = 4.0
PAPER_MSE_BOUND = 0.07


def _vae_precision(amp, device):
    """The reference's AMP: float16 with a gradient scaler on CUDA. Elsewhere float32: bf16
    autocast made the VGG19 16–20 times slower on an AVX2 CPU without bf16 instructions."""
    import torch

    return "fp16" if amp and torch.device(device).type == "cuda" else "float32"


def _vae_loss_note(config):
    weights = config["perceptual_weights"]
    if config["perceptual_weight"] == 0:
        vgg = "no perceptual term (perceptual_weight=0)"
    elif weights is None:
        vgg = ("a fixed, randomly initialised VGG19 (a stand-in: random conv features are a "
               "usable perceptual prior, but not the study's ImageNet VGG19; pass "
               "--perceptual-weights PATH for it)")
    else:
        vgg = f"the VGG19 weights {weights!r}"
    inputs = ("ImageNet-normalised" if config["perceptual_imagenet_normalization"]
              else "in [-1, 1], not ImageNet-normalised")
    return (f"Loss: MSE + KL + {config['perceptual_weight']:g} × perceptual term from {vgg}; "
            f"VGG inputs {inputs}, 16 conv layers reduced by {config['perceptual_reduction']!r}; "
            f"gradients clipped at {config['gradient_clip_norm']}; precision "
            f"{config['precision']}.")


def _vae_report(report, results, notes):
    mse = results[results.metric == "reconstruction_mse"]
    results = pd.concat([results, mse.assign(metric="mse_paper_scale",
                                             value=mse["value"] * PAPER_MSE_SCALE)])
    by_repeat = results.pivot_table(index=["mix", "repeat"], columns=["metric", "group"],
                                    values="value", observed=True)
    names = {"mse_paper_scale": "MSE [-1, 1]", "reconstruction_mse": "MSE [0, 1]",
             "latent_std": "latent std"}
    rows = []
    for mix in results["mix"].cat.categories:
        cell = by_repeat.loc[mix]
        row = {"training mix": mix}
        for metric, name in names.items():
            for group in ("light", "dark"):
                row[f"{name} {group}"] = _mean_ci(cell[(metric, group)])
            diff = cell[(metric, "dark")] - cell[(metric, "light")]
            row[f"{name} dark − light"] = _mean_ci(diff, fmt=".4f")
        rows.append(row)
    means = by_repeat["mse_paper_scale"].groupby(level="mix", observed=True).mean()
    worst = means.stack().idxmax()
    worst_value = float(means.stack().max())
    shares = results.groupby("mix", observed=True)["train_share"].agg(["min", "max"])
    balanced = shares.index[(shares["min"] == shares["max"])]
    if len(balanced):
        cell = by_repeat.loc[balanced[0], "mse_paper_scale"]
        better = (f"light better in {(cell['light'] < cell['dark']).mean():.0%} of the "
                  f"{len(cell)} repeats of the balanced mix")
    else:
        better = "no balanced mix in this run"
    report.text("Means over repeats with a 95% t-interval. MSE is given on both scales: on "
                "images in [-1, 1] (the paper's and the reference implementation's scale, used "
                "for the comparison with the paper) and in [0, 1] (results.csv, samples.csv "
                "and the figures; 4 times smaller).")
    for note in notes:
        report.text(note)
    report.heading("Per-group results by training mix")
    report.table(pd.DataFrame(rows).set_index("training mix").T)
    report.heading("The paper's findings next to ours (MSE on the paper's [-1, 1] scale)")
    report.table(pd.DataFrame([
        {"finding": f"per-group MSE < {PAPER_MSE_BOUND} on [-1, 1], every mix", "paper": "yes",
         "ours": f"{'yes' if worst_value < PAPER_MSE_BOUND else 'no'}: largest per-group mean "
                 f"{worst_value:.4f} ({worst[1]}, {worst[0]}) on [-1, 1]"},
        {"finding": "light reconstructed better than dark, even when balanced", "paper": "yes",
         "ours": better},
        {"finding": "no group difference in latent std", "paper": "yes",
         "ours": "see the dark − light interval of latent std above"},
    ]).set_index("finding"))


def _uncertainty_table(samples):
    """Per repeat, mix and score: the AUROC for telling dark from light test images, and the
    Spearman correlation with the per-image reconstruction MSE."""
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    wide = samples.pivot_table(index=["repeat", "mix", "group", "sample"], columns="metric",
                               values="value", observed=True).reset_index()
    rows = []
    for (repeat, mix), cell in wide.groupby(["repeat", "mix"], observed=True):
        is_dark = (cell["group"] == "dark").to_numpy()
        for score in ["latent_std", *UNCERTAINTY_SCORES]:
            if score in cell and cell[score].notna().all():  # NaN: no active latent unit
                rows.append((repeat, mix, score, roc_auc_score(is_dark, cell[score]),
                             spearmanr(cell[score], cell["reconstruction_mse"]).statistic))
    return pd.DataFrame(rows, columns=["repeat", "mix", "score", "auroc_dark",
                                       "spearman_mse"])


def _uncertainty_report(report, table):
    report.heading("Which uncertainty score flags the dark group?")
    report.text(
        "Per training mix, each score's AUROC for telling the dark test images from the light "
        "ones (0.5: no difference; 1: every dark image scores higher; 0: every light one) and "
        "its Spearman correlation with the per-image reconstruction MSE, mean over repeats with "
        "a 95% t-interval (clipped to the metric's range). The study's statistic is *latent "
        "std*, the mean posterior std over all latent elements; the others are "
        "PerceptualVAE.uncertainty's (the VAE guide gives their equations), the sampled ones "
        "with 4 posterior draws per image.")
    rows = []
    for (mix, score), part in table.groupby(["mix", "score"], observed=True, sort=False):
        rows.append({"training mix": mix, "score": score,
                     "AUROC dark vs light": _mean_ci(part["auroc_dark"], fmt=".2f",
                                                     bounds=(0, 1)),
                     "Spearman with MSE": _mean_ci(part["spearman_mse"], fmt=".2f",
                                                   bounds=(-1, 1))})
    report.table(pd.DataFrame(rows).set_index("training mix"))


def _mean_ci(values, fmt=".4f", bounds=(-np.inf, np.inf)):
    """Mean with a 95% t-interval, clipped to the metric's ``bounds``."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = values.mean()
    if len(values) < 2:
        return f"{mean:{fmt}}"
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return interval(mean, max(mean - half, bounds[0]), min(mean + half, bounds[1]), fmt=fmt)


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
