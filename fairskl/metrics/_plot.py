"""Bar chart of a group report with confidence-interval whiskers."""

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import validate_params

from fairskl.metrics._group_metrics import DISPARITY_INPUTS

__all__ = ["plot_group_report"]


@validate_params(
    {
        "report": [pd.DataFrame],
        "metrics": ["array-like", None],
        "axes": "no_validation",  # matplotlib Axes: one, or an array of them
    },
    prefer_skip_nested_validation=True,
)
def plot_group_report(report, *, metrics=None, axes=None):
    """Plot each metric of a :func:`group_report` as bars per group with CI whiskers.

    One panel per base metric; the groups' bars are followed by the overall bar (hatched), and
    the panel title gives the metric's disparity with its interval.

    Parameters
    ----------
    report : pandas.DataFrame
        The output of :func:`group_report`.
    metrics : list of str, default=None
        Base metrics to show, in order; ``None`` shows all in the report.
    axes : array-like of matplotlib Axes, default=None
        One Axes per metric; ``None`` creates a figure with one row of panels.

    Returns
    -------
    axes : numpy.ndarray of matplotlib Axes
        The panels, one per metric.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from fairskl.metrics import group_report, plot_group_report
    >>> rng = np.random.RandomState(0)
    >>> y, group = rng.randint(0, 2, 100), rng.choice(["a", "b"], 100)
    >>> report = group_report(y, rng.uniform(size=100), sensitive_features=group,
    ...                       n_bootstrap=50, random_state=0)
    >>> axes = plot_group_report(report, metrics=["tpr", "auc"])
    >>> [ax.get_title().split(chr(10))[0] for ax in axes]
    ['tpr', 'auc']
    """
    import matplotlib.pyplot as plt

    per_group = report[report["kind"] != "disparity"]
    available = list(dict.fromkeys(per_group["metric"]))
    metrics = available if metrics is None else list(metrics)
    unknown = [m for m in metrics if m not in available]
    if unknown:
        raise ValueError(f"metrics {unknown} are not in the report; it has {available}.")
    if axes is None:
        _, axes = plt.subplots(
            1, len(metrics), figsize=(3.2 * len(metrics), 3.4), squeeze=False, layout="constrained"
        )
    axes = np.asarray(axes).ravel()
    if len(axes) != len(metrics):
        raise ValueError(f"axes has {len(axes)} panels for {len(metrics)} metrics.")
    differences = report[report["kind"] == "disparity"].set_index("metric")
    for ax, name in zip(axes, metrics, strict=True):
        rows = per_group[per_group["metric"] == name]
        x = np.arange(len(rows))
        values = rows["value"].to_numpy(float)
        low, high = rows[["ci_low", "ci_high"]].to_numpy(float).T
        # a percentile interval need not contain the estimate: clip rather than flip a whisker
        whiskers = np.clip([values - low, high - values], 0, None)
        bars = ax.bar(x, values, color="C0", alpha=0.8)
        bars[-1].set_hatch("//")
        bars[-1].set_facecolor("0.75")
        if np.isfinite(whiskers).any():
            ax.errorbar(x, values, yerr=np.nan_to_num(whiskers), fmt="none", color="k", capsize=3)
        ax.set_xticks(x, rows["group"], rotation=30, ha="right")
        ax.set_ylim(0, 1.05)
        title = name
        key = next((d for d, inputs in DISPARITY_INPUTS.items() if inputs == [name]), None)
        if key in differences.index:
            d = differences.loc[key]
            title += f"\ngap {d['value']:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}]"
        ax.set_title(title, fontsize=10)
    return axes
