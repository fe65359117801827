"""A group gap in a per-image score, raw and adjusted for what comes with the group.

Is the dark-skin reconstruction gap skin tone, or the conditions and image sources that dark-skin
images come with? :func:`adjusted_gap` fits, per training mix, the stated linear model

    score ~ group + C(condition) + C(source) + C(repeat)

with :mod:`statsmodels` and reads the group coefficient: the gap between two images of the same
condition and source. It reports it next to the raw gap (the same model without condition and
source), each two ways: the mean over repeats of the per-repeat coefficients with a t-interval
(the repeats are the study's replicates: this interval includes how the gap varies from one
trained model to the next), and the pooled fit with errors clustered by image (an image drawn
into the test sets of several repeats is one cluster).
"""

from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.utils._param_validation import Interval, validate_params

from fairskl._constraints import CI

__all__ = ["adjusted_gap", "choose_condition_level", "mix_differences"]

# Declared constraints (scikit-learn's validate_params) of the arguments the functions share; the
# bodies check what involves the table, and that ``contrast`` names two groups.
_GROUPS = {"table": [pd.DataFrame], "group": [str], "contrast": ["array-like"]}
_REPEATS = {"by": [str], "repeat": [str], "confidence": CI}


@validate_params(
    {**_GROUPS, **_REPEATS, "outcome": [str], "adjust_for": ["array-like"], "cluster": [str]},
    prefer_skip_nested_validation=True,
)
def adjusted_gap(table, outcome="reconstruction_mse", *, group="group", contrast=("light", "dark"),
                 adjust_for=("condition", "source"), by="mix", repeat="repeat", cluster="sample",
                 confidence=0.95):
    """Raw and adjusted gap ``contrast[1] - contrast[0]`` in a per-image score, per ``by``.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per scored image and repeat (the VAE study's ``samples.csv``), with the columns
        named by the other arguments.
    outcome : str, default="reconstruction_mse"
        The per-image score.
    group : str, default="group"
        The group column; rows of other groups than ``contrast`` are left out.
    contrast : tuple of two, default=("light", "dark")
        Reference group and compared group: the gap is ``compared - reference``.
    adjust_for : sequence of str, default=("condition", "source")
        Categorical columns entered as fixed effects in the adjusted model.
    by : str, default="mix"
        One model per value (the training mix).
    repeat : str, default="repeat"
        The replicate: a fixed effect in every model, and the unit of the t-interval.
    cluster : str, default="sample"
        Image identifier: errors of the pooled fit are clustered by it.
    confidence : float, default=0.95
        Level of both intervals, in (0, 1).

    Returns
    -------
    summary : pandas.DataFrame
        One row per ``by`` value and ``model`` ("raw", "adjusted"): ``gap``, ``low``, ``high``
        (t-interval over repeats, ``df``), ``pooled``, ``pooled_low``, ``pooled_high``
        (pooled OLS, errors clustered by ``cluster``), ``n_images``, ``n_repeats`` and the
        ``formula``.
    per_repeat : pandas.DataFrame
        ``by``, ``repeat``, ``model`` and ``gap``: the per-repeat coefficients, for paired
        comparisons between mixes (:func:`mix_differences`).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from fairskl.experiments import adjusted_gap
    >>> rng = np.random.default_rng(0)
    >>> n = 400
    >>> dark = rng.uniform(size=n) < 0.5
    >>> condition = np.where(rng.uniform(size=n) < np.where(dark, 0.8, 0.3), "rough", "smooth")
    >>> mse = 0.01 + 0.02 * (condition == "rough") + rng.normal(0, 0.002, n)  # no tone effect
    >>> table = pd.DataFrame({"group": np.where(dark, "dark", "light"), "condition": condition,
    ...                       "mse": mse, "mix": "balanced", "repeat": np.arange(n) % 4,
    ...                       "sample": np.arange(n)})
    >>> summary, _ = adjusted_gap(table, "mse", adjust_for=["condition"])
    >>> summary.set_index("model")["gap"].round(3).to_dict()
    {'raw': 0.01, 'adjusted': -0.0}
    """
    import statsmodels.formula.api as smf

    columns = [outcome, group, by, repeat, cluster, *adjust_for]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"table has no column {missing}; it has {list(table.columns)}.")
    if len(contrast) != 2:
        raise ValueError(f"contrast must be (reference, compared), got {contrast!r}.")
    data = table[table[group].isin(contrast)]
    absent = [g for g in contrast if not (data[group] == g).any()]
    if absent:
        raise ValueError(f"no row of group {absent} in column {group!r}; its groups are "
                         f"{sorted(map(str, table[group].unique()))}.")
    data = pd.DataFrame({
        "y": data[outcome].astype(float).to_numpy(),
        "compared": (data[group] == contrast[1]).astype(float).to_numpy(),
        "by": data[by].to_numpy(), "repeat": data[repeat].to_numpy(),
        "cluster": pd.factorize(data[cluster])[0],
        **{f"c{i}": data[c].astype(str).to_numpy() for i, c in enumerate(adjust_for)},
    })
    if data["y"].isna().any():
        raise ValueError(f"{outcome!r} has {int(data['y'].isna().sum())} missing values.")
    # each model's fixed effects besides the repeat: as fitted (columns c0, c1, ...), as shown
    fitted = {"raw": "", "adjusted": "".join(f" + C(c{i})" for i in range(len(adjust_for)))}
    shown = {"raw": "", "adjusted": "".join(f" + C({c})" for c in adjust_for)}
    rows, per_repeat = [], []
    for value, part in data.groupby("by", sort=False, observed=True):
        for model in ("raw", "adjusted"):
            formula = f"y ~ compared{fitted[model]}"  # within one repeat
            gaps = {r: smf.ols(formula, cell).fit().params["compared"]
                    for r, cell in part.groupby("repeat", sort=True)}
            per_repeat += [{by: value, repeat: r, "model": model, "gap": gap}
                           for r, gap in gaps.items()]
            pooled = smf.ols(f"{formula} + C(repeat)", part).fit(cov_type="cluster",
                                                cov_kwds={"groups": part["cluster"]})
            low, high = pooled.conf_int(1 - confidence).loc["compared"]
            mean, t_low, t_high, df = t_interval(list(gaps.values()), confidence)
            rows.append({by: value, "model": model, "gap": mean, "low": t_low, "high": t_high,
                         "df": df, "pooled": pooled.params["compared"], "pooled_low": low,
                         "pooled_high": high, "n_images": int(part["cluster"].nunique()),
                         "n_repeats": len(gaps),
                         "formula": f"{outcome} ~ {contrast[1]}{shown[model]} + C({repeat})"})
    return pd.DataFrame(rows), pd.DataFrame(per_repeat)


@validate_params(
    {**_REPEATS, "per_repeat": [pd.DataFrame], "pairs": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def mix_differences(per_repeat, pairs, *, by="mix", repeat="repeat", confidence=0.95):
    """Paired change of the gap between training mixes, with a t-interval over repeats.

    Every mix of a repeat is scored on the same test images, so the change of the gap from
    mix ``a`` to mix ``b`` is taken per repeat, then averaged.

    Parameters
    ----------
    per_repeat : pandas.DataFrame
        The second table of :func:`adjusted_gap`.
    pairs : sequence of (a, b)
        Mixes to compare; the change is ``gap(b) - gap(a)``.
    by : str, default="mix"
        As in :func:`adjusted_gap`.
    repeat : str, default="repeat"
        As in :func:`adjusted_gap`.
    confidence : float, default=0.95
        Level of the intervals, in (0, 1).

    Returns
    -------
    pandas.DataFrame
        ``from``, ``to``, ``model``, ``change``, ``low``, ``high``, ``df``, ``p_value`` (paired
        t-test of no change) and ``n_repeats``.
    """
    wide = per_repeat.pivot_table(index=[repeat, "model"], columns=by, values="gap",
                                  observed=True)
    rows = []
    for a, b in pairs:
        for model in ("raw", "adjusted"):
            part = wide.xs(model, level="model")
            change = (part[b] - part[a]).dropna().to_numpy()
            mean, low, high, df = t_interval(change, confidence)
            spread = change.std() if len(change) > 1 else 0.0
            p = (stats.ttest_1samp(change, 0).pvalue
                 if spread > 1e-9 * max(1.0, np.abs(change).max()) else np.nan)
            rows.append({"from": a, "to": b, "model": model, "change": mean, "low": low,
                         "high": high, "df": df, "p_value": p, "n_repeats": len(change)})
    return pd.DataFrame(rows)


@validate_params(
    {**_GROUPS, "levels": ["array-like"],  # at least one: checked below
     "min_per_group": [Interval(Integral, 1, None, closed="left")],
     "min_share": [Interval(Real, 0, 1, closed="both")]},
    prefer_skip_nested_validation=True,
)
def choose_condition_level(table, levels, *, group="group", contrast=("light", "dark"),
                           min_per_group=5, min_share=0.8):
    """The finest label level whose cells are not thin, for the adjustment.

    A level qualifies when at least ``min_share`` of the images of ``contrast`` carry a label
    with at least ``min_per_group`` images in each group (otherwise the fixed effects rest on
    a few images, and the gap on the labels that both groups share). ``levels`` go from the
    finest to the coarsest; the coarsest is returned when none qualifies.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per image (the VAE study's ``samples.csv``), with the ``levels`` and ``group``
        columns.
    levels : sequence of str
        Label columns, finest first; at least one.
    group : str, default="group"
        The group column; rows of other groups than ``contrast`` are left out.
    contrast : tuple of two, default=("light", "dark")
        The groups whose cells are counted.
    min_per_group : int, default=5
        Images a label needs in each group of ``contrast``.
    min_share : float, default=0.8
        Share of the images, in [0, 1], whose label has ``min_per_group`` images per group.

    Returns
    -------
    level : str
        The chosen element of ``levels``.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairskl.experiments import choose_condition_level
    >>> table = pd.DataFrame({"group": ["light", "dark"] * 6,
    ...                       "fine": list("abcdefabcdef"), "coarse": ["x", "y"] * 6})
    >>> choose_condition_level(table, ["fine", "coarse"], min_per_group=2)
    'coarse'
    """
    levels = list(levels)
    if not levels:
        raise ValueError("levels must name at least one label column, finest first.")
    data = table[table[group].isin(contrast)]
    for level in levels[:-1]:
        counts = pd.crosstab(data[level], data[group])
        thick = counts.index[(counts.reindex(columns=list(contrast), fill_value=0)
                              >= min_per_group).all(axis=1)]
        if data[level].isin(thick).mean() >= min_share:
            return level
    return levels[-1]


def t_interval(values, confidence=0.95):
    """Mean, t-interval bounds and degrees of freedom (NaN bounds with fewer than 2 values)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return (float(values[0]) if len(values) else np.nan), np.nan, np.nan, 0
    mean = float(values.mean())
    half = (stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1)
            / np.sqrt(len(values)))
    return mean, mean - half, mean + half, len(values) - 1
