"""Operating points: where a score is cut into a decision, named once for metrics and audits.

A gap in TPR or FPR depends on the threshold as much as on the model: a model that flags fewer
cases has smaller FPR gaps without being any fairer. So fairskl names the operating point of
every gap it reports, with one value understood everywhere:

- a number ``t``: the fixed threshold ``score >= t`` (``0.5`` for probabilities);
- ``("rate", r)``: the threshold at which a fraction ``r`` of the rows is flagged positive;
- ``("tpr", t)``: the threshold at which the overall sensitivity is ``t`` (e.g. MEDFAIR's
  operating point, a sensitivity read at a fixed specificity, is ``("fpr", 0.2)``);
- ``("fpr", f)``: the threshold at which the overall false-positive rate is at most ``f``.

The last three are *fitted*: :func:`operating_threshold` turns them into a number on data that
must not be the rows later scored (out-of-fold predictions of the training part, or a
validation split). A threshold fitted on the test rows themselves makes a test-set choice
look like a property of the model.
"""

import numbers

import numpy as np
from sklearn.utils._param_validation import validate_params

from fairskl.metrics._validation import binarize, check_scores

__all__ = ["check_operating_point", "describe_operating_point", "operating_threshold"]

KINDS = ("rate", "tpr", "fpr")


def check_operating_point(operating_point, name="operating_point"):
    """``operating_point`` validated: a float, or a tuple ``(kind, fraction)``."""
    if isinstance(operating_point, numbers.Real) and not isinstance(operating_point, bool):
        if not np.isfinite(operating_point):
            raise ValueError(f"{name} must be a finite threshold, got {operating_point!r}.")
        return float(operating_point)
    if (isinstance(operating_point, tuple | list) and len(operating_point) == 2
            and operating_point[0] in KINDS and isinstance(operating_point[1], numbers.Real)
            and not isinstance(operating_point[1], bool) and 0 <= operating_point[1] <= 1):
        return (str(operating_point[0]), float(operating_point[1]))
    raise ValueError(
        f"{name} must be a threshold (a number, e.g. 0.5) or a pair (kind, fraction) with kind "
        f"in {KINDS} and a fraction in [0, 1], e.g. ('rate', 0.25) to flag a quarter of the "
        f"rows or ('fpr', 0.2) for a specificity of 80%; got {operating_point!r}."
    )


def describe_operating_point(operating_point):
    """A short name for a table header, e.g. ``"threshold 0.5"`` or ``"flag rate 25.8%"``."""
    point = check_operating_point(operating_point)
    if isinstance(point, float):
        return f"threshold {point:g}"
    kind, value = point
    label = {"rate": "flag rate", "tpr": "TPR", "fpr": "FPR"}[kind]
    return f"{label} {100 * value:.3g}%"


@validate_params(
    {
        "y_true": ["array-like", None],
        "y_score": ["array-like"],
        # a number or a pair (kind, fraction): check_operating_point, shared with the scorers
        "operating_point": "no_validation",
    },
    prefer_skip_nested_validation=True,
)
def operating_threshold(y_true, y_score, operating_point):
    """The threshold that puts a model at ``operating_point`` on the given rows.

    Fit it on rows that are not scored later (a validation split, out-of-fold predictions),
    then pass it as ``threshold`` to :func:`group_report` or compare it across models.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or None
        0/1 labels; needed for ``("tpr", t)`` and ``("fpr", f)`` only.
    y_score : array-like of shape (n_samples,)
        Scores of the positive class.
    operating_point : float or tuple
        A number is returned as it is; ``("rate", r)`` gives the threshold at which a fraction
        ``r`` of the rows has ``score >= threshold``; ``("tpr", t)`` the largest threshold at
        which at least a fraction ``t`` of the positives is flagged; ``("fpr", f)`` the
        smallest threshold at which at most a fraction ``f`` of the negatives is flagged.
        Tied scores are flagged together, so the fraction reached can differ from the one asked
        for by the share of the tie.

    Returns
    -------
    threshold : float
        Rows with ``score >= threshold`` are predicted positive (``inf`` flags none).

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl.metrics import operating_threshold
    >>> score = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    >>> y = np.array([0, 0, 1, 0, 0, 1, 1, 1])
    >>> operating_threshold(y, score, 0.5)
    0.5
    >>> float(operating_threshold(None, score, ("rate", 0.25)))  # the top quarter
    0.8
    >>> float(operating_threshold(y, score, ("tpr", 0.75)))  # 3 of the 4 positives
    0.7
    >>> t = operating_threshold(y, score, ("fpr", 0.25))  # at most 1 of the 4 negatives
    >>> float(np.mean(score[y == 0] >= t))
    0.25
    """
    point = check_operating_point(operating_point)
    if isinstance(point, float):
        return point
    kind, fraction = point
    score = check_scores(np.asarray(y_score), name="y_score")
    if kind != "rate":
        if y_true is None:
            raise ValueError(f"operating_point={point!r} needs y_true (the {kind.upper()} is "
                             f"defined on the positives or the negatives).")
        y = binarize(y_true, name="y_true")
        if len(y) != len(score):
            raise ValueError(f"y_true has {len(y)} rows but y_score has {len(score)}.")
        score = score[y == 1] if kind == "tpr" else score[y == 0]
        if not len(score):
            which = "positive" if kind == "tpr" else "negative"
            raise ValueError(f"operating_point={point!r} needs {which} rows in y_true; there "
                             f"are none.")
    descending = np.sort(score)[::-1]
    if kind == "fpr":  # at most floor(f * n) negatives flagged
        k = int(np.floor(fraction * len(descending) + 1e-9))
        if k >= len(descending):
            return float(descending[-1])
        return float(np.nextafter(descending[k], np.inf))
    k = int(np.ceil(fraction * len(descending) - 1e-9)) if kind == "tpr" \
        else int(np.round(fraction * len(descending)))
    if k == 0:
        return float(np.inf)
    return float(descending[k - 1])
