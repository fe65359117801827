"""Neuron incidence: each class's dominant penultimate neurons, and the groups that drive them."""

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import Bunch
from sklearn.utils._param_validation import HasMethods, validate_params
from sklearn.utils.validation import check_is_fitted

from fairskl._docstrings import fill_doc
from fairskl.metrics._validation import (
    as_sensitive_frame,
    check_1d,
    check_same_index,
    group_label,
)

__all__ = ["NeuronIncidenceDisplay", "neuron_incidence"]

REQUIRED_METHODS = ["predict_proba", "penultimate"]
INCIDENCE_COLUMNS = [
    "class", "rank", "neuron", "class_incidence", "group", "label", "n", "incidence",
    "relative_incidence",
]
SUMMARY_COLUMNS = [
    "class", "top_neuron", "nir_statistic", "incidence_gap", "max_group", "min_group", "label",
]
_LABEL = "__label__"  # the column of y among the grouping keys

# A fitted logistic regression whose "penultimate layer" is its input: the shared doctest setup.
_EXAMPLE = """
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> class Logistic(LogisticRegression):
    ...     def penultimate(self, X):  # a linear model's last hidden layer is its input
    ...         return np.asarray(X)
    >>> rng = np.random.RandomState(0)
    >>> sex, y = rng.choice(["female", "male"], 200), rng.randint(0, 2, 200)
    >>> # neuron 0 fires for positives, more so for men; neuron 1 fires for negatives
    >>> X = rng.uniform(size=(200, 4))
    >>> X[:, 0] += y + 0.5 * (sex == "male")
    >>> X[:, 1] += 1 - y
    >>> clf = Logistic().fit(X, y)"""


@fill_doc(example=_EXAMPLE)
@validate_params(
    {
        "estimator": [HasMethods(REQUIRED_METHODS)],
        "X": "no_validation",  # in whatever form the estimator takes
        "sensitive_features": ["array-like"],
        "y": ["array-like", None],
        # top_k is checked below: Interval(Integral, 1, None) would take True for 1
    },
    prefer_skip_nested_validation=True,
)
def neuron_incidence(estimator, X, *, sensitive_features, y=None, top_k=5):
    r"""Incidence of each predicted class on the penultimate neurons, overall and per group.

    The *incidence* of class :math:`c` is the probability-weighted mean penultimate activation
    :math:`m_c = \sum_i p_{ic} h_i / \sum_i p_{ic}`, the statistic that :func:`fairskl.nir_penalty`
    spreads out (see the :ref:`user guide <nir>`). Its ``top_k`` largest entries are the class's
    *dominant neurons*. For each of them and each sensitive group :math:`g` — or each cell
    group × true label when ``y`` is given — the same average over the group's samples only,
    :math:`m_{c,g} = \sum_{i \in g} p_{ic} h_i / \sum_{i \in g} p_{ic}`, tells how strongly the
    group activates the neuron when the class is predicted; its ratio to :math:`m_c` is the
    *relative incidence* (> 1: the group over-activates the neuron, the co-activation of [1]_).
    The relative incidences of a neuron average to 1 over the groups, weighted by each group's
    share of the class's total probability.

    Parameters
    ----------
    estimator : fitted classifier
        It must have ``classes_``, ``predict_proba(X)`` returning an array of shape
        (n_samples, n_classes), and ``penultimate(X)`` returning the penultimate activations
        after global pooling, of shape (n_samples, n_neurons), as :class:`fairskl.NIRClassifier`
        does. The activations are assumed non-negative (after a ReLU), as in a CNN.
    X : array-like or dict
        The samples, in whatever form ``estimator`` takes them.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_columns)
        The groups (a Series or DataFrame too). With several columns each intersection is a
        group, labelled like
        ``"sex=male, age=60+"``; with one column the label is the value itself.
    y : array-like of shape (n_samples,), default=None
        True labels. When given, each group is split by true label, so a group that merely has
        more positive samples is not mistaken for one that over-activates a neuron.
    top_k : int, default=5
        How many dominant neurons to report per class (all of them if the layer is smaller).

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        Like :func:`sklearn.inspection.permutation_importance`, a Bunch with

        incidence : pandas.DataFrame
            Tidy, one row per class × dominant neuron × group (× label): ``class``, ``rank``
            (1 = dominant), ``neuron`` (index into the penultimate layer), ``class_incidence``
            (:math:`m_{cd}`), ``group``, ``label`` (NaN when ``y`` is None), ``n`` (samples in
            the cell), ``incidence`` (:math:`m_{c,g,d}`; NaN if the cell has zero probability
            for the class) and ``relative_incidence`` (:math:`m_{c,g,d} / m_{cd}`).
        summary : pandas.DataFrame
            One row per class: ``top_neuron``; ``nir_statistic``, the squared coefficient of
            variation of :math:`m_c` across the neurons,
            :math:`\operatorname{Var}_d(m_{cd}) / (\frac1D \sum_d |m_{cd}|)^2` — exactly the
            class's term of :func:`fairskl.nir_penalty` with ``normalize="mean"``, whose value
            is the mean of this column over the classes (up to its ``eps``); ``incidence_gap``,
            max − min of the relative incidence on the top neuron over the groups, with
            ``max_group`` and ``min_group``. With ``y`` the gap is taken between groups within
            each true label and the largest is reported, its label in ``label``.
        class_incidence : ndarray of shape (n_classes, n_neurons)
            :math:`m_c` for every class and neuron.

    Raises
    ------
    TypeError
        If ``estimator`` lacks ``predict_proba`` or ``penultimate``.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.

    See Also
    --------
    NeuronIncidenceDisplay : Heat maps of the relative incidence, one per class.
    fairskl.nir_penalty : The training penalty on the same incidence.

    References
    ----------
    .. [1] Shoby, Palmer, Kurian, "Neuron Incidence Redistribution (NIR) for Fairness in
       Medical Image Classification", arXiv:2605.19393, 2026.

    Examples
    --------%(example)s
    >>> from fairskl.inspection import neuron_incidence
    >>> result = neuron_incidence(clf, X, sensitive_features=sex, top_k=2)
    >>> result.summary[["class", "top_neuron", "incidence_gap", "max_group"]].round(2)
       class  top_neuron  incidence_gap max_group
    0      0           1           0.03      male
    1      1           0           0.28      male
    >>> top = result.incidence.query("`class` == 1 and rank == 1")
    >>> top[["neuron", "group", "n", "relative_incidence"]].round(2)
       neuron   group    n  relative_incidence
    4       0  female   99                0.85
    5       0    male  101                1.13
    """
    _check_estimator(estimator)
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise ValueError(
            f"top_k must be an int >= 1 (how many dominant neurons to report per class), got "
            f"{top_k!r}."
        )
    check_same_index(X=X, y=y, sensitive_features=sensitive_features)
    groups = as_sensitive_frame(sensitive_features).reset_index(drop=True)
    classes = np.asarray(estimator.classes_)
    proba = _check_output(estimator.predict_proba(X), "predict_proba")
    features = _check_output(estimator.penultimate(X), "penultimate")
    if proba.shape[1] != len(classes):
        raise ValueError(
            f"predict_proba returned {proba.shape[1]} column(s) but the estimator has "
            f"{len(classes)} classes_; it must return one probability column per class."
        )
    n_samples = len(proba)
    lengths = {"penultimate(X)": len(features), "sensitive_features": len(groups)}
    if y is not None:
        y = check_1d(y, name="y")
        lengths["y"] = len(y)
    wrong = {name: n for name, n in lengths.items() if n != n_samples}
    if wrong:
        raise ValueError(
            f"predict_proba(X) has {n_samples} rows but "
            + ", ".join(f"{name} has {n}" for name, n in wrong.items())
            + "; every input must have one row per sample of X."
        )

    mass = proba.sum(axis=0)
    if (mass <= 0).any():
        raise ValueError(
            f"class(es) {classes[mass <= 0].tolist()} have zero total predicted probability on "
            f"X, so their incidence is undefined; inspect data on which they are predicted."
        )
    class_incidence = proba.T @ features / mass[:, None]  # (n_classes, n_neurons)
    top_k = min(top_k, features.shape[1])
    dominant = np.argsort(-class_incidence, axis=1, kind="stable")[:, :top_k]

    keys = list(groups.columns)
    cells = groups.copy()
    if y is not None:
        cells[_LABEL] = y
        keys.append(_LABEL)
    records = []
    for key, cell in cells.groupby(keys, sort=True, observed=True):
        index = cell.index.to_numpy()
        weights = proba[index]
        cell_mass = weights.sum(axis=0)[:, None]
        numerator = weights.T @ features[index]
        incidence = np.divide(
            numerator, cell_mass, out=np.full_like(numerator, np.nan), where=cell_mass > 0
        )
        records.append((group_label(key[: len(groups.columns)], groups.columns),
                        key[-1] if y is not None else np.nan, len(index), incidence))

    rows = []
    for c, label_c in enumerate(classes):
        for rank, neuron in enumerate(dominant[c], start=1):
            overall = class_incidence[c, neuron]
            for group, label, n, incidence in records:
                value = incidence[c, neuron]
                relative = value / overall if overall != 0 else np.nan
                rows.append((label_c, rank, neuron, overall, group, label, n, value, relative))
    frame = pd.DataFrame(rows, columns=INCIDENCE_COLUMNS)
    summary = _summarize(frame, classes, class_incidence, dominant, by_label=y is not None)
    return Bunch(incidence=frame, summary=summary, class_incidence=class_incidence)


def _check_estimator(estimator):
    check_is_fitted(estimator)
    if not hasattr(estimator, "classes_"):
        raise TypeError(
            f"{type(estimator).__name__} has no classes_ attribute; neuron_incidence needs a "
            f"fitted classifier to name the columns of predict_proba."
        )


def _check_output(values, method):
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(
            f"{method}(X) must return a 2-D array (n_samples, n_columns), got shape "
            f"{values.shape}."
        )
    if not np.isfinite(values).all():
        raise ValueError(f"{method}(X) returned NaN or infinite values.")
    return values


def _summarize(frame, classes, class_incidence, dominant, *, by_label):
    rows = []
    for c, label_c in enumerate(classes):
        m = class_incidence[c]
        scale = np.abs(m).mean()
        statistic = float(np.var(m / scale)) if scale > 0 else 0.0
        top = frame[(frame["class"] == label_c) & (frame["rank"] == 1)]
        best = (np.nan, None, None, np.nan)
        for label, part in (top.groupby("label", sort=True) if by_label else [(np.nan, top)]):
            part = part.dropna(subset=["relative_incidence"])
            if len(part) < 2:
                continue
            high = part.loc[part["relative_incidence"].idxmax()]
            low = part.loc[part["relative_incidence"].idxmin()]
            gap = high["relative_incidence"] - low["relative_incidence"]
            if not gap <= best[0]:  # also replaces the initial NaN
                best = (gap, high["group"], low["group"], label)
        gap, high, low, label = best
        rows.append((label_c, dominant[c, 0], statistic, gap, high, low, label))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


@fill_doc(example=_EXAMPLE)
class NeuronIncidenceDisplay:
    """Heat maps of how strongly each group activates each class's dominant neurons.

    One panel per predicted class: rows are the groups (or group × true label cells), columns
    the class's dominant penultimate neurons, most dominant first, and the colour and the
    annotation the relative incidence (> 1: the group over-activates the neuron). Create it with
    :meth:`from_estimator`; to compare two models (before and after NIR), give each display its
    own row of axes.

    Parameters
    ----------
    incidence : pandas.DataFrame
        The ``incidence`` table of :func:`neuron_incidence`.
    summary : pandas.DataFrame, default=None
        Its ``summary`` table; when given, each panel's title shows the class's incidence gap
        and NIR statistic.

    Attributes
    ----------
    ax_ : ndarray of matplotlib Axes of shape (n_classes,)
        One panel per class.
    figure_ : matplotlib Figure
        The figure of the panels.
    im_ : list of matplotlib AxesImage
        The heat map of each panel.
    text_ : list of ndarray of matplotlib Text
        The annotations of each panel, of shape (n_cells, n_neurons); ``None`` when not
        annotated.
    colorbar_ : matplotlib Colorbar or None
        The colour bar shared by the panels.

    See Also
    --------
    neuron_incidence : The numbers behind the display.

    Examples
    --------%(example)s
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from fairskl.inspection import NeuronIncidenceDisplay
    >>> disp = NeuronIncidenceDisplay.from_estimator(clf, X, sensitive_features=sex, top_k=3)
    >>> [ax.get_title().splitlines()[0] for ax in disp.ax_]
    ['class 0', 'class 1']
    >>> [t.get_text() for t in disp.ax_[0].get_yticklabels()]
    ['female', 'male']

    Before and after, one row of panels each, on a shared colour scale:

    >>> import matplotlib.pyplot as plt
    >>> fig, axes = plt.subplots(2, 2, layout="constrained")
    >>> for row, model in zip(axes, [clf, clf]):  # e.g. lambda_nir=0 and lambda_nir=0.1
    ...     _ = NeuronIncidenceDisplay.from_estimator(
    ...         model, X, sensitive_features=sex, ax=row, vmin=0.5, vmax=1.5)
    """

    def __init__(self, incidence, *, summary=None):
        self.incidence = incidence
        self.summary = summary

    @classmethod
    def from_estimator(cls, estimator, X, *, sensitive_features, y=None, top_k=5, ax=None,
                       **kwargs):
        """Compute the incidence with :func:`neuron_incidence` and plot it.

        Parameters
        ----------
        estimator : fitted classifier
            With ``classes_``, ``predict_proba`` and ``penultimate``; see
            :func:`neuron_incidence`.
        X : array-like or dict
            The samples.
        sensitive_features : array-like, Series or DataFrame
            The groups.
        y : array-like of shape (n_samples,), default=None
            True labels; when given, each group is split by label.
        top_k : int, default=5
            Dominant neurons per class.
        ax : array-like of matplotlib Axes, default=None
            One Axes per class; ``None`` creates a figure with one row of panels.
        **kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : NeuronIncidenceDisplay
        """
        result = neuron_incidence(
            estimator, X, sensitive_features=sensitive_features, y=y, top_k=top_k
        )
        return cls(result.incidence, summary=result.summary).plot(ax=ax, **kwargs)

    def plot(self, ax=None, *, cmap="viridis", vmin=None, vmax=None, values_format=".2f",
             colorbar=True):
        """Draw one heat map per class.

        Parameters
        ----------
        ax : array-like of matplotlib Axes, default=None
            One Axes per class (a single Axes when there is one class); ``None`` creates a
            figure with one row of panels.
        cmap : str or matplotlib Colormap, default="viridis"
            Colour map of the relative incidence.
        vmin, vmax : float, default=None
            Limits of the colour scale, shared by the panels; ``None`` takes the range of the
            values. Fix them to compare displays of two models.
        values_format : str or None, default=".2f"
            Format of the annotations; ``None`` draws no annotation.
        colorbar : bool, default=True
            Whether to add a colour bar next to the panels.

        Returns
        -------
        display : NeuronIncidenceDisplay
            ``self``, with ``ax_``, ``figure_``, ``im_``, ``text_`` and ``colorbar_`` set.
        """
        import matplotlib.pyplot as plt

        frame = self.incidence.copy()
        classes = list(dict.fromkeys(frame["class"]))
        frame["cell"] = [
            group if pd.isna(label) else f"{group}, y={label}"
            for group, label in zip(frame["group"], frame["label"], strict=True)
        ]
        if ax is None:
            n_neurons = frame["rank"].max()
            label_width = 0.07 * frame["cell"].str.len().max()
            size = (len(classes) * (0.55 * n_neurons + 0.8) + label_width + 1.2,
                    0.35 * frame["cell"].nunique() + 1.6)
            _, ax = plt.subplots(1, len(classes), figsize=size, squeeze=False,
                                 layout="constrained")
        axes = np.asarray(ax, dtype=object).ravel()
        if len(axes) != len(classes):
            raise ValueError(
                f"ax has {len(axes)} Axes but there are {len(classes)} classes {classes}; pass "
                f"one Axes per class, e.g. a row of plt.subplots(1, {len(classes)})."
            )
        values = frame["relative_incidence"].to_numpy(float)
        finite = values[np.isfinite(values)]
        vmin = (finite.min() if finite.size else 0.0) if vmin is None else vmin
        vmax = (finite.max() if finite.size else 2.0) if vmax is None else vmax
        summary = None if self.summary is None else self.summary.set_index("class")

        self.im_, self.text_ = [], []
        for panel, label_c in zip(axes, classes, strict=True):
            part = frame[frame["class"] == label_c]
            neurons = part.drop_duplicates("rank").sort_values("rank")["neuron"]
            cells = list(dict.fromkeys(part["cell"]))
            grid = part.pivot(index="cell", columns="rank", values="relative_incidence")
            grid = grid.reindex(index=cells).to_numpy(float)
            image = panel.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
            self.im_.append(image)
            self.text_.append(None if values_format is None else _annotate(panel, image, grid,
                                                                           values_format))
            panel.set_xticks(np.arange(len(neurons)), [str(n) for n in neurons])
            panel.set_yticks(np.arange(len(cells)), cells)
            spec = panel.get_subplotspec()
            if spec is not None and not spec.is_first_col():  # the groups are named on the left
                panel.tick_params(labelleft=False)
            panel.set_xlabel("neuron (dominant first)")
            title = f"class {label_c}"
            if summary is not None and label_c in summary.index:
                row = summary.loc[label_c]
                title += f"\ngap {row['incidence_gap']:.2f}, NIR stat {row['nir_statistic']:.3f}"
            panel.set_title(title, fontsize=10)
        self.ax_ = axes
        self.figure_ = axes[0].figure
        self.colorbar_ = None
        if colorbar:
            self.colorbar_ = self.figure_.colorbar(
                self.im_[-1], ax=list(axes), label="relative incidence"
            )
        return self


def _annotate(ax, image, grid, values_format):
    """Write each value on its cell, in a colour that contrasts with the cell (as sklearn does)."""
    low, high = image.cmap(0.0), image.cmap(1.0)
    middle = (image.norm.vmin + image.norm.vmax) / 2
    texts = np.empty(grid.shape, dtype=object)
    for (i, j), value in np.ndenumerate(grid):
        text = "n/a" if np.isnan(value) else format(value, values_format)
        color = high if np.isnan(value) or value < middle else low
        texts[i, j] = ax.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
    return texts
