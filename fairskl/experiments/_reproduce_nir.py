"""``fairskl reproduce nir``: the NIR study end to end, its report beside the paper's numbers."""

import os
from itertools import product

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils._param_validation import StrOptions, validate_params
from tqdm.auto import tqdm

from fairskl._io import write_joblib
from fairskl.experiments._checkpoint import Checkpoints
from fairskl.experiments._heldout import (
    FREE,
    GAPS,
    PRIVILEGED,
    TABLE_COLUMNS,
    audit_model,
    combine_seeds,
    difference,
    holm,
    resample_weights,
)
from fairskl.experiments._nir_compare import COMPARE_GRIDS, report_comparison, run_comparison
from fairskl.experiments._report import Cells, Report, save_figure
from fairskl.experiments._run import RUN_CONSTRAINTS, RunDirectory, resolve_config
from fairskl.experiments._selection import MATCHED, matched_thresholds
from fairskl.experiments._study_data import ATTRIBUTES, check_attribute, nir_data

__all__ = ["reproduce_nir"]

#: The papers' numbers, in percentage points: (data, attribute) -> gap metric, before, after.
NIR_PAPER = {
    ("ham10000", "age"): ("tpr_difference", 10.81, 0.93),
    ("ham10000", "sex"): ("tpr_difference", 12.04, 0.74),
    ("harvard-gf", "race"): ("fpr_difference", 15.68, 10.66),
    ("harvard-gf", "age"): ("fpr_difference", 12.69, 1.80),
}
NIR_PAPER_AUC_GAIN = {"ham10000": 0.51}

#: ``scale="small"``: minutes on 2 CPU cores. ``"paper"``: the paper's protocol, for a GPU — an
#: ImageNet-pretrained ResNet-18 fine-tuned with Adam and early stopping on the validation AUC
#: (the best epoch restored); what the abstract does not give (image size, lr, batch size,
#: patience, validation share, folds, seeds, augmentation) is ours, see the user guide's NIR
#: page. At paper scale a real data set is read from disk batch by batch (``streaming``, in
#: ``num_workers`` DataLoader processes), the training batches are flipped and cropped
#: (``augment``) and early stopping's validation split keeps each patient (lesion) whole.
NIR_SCALES = {
    "small": dict(n_samples=2400, n_test=10000, image_size=32, bias=2.0, artefact_strength=1.0,
                  backbone="small_cnn", testbed="scratch", finetune_lr=3e-4,
                  weights=None, max_epochs=8, lr=1e-3, batch_size=64, lr_schedule="cosine",
                  valid_size=None, patience=None, lambdas=(0.0, 0.01, 0.1, 1.0, 10.0), cv=3,
                  cv_seeds=(0,), seeds=(0, 1, 2, 3, 4), max_disparity=0.05, max_auc_drop=0.01,
                  n_bootstrap=200, streaming=False, augment=None, num_workers=0,
                  predict_batch_size=1024, nir_normalize="global", nir_detach=True,
                  compare_seeds=(0, 1, 2), compare_cv_seeds=(0, 1),
                  compare_grids=COMPARE_GRIDS["small"]),
}
NIR_SCALES["paper"] = dict(  # the other settings are small's
    NIR_SCALES["small"], n_samples=10000, n_test=20000, image_size=224, backbone="resnet18",
    finetune_lr=None, weights="IMAGENET1K_V1", max_epochs=50, lr=1e-4, lr_schedule=None,
    valid_size=0.15, patience=5, lambdas=(0.0, 0.01, 0.1, 1.0, 10.0, 100.0), cv=5,
    seeds=(0, 1, 2), n_bootstrap=500, streaming=True, augment="hflip_crop", num_workers=8,
    predict_batch_size=256, compare_cv_seeds=(0,), compare_grids=COMPARE_GRIDS["paper"])
SCENARIOS = {
    "default": "test drawn like training: malignancy more frequent for male and 60+ patients "
               "(as in HAM10000)",
    "shortcut": "same training set; balanced test set (bias=0: the label independent of sex "
                "and age, so the hair and vignette artefacts no longer predict it)",
}


@validate_params(
    {
        **RUN_CONSTRAINTS,
        "data": [StrOptions(set(ATTRIBUTES))],
        "attribute": [StrOptions({a for names in ATTRIBUTES.values() for a in names})],
        "scale": [StrOptions(set(NIR_SCALES)), dict],
        "weights": [str, os.PathLike, None],
        "compare": ["boolean"],
    },
    prefer_skip_nested_validation=False,  # the studies it runs check their settings too
)
def reproduce_nir(out_dir, *, data="synthetic", attribute="age", data_home=None, scale="small",
                  settings=None, weights=None, compare=False, device="cpu", resume=False,
                  overwrite=False, random_state=0, verbose=1):
    """The NIR study: choose λ by cross-validation, then audit λ=0 and the chosen λ held out.

    Steps: load the data (synthetic with a planted bias, HAM10000 or Harvard-GF); run
    :func:`lambda_study` on the training part (λ chosen on ``attribute``'s gap, the paper's
    gap for that data set); refit λ=0 and the chosen λ with several seeds; audit every model
    on the held-out set(s) by every attribute — the TPR and FPR gaps, the AUC and the paper's
    mechanism (how much more the privileged group co-activates the dominant neuron of
    positive and of negative predictions, and how concentrated the incidence is) — averaged
    over the seeds, with 95% intervals that add the test-sample and the seed variance. On
    synthetic data the held-out sets are generated apart from the training pool
    (``n_test`` images each): the *default* scenario draws them like the training set, the
    *shortcut* scenario with the label independent of the groups. On real data the held-out
    set is 30% of the patients (Harvard-GF: its own test split). Writes the CSVs, the
    figures, ``report.md`` and ``report.html``.

    Parameters
    ----------
    out_dir : str or path-like
        Output folder. An existing non-empty folder needs ``resume`` or ``overwrite``.
    data : {"synthetic", "ham10000", "harvard-gf"}, default="synthetic"
    attribute : {"age", "sex", "race"}, default="age"
        The attribute whose gap selects λ (race only for Harvard-GF). Every attribute of the
        data set is audited.
    data_home : str or path-like, default=None
        Root of the real data sets (see :func:`fairskl.datasets.get_data_home`).
    scale : {"small", "paper"} or dict, default="small"
        ``"small"``: a small CNN on 32-pixel images, a few minutes on a CPU. ``"paper"``: the
        paper's protocol (ImageNet-pretrained ResNet-18, Adam, early stopping on the validation
        AUC restoring the best epoch); meant for a GPU. A dict overrides settings of
        ``"small"`` (see ``NIR_SCALES`` in the source); ``{**NIR_SCALES["paper"], ...}`` is the
        paper's protocol with some settings changed. At paper scale a real data set is read
        from disk batch by batch (``streaming``, ``num_workers``), the training batches are
        flipped and cropped (``augment``) and early stopping validates on whole patients.
    settings : dict, default=None
        Settings that override the scale's, e.g. ``{"max_epochs": 20, "streaming": False}``
        (``--set KEY=VALUE`` on the command line); an unknown name is an error.
    weights : str or path-like, default=None
        Overrides the scale's backbone weights: a torchvision weights name, or the path of a
        local ``state_dict`` of the backbone (for machines without internet).
    compare : bool, default=False
        Also compare NIR with ERM, CVaR-DRO, JTT, spectral decoupling, LfF, DFR (label-free),
        group-balanced reweighting, GroupDRO and group-balanced DFR (label-using) by
        :func:`compare_methods` on the same training part and held-out sets: each method's
        strength chosen by cross-validation on the training part (grids: ``compare_grids``
        of the scale), refitted with ``compare_seeds``. Opt-in at both scales: at small scale
        it takes longer than the main job's budget on 2 CPU cores (see the studies guide).
        Adds ``compare_*.csv``, ``compare.png`` and a report section.
    device : str, default="cpu"
    resume : bool, default=False
        Reuse the λ study and the refitted models' audits saved in ``out_dir``.
    overwrite : bool, default=False
        Delete ``out_dir`` first.
    random_state : int, default=0
    verbose : int, default=1

    Returns
    -------
    report : pathlib.Path
        The ``report.md`` written.

    See Also
    --------
    lambda_study : The cross-validated λ sweep it runs.

    Examples
    --------
    >>> import tempfile
    >>> from fairskl.experiments import reproduce_nir
    >>> tiny = dict(n_samples=300, n_test=300, image_size=16, max_epochs=1, lambdas=[0.0, 1.0],
    ...             cv=2, seeds=[0, 1], n_bootstrap=20)
    >>> path = reproduce_nir(tempfile.mkdtemp(), scale=tiny, verbose=0)
    >>> path.name, (path.parent / "report.html").exists()
    ('report.md', True)
    """
    from skorch.helper import SliceDict

    extra = {"weights": weights} if weights is not None else {}
    config = resolve_config(NIR_SCALES, scale, settings, data=data, attribute=attribute,
                            device=device, random_state=random_state, compare=bool(compare),
                            **extra)
    report = Report(f"NIR on {data} ({config['scale']} scale)")  # its clock starts here
    gap_metric = NIR_PAPER.get((data, attribute), ("tpr_difference",))[0]
    _check_study(config, data, attribute)
    run = RunDirectory(out_dir, config, resume=resume, overwrite=overwrite, verbose=verbose)
    run.check(device, backbone=config["backbone"], weights=config["weights"])
    train, tests, groups, notes = nir_data(data, attribute, config, data_home, random_state)
    if config["valid_size"]:  # early stopping's split keeps each patient (lesion) whole
        train = (SliceDict(X=train[0], split_groups=groups), *train[1:])
    X, y, A = train
    run.prepare()
    for note in notes:
        run.note(note)
    net = _classifier(config, device)
    if config["testbed"] == "transfer":
        net = _transfer(net, config, data_home, random_state, run)
    results, summary, best, oof, choice_notes = _lambda_step(
        net, X, y, A[attribute], groups, gap_metric, run)
    compared = _compared_lambda(summary, best, gap_metric)
    if compared != best:
        choice_notes = choice_notes + [
            f"Cross-validation chose λ=0 (no λ > 0 had a matched gap within the limit and an "
            f"AUC above the floor), so the held-out audit compares λ=0 with λ={compared:g}, "
            f"the λ > 0 of the smallest cross-validated matched gap: what NIR does at its most "
            f"fair setting."]
    lambdas = sorted({0.0, compared})
    # operating points fitted on the λ study's out-of-fold predictions (training part only)
    thresholds = {lam: matched_thresholds(oof[lam], oof[0.0], 0.5) if lam else
                  {"0.5": 0.5, MATCHED: 0.5} for lam in lambdas}
    seeds = [random_state + s for s in config["seeds"]]
    audits, first = _refit_and_audit(net, X, y, tests, lambdas, seeds, thresholds, run)
    if config["compare"]:
        comparison = run_comparison(net, train, tests, groups, attribute, gap_metric, run)
    run.say("[3/3] report")
    heldout = _heldout_table(audits, lambdas, seeds, tests)
    run.write_csv(heldout=heldout)
    _nir_report(report, data, attribute, heldout, summary, best, compared,
                run.notes + choice_notes, config, gap_metric, tests, thresholds)
    if config["compare"]:
        report_comparison(report, comparison, config, attribute, gap_metric, run.path)
    _nir_figures(report, run.path, summary, heldout, best, compared, first, tests, attribute,
                 gap_metric, seeds[0])
    return run.finish(report)


def _check_study(config, data, attribute):
    """The checks of the study's own settings, before any work."""
    check_attribute(data, attribute)  # a wrong pair fails before anything else
    if config["testbed"] not in ("scratch", "transfer"):
        raise ValueError(f"testbed must be 'scratch' or 'transfer', got {config['testbed']!r}.")
    if config["testbed"] == "transfer" and (data != "synthetic"
                                            or config["backbone"] != "small_cnn"):
        raise ValueError(f"testbed='transfer' pretrains small_cnn on a generated source task "
                         f"for the synthetic data; got data={data!r}, backbone="
                         f"{config['backbone']!r}. Real data fine-tune a pretrained backbone "
                         f"(scale='paper').")


def _refit_and_audit(net, X, y, tests, lambdas, seeds, thresholds, run):
    """Refit λ=0 and the compared λ once per seed and audit each on every held-out set (or
    reload the audits saved in the run); the first seed's networks are kept for the maps."""
    run.say(f"[2/3] refitting lambda in {lambdas} with {len(seeds)} seeds on {len(y)} images; "
            f"auditing on {', '.join(f'{k} ({len(v[1])} images)' for k, v in tests.items())}")
    weights_by_test = {name: resample_weights(len(ty), run.config["n_bootstrap"],
                                              run.config["random_state"])
                       for name, (_, ty, _) in tests.items()}
    audits, first = {}, {}
    for lam, seed in tqdm(list(product(lambdas, seeds)), desc="refit and audit (lambda x seed)",
                          unit="fit", disable=not run.verbose):
        path = run.path / "models" / f"lambda{lam:g}_seed{seed}.pkl"
        saved = joblib.load(path) if run.resume and path.exists() else None
        if saved is None or saved.get("thresholds") != thresholds[lam]:
            model = clone(net).set_params(lambda_nir=lam, random_state=seed).fit(X, y)
            audit = {name: audit_model(ty, *_proba_and_features(model, tX), tA,
                                       weights_by_test[name], thresholds[lam])
                     for name, (tX, ty, tA) in tests.items()}
            # the first seed's network is kept for the incidence maps
            saved = {"audit": audit, "thresholds": thresholds[lam],
                     "model": model if seed == seeds[0] else None}
            write_joblib(path, saved)  # creates models/
        audits[lam, seed] = saved["audit"]
        if seed == seeds[0]:
            first[lam] = saved["model"]
    return audits, first


def _nir_figures(report, out, summary, heldout, best, compared, first, tests, attribute,
                 gap_metric, seed):
    """Save the λ trade-off, the held-out gaps and the incidence maps before and after, and
    add them to the report."""
    from fairskl.experiments import plot_lambda_tradeoff
    from fairskl.inspection import NeuronIncidenceDisplay

    report.figure(save_figure(_plot_gaps(heldout, compared), out / "heldout_gaps.png"),
                  "Held-out gaps per scenario and attribute at the matched operating point, at "
                  "0.5 and without a threshold (AUC gap), seed mean with 95% intervals")
    ax = plot_lambda_tradeoff(summary, disparity=f"{gap_metric}_matched", best_lambda=best)
    ax.set_title(f"Cross-validated {attribute} gap (matched) vs AUC", fontsize=10)
    report.figure(save_figure(ax.figure, out / "lambda_tradeoff.png"),
                  f"Cross-validated {gap_metric.split('_')[0].upper()} gap at the matched "
                  f"operating point against AUC per λ")
    scenario, (tX, ty, tA) = next(iter(tests.items()))
    for lam, name in [(0.0, "before"), (compared, "after")]:
        display = NeuronIncidenceDisplay.from_estimator(
            first[lam], tX, sensitive_features=tA[attribute], y=ty)
        display.figure_.suptitle(f"Neuron incidence by {attribute}, λ={lam:g} "
                                 f"(seed {seed}, {scenario} test set)")
        save_figure(display.figure_, out / f"incidence_{name}.png")
        report.figure(out / f"incidence_{name}.png", f"Relative neuron incidence, λ={lam:g}")


def _classifier(config, device):
    """The study's NIRClassifier: cosine lr decay (small) or early stopping on a split that
    keeps patients whole (paper; X carries them as ``split_groups``)."""
    from skorch.callbacks import EarlyStopping, EpochScoring, LRScheduler

    from fairskl import NIRClassifier
    from fairskl.model_selection import GroupedValidSplit

    callbacks, train_split = [], None
    if config["lr_schedule"] == "cosine":
        callbacks.append(("lr_schedule", LRScheduler("CosineAnnealingLR",
                                                     T_max=config["max_epochs"])))
    if config["valid_size"]:
        train_split = GroupedValidSplit(config["valid_size"], stratified=True, random_state=0)
        callbacks += [
            ("valid_auc", EpochScoring("roc_auc", lower_is_better=False, name="valid_auc")),
            ("early_stopping", EarlyStopping(monitor="valid_auc", lower_is_better=False,
                                             patience=config["patience"], load_best=True)),
        ]
    streaming = {}
    if config["streaming"]:  # image paths, decoded in the DataLoader's worker processes
        streaming = dict(image_size=config["image_size"],
                         iterator_train__num_workers=config["num_workers"],
                         iterator_valid__num_workers=config["num_workers"])
    return NIRClassifier(
        config["backbone"], weights=config["weights"], max_epochs=config["max_epochs"],
        lr=config["lr"], batch_size=config["batch_size"], train_split=train_split,
        callbacks=callbacks, iterator_valid__batch_size=config["predict_batch_size"],
        nir_normalize=config["nir_normalize"], nir_detach=config["nir_detach"],
        augment=config["augment"], device=device, verbose=0, **streaming,
    )


def _transfer(net, config, data_home, random_state, run):
    """The transfer testbed's network: ``small_cnn`` from the body pretrained on the source
    task (:func:`pretrain_small_cnn`, cached), fine-tuned at ``finetune_lr``."""
    from fairskl.experiments import pretrain_small_cnn

    run.say("pretraining small_cnn on the source task (once; cached)")
    path = pretrain_small_cnn(config["image_size"], data_home=data_home,
                              random_state=random_state)
    run.notes.append(
        f"Transfer testbed: small_cnn's body pretrained on a generated source task "
        f"unrelated to the diagnosis (24 acquisition classes: skin type × hair × "
        f"vignette, on images where none of them follows sex, age or the label), "
        f"fine-tuned at lr {config['finetune_lr']:g}; cached at {path}.")
    return net.set_params(weights=str(path), lr=config["finetune_lr"])


def _proba_and_features(model, X):
    """P(positive) and the penultimate features from one forward pass over X."""
    import torch

    logits, features = model.forward(model._check_X(X)[0], training=False)
    return torch.softmax(logits, dim=1)[:, 1].numpy(), features.numpy()


def _lambda_step(net, X, y, A, groups, gap_metric, run):
    """Run (or, resuming, reload) the λ study on the training part: results, summary, best λ,
    the out-of-fold probabilities per λ (pooled over the CV seeds) and the selection's notes."""
    from fairskl import experiments  # looked up at call time (tests replace lambda_study)

    config, out = run.config, run.path
    checkpoints = Checkpoints(out / "lambda", {"data": joblib.hash((X, y, A.to_numpy()))},
                              argument="--out")
    saved = checkpoints.load("study")
    if saved is not None:
        run.say(f"[1/3] lambda study: reusing {checkpoints.folder}")
        return saved
    n_fits = config["cv"] * len(config["lambdas"]) * len(config["cv_seeds"])
    run.say(f"[1/3] lambda study: {n_fits} fits on {len(y)} images ({config['cv']} folds x "
            f"{len(config['lambdas'])} lambdas x {len(config['cv_seeds'])} seeds)")
    cv_seeds = [config["random_state"] + s for s in config["cv_seeds"]]
    with run.notes_from_warnings() as notes:
        study = experiments.lambda_study(
            net, X, y, sensitive_features=A, groups=groups, lambdas=config["lambdas"],
            cv=config["cv"], seeds=cv_seeds, disparity=gap_metric,
            max_disparity=config["max_disparity"], max_auc_drop=config["max_auc_drop"],
            refit=False, verbose=run.verbose,
        )
    free = study.best_lambda_without_labels
    notes.append(f"Without the group labels (the best mean cross-validated AUC alone, as a user "
                 f"without demographic labels would choose), the λ study would choose "
                 f"λ={free:g}" + (" too." if free == study.best_lambda else
                                  f", not λ={study.best_lambda:g}."))
    oof = {float(lam): np.concatenate([study.oof[float(lam), seed] for seed in cv_seeds])
           for lam in config["lambdas"]}
    run.write_csv(lambda_study=study.results,
                  lambda_oof=pd.DataFrame({f"{lam!r}": p for lam, p in oof.items()}))
    return checkpoints.save("study", (study.results, study.summary, study.best_lambda, oof,
                                      notes))


def _heldout_table(audits, lambdas, seeds, tests):
    """Tidy table: scenario, method (λ=0, λ=best, change), attribute, group, metric, operating
    point and interval; change rows carry Holm-adjusted p-values over all but the primary."""
    frames = []
    for scenario in tests:
        per = {lam: [audits[lam, s][scenario] for s in seeds] for lam in lambdas}
        for lam in lambdas:
            frames.append(combine_seeds(per[lam]).assign(scenario=scenario, method=f"{lam:g}"))
        if len(lambdas) == 2:
            frames.append(combine_seeds(difference(per[lambdas[1]], per[0.0]), change=True)
                          .assign(scenario=scenario, method="change"))
    return pd.concat(frames, ignore_index=True)[["scenario", "method", *TABLE_COLUMNS]]


def _adjust(table, primary):
    """``p_holm`` on the change rows: Holm over every change but the primary endpoint's, which
    is tested alone at 5%; the family is the rows the report gives a verdict on."""
    table = table.assign(p_holm=np.nan)
    change = table.method == "change"
    verdicts = change & (table.group == "all") & table.metric.isin(
        [*GAPS, "auc", "auc_difference", "coactivation_positive", "coactivation_negative",
         "concentration_positive", "concentration_negative"]) & (
        (table.operating_point != "0.5") | table.metric.isin(GAPS))
    is_primary = ((table.scenario == primary[0]) & (table.attribute == primary[1])
                  & (table.metric == primary[2]) & (table.operating_point == primary[3]))
    family = verdicts & ~is_primary
    table.loc[family, "p_holm"] = holm(table.loc[family, "p_value"].to_numpy())
    table.loc[change & is_primary, "p_holm"] = table.loc[change & is_primary, "p_value"]
    return table


#: the columns that identify a row of the held-out table
CELL_KEYS = ["scenario", "attribute", "metric", "method", "operating_point", "group"]
#: the gaps read by attribute: TPR and FPR at the matched point and at 0.5, then the AUC gap
READINGS = [(g, op) for op in (MATCHED, "0.5") for g in GAPS] + [("auc_difference", FREE)]


def _verdict(cells, scenario, attribute, metric, op=FREE):
    """Direction against parity for gaps and excesses, against λ=0 for the AUC; a change
    whose (Holm-adjusted) p is at least 5% is no detectable change."""
    row = cells.row(scenario, attribute, metric, "change", op, "all")
    if row is None or np.isnan(row.p_holm):
        return "—"
    if row.p_holm >= 0.05:
        return "no detectable change"
    if metric == "auc":
        return "higher" if row.value > 0 else "lower"
    before = cells.row(scenario, attribute, metric, "0", op, "all").value
    return "closer to 0" if abs(before + row.value) < abs(before) else "further from 0"


def _compared_lambda(summary, best, gap_metric):
    """The λ audited against λ=0: the chosen one, or if that is 0, the λ > 0 of the smallest
    cross-validated gap at the matched operating point (so that the audit shows what NIR does)."""
    if best > 0:
        return best
    gaps = summary[(summary.metric == f"{gap_metric}_matched") & (summary.lambda_nir > 0)]
    return float(gaps.loc[gaps["mean"].idxmin(), "lambda_nir"]) if len(gaps) else best


def _rates(cells, scenario, attribute, method, op, group="all"):
    """One model's positive rate, TPR and FPR at ``op`` and its AUC, for one group."""
    return {**{name: cells(scenario, attribute, metric, method, op, group)
               for name, metric in [("positive rate", "positive_rate"), ("TPR", "tpr"),
                                    ("FPR", "fpr")]},
            "AUC": cells(scenario, attribute, "auc", method, FREE, group)}


def _changes(cells, methods, scenario, attribute, metric, op=FREE, scale=100):
    """One quantity at λ=0, at the compared λ and their change, then the change's verdict."""
    return {**{name: cells(scenario, attribute, metric, method, op, "all", scale=scale)
               for name, method in methods},
            "verdict": _verdict(cells, scenario, attribute, metric, op)}


def _nir_report(report, data, attribute, heldout, summary, best, compare, notes, config,
                gap_metric, tests, thresholds):
    lam = f"{compare:g}"
    methods = [("λ=0", "0"), (f"λ={lam}", lam), ("change", "change")]
    gap_label = gap_metric.split("_")[0].upper()
    # the primary endpoint: (scenario, attribute, metric, operating point)
    scenario = "shortcut" if "shortcut" in tests else next(iter(tests))
    primary = (scenario, attribute, gap_metric, MATCHED)
    heldout = _adjust(heldout, primary)
    cells = Cells(heldout, CELL_KEYS)
    report.text(
        f"λ chosen by {config['cv']}-fold cross-validation on the training part only: "
        f"**{best:g}** — the best mean AUC among the λ whose mean {gap_label} gap by "
        f"{attribute}, read at the matched operating point, is at most "
        f"{100 * config['max_disparity']:g} points and whose mean AUC is at most "
        f"{100 * config['max_auc_drop']:g} points below λ=0's; when none qualifies, λ=0. Then "
        f"λ=0 and λ={lam} were each refitted with {len(config['seeds'])} seeds and audited held "
        f"out. Numbers are percentage points: the mean over the seeds with a 95% interval that "
        f"adds the test-sample variance ({config['n_bootstrap']} paired bootstrap resamples) "
        f"and the seed variance (t quantile, Welch–Satterthwaite degrees of freedom). *change* "
        f"is λ={lam} minus λ=0, paired by seed and resample.")
    report.text(
        "**Operating points.** A gap depends on the threshold: a model that flags fewer cases "
        "has smaller FPR gaps without being fairer. Every gap is therefore read at two "
        "thresholds fitted on the λ study's out-of-fold predictions of the training part "
        "(never on the test rows): *matched* — each λ at the threshold where it flags as many "
        "training images as λ=0 does at 0.5 (λ=0: 0.5; λ=" + lam + f": "
        f"{thresholds[compare][MATCHED]:.3f}) — the primary comparison; and the fixed "
        f"threshold *0.5* (secondary). The per-group AUC gap needs no threshold.")
    report.text(
        f"**Primary endpoint:** the *{primary[0]}* scenario's {gap_label} gap by {primary[1]} "
        f"at the matched operating point, tested alone at 5%. Every other verdict is adjusted "
        f"for multiplicity with Holm's method over the rows given a verdict below. Verdicts "
        f"say the direction against parity (*closer to 0* / *further from 0*).")
    for note in notes:
        report.text(note)
    if data == "synthetic":
        report.text("Scenarios: " + "; ".join(f"*{k}*: {SCENARIOS[k]}" for k in tests) + ".")
    row = cells.row(*primary[:3], "change", primary[3], "all")
    if row is not None:
        before, after, change, verdict = _changes(cells, methods, *primary).values()
        report.text(f"**Primary endpoint result:** {before} at λ=0 → {after} at λ={lam}; change "
                    f"{change} (p = {row.p_value:.3g}): **{verdict}**.")
    attributes = [a for a in heldout.attribute.unique() if a != "all"]
    _report_operating_points(report, cells, tests, methods[:2], thresholds, primary[0])
    _report_gaps(report, cells, tests, attributes, methods, primary, data)
    _report_groups(report, cells, heldout, tests, attributes, methods[:2])
    _report_mechanism(report, cells, heldout, methods)
    _report_lambda_study(report, summary, gap_metric)


def _report_operating_points(report, cells, tests, models, thresholds, primary_scenario):
    """Each model's threshold, rates and AUC at both operating points."""
    report.heading("Where each model operates (overall, held out)")
    rows = [{"scenario": scenario, "model": label, "operating point": op,
             "threshold": f"{thresholds[float(method)][op]:.3f}",
             **_rates(cells, scenario, "all", method, op)}
            for scenario in tests for label, method in models for op in (MATCHED, "0.5")]
    report.table(pd.DataFrame(rows).set_index("scenario"))
    before, after = (cells(primary_scenario, "all", "positive_rate", method, "0.5", "all")
                     for _, method in models)
    report.text(f"At 0.5, λ=0 flags {before} % of the {primary_scenario} test set and "
                f"{models[1][0]} {after} %: a gap read at 0.5 mixes fairness with how many "
                f"cases a model flags.")


def _report_gaps(report, cells, tests, attributes, methods, primary, data):
    """Every gap with its verdict, beside the paper's numbers, and the overall AUC."""
    report.heading("Held-out gaps, ours next to the paper's")
    rows = []
    for scenario in tests:
        for attr in attributes:
            paper = NIR_PAPER.get((data, attr))
            for metric, op in READINGS:
                label = metric.split("_")[0].upper()
                row = {"scenario": scenario, "gap": f"{label} gap by {attr}", "operating point": op,
                       **_changes(cells, methods, scenario, attr, metric, op)}
                if (scenario, attr, metric, op) == primary:
                    row["verdict"] += " (primary)"
                row["paper (before → after)"] = (f"{paper[1]:.2f} → {paper[2]:.2f}"
                                                 if paper and paper[0] == metric
                                                 and op == MATCHED else "—")
                rows.append(row)
        rows.append({"scenario": scenario, "gap": "AUC (overall)", "operating point": FREE,
                     **_changes(cells, methods, scenario, "all", "auc"),
                     "paper (before → after)": (f"+{NIR_PAPER_AUC_GAIN[data]:.2f} pt"
                                                if data in NIR_PAPER_AUC_GAIN else "—")})
    report.table(pd.DataFrame(rows).set_index("scenario"))
    report.text("Verdicts at the 0.5 threshold are given for completeness; where they differ "
                "from the matched ones, the change at 0.5 comes from flagging a different "
                "number of cases. The paper reports its gaps at its own (unstated) threshold.")
    if data == "synthetic":
        report.text("The paper's numbers are for HAM10000 (age, sex) and Harvard-GF (race, "
                    "age); on the synthetic set they are a reference, not a target.")


def _report_groups(report, cells, heldout, tests, attributes, models):
    report.heading("Per-group rates at the matched operating point")
    groups = heldout[heldout.group != "all"]
    rows = [{"scenario": scenario, "group": f"{attr} {group}", "model": label,
             **_rates(cells, scenario, attr, method, MATCHED, group)}
            for scenario in tests for attr in attributes
            for group in groups[groups.attribute == attr].group.unique()
            for label, method in models]
    report.table(pd.DataFrame(rows).set_index("scenario"))


def _report_mechanism(report, cells, heldout, methods):
    report.heading("The paper's mechanism: dominant neurons and who co-activates them")
    report.text(
        "For the dominant neuron of positive predictions (the largest probability-weighted mean "
        "activation) and that of negative predictions: by how many percent the privileged "
        f"group ({', '.join(f'{a} {g}' for a, g in PRIVILEGED.items())}) activates it more "
        "than the other group when the class is predicted, within each true label (averaged "
        "over the two labels, so that a difference in prevalence between the groups cannot "
        "produce it). The paper finds privileged groups co-activating the positive neuron "
        "(over-diagnosis) and the others the negative one: parity is 0. *Concentration* is the "
        "squared coefficient of variation of the incidence across the neurons (0 = even): what "
        "NIR is meant to lower.")
    mechanism = heldout[heldout.metric.str.startswith(("coactivation", "concentration"))]
    keys = mechanism[["scenario", "attribute", "metric"]].drop_duplicates()
    rows = []
    for scenario, attr, metric in keys.itertuples(index=False):
        kind, name = metric.split("_")
        if kind == "coactivation":
            what, scale = f"{name}-prediction neuron, {attr} {PRIVILEGED[attr]} excess (%)", 1
        else:
            what, scale = f"concentration of {name} incidence (×100)", 100
        rows.append({"scenario": scenario, "quantity": what,
                     **_changes(cells, methods, scenario, attr, metric, scale=scale)})
    report.table(pd.DataFrame(rows).set_index("scenario"))


def _report_lambda_study(report, summary, gap_metric):
    report.heading("Cross-validated λ study (fractions; mean ± sd over folds × seeds)")
    shown = ["auc", "positive_rate", gap_metric, f"{gap_metric}_matched", "auc_difference"]
    table = summary[summary.metric.isin(shown)]
    table = table.assign(value=table["mean"].map("{:.3f}".format) + " ± "
                         + table["std"].map("{:.3f}".format))
    report.table(table.pivot(index="lambda_nir", columns="metric", values="value")[
        [m for m in shown if m in set(table.metric)]])


def _plot_gaps(heldout, lam):
    """Held-out gaps (seed mean, 95% interval) per scenario × attribute, λ=0 against ``lam``:
    the TPR and FPR gaps at the matched operating point and at 0.5, and the AUC gap."""
    import matplotlib.pyplot as plt

    names = [f"{g.split('_')[0].upper()} gap\n{op if op != FREE else 'no threshold'}"
             for g, op in READINGS]
    gaps = heldout[(heldout.group == "all") & (heldout.attribute != "all")]
    panels = gaps.groupby(["scenario", "attribute"], sort=False)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), sharey=True,
                             layout="constrained", squeeze=False)
    for ax, ((scenario, attribute), sub) in zip(axes[0], panels, strict=True):
        sub = sub.set_index(["metric", "operating_point", "method"])
        for k, (method, color) in enumerate([("0", "tab:gray"), (f"{lam:g}", "tab:blue")]):
            part = sub.loc[[(g, op, method) for g, op in READINGS]]
            x = np.arange(len(READINGS)) + (k - 0.5) * 0.3
            ax.errorbar(x, 100 * part.value, yerr=100 * np.abs(
                part[["ci_low", "ci_high"]].to_numpy().T - part.value.to_numpy()),
                fmt="o", color=color, capsize=3, label=f"λ={method}")
        ax.set_xticks(range(len(READINGS)), names, fontsize=7)
        ax.set_title(f"{scenario}, by {attribute}", fontsize=9)
        ax.axhline(0, color="black", lw=0.5)
    axes[0, 0].set_ylabel("held-out gap (points)")
    axes[0, 0].legend(fontsize=8)
    return fig
