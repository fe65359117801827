"""Warning classes of fairskl."""

__all__ = ["FairnessWarning"]


class FairnessWarning(UserWarning):
    """A fairness metric could not be computed as asked, or a constraint could not be met.

    Raised, for example, when a group is absent from the data a metric sees (a test fold without
    any sample of a category), when a group has no positives so that its true positive rate is
    undefined, or when no candidate of a grid search satisfies a disparity bound. The metric then
    returns NaN rather than a number computed over fewer groups than the user asked for.

    Examples
    --------
    >>> import warnings
    >>> from fairskl import FairnessWarning
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("group 'c' is absent", FairnessWarning)
    >>> w[0].category.__name__
    'FairnessWarning'
    """
