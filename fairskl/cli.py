"""The ``fairskl`` command. Thin: every subcommand calls the public API."""

import argparse
import json
import sys

import numpy as np
import pandas as pd

import fairskl
from fairskl._io import write_text

__all__ = ["main"]


def main(argv=None):
    """Run the ``fairskl`` command line; return its exit code.

    Examples
    --------
    >>> from fairskl.cli import main
    >>> main(["--version"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    SystemExit: 0
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        parser.exit(2, f"fairskl {args.command}: error: {error}\n")


SCALE_HELP = {
    "nir": "small (default): a small CNN on 32-pixel images, cosine lr decay, "
    "fixed 8 epochs, minutes on 2 CPU cores. paper: the paper's protocol, for a GPU: an "
    "ImageNet-pretrained ResNet-18 (IMAGENET1K_V1, its ImageNet input scaling applied inside "
    "the network) fine-tuned with Adam, early stopping on the validation AUC (15%% of the "
    "training part, patience 5) restoring the best epoch. Not from the paper's abstract, so "
    "ours: 224-pixel images, lr 1e-4, batch 64, at most 50 epochs, 5 folds, 3 seeds, two "
    "softmax logits (the same model as one sigmoid output); see the user guide's NIR page",
    "vae-fairness": "small: minutes on a CPU; paper: the full protocol, for a GPU",
}


def _parser():
    parser = argparse.ArgumentParser(
        prog="fairskl",
        description="Measure and mitigate group unfairness of deep image models.",
    )
    parser.add_argument("--version", action="version", version=f"fairskl {fairskl.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    audit = sub.add_parser(
        "audit",
        help="per-group fairness report of saved predictions",
        description="Print the per-group report (bootstrap intervals, disparities) of a CSV of "
        "predictions. Errors exit with code 2 and write nothing.",
    )
    audit.add_argument("csv", help="CSV file with one row per sample")
    audit.add_argument("--y-true", required=True, metavar="COL", help="column of true labels")
    audit.add_argument("--score", required=True, metavar="COL",
                       help="column of scores of the positive class, or of 0/1 predictions")
    audit.add_argument("--group", required=True, action="append", metavar="COL",
                       help="sensitive column; repeat for intersectional groups")
    audit.add_argument("--pos-label", default=None,
                       help="the positive label when --y-true is not 0/1")
    audit.add_argument("--threshold", type=float, default=0.5)
    audit.add_argument("--bootstrap", type=int, default=1000, metavar="N")
    audit.add_argument("--random-state", type=int, default=0)
    audit.add_argument("--format", choices=["text", "csv", "json"], default="text")
    audit.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    audit.set_defaults(run=_run_audit)

    reproduce = sub.add_parser(
        "reproduce",
        help="run one of the two studies end to end and write a report next to the paper's",
        description="Reproduce a study: 'nir' (NIR's lambda study and held-out audit) or "
        "'vae-fairness' (the VAE representation study). --data synthetic needs no download.",
    )
    studies = reproduce.add_subparsers(dest="study", metavar="STUDY", required=True)
    for name, data_choices, help_text in [
        ("nir", ["synthetic", "ham10000", "harvard-gf"], "NIR: lambda study, held-out audit"),
        ("vae-fairness", ["synthetic", "fitzpatrick17k"], "VAE: per-group error by mix"),
    ]:
        study = studies.add_parser(name, help=help_text, description=help_text)
        study.add_argument("--data", choices=data_choices, default="synthetic")
        study.add_argument("--data-home", metavar="DIR",
                           help="root of the real data sets (default: $FAIRSKL_DATA or "
                           "~/fairskl_data)")
        study.add_argument("--scale", choices=["small", "paper"], default="small",
                           help=SCALE_HELP[name])
        study.add_argument("--out", default=f"results/{name}",
                           help="output folder (default: %(default)s)")
        study.add_argument("--device", default="cpu", help="cpu or cuda")
        study.add_argument("--random-state", type=int, default=0)
        what = study.add_mutually_exclusive_group()
        what.add_argument("--resume", action="store_true",
                          help="continue the run saved in --out")
        what.add_argument("--overwrite", action="store_true", help="replace --out")
        study.add_argument("--quiet", action="store_true", help="print only where the report is")
        if name == "nir":
            study.add_argument("--attribute", choices=["age", "sex", "race"], default="age",
                               help="the attribute whose gap chooses lambda (every attribute "
                               "of the data is audited; default: %(default)s)")
            study.add_argument("--compare", action="store_true",
                               help="also compare NIR with ERM, CVaR-DRO, JTT, spectral "
                               "decoupling, LfF and DFR (label-free), group-balanced "
                               "reweighting, GroupDRO and group-balanced DFR (label-using), "
                               "each tuned by cross-validation on the training part (opt-in: "
                               "it takes longer than the main job's budget)")
            study.add_argument("--weights", metavar="PATH",
                               help="backbone weights: a local state_dict (.pth) of the "
                               "torchvision model, or a torchvision weights name (default: "
                               "none at small scale, IMAGENET1K_V1 at paper scale)")
        else:
            from fairskl.experiments._study_data import GROUP_DEFINITIONS

            study.add_argument("--perceptual-weights", metavar="PATH",
                               help="local VGG19 state_dict (.pth) or a torchvision weights name")
            study.add_argument("--repeats", type=int, metavar="N",
                               help="repeats of the protocol (default: 4 at small scale, 10 "
                               "at paper scale)")
            study.add_argument("--groups", choices=sorted(GROUP_DEFINITIONS),
                               help="light and dark skin: " + "; ".join(
                                   f"{k}: {v[3]}" for k, v in GROUP_DEFINITIONS.items()))
        example = "--set max_epochs=20 --set streaming=false" if name == "nir" else \
            "--set n_train=500 --set replace=false"
        study.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                           dest="settings",
                           help=f"override a setting of --scale, e.g. {example} (repeatable; "
                           f"the report lists them all)")
        study.set_defaults(run=_run_reproduce)
    return parser


def _run_audit(args):
    from fairskl.metrics import group_report

    data = pd.read_csv(args.csv)
    missing = [c for c in [args.y_true, args.score, *args.group] if c not in data.columns]
    if missing:
        raise ValueError(f"column(s) {missing} not in {args.csv}; it has {list(data.columns)}.")
    if data[args.score].isna().any() or data[args.y_true].isna().any():
        column = args.score if data[args.score].isna().any() else args.y_true
        rows = np.flatnonzero(data[column].isna())[:5].tolist()
        raise ValueError(f"column {column!r} has missing values (rows {rows}, 0-based); "
                         f"drop or fill them first.")
    groups = data[args.group]
    if len(groups.drop_duplicates()) < 2:
        raise ValueError(f"column(s) {args.group} hold a single group; a disparity needs two.")
    pos_label = args.pos_label
    if pos_label is not None and data[args.y_true].dtype.kind in "biuf":
        pos_label = float(pos_label)
    report = group_report(
        data[args.y_true], data[args.score], sensitive_features=groups,
        threshold=args.threshold, pos_label=pos_label, n_bootstrap=args.bootstrap,
        random_state=args.random_state,
    )
    text = {
        "text": format_report,
        "csv": lambda r: r.to_csv(index=False),
        "json": lambda r: r.to_json(orient="records", indent=1) + "\n",
    }[args.format](report)
    if args.out:
        write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def format_report(report):
    """Render a :func:`~fairskl.metrics.group_report` table as aligned text."""

    def cell(row):
        if np.isnan(row.ci_low):
            return f"{row.value:.3f}"
        return f"{row.value:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"

    per_group = report[report["kind"] != "disparity"]
    table = per_group.assign(cell=per_group.apply(cell, axis=1)).pivot_table(
        index=["group", "n"], columns="metric", values="cell", aggfunc="first", sort=False
    )
    table = table[list(dict.fromkeys(per_group["metric"]))]
    disparities = report[report["kind"] == "disparity"]
    lines = [table.to_string(), "", "disparities (between groups):"]
    width = max(map(len, disparities["metric"]), default=0)
    lines += [f"  {row.metric:<{width}}  {cell(row)}" for row in disparities.itertuples()]
    return "\n".join(lines) + "\n"


def _setting(text):
    """``"KEY=VALUE"`` -> (key, value): the value read as JSON (numbers, true/false, null),
    else kept as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--set {text!r}: write KEY=VALUE, e.g. --set n_train=500.")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _run_reproduce(args):
    from fairskl.experiments import reproduce_nir, reproduce_vae_fairness

    common = dict(data=args.data, data_home=args.data_home, scale=args.scale,
                  device=args.device, resume=args.resume, overwrite=args.overwrite,
                  random_state=args.random_state, verbose=0 if args.quiet else 1)
    settings = dict(_setting(text) for text in args.settings)
    if args.study == "nir":
        path = reproduce_nir(args.out, attribute=args.attribute, weights=args.weights,
                             compare=args.compare, settings=settings, **common)
    else:
        if args.repeats is not None:
            settings["n_repeats"] = args.repeats
        if args.groups is not None:
            settings["group_definition"] = args.groups
        path = reproduce_vae_fairness(args.out, perceptual_weights=args.perceptual_weights,
                                      settings=settings, **common)
    if args.quiet:
        print(f"report: {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
