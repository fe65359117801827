"""Figures of the studies: per-group boxplots, prevalence per group, error per fine label."""

import numpy as np
import pandas as pd

__all__ = ["plot_error_by_label", "plot_prevalence", "plot_representation_study"]


def plot_representation_study(results, metrics=None, *, axes=None):
    """Boxplots of per-group values by training mix (Figs. 3 and 6 of the VAE study).

    Parameters
    ----------
    results : pandas.DataFrame
        Output of :func:`representation_study`.
    metrics : list of str, default=None
        Metrics to plot, one panel each; None plots every metric of ``results``.
    axes : array of matplotlib Axes, default=None
        One per metric; created when None.

    Returns
    -------
    axes : numpy.ndarray of matplotlib Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from fairskl.experiments import plot_representation_study
    >>> results = pd.DataFrame(dict(
    ...     repeat=[0, 0, 1, 1], mix=["50/50"] * 4, group=["light", "dark"] * 2,
    ...     train_share=0.5, metric="reconstruction_mse", value=[0.02, 0.03, 0.021, 0.032]))
    >>> axes = plot_representation_study(results)
    >>> axes[0].get_ylabel()
    'reconstruction_mse'
    """
    import matplotlib.pyplot as plt

    _require(results, ["mix", "group", "metric", "value"], "results")
    metrics = list(pd.unique(results["metric"])) if metrics is None else list(metrics)
    unknown = sorted(set(metrics) - set(results["metric"]))
    if unknown:
        raise ValueError(f"metrics {unknown} are not in results; it has "
                         f"{sorted(results['metric'].unique())}.")
    if axes is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6),
                               squeeze=False, layout="constrained")
    axes = np.ravel(axes)
    mixes = _ordered(results["mix"])
    groups = _ordered(results["group"])
    width = 0.8 / len(groups)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes, metrics, strict=True):
        rows = results[results["metric"] == metric]
        for k, group in enumerate(groups):
            data = [rows.loc[(rows["mix"] == mix) & (rows["group"] == group), "value"].to_numpy()
                    for mix in mixes]
            positions = np.arange(len(mixes)) + (k - (len(groups) - 1) / 2) * width
            kept = [(p, d) for p, d in zip(positions, data, strict=True) if len(d)]
            if not kept:
                continue
            parts = ax.boxplot([d for _, d in kept], positions=[p for p, _ in kept],
                               widths=width * 0.85, patch_artist=True, manage_ticks=False)
            color = colors[k % len(colors)]
            for box in parts["boxes"]:
                box.set(facecolor=color, alpha=0.6)
            ax.plot([], [], "s", color=color, alpha=0.6, label=str(group))
        ax.set_xticks(np.arange(len(mixes)), [str(m).replace(" / ", "\n") for m in mixes],
                      fontsize=8)
        ax.set_xlabel("training mix")
        ax.set_ylabel(metric)
        ax.legend(title="test group", fontsize=8)
    return axes


def plot_prevalence(labels, groups, *, top=10, axes=None):
    """Share of each condition within each group, one panel per label level (Fig. 7).

    Each panel compares the groups' prevalences at one level of the label hierarchy (for
    Fitzpatrick17k: ``three_partition_label``, ``nine_partition_label`` and the fine
    ``label``): the share of each group's images that carry each condition.

    Parameters
    ----------
    labels : pandas.DataFrame or Series
        One column per label level, e.g. Fitzpatrick17k's ``three_partition_label`` and
        ``nine_partition_label``.
    groups : array-like of shape (n_samples,)
        Group of each sample, e.g. ``skin_group``.
    top : int, default=10
        Conditions shown per level (the most frequent overall).
    axes : array of matplotlib Axes, default=None
        One per level; created when None.

    Returns
    -------
    axes : numpy.ndarray of matplotlib Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from fairskl.experiments import plot_prevalence
    >>> labels = pd.DataFrame({"three_partition_label": ["benign", "malignant", "benign"]})
    >>> axes = plot_prevalence(labels, ["light", "light", "dark"])
    >>> axes[0].get_title()
    'three_partition_label'
    """
    import matplotlib.pyplot as plt

    labels = labels.to_frame() if isinstance(labels, pd.Series) else pd.DataFrame(labels)
    groups = pd.Series(groups.to_numpy() if isinstance(groups, pd.Series) else groups,
                       name="group")  # a categorical keeps its order: light before dark
    if len(groups) != len(labels):
        raise ValueError(f"groups has {len(groups)} values but labels has {len(labels)} rows.")
    if axes is None:
        _, axes = plt.subplots(1, labels.shape[1], figsize=(5 * labels.shape[1], 3.8),
                               squeeze=False, layout="constrained")
    axes = np.ravel(axes)
    groups.index = labels.index
    for ax, level in zip(axes, labels.columns, strict=True):
        shares = pd.crosstab(labels[level], groups, normalize="columns")
        keep = labels[level].value_counts().index[:top]
        shares.loc[shares.index.intersection(keep)].plot.barh(ax=ax, legend=True)
        ax.set_title(str(level))
        ax.set_xlabel("share of the group's images")
        ax.set_ylabel("")
    return axes


def plot_error_by_label(samples, labels, *, metric="reconstruction_mse", min_count=5, axes=None):
    """Mean per-image error of each fine label, one group against another, per mix (Fig. 8).

    One panel per training mix, as in the paper: a model trained on one mix is never pooled
    with another. Within a mix, each test image's values are first averaged over the repeats
    in which it was drawn, so that an image counts once; a label's point is the mean over its
    distinct images.

    Parameters
    ----------
    samples : pandas.DataFrame
        The per-sample table of :func:`representation_study` (``return_samples=True``), with
        exactly two groups. Without a ``mix`` column it is one panel.
    labels : array-like of shape (n_samples_in_X,)
        Fine label of every sample of the study's ``X`` (looked up by ``samples["sample"]``).
    metric : str, default="reconstruction_mse"
        Per-sample metric to compare.
    min_count : int, default=5
        Labels with fewer distinct test images in either group are left out of a panel (and
        counted in its title).
    axes : array of matplotlib Axes, default=None
        One per mix; created when None.

    Returns
    -------
    axes : numpy.ndarray of matplotlib Axes
        Scatter plots, one point per label, with the diagonal of equal error.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairskl.experiments import plot_error_by_label
    >>> samples = pd.DataFrame(dict(
    ...     mix=["all light"] * 4 + ["all dark"] * 4, sample=[0, 1, 2, 3] * 2,
    ...     group=["light", "light", "dark", "dark"] * 2, metric="reconstruction_mse",
    ...     value=[.01, .02, .03, .05, .04, .05, .01, .02]))
    >>> axes = plot_error_by_label(samples, ["acne", "eczema", "acne", "eczema"], min_count=1)
    >>> [ax.get_title().split(":")[0] for ax in axes], axes[0].get_xlabel()
    (['all light', 'all dark'], 'mean reconstruction_mse, light')
    """
    import matplotlib.pyplot as plt

    _require(samples, ["sample", "group", "metric", "value"], "samples")
    rows = samples[samples["metric"] == metric]
    groups = _ordered(rows["group"])
    if len(groups) != 2:
        raise ValueError(f"plot_error_by_label compares two groups; samples has {groups}.")
    if "mix" not in rows:
        rows = rows.assign(mix="all")
    mixes = _ordered(rows["mix"])
    labels = np.asarray(labels)
    if axes is None:
        _, axes = plt.subplots(1, len(mixes), figsize=(4.5 * len(mixes), 4.6), squeeze=False,
                               layout="constrained")
    axes = np.ravel(axes)
    if len(axes) != len(mixes):
        raise ValueError(f"axes has {len(axes)} Axes but samples has {len(mixes)} mixes.")
    for ax, mix in zip(axes, mixes, strict=True):
        in_mix = rows[rows["mix"] == mix]
        images = (in_mix.groupby(["sample", "group"], observed=True)["value"].mean()
                  .reset_index())  # each distinct test image once
        images["label"] = labels[images["sample"].to_numpy(dtype=int)]
        table = images.pivot_table(index="label", columns="group", values="value",
                                   aggfunc=["mean", "count"], observed=True)
        counts = table["count"].reindex(columns=groups).fillna(0)
        kept = (counts >= min_count).all(axis=1)
        means = table["mean"].reindex(columns=groups)[kept]
        _scatter_labels(ax, means, groups, metric)
        above = int((means[groups[1]] > means[groups[0]]).sum())
        ax.set_title(f"{mix}: {above} of {len(means)} labels worse for {groups[1]}\n"
                     f"({int((~kept).sum())} with < {min_count} images left out)", fontsize=9)
    return axes


def _scatter_labels(ax, means, groups, metric):
    ax.scatter(means[groups[0]], means[groups[1]], s=18, alpha=0.8)
    if len(means) <= 15:  # few labels: name them
        for label, row in means.iterrows():
            ax.annotate(str(label), (row[groups[0]], row[groups[1]]), fontsize=7,
                        textcoords="offset points", xytext=(4, 4))
    if len(means):
        low, high = np.nanmin(means.to_numpy()), np.nanmax(means.to_numpy())
        ax.plot([low, high], [low, high], color="grey", lw=1, ls="--")
    ax.set_xlabel(f"mean {metric}, {groups[0]}")
    ax.set_ylabel(f"mean {metric}, {groups[1]}")


def _ordered(column):
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [c for c in column.cat.categories if (column == c).any()]
    return list(pd.unique(column))


def _require(frame, columns, name):
    missing = [c for c in columns if c not in getattr(frame, "columns", [])]
    if missing:
        raise ValueError(f"{name} must be a DataFrame with columns {columns}; missing {missing}.")
