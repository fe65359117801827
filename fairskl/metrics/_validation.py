"""Input checks shared by the group metrics, the report and the scorers, and the names of
the groups they report."""

import itertools
from numbers import Real

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_consistent_length

ROUTING_HINT = (
    "Pass it to the metric directly, or, inside cross_validate / GridSearchCV, enable metadata "
    "routing with sklearn.set_config(enable_metadata_routing=True) and pass "
    "sensitive_features=A to .fit(...) or params={'sensitive_features': A} to cross_validate."
)

# Declared constraints (scikit-learn's validate_params) of arguments that several public
# functions share; the checks below are those that involve the data or several arguments.
POS_LABEL = [Real, str, "boolean", None]
EXPECTED_GROUPS = ["array-like", dict, None]


def check_same_index(**named):
    """Raise when two pandas inputs carry different indexes.

    fairlearn's ``MetricFrame`` and scikit-learn's routing align rows by position, so two pandas
    objects whose indexes disagree would be silently paired row by row with the wrong partner.
    """
    indexed = [
        (name, obj.index)
        for name, obj in named.items()
        if isinstance(obj, pd.Series | pd.DataFrame)
    ]
    for (name_a, idx_a), (name_b, idx_b) in itertools.pairwise(indexed):
        if not idx_a.equals(idx_b):
            raise ValueError(
                f"{name_a} and {name_b} are pandas objects with different indexes "
                f"({_index_summary(idx_a)} vs {_index_summary(idx_b)}). fairskl pairs rows by "
                f"position, so this would pair each label with another row's group. Align them "
                f"first (e.g. {name_b} = {name_b}.loc[{name_a}.index]) or pass NumPy arrays."
            )


def _index_summary(index):
    head = ", ".join(map(repr, index[:3]))
    return f"[{head}{', ...' if len(index) > 3 else ''}] of length {len(index)}"


def as_sensitive_frame(sensitive_features):
    """Return the sensitive features as a DataFrame, one column per feature.

    Accepts a 1-D or 2-D array-like, a Series (its name is kept) or a DataFrame. Missing values
    raise: a row without a group cannot be counted in any group.
    """
    if sensitive_features is None:
        raise ValueError(f"sensitive_features is required but None was given. {ROUTING_HINT}")
    if isinstance(sensitive_features, pd.DataFrame):
        frame = sensitive_features
    elif isinstance(sensitive_features, pd.Series):
        frame = sensitive_features.to_frame(sensitive_features.name or "sensitive_feature_0")
    else:
        values = np.asarray(sensitive_features, dtype=object)
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2:
            raise ValueError(
                f"sensitive_features must be 1-D or 2-D (one column per feature), got an array "
                f"of shape {values.shape}."
            )
        frame = pd.DataFrame(
            values, columns=[f"sensitive_feature_{i}" for i in range(values.shape[1])]
        )
    if frame.shape[1] == 0:
        raise ValueError("sensitive_features has no columns; give at least one feature.")
    missing = frame.isna().any()
    if missing.any():
        raise ValueError(
            f"sensitive_features has missing values in column(s) {list(missing[missing].index)}. "
            f"Rows without a group cannot be counted; fill them with an explicit group such as "
            f"'unknown', or drop those rows from every input."
        )
    return frame


def group_label(key, columns):
    """The name of a group in a table: its value, or ``"column=value, ..."`` for several columns.

    Parameters
    ----------
    key : tuple
        The group's value in each column of the sensitive features, in column order.
    columns : sequence
        The names of the columns (those of :func:`as_sensitive_frame`).

    Returns
    -------
    label : str
        ``str(value)`` with one column, e.g. ``"male"``; else e.g. ``"sex=male, age=60+"``.

    Examples
    --------
    >>> from fairskl.metrics._validation import group_label
    >>> group_label(("male",), ["sex"]), group_label(("male", "60+"), ["sex", "age"])
    ('male', 'sex=male, age=60+')
    """
    if len(columns) == 1:
        return str(key[0])
    return ", ".join(f"{column}={value}" for column, value in zip(columns, key, strict=True))


def check_1d(y, *, name):
    """``y`` as a 1-D array without missing values (an (n, 1) column is flattened)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {y.shape}.")
    if pd.isna(y).any():
        raise ValueError(f"{name} contains missing values; drop those rows from every input.")
    return y


def binarize(y, *, name, pos_label=None):
    """Return ``y`` as an int array of 0/1, with 1 for ``pos_label``.

    Without ``pos_label`` the values must already be {0, 1}, {False, True} or {-1, 1}.
    """
    y = check_1d(y, name=name)
    values = set(np.unique(y).tolist())
    if pos_label is None:
        if not (values <= {0, 1} or values <= {-1, 1}):
            raise ValueError(
                f"{name} must hold binary labels 0/1 (or -1/1), got values "
                f"{sorted(values, key=str)[:5]}. For other labels pass pos_label=<the positive "
                f"class>; fairskl's classification metrics are binary."
            )
        return (y == 1).astype(int)
    if len(values) > 2:
        raise ValueError(
            f"{name} has more than two distinct values {sorted(values, key=str)[:5]}; the "
            f"classification metrics need binary labels."
        )
    if len(values) == 2 and pos_label not in values:
        raise ValueError(
            f"pos_label={pos_label!r} is not one of the labels of {name} "
            f"{sorted(values, key=str)}; pass one of them (mind the type: 1 is not '1')."
        )
    return (y == pos_label).astype(int)


def check_scores(y_score, *, name="y_score"):
    """Return scores as a finite 1-D float array."""
    y_score = np.asarray(y_score, dtype=float)
    if y_score.ndim == 2 and y_score.shape[1] == 2:
        raise ValueError(
            f"{name} has two columns; pass the score of the positive class only, e.g. "
            f"predict_proba(X)[:, 1]."
        )
    if y_score.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {y_score.shape}.")
    if not np.isfinite(y_score).all():
        raise ValueError(f"{name} contains NaN or infinite values; scores must be finite.")
    return y_score


def check_probabilities(y_prob, *, name="y_prob"):
    """Return probabilities of the positive class as a 1-D float array in [0, 1]."""
    y_prob = check_scores(y_prob, name=name)
    if len(y_prob) and (y_prob.min() < 0 or y_prob.max() > 1):
        raise ValueError(
            f"{name} must be probabilities in [0, 1] for a calibration error, got values from "
            f"{y_prob.min():.4g} to {y_prob.max():.4g}. Pass predict_proba(X)[:, 1]; "
            f"decision_function values are not probabilities."
        )
    return y_prob


def check_group_inputs(y_true, y_pred, sensitive_features, *, y_pred_name="y_pred",
                       expected_groups=None):
    """Check index agreement and lengths; return the sensitive features as a DataFrame.

    With ``expected_groups`` the columns become categoricals over the expected values, so that a
    group absent from the data (a cross-validation fold) is detected rather than skipped.
    """
    check_same_index(
        y_true=y_true, **{y_pred_name: y_pred}, sensitive_features=sensitive_features
    )
    frame = as_sensitive_frame(sensitive_features)
    check_consistent_length(y_true, y_pred, frame)
    if len(frame) == 0:
        raise ValueError(
            f"y_true, {y_pred_name} and sensitive_features are empty (0 samples); the metrics "
            f"need at least one sample in each group. Check the filter or split that produced "
            f"them."
        )
    if expected_groups is not None:
        frame = _with_expected_groups(frame, expected_groups)
    return frame


def _with_expected_groups(frame, expected_groups):
    if not isinstance(expected_groups, dict):
        if frame.shape[1] != 1:
            raise ValueError(
                f"expected_groups must be a dict {{column: groups}} for several sensitive "
                f"columns {list(frame.columns)}, got {type(expected_groups).__name__}."
            )
        expected_groups = {frame.columns[0]: expected_groups}
    unknown = set(expected_groups) - set(frame.columns)
    if unknown:
        raise ValueError(
            f"expected_groups names columns {sorted(unknown, key=str)} that sensitive_features "
            f"does not have; its columns are {list(frame.columns)}."
        )
    frame = frame.copy()
    for column, groups in expected_groups.items():
        groups = list(groups)
        extra = set(frame[column].unique()) - set(groups)
        if extra:
            raise ValueError(
                f"sensitive_features column {column!r} holds {sorted(extra, key=str)}, which "
                f"expected_groups does not list ({groups}); add them to expected_groups."
            )
        frame[column] = pd.Categorical(frame[column], categories=groups)
    return frame


def absent_categories(frame):
    """Categories of categorical sensitive columns that no row holds (e.g. in a CV fold)."""
    absent = {}
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            unused = set(frame[column].cat.categories) - set(frame[column].unique())
            if unused:
                absent[column] = sorted(unused, key=str)
    return absent
