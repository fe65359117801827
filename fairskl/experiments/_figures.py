"""Figures of the studies: per-group boxplots, prevalence per group, error per fine label,
reconstructions and prior samples."""

import numbers
import textwrap
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_params

__all__ = [
    "plot_error_by_label",
    "plot_prevalence",
    "plot_reconstructions",
    "plot_representation_study",
]

#: ``axes`` of the figures: Axes, one per panel (a single Axes for one panel), or None to create
#: them (without importing matplotlib to check)
AXES = ["array-like", HasMethods(["set_title"]), None]


@validate_params(
    {"results": [pd.DataFrame], "metrics": ["array-like", None], "axes": AXES},
    prefer_skip_nested_validation=True,
)
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
    axes = _axes(axes, len(metrics), (4.2, 3.6), f"there are {len(metrics)} metrics")
    mixes = _ordered(results["mix"])
    groups = _ordered(results["group"])
    width = 0.8 / len(groups)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes, metrics, strict=True):
        rows = results[results["metric"] == metric]
        for k, group in enumerate(groups):
            offset = (k - (len(groups) - 1) / 2) * width
            in_group = rows[rows["group"] == group]
            boxes = {i + offset: in_group.loc[in_group["mix"] == mix, "value"].to_numpy()
                     for i, mix in enumerate(mixes)}  # position: the values of a box
            boxes = {position: values for position, values in boxes.items() if len(values)}
            if not boxes:
                continue
            color = colors[k % len(colors)]
            ax.boxplot(list(boxes.values()), positions=list(boxes), widths=width * 0.85,
                       patch_artist=True, manage_ticks=False,
                       boxprops=dict(facecolor=color, alpha=0.6))
            ax.plot([], [], "s", color=color, alpha=0.6, label=str(group))
        ax.set_xticks(np.arange(len(mixes)), [str(m).replace(" / ", "\n") for m in mixes],
                      fontsize=8)
        ax.set(xlabel="training mix", ylabel=metric)
        ax.legend(title="test group", fontsize=8)
    return axes


@validate_params(
    {"labels": ["array-like"], "groups": ["array-like"], "kind": [StrOptions({"bar", "scatter"})],
     "top": [Interval(numbers.Integral, 1, None, closed="left")], "axes": AXES,
     "x": "no_validation", "y": "no_validation"},  # groups of any type: _pair checks them
    prefer_skip_nested_validation=True,
)
def plot_prevalence(labels, groups, *, kind="bar", top=10, axes=None, x=None, y=None):
    """Share of each condition within each group, one panel per label level (Fig. 7).

    Each panel compares the groups' prevalences at one level of the label hierarchy (for
    Fitzpatrick17k: ``three_partition_label``, ``nine_partition_label`` and the fine
    ``label``): the share of each group's images that carry each condition.

    ``kind="scatter"`` draws the panels as the paper does: one point per condition at its
    prevalence in group ``x`` (horizontal) and in group ``y`` (vertical), with the dashed
    line of equal prevalence; conditions above the line are more common in ``y``. The five
    conditions farthest from the line are named.

    Parameters
    ----------
    labels : pandas.DataFrame or Series
        One column per label level, e.g. Fitzpatrick17k's ``three_partition_label`` and
        ``nine_partition_label``.
    groups : array-like of shape (n_samples,)
        Group of each sample, e.g. ``skin_group``. A categorical keeps its order (light
        before dark); other values are sorted.
    kind : {"bar", "scatter"}, default="bar"
        Horizontal bars per condition and group, or the paper's scatter of two groups.
    top : int, default=10
        Conditions shown per level with ``kind="bar"`` (the most frequent overall). The
        scatter shows every condition.
    axes : array of matplotlib Axes, default=None
        One per level; created when None.
    x, y : str, default=None
        With ``kind="scatter"``: the groups on the horizontal and vertical axes. By default
        the first and the second group in the groups' order; with more than two groups both
        must be given.

    Returns
    -------
    axes : numpy.ndarray of matplotlib Axes

    References
    ----------
    .. [1] M. López-Pérez, S. Hauberg and A. Feragen, "Are generative models fair? A study of
       racial bias in dermatological image generation", arXiv:2501.11752, 2025.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairskl.experiments import plot_prevalence
    >>> labels = pd.DataFrame({"three_partition_label": ["benign", "malignant", "benign"]})
    >>> axes = plot_prevalence(labels, ["light", "light", "dark"])
    >>> axes[0].get_title()
    'three_partition_label'
    >>> groups = pd.Categorical(["light", "light", "dark"], categories=["light", "dark"])
    >>> axes = plot_prevalence(labels, groups, kind="scatter")
    >>> axes[0].get_xlabel(), axes[0].get_ylabel()
    ('prevalence among light', 'prevalence among dark')
    >>> axes[0].collections[0].get_offsets().tolist()  # (light, dark): benign, malignant
    [[0.5, 1.0], [0.5, 0.0]]
    """
    labels = labels.to_frame() if isinstance(labels, pd.Series) else pd.DataFrame(labels)
    groups = pd.Series(groups.array if isinstance(groups, pd.Series) else groups,
                       name="group")  # a categorical keeps its order: light before dark
    if len(groups) != len(labels):
        raise ValueError(f"groups has {len(groups)} values but labels has {len(labels)} rows.")
    if kind == "scatter":
        x, y = _pair(groups, x, y)
    axes = _axes(axes, labels.shape[1], (4.6, 4.6) if kind == "scatter" else (5, 3.8),
                 f"labels has {labels.shape[1]} levels {list(labels.columns)}; pass one Axes "
                 f"per level")
    groups.index = labels.index
    to_name = []
    for ax, level in zip(axes, labels.columns, strict=True):
        shares = pd.crosstab(labels[level], groups, normalize="columns")
        if kind == "scatter":
            _scatter_prevalence(ax, shares[x], shares[y])
            to_name.append((ax, shares[[x, y]]))
        else:
            keep = labels[level].value_counts().index[:top]
            shares.loc[shares.index.intersection(keep)].plot.barh(ax=ax, legend=True)
            ax.set(xlabel="share of the group's images", ylabel="")
        ax.set_title(str(level))
    for figure in {id(ax.figure): ax.figure for ax, _ in to_name}.values():
        figure.draw_without_rendering()  # settle the layout: names are placed on the screen
    for ax, points in to_name:
        _name_points(ax, points)
    return axes


#: Points named per panel of ``plot_prevalence(kind="scatter")`` and ``plot_error_by_label``:
#: the farthest from y = x.
_N_NAMED = 5


def _pair(groups, x, y):
    """The two groups of a prevalence scatter: given, or the first two in the groups' order."""
    present = _ordered(groups, sort=True)
    for name, value in (("x", x), ("y", y)):
        if value is not None and value not in present:
            raise ValueError(f"{name}={value!r} is not a group; the groups are {present}.")
    if x is None or y is None:
        if len(present) != 2:
            raise ValueError(f"kind='scatter' compares two groups and groups has "
                             f"{len(present)}: {present}; pass x= and y= to choose two.")
        x = x if x is not None else next(g for g in present if g != y)
        y = y if y is not None else next(g for g in present if g != x)
    if x == y:
        raise ValueError(f"x and y are both {x!r}; pass two different groups of {present}.")
    return x, y


def _scatter_prevalence(ax, x, y):
    """One point per condition at (prevalence in x, in y), the dashed y = x, equal axes from 0."""
    ax.scatter(x, y, s=16, alpha=0.75, zorder=3)
    high = 1.08 * max(x.max(), y.max(), 1e-3)
    ax.plot([0, high], [0, high], color="grey", lw=1, ls="--", zorder=2)
    ax.set(xlim=(0, high), ylim=(0, high), aspect="equal",
           xlabel=f"prevalence among {x.name}", ylabel=f"prevalence among {y.name}")


def _name_points(ax, points):
    """Write the names of the :data:`_N_NAMED` points (x, y) farthest from the diagonal inside
    the panel, each on its point's side of the diagonal, near it, covering few points, where
    neither it nor its leader line crosses another name or leader: each name takes its
    cheapest place among offsets growing from its point, given the others' places, for a few
    rounds. Names are left out of the layout (they stay inside the panel)."""
    named = points.loc[(points.iloc[:, 1] - points.iloc[:, 0]).abs().nlargest(_N_NAMED).index]
    places = {condition: _places(ax, condition, px, py, points)
              for condition, (px, py) in named.iterrows()}
    chosen = {}
    for _ in range(3):  # the first round is greedy; later ones fix what it tangled
        for condition, options in places.items():
            others = [place for other, place in chosen.items() if other != condition]
            chosen[condition] = min(options, key=lambda place: (
                place["cost"] + sum(_clash(place, other) for other in others), place["rank"]))
    for condition, (px, py) in named.iterrows():
        place = chosen[condition]
        ax.annotate(place["name"], (px, py), xytext=place["offset"], textcoords="offset points",
                    fontsize=7, ha=place["ha"], va=place["va"], zorder=4,
                    arrowprops=dict(arrowstyle="-", color="0.4", lw=0.6, shrinkA=0, shrinkB=3),
                    ).set_in_layout(False)


def _places(ax, condition, px, py, points):
    """Every candidate place of one name, with what it costs on its own."""
    from matplotlib.path import Path

    box = ax.get_window_extent().padded(-3)
    others = ax.transData.transform(points[points.index != condition].to_numpy())
    to_data = ax.transData.inverted()
    start = ax.transData.transform([px, py])
    above = py >= px
    name = textwrap.fill(str(condition), 22)
    text = ax.annotate(name, (px, py), xytext=(0, 0), textcoords="offset points", fontsize=7)
    places = []
    for rank, (dx, dy) in enumerate(_offsets(above)):
        text.xyann = (dx, dy)
        text.set(ha="left" if dx > 0 else "right" if dx < 0 else "center",
                 va="bottom" if dy > 0 else "top" if dy < 0 else "center")
        extent = text.get_window_extent()
        grown = extent.padded(4)  # a marker's radius
        (x0, y0), (x1, y1) = to_data.transform(grown.get_points())
        outside = not (box.contains(*extent.min) and box.contains(*extent.max))
        crosses = max(x0, y0) <= min(x1, y1) or (y0 > x1) != above  # the diagonal
        covered = int(((grown.min <= others) & (others <= grown.max)).all(axis=1).sum())
        distance = max(abs(dx), abs(dy)) / 6  # a name farther away reads worse
        places.append(dict(
            name=name, offset=(dx, dy), ha=text.get_ha(), va=text.get_va(), rank=rank,
            box=grown, cost=1000 * outside + 10 * crosses + covered + distance,
            leader=Path([start, start + ax.figure.dpi / 72 * np.array([dx, dy])])))
    text.remove()
    return places


def _clash(place, other):
    """What two names' places cost together: overlapping names, crossing leader lines."""
    return (300 * place["box"].overlaps(other["box"])
            + 100 * (place["leader"].intersects_bbox(other["box"])
                     or other["leader"].intersects_bbox(place["box"])
                     or place["leader"].intersects_path(other["leader"])))


def _offsets(above):
    """Candidate offsets (points) of a name from its point, near first: away from the
    diagonal (up-left for a point above it, down-right below) at every distance before the
    other directions."""
    sign = 1 if above else -1
    away = [(-1, 1), (-1, 0), (0, 1), (-1, 0.4), (-0.4, 1), (-1, -0.4), (0.4, 1)]
    other = [(1, 1), (-1, -1), (1, 0), (0, -1), (1, -1)]
    distances = (5, 14, 28, 45, 65, 90)
    return [(sign * d * dx, sign * d * dy) for directions in (away, other) for d in distances
            for dx, dy in directions]


@validate_params(
    {"samples": [pd.DataFrame], "labels": ["array-like"], "metric": [str],
     "min_count": [Interval(numbers.Integral, 0, None, closed="left")], "axes": AXES},
    prefer_skip_nested_validation=True,
)
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
    _require(samples, ["sample", "group", "metric", "value"], "samples")
    rows = samples[samples["metric"] == metric]
    groups = _ordered(rows["group"])
    if len(groups) != 2:
        raise ValueError(f"plot_error_by_label compares two groups; samples has {groups}.")
    if "mix" not in rows:
        rows = rows.assign(mix="all")
    mixes = _ordered(rows["mix"])
    labels = np.asarray(labels)
    axes = _axes(axes, len(mixes), (4.5, 4.6), f"samples has {len(mixes)} mixes")
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
    ax.scatter(means[groups[0]], means[groups[1]], s=18, alpha=0.8, zorder=3)
    if len(means):
        low, high = np.nanmin(means.to_numpy()), np.nanmax(means.to_numpy())
        pad = 0.08 * (high - low) or 1e-3
        ax.plot([low, high], [low, high], color="grey", lw=1, ls="--", zorder=2)
        ax.set(xlim=(low - pad, high + pad), ylim=(low - pad, high + pad))
        _name_points(ax, means[[groups[0], groups[1]]].dropna())  # without overlaps
    ax.set(xlabel=f"mean {metric}, {groups[0]}", ylabel=f"mean {metric}, {groups[1]}")


@validate_params(
    {"originals": [Mapping], "reconstructions": [Mapping], "samples": [Mapping, None],
     "row_labels": ["array-like", None],  # two: checked below
     "n_images": [Interval(numbers.Integral, 1, None, closed="left")], "axes": AXES},
    prefer_skip_nested_validation=True,
)
def plot_reconstructions(originals, reconstructions, *, row_labels=None, n_images=6,
                         samples=None, axes=None):
    """Images over their reconstructions, one panel per (mix, group), and prior samples (Figs. 4-5).

    Each panel is one tiled image: the first ``n_images`` originals in the top row and their
    reconstructions below, titled with its key. Panels fill a grid of two columns row by row,
    so a dict ordered mix by mix, light then dark, gives one row per training mix as in the
    paper. ``samples`` adds one panel per entry, a single row of images decoded from the prior.

    Parameters
    ----------
    originals : dict of str to array-like of shape (n, C, H, W)
        Test images per panel, e.g. ``{"50% light / 50% dark — dark": X_dark, ...}``;
        channel-first with C in {1, 3}, floats in [0, 1] (clipped) or uint8.
    reconstructions : dict of str to array-like of shape (n, C, H, W)
        The reconstruction of ``originals[key]`` for each key of ``originals`` (same shape),
        e.g. :meth:`PerceptualVAE.reconstruct <fairskl.PerceptualVAE.reconstruct>`.
    row_labels : pair of str, default=None
        Names of the two rows of each panel; None means ``("original", "reconstruction")``.
    n_images : int, default=6
        Images per row (fewer when an array holds fewer).
    samples : dict of str to array-like of shape (n, C, H, W), default=None
        Prior samples to show after the reconstructions, one panel per key (e.g. per mix),
        e.g. :meth:`PerceptualVAE.sample <fairskl.PerceptualVAE.sample>`.
    axes : array of matplotlib Axes, default=None
        One per key of ``reconstructions`` then of ``samples``; created when None.

    Returns
    -------
    axes : numpy.ndarray of matplotlib Axes
        One per panel, reconstructions first, each holding one image.

    See Also
    --------
    fairskl.PerceptualVAE.reconstruct, fairskl.PerceptualVAE.sample
    representation_study : The per-group reconstruction errors behind these pictures.

    References
    ----------
    .. [1] M. López-Pérez, S. Hauberg and A. Feragen, "Are generative models fair? A study of
       racial bias in dermatological image generation", arXiv:2501.11752, 2025.

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl.experiments import plot_reconstructions
    >>> rng = np.random.default_rng(0)
    >>> X = {"all light — light": rng.uniform(size=(4, 3, 8, 8)),
    ...      "all light — dark": rng.uniform(size=(4, 3, 8, 8))}
    >>> X_hat = {key: images.clip(0.2, 0.8) for key, images in X.items()}
    >>> axes = plot_reconstructions(X, X_hat, n_images=3,
    ...                             samples={"all light": rng.uniform(size=(3, 3, 8, 8))})
    >>> [ax.get_title() for ax in axes]
    ['all light — light', 'all light — dark', 'all light']
    >>> axes[0].images[0].get_array().shape  # 2 rows of 8 pixels, 3 columns of 8
    (16, 24, 3)
    """
    row_labels = ("original", "reconstruction") if row_labels is None else tuple(row_labels)
    if len(row_labels) != 2:
        raise ValueError(f"row_labels names the two rows of a panel; got {row_labels}.")
    samples = {} if samples is None else samples
    if not reconstructions:
        raise ValueError("reconstructions is empty; pass at least one panel.")
    if set(originals) != set(reconstructions):
        raise ValueError(
            f"originals and reconstructions must have the same keys; reconstructions has "
            f"{[k for k in reconstructions if k not in originals]} that originals lacks and "
            f"originals has {[k for k in originals if k not in reconstructions]} that "
            f"reconstructions lacks.")
    panels = []  # (title, rows of images, the rows' names)
    for key, recon in reconstructions.items():
        top = _images(originals[key], f"originals[{key!r}]")
        bottom = _images(recon, f"reconstructions[{key!r}]")
        if top.shape != bottom.shape:
            raise ValueError(f"reconstructions[{key!r}] has shape {bottom.shape} but "
                             f"originals[{key!r}] has {top.shape}; pass the reconstruction of "
                             f"each original.")
        panels.append((key, [top, bottom], row_labels))
    panels += [(key, [_images(images, f"samples[{key!r}]")], ("prior sample",))
               for key, images in samples.items()]
    if axes is None:
        axes = _panel_grid(len(reconstructions), len(samples), n_images)
    axes = _axes(axes, len(panels), None, f"there are {len(panels)} panels "
                 f"({len(reconstructions)} reconstructions, {len(samples)} samples)")
    for ax, (title, rows, names) in zip(axes, panels, strict=True):
        _show_tiles(ax, [images[:n_images] for images in rows], title, names)
    return axes


def _images(images, name):
    """Check a stack of channel-first images; the array, unconverted."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        hint = ""
        if images.ndim == 4 and images.shape[-1] in (1, 3):
            hint = "; channel-last images become channel-first with images.transpose(0, 3, 1, 2)"
        raise ValueError(f"{name} must have shape (n, C, H, W) with C in {{1, 3}}; got "
                         f"{images.shape}{hint}.")
    if not len(images):
        raise ValueError(f"{name} holds no images.")
    if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
        raise TypeError(f"{name} has dtype {images.dtype}; pass floats in [0, 1] or uint8.")
    return images


def _tile(rows):
    """Rows of (n, C, H, W) images as one (rows * H, n * W[, 3]) picture in [0, 1]."""
    picture = np.concatenate([np.concatenate(list(row), axis=2) for row in rows], axis=1)
    picture = picture / 255 if picture.dtype == np.uint8 else np.clip(picture, 0, 1)
    picture = picture.transpose(1, 2, 0)
    return picture[:, :, 0] if picture.shape[2] == 1 else picture


def _panel_grid(n_reconstructions, n_samples, n_images):
    """Axes for the panels: two columns; sample rows half as tall as reconstruction rows."""
    import matplotlib.pyplot as plt

    n_columns = 1 if n_reconstructions + n_samples == 1 else 2
    rows_r, rows_s = -(-n_reconstructions // n_columns), -(-n_samples // n_columns)
    heights = [2] * rows_r + [1] * rows_s  # rows of images per panel
    tile = 0.85  # inches per image
    figure = plt.figure(figsize=(n_columns * (n_images * tile + 0.9),
                                 sum(h * tile + 0.45 for h in heights)), layout="constrained")
    grid = figure.add_gridspec(len(heights), n_columns, height_ratios=heights)
    cells = [divmod(k, n_columns) for k in range(n_reconstructions)]
    cells += [(rows_r + r, c) for r, c in (divmod(k, n_columns) for k in range(n_samples))]
    return np.array([figure.add_subplot(grid[r, c]) for r, c in cells], dtype=object)


def _show_tiles(ax, rows, title, row_labels):
    """Rows of as many images as one tiled picture, white lines between its images, its rows
    named at the left."""
    picture = _tile(rows)
    n_rows, (n_columns, _, height, width) = len(rows), rows[0].shape
    ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1)
    ax.vlines(np.arange(1, n_columns) * width - 0.5, -0.5, n_rows * height - 0.5,
              color="white", lw=1)
    ax.hlines(np.arange(1, n_rows) * height - 0.5, -0.5, n_columns * width - 0.5,
              color="white", lw=1)
    ax.set_title(str(title), fontsize=9)
    ax.set_xticks([])
    ax.set_yticks((np.arange(n_rows) + 0.5) * height - 0.5, row_labels, fontsize=8)
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)


def _axes(axes, n_panels, panel_size, panels):
    """The given Axes as a flat array, one per panel (``panels`` says how many there are when
    they are not); None: a new row of ``n_panels`` of ``panel_size`` (width, height) inches."""
    import matplotlib.pyplot as plt

    if axes is None:
        width, height = panel_size
        _, axes = plt.subplots(1, n_panels, figsize=(width * n_panels, height), squeeze=False,
                               layout="constrained")
    axes = np.ravel(axes)
    if len(axes) != n_panels:
        raise ValueError(f"axes has {len(axes)} Axes but {panels}.")
    return axes


def _ordered(column, sort=False):
    """The values present in ``column``: a categorical's in its order, others in the order they
    appear, or sorted (without missing values)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [c for c in column.cat.categories if (column == c).any()]
    return sorted(pd.unique(column.dropna())) if sort else list(pd.unique(column))


def _require(frame, columns, name):
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} must be a DataFrame with columns {columns}; missing {missing}.")
