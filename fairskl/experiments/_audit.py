"""The README's main job: audit a baseline CNN on the synthetic set with a planted bias."""

import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch

import fairskl
from fairskl._io import atomic_path, write_text
from fairskl.datasets import make_skin_lesions
from fairskl.experiments._baseline import make_baseline_cnn
from fairskl.metrics import group_report, plot_group_report

__all__ = ["run_baseline_audit"]

ATTRIBUTES = ("sex", "age_group", "skin_type")


def run_baseline_audit(
    out_dir="results/demo",
    *,
    n_samples=4000,
    image_size=32,
    bias=1.5,
    max_epochs=8,
    attributes=ATTRIBUTES,
    n_bootstrap=1000,
    test_size=0.3,
    random_state=0,
    device="cpu",
    verbose=1,
):
    """Fit a baseline CNN on :func:`~fairskl.datasets.make_skin_lesions` and report per group.

    Generates the synthetic set with a planted bias, holds out a stratified test set, fits
    :func:`make_baseline_cnn`, and writes to ``out_dir``: ``report.csv`` (the tidy
    :func:`~fairskl.metrics.group_report` of each attribute), one ``groups_<attribute>.png``
    figure per attribute, ``examples.png`` (images by label and skin type) and ``report.md``.
    Every file is written atomically.

    Parameters
    ----------
    out_dir : str or path-like, default="results/demo"
        Output folder, created if missing; files of an earlier run are replaced.
    n_samples, image_size, bias : int, int, float
        Passed to :func:`~fairskl.datasets.make_skin_lesions`.
    max_epochs : int, default=8
        Training epochs of the baseline CNN.
    attributes : sequence of str, default=("sex", "age_group", "skin_type")
        Sensitive columns to report on, one at a time.
    n_bootstrap : int, default=1000
        Bootstrap resamples of the confidence intervals.
    test_size : float, default=0.3
        Share of the held-out test set.
    random_state : int, default=0
        Seed of the data, the split, the network and the bootstrap.
    device : str, default="cpu"
        Torch device of the network, e.g. ``"cuda"``.
    verbose : int, default=1
        0 is silent; 1 prints the steps and skorch's epoch table.

    Returns
    -------
    result : sklearn.utils.Bunch
        ``report`` (DataFrame, with an ``attribute`` column), ``estimator`` (the fitted
        network) and ``paths`` (name -> Path of each file written).

    Examples
    --------
    >>> import tempfile
    >>> from fairskl.experiments import run_baseline_audit
    >>> result = run_baseline_audit(tempfile.mkdtemp(), n_samples=400, image_size=16,
    ...                             max_epochs=1, attributes=["sex"], n_bootstrap=20,
    ...                             verbose=0)
    >>> sorted(result.paths)
    ['examples', 'groups_sex', 'report', 'report_csv']
    """
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    out = Path(out_dir)
    say = print if verbose else (lambda *a, **k: None)

    say(f"[1/4] generating {n_samples} synthetic images ({image_size}x{image_size}, bias={bias})")
    data = make_skin_lesions(n_samples, image_size, bias=bias, random_state=random_state)
    missing = [a for a in attributes if a not in data.sensitive.columns]
    if missing:
        raise ValueError(
            f"attributes {missing} are not sensitive columns; choose among "
            f"{list(data.sensitive.columns)}."
        )
    X_train, X_test, y_train, y_test, _, A_test = train_test_split(
        data.images, data.target, data.sensitive, test_size=test_size, stratify=data.target,
        random_state=random_state,
    )

    say(f"[2/4] fitting the baseline CNN on {len(y_train)} images ({max_epochs} epochs, {device})")
    estimator = make_baseline_cnn(
        max_epochs=max_epochs, device=device, random_state=random_state, verbose=verbose
    )
    estimator.fit(X_train, y_train)
    score = estimator.predict_proba(X_test)[:, 1]

    say(f"[3/4] per-group report on {len(y_test)} test images ({n_bootstrap} bootstrap resamples)")
    A_test = A_test.reset_index(drop=True)
    report = pd.concat(
        [
            group_report(y_test, score, sensitive_features=A_test[attribute],
                         n_bootstrap=n_bootstrap, random_state=random_state)
            .assign(attribute=attribute)
            for attribute in attributes
        ],
        ignore_index=True,
    )

    say(f"[4/4] writing the report to {out}/")
    paths = {"report_csv": out / "report.csv", "examples": out / "examples.png",
             "report": out / "report.md"}
    write_text(paths["report_csv"], report.to_csv(index=False))
    for attribute in attributes:
        axes = plot_group_report(report[report.attribute == attribute],
                                 metrics=["tpr", "fpr", "auc"])
        axes[0].figure.suptitle(f"Baseline CNN by {attribute} (95% bootstrap CI)")
        paths[f"groups_{attribute}"] = _save(axes[0].figure, out / f"groups_{attribute}.png")
        plt.close(axes[0].figure)
    _save(_plot_examples(data), paths["examples"])
    plt.close("all")
    config = dict(n_samples=n_samples, image_size=image_size, bias=bias, max_epochs=max_epochs,
                  n_bootstrap=n_bootstrap, test_size=test_size, random_state=random_state,
                  device=device)
    write_text(paths["report"], _markdown(report, config, paths, time.perf_counter() - start))
    if verbose:
        from fairskl.cli import format_report

        for attribute in attributes:
            print(f"\n== by {attribute} ==")
            print(format_report(report[report.attribute == attribute].drop(columns="attribute")))
    return Bunch(report=report, estimator=estimator, paths=paths)


def _save(figure, path):
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110)
    return path


def _plot_examples(data, per_cell=1):
    """A grid of images: rows benign / malignant, columns skin types 1-6."""
    import matplotlib.pyplot as plt

    types = sorted(data.sensitive["skin_type"].unique())
    fig, axes = plt.subplots(2, len(types), figsize=(1.6 * len(types), 3.6), squeeze=False,
                             layout="constrained")
    for row, label in enumerate([0, 1]):
        for col, skin_type in enumerate(types):
            ax = axes[row, col]
            ax.set_axis_off()
            hits = np.flatnonzero((data.target == label)
                                  & (data.sensitive["skin_type"].to_numpy() == skin_type))
            if len(hits):
                ax.imshow(data.images[hits[0]].transpose(1, 2, 0))
                meta = data.sensitive.iloc[hits[0]]
                ax.set_title(f"FST {skin_type}\n{meta['sex']}, {meta['age_group']}", fontsize=8)
        axes[row, 0].text(-0.15, 0.5, data.target_names[label], rotation=90, va="center",
                          ha="right", transform=axes[row, 0].transAxes)
    return fig


def _markdown(report, config, paths, seconds):
    disparities = report[report.kind == "disparity"].pivot_table(
        index="metric", columns="attribute", values="value", sort=False
    )
    lines = [
        "# fairskl demo: baseline CNN on synthetic skin lesions with a planted bias",
        "",
        f"fairskl {fairskl.__version__}, Python {platform.python_version()}, "
        f"wall time {seconds:.0f} s.",
        "",
        "Configuration: " + ", ".join(f"`{k}={v}`" for k, v in config.items()),
        "",
        "## Disparities on the test set (point estimates; intervals in report.csv)",
        "",
        disparities.round(3).to_markdown(),  # tabulate comes with skorch
        "",
        "## Figures",
        "",
        "![examples](examples.png)",
        "",
    ]
    lines += [f"![{name}]({path.name})" for name, path in paths.items()
              if name.startswith("groups_")]
    return "\n".join(lines) + "\n"

