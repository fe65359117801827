"""``fairskl reproduce nir --compare``: NIR next to the mitigations a reviewer would ask for.

Every method is the same network with the study's training settings and its own loss; each
method's strength is chosen by :func:`compare_methods` on folds of the training part by the
same rule as NIR's λ, refitted with seeds, and audited on the study's held-out sets.
"""

import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid

from fairskl.datasets._files import is_path_sequence
from fairskl.experiments._compare import (
    WITH_LABELS,
    WITHOUT_LABELS,
    compare_methods,
    plot_method_comparison,
    same_rate,
)
from fairskl.experiments._heldout import FREE
from fairskl.experiments._report import Cells, save_figure
from fairskl.experiments._selection import MATCHED

__all__ = ["COMPARE_GRIDS", "run_comparison"]

REFERENCE = "ERM"
LABEL_USING = "group balanced"
#: the methods that use the group labels in training (the others are label-free)
LABEL_USING_METHODS = (LABEL_USING, "GroupDRO", "DFR (groups)", "ThresholdOptimizer")

#: scale -> method -> grid searched by cross-validation on the training part. The off setting
#: (λ=0, alpha=1, upweight=1) is left out: ERM is its own row, the reference of every change.
COMPARE_GRIDS = {
    "small": {
        "NIR": {"lambda_nir": [1.0, 10.0]},
        "CVaR-DRO": {"alpha": [0.1, 0.3]},
        "JTT": {"identification_epochs": [2], "upweight": [5.0, 20.0]},
        "spectral decoupling": {"lambda_sd": [0.1, 1.0]},
        LABEL_USING: {"balance": ["group", "group_label"]},
        "LfF": {"gce_q": [0.7]},
        "DFR": {"C": [0.1, 1.0]},
        "GroupDRO": {"step_size": [0.01, 0.1]},
        "DFR (groups)": {"C": [0.1, 1.0]},
    },
    "paper": {
        "NIR": {"lambda_nir": [0.1, 1.0, 10.0, 100.0]},
        "CVaR-DRO": {"alpha": [0.05, 0.1, 0.3, 0.5]},
        "JTT": {"identification_epochs": [1, 2, 5], "upweight": [5.0, 20.0, 50.0]},
        "spectral decoupling": {"lambda_sd": [0.01, 0.1, 1.0]},
        LABEL_USING: {"balance": ["group", "group_label"]},
        "LfF": {"gce_q": [0.5, 0.7]},
        "DFR": {"C": [0.1, 0.3, 1.0, 3.0]},
        "GroupDRO": {"step_size": [0.001, 0.01, 0.1]},
        "DFR (groups)": {"C": [0.1, 0.3, 1.0, 3.0]},
    },
}

DESCRIPTIONS = {
    REFERENCE: "plain cross-entropy (NIRClassifier, λ=0): the reference",
    "NIR": "NIRClassifier: the NIR penalty on penultimate incidence",
    "CVaR-DRO": "CVaRDROClassifier: mean of each batch's largest losses (label-free)",
    "JTT": "JTTClassifier: retrain with the first model's errors up-weighted (label-free)",
    "spectral decoupling": "SpectralDecouplingClassifier: penalty on the squared logits "
                           "(label-free; a generic output penalty)",
    LABEL_USING: "GroupBalancedClassifier: each group (or group × label cell) of the "
                 "selection attribute weighs the same (uses the group labels in training)",
    "LfF": "LfFClassifier: a biased network (generalized cross-entropy) up-weights what it "
           "gets wrong for a second one (label-free group inference)",
    "DFR": "DFRClassifier: the last layer refitted on held-out training rows, classes "
           "balanced (label-free)",
    "GroupDRO": "GroupDROClassifier: online weights on the worst groups' losses (uses the "
                "group labels in training)",
    "DFR (groups)": "DFRClassifier(balance='group'): the last layer refitted on held-out "
                    "rows with the (group, label) cells balanced (uses the group labels)",
    "ThresholdOptimizer": "ThresholdOptimizedClassifier: ERM post-processed by fairlearn's "
                          "ThresholdOptimizer on held-out training rows, equalising the gap "
                          "metric's rate (uses the group labels in training and prediction; "
                          "its score is a decision probability, so its AUC is coarse)",
}


def _estimators(net, gap_metric):
    """The compared methods, each the study's network and training settings with its loss;
    the post-processor equalises the rate of ``gap_metric``."""
    import fairskl

    shared = {k: v for k, v in net.get_params(deep=False).items()
              if k != "lambda_nir" and not k.startswith("nir_")}
    return {
        REFERENCE: clone(net).set_params(lambda_nir=0.0),
        "NIR": clone(net),
        "CVaR-DRO": fairskl.CVaRDROClassifier(**shared),
        "JTT": fairskl.JTTClassifier(**shared),
        "spectral decoupling": fairskl.SpectralDecouplingClassifier(**shared),
        LABEL_USING: fairskl.GroupBalancedClassifier(**shared),
        "LfF": fairskl.LfFClassifier(**shared),
        "DFR": fairskl.DFRClassifier(**shared, balance="class"),
        "GroupDRO": fairskl.GroupDROClassifier(**shared),
        "DFR (groups)": fairskl.DFRClassifier(**shared, balance="group"),
        "ThresholdOptimizer": fairskl.ThresholdOptimizedClassifier(
            clone(net).set_params(lambda_nir=0.0),
            constraints=("true_positive_rate_parity" if gap_metric == "tpr_difference"
                         else "false_positive_rate_parity")),
    }


def run_comparison(net, train, tests, groups, attribute, gap_metric, run):
    """Run :func:`compare_methods` on the study's data; write its CSVs and figure.

    The groups of ``attribute`` travel inside X (a skorch ``SliceDict``) for the one method
    that uses them; the label-free methods ignore them. Returns the comparison's Bunch.
    """
    from skorch.helper import SliceDict

    X, y, A = train
    config, out = run.config, run.path

    def with_groups(images, frame):  # beside the patients of a grouped split, if X has them
        images = dict(images) if isinstance(images, SliceDict) else {"X": images}
        return SliceDict(**images, groups=frame[attribute].astype(str).to_numpy())

    grids = config["compare_grids"]
    estimators = _estimators(net, gap_metric)
    if is_path_sequence(X["X"] if isinstance(X, SliceDict) else X):
        # fairlearn's input checks take arrays: images read from disk cannot be post-processed
        run.say("note: ThresholdOptimizer is left out: fairlearn takes arrays, not image paths")
        del estimators["ThresholdOptimizer"]
    unknown = sorted(set(grids) - set(estimators))
    if unknown:
        raise ValueError(f"compare_grids has grids for {unknown}; the methods are "
                         f"{sorted(estimators)}.")
    seeds = [config["random_state"] + s for s in config["compare_seeds"]]
    n_fits = config["cv"] * len(config["compare_cv_seeds"]) * sum(
        len(ParameterGrid(grids.get(name, {}))) for name in estimators)
    run.say(f"comparison: {len(estimators)} methods; {n_fits} selection fits ({config['cv']} "
            f"folds x {len(config['compare_cv_seeds'])} CV seeds), then "
            f"{len(estimators) * len(seeds)} refits ({len(seeds)} seeds), audited on "
            f"{', '.join(tests)}")
    with run.notes_from_warnings() as notes:  # the selection's notes go to the report
        result = compare_methods(
            estimators, with_groups(X, A), y, sensitive_features=A, param_grids=grids,
            cv=config["cv"], heldout={k: (with_groups(tX, tA), ty, tA)
                                      for k, (tX, ty, tA) in tests.items()},
            groups=groups, seeds=seeds, select_on=attribute, disparity=gap_metric,
            cv_seeds=[config["random_state"] + s for s in config["compare_cv_seeds"]],
            max_disparity=config["max_disparity"], max_auc_drop=config["max_auc_drop"],
            n_bootstrap=config["n_bootstrap"],
            reference=REFERENCE, checkpoint_dir=out / "compare",
            random_state=config["random_state"], verbose=run.verbose)
    result.notes = notes
    run.write_csv(compare_summary=result.summary,
                  compare_selection=result.selection.drop(columns="params_dict"),
                  compare_cv=result.cv_results)
    save_figure(_plot(result.summary, gap_metric), out / "compare.png")
    return result


def _plot(summary, gap_metric):
    """Held-out gap vs AUC per method: a row of panels per scenario, a column per attribute."""
    import matplotlib.pyplot as plt

    scenarios = list(pd.unique(summary.scenario))
    attributes = [a for a in pd.unique(summary.attribute) if a != "all"]
    fig, axes = plt.subplots(len(scenarios), len(attributes), figsize=(
        5.2 * len(attributes), 4.4 * len(scenarios)), layout="constrained", squeeze=False)
    for row, scenario in zip(axes, scenarios, strict=True):
        for ax, attribute in zip(row, attributes, strict=True):
            plot_method_comparison(summary, scenario=scenario, attribute=attribute,
                                   disparity=gap_metric, ax=ax)
            ax.set_title(f"{scenario} test set, by {attribute}", fontsize=10)
            ax.set_xlabel(f"held-out {gap_metric.split('_')[0].upper()} gap by {attribute}, "
                          f"matched (fraction), 95% CI")
    handles, labels = axes[0, 0].get_legend_handles_labels()  # one legend for all panels
    fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    return fig


def report_comparison(report, result, config, attribute, gap_metric, out):
    """The report's section: the protocol, the chosen settings, values and changes vs ERM."""
    label = gap_metric.split("_")[0].upper()
    report.heading("Compared with other mitigations")
    report.text(
        f"Every method is the study's network with its training settings and its own loss. "
        f"Each method's strength was chosen by {config['cv']}-fold cross-validation on the "
        f"training part with the rule that chose λ (the best mean AUC among settings whose mean "
        f"{label} gap by {attribute}, at the matched operating point, is at most "
        f"{100 * config['max_disparity']:g} points, and whose mean AUC is at most "
        f"{100 * config['max_auc_drop']:g} points below {REFERENCE}'s; else the best AUC); "
        f"then it was refitted with {len(config['compare_seeds'])} seeds and audited on the "
        f"held-out sets with the same bootstrap resamples for every method. Gaps are read at "
        f"the *matched* operating point (each method at the threshold where it flags as many "
        f"out-of-fold training images as {REFERENCE} does at 0.5), at the fixed threshold 0.5, "
        f"and without a threshold (per-group AUC gap). Numbers are percentage points, seed "
        f"means with 95% intervals (t quantile). *Label-free* methods never see the groups; "
        f"{', '.join(f'*{m}*' for m in LABEL_USING_METHODS)} use the {attribute} groups in "
        f"training, references for what labels buy. The selection of every method, NIR's "
        f"included, is this comparison's own (fewer seeds than the study above), so NIR's "
        f"row may differ from the study's.")
    report.table(pd.DataFrame(
        [{"method": m, "what": DESCRIPTIONS[m]} for m in pd.unique(result.selection.method)]
    ).set_index("method"))
    sel = result.selection[result.selection.selection == WITH_LABELS].set_index("method")
    cv = sel[["cv_auc", f"cv_{gap_metric}"]].map(lambda v: "—" if pd.isna(v) else f"{100 * v:.1f}")
    report.text("Chosen settings (cross-validated on the training part):")
    report.table(pd.DataFrame({"chosen": sel.params, "candidates": sel.n_candidates,
                               "CV AUC": cv.cv_auc,
                               f"CV {label} gap by {attribute}": cv[f"cv_{gap_metric}"]}))
    for note in result.notes:
        report.text(f"Note: {note}")

    summary = result.summary[(result.summary.selection == WITH_LABELS)
                             & (result.summary.group == "all")]
    _report_tables(report, summary, gap_metric, label)
    _report_control(report, summary, attribute, gap_metric, label)
    _report_without_labels(report, result, attribute, gap_metric, label)
    report.figure(out / "compare.png", "Held-out gap against AUC per method, 95% intervals "
                  "(selection with the group labels)")


#: the columns that identify a row of compare_methods' summary (within one selection)
CELL_KEYS = ["scenario", "method", "comparison", "attribute", "metric", "operating_point"]


def _pairs(summary):
    """The (scenario, method) pairs of ``summary``, in its order."""
    return summary[["scenario", "method"]].drop_duplicates().itertuples(index=False)


def _report_tables(report, summary, gap_metric, label):
    """Held-out values and changes vs ERM of every method (``summary``: the group-label
    selection's overall rows)."""
    cells = Cells(summary, CELL_KEYS)
    columns = [("all", "auc", FREE, "AUC"),
               ("all", "positive_rate", MATCHED, "positive rate, matched"),
               ("all", "positive_rate", "0.5", "positive rate at 0.5")]
    for a in [a for a in pd.unique(summary.attribute) if a != "all"]:
        columns += [(a, gap_metric, MATCHED, f"{label} gap by {a}, matched"),
                    (a, gap_metric, "0.5", f"{label} gap by {a}, at 0.5"),
                    (a, "auc_difference", FREE, f"AUC gap by {a}")]
    for kind, text in [
            ("value", f"Held-out values: the matched thresholds are fitted on the out-of-fold "
                      f"predictions of the selection's fold models; where a method's positive "
                      f"rate at the matched point is far from {REFERENCE}'s, its score scale "
                      f"changed between those models and the refits, and its matched gaps are "
                      f"not matched."),
            (f"change vs {REFERENCE}", f"Change vs {REFERENCE} (paired): ↓ / ↑ where the 95% "
                                       f"interval excludes 0 (not adjusted for the many "
                                       f"comparisons of this table: read it as exploratory).")]:
        rows = [{"scenario": scenario, "method": method,
                 **{name: cells(scenario, method, kind, *column, arrow=kind != "value")
                    for *column, name in columns}}
                for scenario, method in _pairs(summary[summary.comparison == kind])]
        report.text(text)
        report.table(pd.DataFrame(rows).set_index("scenario"))


def _report_control(report, summary, attribute, gap_metric, label):
    """The threshold-only control: each method at 0.5 against ERM at the method's own rate."""
    cells = Cells(summary, CELL_KEYS, missing="—")
    control = f"change vs {REFERENCE} at the same rate"
    gap = (attribute, gap_metric)
    rows = [{"scenario": scenario, "method": method,
             "positive rate at 0.5": cells(scenario, method, "value", "all", "positive_rate",
                                           "0.5"),
             f"{label} gap by {attribute} at 0.5": cells(scenario, method, "value", *gap, "0.5"),
             f"{REFERENCE} at the same rate": cells(scenario, REFERENCE, "value", *gap,
                                                    same_rate(method)),
             "change": cells(scenario, method, control, *gap, "0.5", arrow=True)}
            for scenario, method in _pairs(summary[summary.comparison == control])]
    report.text(
        f"**Threshold-only control: {REFERENCE} at each method's own rate.** A method that "
        f"flags fewer (or more) cases than {REFERENCE} at 0.5 changes its gaps by that alone. "
        f"So {REFERENCE} is also read where it flags as many out-of-fold training images as "
        f"each method does at 0.5, and the method at 0.5 is compared with it (paired): a "
        f"change here is what the method did beyond moving the threshold. {label} gap by "
        f"{attribute}, group-label selection; ↓ / ↑ where the 95% interval excludes 0 (not "
        f"adjusted for the many comparisons).")
    report.table(pd.DataFrame(rows).set_index("scenario"))


def _report_without_labels(report, result, attribute, gap_metric, label):
    """The selection without group labels: what each method chose and its primary gap."""
    sel = result.selection.pivot(index="method", columns="selection", values="params")
    summary = result.summary[(result.summary.attribute == attribute)
                             & (result.summary.metric == gap_metric)
                             & (result.summary.operating_point == MATCHED)]
    cells = Cells(summary, ["scenario", "method", "selection", "comparison"], missing="—")
    rows = [{"scenario": scenario, "method": method,
             "chosen with labels": sel.loc[method, WITH_LABELS],
             "chosen without": sel.loc[method, WITHOUT_LABELS],
             **{f"{name}, {'with labels' if mode == WITH_LABELS else 'without'}":
                cells(scenario, method, mode, kind)
                for mode in (WITH_LABELS, WITHOUT_LABELS)
                for kind, name in [("value", "gap"), (f"change vs {REFERENCE}", "change")]}}
            for scenario, method in _pairs(summary)]
    report.heading("Compared with other mitigations: selection without group labels")
    report.text(
        f"The same comparison with every method's setting chosen without the group labels "
        f"(the best cross-validated AUC alone, as SubpopBench reports beside the label-using "
        f"selection): a label-free method's claim to need no demographic labels holds only if "
        f"its gain survives here. {label} gap by {attribute} at the matched operating point, "
        f"and its change vs {REFERENCE}, in percentage points (95% intervals); a setting both "
        f"selections choose is one set of models.")
    report.table(pd.DataFrame(rows).set_index("scenario"))
