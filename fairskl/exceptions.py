"""Warning classes of fairskl."""

__all__ = ["DataWarning", "FairnessWarning"]


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


class DataWarning(UserWarning):
    """Some rows of a real data set were left out, or a cache could not be used.

    The loaders of :mod:`fairskl.datasets` never drop a row silently: a metadata row whose image
    is absent, an image that cannot be decoded, an image that could not be downloaded, or a
    cache that could not be written is counted and reported with this warning. Pass
    ``on_error="raise"`` to a loader to turn undecodable images into an error instead.

    Examples
    --------
    >>> import warnings
    >>> from fairskl.exceptions import DataWarning
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("3 of 10 rows left out: image absent", DataWarning)
    >>> w[0].category.__name__
    'DataWarning'
    """
