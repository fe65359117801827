"""``fairskl reproduce vae-fairness`` end to end: the study, its per-image table, the analyses
of the open questions (which uncertainty score flags the dark group; is the gap tone or the
conditions and sources that come with it) and the report."""

import os
import warnings

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import StrOptions, validate_params

from fairskl.datasets._files import as_image_files, is_path_sequence
from fairskl.experiments._gaps import (
    adjusted_gap,
    choose_condition_level,
    mix_differences,
    t_interval,
)
from fairskl.experiments._report import Report, interval, save_figure
from fairskl.experiments._representation import UNCERTAINTY_SCORES
from fairskl.experiments._run import RUN_CONSTRAINTS, RunDirectory, resolve_config
from fairskl.experiments._study_data import GROUP_DEFINITIONS, LABEL_LEVELS, vae_data
from fairskl.metrics._group_metrics import per_sample_mse

__all__ = ["reproduce_vae_fairness"]

#: The VAE study's settings. "paper" follows the reference implementation (LukeDitria/CNN-VAE)
#: in the loss, the preprocessing and the training; "small" keeps its loss (with a random VGG19
#: unless weights are given) and shrinks the rest to a CPU budget. The user guide's VAE page
#: tabulates both.
_VAE_REFERENCE_LOSS = dict(perceptual_weight=1.0, perceptual_imagenet_normalization=False,
                           perceptual_reduction="mean", gradient_clip_norm=10.0)
_VAE_PROTOCOL = dict(augment="hflip", resize="crop", replace=True, group_definition="fst12-56",
                     tone_effect=0.0)
VAE_SCALES = {
    "small": dict(n_samples=3000, image_size=32, n_stages=2, channel_width=16,
                  latent_channels=16, max_epochs=3, batch_size=32, lr=1e-3, n_train=300,
                  n_test_per_group=150, n_repeats=4, n_shared_per_group=40,
                  perceptual_weights=None, amp=False, streaming=False, num_workers=0,
                  **_VAE_REFERENCE_LOSS, **_VAE_PROTOCOL),
    "paper": dict(n_samples=12000, image_size=64, n_stages=3, channel_width=64,
                  latent_channels=64, max_epochs=15, batch_size=64, lr=1e-4, n_train=1668,
                  n_test_per_group=500, n_repeats=10, n_shared_per_group=100,
                  perceptual_weights="IMAGENET1K_V1", amp=True, streaming=True, num_workers=8,
                  **_VAE_REFERENCE_LOSS, **_VAE_PROTOCOL),
}
#: The paper reports MSE on images in [-1, 1] (the reference's Normalize(0.5, 0.5)); fairskl's
#: reconstruction_mse is on [0, 1]. The same error is 4 times larger on [-1, 1].
PAPER_MSE_SCALE = 4.0
PAPER_MSE_BOUND = 0.07
#: every per-image score of the study, the study's two first
SCORES = ["reconstruction_mse", "latent_std", *UNCERTAINTY_SCORES]
#: bootstrap resamples of the shared evaluation set (the ensemble score's interval)
N_BOOTSTRAP = 1000


@validate_params(
    {
        **RUN_CONSTRAINTS,
        "data": [StrOptions({"synthetic", "fitzpatrick17k"})],
        "scale": [StrOptions(set(VAE_SCALES)), dict],
        "perceptual_weights": [str, os.PathLike, None],
    },
    prefer_skip_nested_validation=False,  # the studies it runs check their settings too
)
def reproduce_vae_fairness(out_dir, *, data="synthetic", data_home=None, scale="small",
                           settings=None, device="cpu", resume=False, overwrite=False,
                           random_state=0, perceptual_weights=None, verbose=1):
    """The VAE fairness study, and the two questions it leaves open, answered with intervals.

    Runs :func:`representation_study` with a :class:`~fairskl.PerceptualVAE` on light vs dark
    skin (Fitzpatrick 1–2 vs 5–6 by default), with training sets of 100% light, 50/50 and 100%
    dark, and writes to ``out_dir``:

    - ``results.csv``: per repeat, mix, group and score the mean, with the training draws and
      the distinct training images (``n_train``, ``n_distinct``);
    - ``samples.csv``: one row per test image and repeat and mix: group, skin types (``fst``,
      ``fst_centaur``), the three label levels, the image source, the reconstruction MSE and
      every uncertainty score of :meth:`~fairskl.PerceptualVAE.uncertainty`;
    - ``uncertainty.csv``: per repeat, mix and score, its AUROC for telling dark from light
      test images and its rank correlation with the MSE, plus the epistemic score (the
      disagreement of a mix's repeat models on a shared evaluation set no repeat trains or
      tests on);
    - ``gaps.csv`` and ``mix_changes.csv``: the dark − light MSE gap per mix, raw and adjusted
      for condition and source (:func:`adjusted_gap`), and its paired change between mixes;
    - the figures (per-group scores by mix, reconstructions and prior samples, condition
      prevalence light vs dark, error per condition) and ``report.md`` / ``report.html``.

    Each (repeat, mix) is checkpointed in ``out_dir/checkpoints`` with its fitted VAE, so
    ``resume=True`` continues an interrupted run.

    Parameters
    ----------
    out_dir : str or path-like
    data : {"synthetic", "fitzpatrick17k"}, default="synthetic"
        ``"synthetic"``: :func:`~fairskl.datasets.make_skin_conditions` (conditions and sources
        whose mix differs by tone as on the real metadata, no true tone effect unless
        ``tone_effect`` is set).
    data_home : str or path-like, default=None
    scale : {"small", "paper"} or dict, default="small"
        A dict overrides some settings of ``"small"`` (see the example). Both train with the
        reference implementation's loss (MSE + KL + the VGG19 perceptual term on all 16 conv
        layers, inputs in [-1, 1], gradients clipped at 10), preprocessing (short side resized,
        centre crop) and random horizontal flips. ``"small"``: a narrow two-stage VAE on
        32-pixel images with a fixed random VGG19 (unless ``perceptual_weights`` is given), 4
        repeats of 300 training images, 3 epochs (minutes on a CPU). ``"paper"``: the study's
        VAE and protocol (64×64, latent 8×8×64, ImageNet VGG19, 10 repeats, lr 1e-4, AMP:
        float16 with a gradient scaler on CUDA); meant for a GPU. Other settings:
        ``group_definition`` (one of ``"fst12-56"``, ``"fst123-456"``, ``"centaur12-56"``),
        ``n_shared_per_group`` (the shared evaluation set; 0 is the paper's protocol exactly,
        without the epistemic score), ``replace`` (draw training images with replacement, as
        the study), ``augment``, ``resize`` and, for synthetic data, ``tone_effect``.
    settings : dict, default=None
        Settings that override the scale's, e.g. ``{"n_repeats": 5}``; the report keeps the
        scale's name and lists every setting.
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
    adjusted_gap : The raw and adjusted gaps.

    Examples
    --------
    >>> import tempfile
    >>> from fairskl.experiments import reproduce_vae_fairness
    >>> tiny = dict(n_samples=600, image_size=32, channel_width=8, latent_channels=4,
    ...             max_epochs=1, n_train=40, n_test_per_group=10, n_repeats=2,
    ...             n_shared_per_group=5)
    >>> path = reproduce_vae_fairness(tempfile.mkdtemp(), scale=tiny, verbose=0)
    >>> sorted(p.name for p in path.parent.glob("*.csv"))
    ['gaps.csv', 'mix_changes.csv', 'results.csv', 'samples.csv', 'uncertainty.csv']
    """

    config = resolve_config(VAE_SCALES, scale, settings, data=data, device=device,
                            random_state=random_state)
    report = Report(f"Are generative models fair? VAE on {data} ({config['scale']} scale)")
    if perceptual_weights is not None:
        config.update(perceptual_weights=str(perceptual_weights), perceptual_weight=1.0)
    _check_settings(config)
    config["precision"] = _vae_precision(config["amp"], device)
    run = RunDirectory(out_dir, config, resume=resume, overwrite=overwrite, verbose=verbose)
    run.check(device, perceptual_weights=config["perceptual_weights"]
              if config["perceptual_weight"] > 0 else None)
    X, groups, meta, notes = vae_data(data, config, data_home, random_state)
    run.prepare()
    for note in notes:
        run.note(note)
    run.notes.append(_vae_loss_note(config))
    shared = _shared_set(groups, config["n_shared_per_group"], random_state)
    results, long, models = _run_study(_vae(config, device), X, groups, shared, run)
    samples = per_image_table(long, meta)
    run.write_csv(results=results, samples=samples)
    uncertainty = uncertainty_table(samples)
    ensemble = ensemble_table(models, X, groups, shared, random_state)
    run.write_csv(uncertainty=pd.concat([uncertainty, ensemble]))
    level = choose_condition_level(samples, LABEL_LEVELS)
    gaps, per_repeat = adjusted_gap(samples, adjust_for=[level, "source"])
    mixes = list(results["mix"].cat.categories)
    pairs = [*zip(mixes, mixes[1:], strict=False), (mixes[0], mixes[-1])]
    changes = mix_differences(per_repeat, pairs)
    run.write_csv(gaps=gaps, mix_changes=changes)

    _vae_report(report, results[results.metric.isin(["reconstruction_mse", "latent_std"])],
                run.notes)
    _training_report(report, results)
    _gap_report(report, gaps, changes, level, data, config)
    _uncertainty_report(report, uncertainty, ensemble)
    _figures(report, run.path, results, long, samples, meta, groups, models, X)
    return run.finish(report)


#: the settings that are PerceptualVAE parameters of the same name
VAE_PARAMETERS = ("image_size", "n_stages", "channel_width", "latent_channels",
                  "perceptual_weight", "perceptual_weights", "perceptual_imagenet_normalization",
                  "perceptual_reduction", "gradient_clip_norm", "precision", "augment",
                  "max_epochs", "batch_size", "lr")


def _vae(config, device):
    """The study's PerceptualVAE with the scale's settings; at ``streaming`` it reads image
    paths (Fitzpatrick17k's) with ``num_workers`` DataLoader workers."""
    from fairskl import PerceptualVAE

    streaming = (dict(resize=config["resize"], iterator_train__num_workers=config["num_workers"],
                      iterator_valid__num_workers=config["num_workers"])
                 if config["streaming"] else {})
    return PerceptualVAE(**{name: config[name] for name in VAE_PARAMETERS}, device=device,
                         verbose=0, **streaming)


def _run_study(vae, X, groups, shared, run):
    """The representation study of the three mixes, checkpointed in the run's folder."""
    from fairskl import experiments

    config = run.config
    run.say(f"representation study: {config['n_repeats'] * 3} fits of {config['n_train']} "
            f"images, tests of {config['n_test_per_group']} per group"
            + (f", a shared set of {config['n_shared_per_group']} per group"
               if len(shared) else ""))
    with warnings.catch_warnings():  # the random VGG19 is said in the report instead
        warnings.filterwarnings("ignore", message=".*perceptual_weights=None.*")
        return experiments.representation_study(
            vae, X, groups=groups, n_train=config["n_train"],
            n_test_per_group=config["n_test_per_group"], n_repeats=config["n_repeats"],
            scoring=["reconstruction_mse", "latent_std", "vae_uncertainty"],
            replace=config["replace"], exclude=shared, random_state=config["random_state"],
            checkpoint_dir=run.path / "checkpoints", return_samples=True,
            return_estimators=True, verbose=run.verbose,
        )


def _check_settings(config):
    if config["group_definition"] not in GROUP_DEFINITIONS:
        raise ValueError(f"group_definition={config['group_definition']!r} is not one of "
                         f"{sorted(GROUP_DEFINITIONS)}.")
    shared = config["n_shared_per_group"]
    if not isinstance(shared, int | np.integer) or shared < 0:
        raise ValueError(f"n_shared_per_group must be an int >= 0, got {shared!r}.")
    if config["n_repeats"] < 2 and shared:
        raise ValueError(f"the ensemble score needs n_repeats >= 2 models per mix, got "
                         f"n_repeats={config['n_repeats']}; or set n_shared_per_group=0.")


def decoded(X, models):
    """Images as an array: image paths read as the study's VAEs read them."""
    if not is_path_sequence(X):
        return X
    vae = next(iter(models.values()))
    files = as_image_files(X, image_size=vae.image_size, resize=vae.resize)
    return torch.stack([files[i][0] for i in range(len(files))]).numpy()


def _shared_set(groups, n_per_group, seed):
    """Positions of the shared evaluation set: ``n_per_group`` images of each group (none
    at 0)."""
    rng = np.random.default_rng([seed, 7])
    codes = np.asarray(pd.Categorical(groups).codes)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(codes == g), n_per_group,
                                              replace=False)
                                   for g in range(codes.max() + 1)]))


def per_image_table(long, meta):
    """One row per (repeat, mix, test image): the group, the image's metadata and scores."""
    wide = long.pivot_table(index=["repeat", "mix", "group", "sample"], columns="metric",
                            values="value", observed=True).reset_index()
    info = meta.iloc[wide["sample"].to_numpy()].reset_index(drop=True)
    scores = [s for s in SCORES if s in wide.columns]
    return pd.concat([wide[["repeat", "mix", "group", "sample"]], info, wide[scores]], axis=1)


def uncertainty_table(samples):
    """Per repeat, mix and score: the AUROC for telling dark from light test images, and the
    Spearman correlation with the per-image reconstruction MSE."""
    rows = []
    for (repeat, mix), cell in samples.groupby(["repeat", "mix"], observed=True):
        is_dark = (cell["group"] == "dark").to_numpy()
        for score in ["latent_std", *UNCERTAINTY_SCORES]:
            if score in cell and cell[score].notna().all():  # NaN: no active latent unit
                rows.append((repeat, mix, score, roc_auc_score(is_dark, cell[score]),
                             spearmanr(cell[score], cell["reconstruction_mse"]).statistic))
    return pd.DataFrame(rows, columns=["repeat", "mix", "score", "auroc_dark", "spearman_mse"])


def ensemble_table(models, X, groups, shared, seed):
    """Per mix, the epistemic score on the shared set: the AUROC (dark vs light) and Spearman
    (with the ensemble's mean MSE) of the disagreement of the mix's repeat models, with a
    stratified bootstrap interval over the shared images."""
    from fairskl.inspection import ensemble_disagreement

    columns = ["repeat", "mix", "score", "auroc_dark", "spearman_mse", "auroc_low",
               "auroc_high", "spearman_low", "spearman_high", "n_models", "n_images"]
    if len(shared) == 0:
        return pd.DataFrame(columns=columns)
    X_shared = decoded(X[shared], models)
    is_dark = np.asarray(groups)[shared] == "dark"
    rng = np.random.default_rng([seed, 11])
    by_group = [np.flatnonzero(~is_dark), np.flatnonzero(is_dark)]
    resamples = np.stack([np.concatenate([rng.choice(idx, len(idx)) for idx in by_group])
                          for _ in range(N_BOOTSTRAP)])  # (B, n): the same groups' sizes
    labels = is_dark[resamples[0]]
    rows = []
    for mix in dict.fromkeys(m for _, m in models):
        fitted = [model for (_, m), model in sorted(models.items()) if m == mix]
        score = ensemble_disagreement(fitted, X_shared)
        mse = np.mean([per_sample_mse(X_shared, model.reconstruct(X_shared))
                       for model in fitted], axis=0)
        auroc = _auroc(labels, score[resamples])
        rho = _spearman(score[resamples], mse[resamples])
        rows.append((np.nan, mix, "ensemble_disagreement", _auroc(is_dark, score[None])[0],
                     _spearman(score[None], mse[None])[0],
                     *np.percentile(auroc, [2.5, 97.5]), *np.percentile(rho, [2.5, 97.5]),
                     len(fitted), len(shared)))
    return pd.DataFrame(rows, columns=columns)


def _auroc(positive, scores):
    """AUROC of each row of ``scores`` (B, n) for the boolean labels ``positive`` (n,): the
    Mann-Whitney statistic from mid-ranks (ties count one half)."""
    ranks = rankdata(scores, axis=1)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return (ranks[:, positive].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _spearman(a, b):
    """Spearman correlation of each row of ``a`` with the same row of ``b``, (B, n)."""
    ra, rb = (rankdata(x, axis=1) for x in (a, b))
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    return (ra * rb).sum(axis=1) / np.sqrt((ra ** 2).sum(axis=1) * (rb ** 2).sum(axis=1))


def _figures(report, out, results, long, samples, meta, groups, models, X):
    """Draw the four figures into ``out`` and add them to the report."""
    from fairskl.experiments import (
        plot_error_by_label,
        plot_prevalence,
        plot_reconstructions,
        plot_representation_study,
    )

    _save(report, plot_representation_study(results, ["reconstruction_mse", "latent_std"]),
          out / "by_mix.png", "Per-group scores by training mix (each box: repeats)",
          "Reconstruction MSE and latent std per group, by mix")

    first_repeat = samples["repeat"].min()
    first = samples[samples["repeat"] == first_repeat]
    originals, reconstructions, priors = {}, {}, {}
    for (repeat, mix), model in models.items():
        if repeat != first_repeat:
            continue
        for group in ("light", "dark"):
            idx = first.loc[(first["mix"] == mix) & (first["group"] == group), "sample"]
            images = decoded(X[idx.to_numpy()[:6]], models)
            originals[f"{mix}: {group}"] = images
            reconstructions[f"{mix}: {group}"] = model.reconstruct(images)
        priors[f"{mix}: prior samples"] = model.sample(6, random_state=0)
    _save(report, plot_reconstructions(originals, reconstructions, samples=priors),
          out / "reconstructions.png", "Reconstructions (repeat 0) and prior samples",
          "Test images of repeat 0 over their reconstructions, per mix and group, and prior "
          "samples of each mix's model (Figs. 4–5)")
    _save(report, plot_prevalence(meta[LABEL_LEVELS[::-1]], groups, kind="scatter"),
          out / "prevalence.png", "Condition prevalence, light vs dark",
          "Prevalence of each condition among light (x) and dark (y) images, per label level "
          "(Fig. 7)")
    _save(report, plot_error_by_label(long, meta["label"].to_numpy(), min_count=3),
          out / "error_by_label.png",
          "Mean reconstruction MSE ([0, 1] scale) per label, light vs dark, per training mix",
          "Mean reconstruction MSE per label, light vs dark, one panel per training mix (Fig. 8)")


def _save(report, axes, path, title, caption):
    """Title the figure of ``axes``, save it and add it to the report with ``caption``."""
    axes[0].figure.suptitle(title)
    report.figure(save_figure(axes[0].figure, path), caption)


def _vae_precision(amp, device):
    """The reference's AMP: float16 with a gradient scaler on CUDA. Elsewhere float32: bf16
    autocast made the VGG19 16–20 times slower on an AVX2 CPU without bf16 instructions."""
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
            f"{config['precision']}; training augmentation {config['augment']!r}.")


def _vae_report(report, results, notes):
    mse = results[results.metric == "reconstruction_mse"]
    results = pd.concat([results, mse.assign(metric="mse_paper_scale",
                                             value=mse["value"] * PAPER_MSE_SCALE)])
    by_repeat = results.pivot_table(index=["mix", "repeat"], columns=["metric", "group"],
                                    values="value", observed=True)
    names = {"mse_paper_scale": "MSE [-1, 1]", "reconstruction_mse": "MSE [0, 1]",
             "latent_std": "latent std"}
    columns = {}  # per mix and repeat
    for metric, name in names.items():
        light, dark = by_repeat[(metric, "light")], by_repeat[(metric, "dark")]
        columns |= {f"{name} light": light, f"{name} dark": dark,
                    f"{name} dark − light": dark - light}
    by_mix = pd.DataFrame(columns).groupby(level="mix", observed=True).agg(_mean_ci)
    means = by_repeat["mse_paper_scale"].groupby(level="mix", observed=True).mean().stack()
    worst, worst_value = means.idxmax(), float(means.max())
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
    report.table(by_mix.rename_axis("training mix").T)
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


def _training_report(report, results):
    report.heading("Training images: draws and distinct images")
    report.text("Per training mix and group, the training draws and the distinct images among "
                "them (mean over repeats). The study draws with replacement: when a group's "
                "pool is not much larger than its draws, a model sees fewer distinct images "
                "than the mix's share suggests.")
    counts = (results.drop_duplicates(["repeat", "mix", "group"])
              .groupby(["mix", "group"], observed=True)[["n_train", "n_distinct"]].mean())
    table = counts.unstack("group")
    table.columns = [f"{'draws' if c == 'n_train' else 'distinct'} {g}" for c, g in table.columns]
    report.table(table.round(0).astype(int), floatfmt=".0f")


def _gap_report(report, gaps, changes, level, data, config):
    report.heading("Skin tone, or the conditions and sources that come with it?")
    formula = gaps.loc[gaps["model"] == "adjusted", "formula"].iloc[0]
    report.text(
        f"The dark − light gap in reconstruction MSE ([0, 1] scale) per training mix, *raw* "
        f"and *adjusted* for condition ({level}, the finest label level whose cells are not "
        f"thin) and image source: the ordinary least squares model `{formula}` (statsmodels), "
        f"whose `dark` coefficient is the gap between two images of the same condition and "
        f"source. Two intervals each: the mean over repeats of the per-repeat coefficients with "
        f"a 95% t-interval (the repeats are the replicates: this one includes how the gap "
        f"varies between trained models), and the pooled fit with errors clustered by image.")
    rows = {}  # per mix, the cells of each model
    for g in gaps.itertuples():
        rows.setdefault(g.mix, {}).update({
            f"{g.model} (t over {g.n_repeats} repeats)": interval(g.gap, g.low, g.high, fmt=".4f"),
            f"{g.model} (pooled, clustered)": interval(g.pooled, g.pooled_low, g.pooled_high,
                                                       fmt=".4f")})
    report.table(pd.DataFrame.from_dict(rows, orient="index").rename_axis("training mix"))
    if data == "synthetic":
        report.text(
            f"On the synthetic default the truth is known (make_skin_conditions): dark images "
            f"carry more non-neoplastic conditions and more atlas images, which add grain that "
            f"no reconstruction recovers; tone itself adds a grain variance of "
            f"{config['tone_effect']:g} (tone_effect). The adjustment removes what condition "
            f"and source add to the raw gap; what remains is tone's: its planted grain plus "
            f"whatever the skin colour does to the model (lower lesion contrast on dark skin).")
    else:
        report.text(
            "With real images, a raw gap that shrinks after adjustment was partly the conditions "
            "and sources that come with dark skin in the data set; what remains is tone within "
            "a condition and source, as far as the labels and sources capture them.")
    report.heading("Does the gap change between mixes?")
    report.text("Each repeat scores every mix on the same test images, so the change of the gap "
                "from one mix to another is taken per repeat (paired), then averaged: mean with "
                "a 95% t-interval and the paired t-test's p-value (uncorrected; three "
                "comparisons, so Bonferroni at 0.05 needs p < 0.017).")
    rows = {}
    for r in changes.to_dict("records"):
        row = rows.setdefault(f"{r['from']} → {r['to']}", {})
        row[f"{r['model']} change"] = interval(r["change"], r["low"], r["high"], fmt=".4f")
        row[f"{r['model']} p"] = "n/a" if pd.isna(r["p_value"]) else f"{r['p_value']:.3f}"
    report.table(pd.DataFrame.from_dict(rows, orient="index").rename_axis("comparison"))


def _uncertainty_report(report, table, ensemble):
    report.heading("Which uncertainty score flags the dark group?")
    report.text(
        "Per training mix, each score's AUROC for telling the dark test images from the light "
        "ones (0.5: no difference; 1: every dark image scores higher; 0: every light one) and "
        "its Spearman correlation with the per-image reconstruction MSE, mean over repeats with "
        "a 95% t-interval (clipped to the metric's range). The study's statistic is *latent "
        "std*, the mean posterior std over all latent elements; the others are "
        "PerceptualVAE.uncertainty's (the VAE guide gives their equations), the sampled ones "
        "with 4 posterior draws per image. *ensemble_disagreement* is epistemic: the variance "
        "of the reconstructions of a mix's repeat models on a shared set that no repeat trains "
        "or tests on, one value per mix with a stratified bootstrap interval over its images. "
        "In the 100% dark mix the under-represented group is light: there an AUROC near 0 "
        "flags it. Pixel-space scores (decoder_var, ensemble_disagreement) grow with an "
        "image's contrast, which is lower on dark skin; the latent-space ones do not.")
    rows = [{"training mix": mix, "score": score,
             "AUROC dark vs light": _mean_ci(part["auroc_dark"], fmt=".2f", bounds=(0, 1)),
             "Spearman with MSE": _mean_ci(part["spearman_mse"], fmt=".2f", bounds=(-1, 1))}
            for (mix, score), part in table.groupby(["mix", "score"], observed=True, sort=False)]
    rows += [{"training mix": row.mix,
              "score": f"{row.score} ({row.n_models} models, {row.n_images} images)",
              "AUROC dark vs light": interval(row.auroc_dark, row.auroc_low, row.auroc_high),
              "Spearman with MSE": interval(row.spearman_mse, row.spearman_low,
                                            row.spearman_high)}
             for row in ensemble.itertuples()]
    mixes = {mix: i for i, mix in enumerate(dict.fromkeys(r["training mix"] for r in rows))}
    scores = {s: i for i, s in enumerate(["latent_std", *UNCERTAINTY_SCORES])}
    rows.sort(key=lambda r: (mixes[r["training mix"]], scores.get(r["score"], len(scores))))
    report.table(pd.DataFrame(rows).set_index("training mix"))


def _mean_ci(values, fmt=".4f", bounds=(-np.inf, np.inf)):
    """Mean with a 95% t-interval, clipped to the metric's ``bounds``."""
    mean, low, high, _ = t_interval(values)
    if np.isnan(low):
        return f"{mean:{fmt}}"
    return interval(mean, max(low, bounds[0]), min(high, bounds[1]), fmt=fmt)
