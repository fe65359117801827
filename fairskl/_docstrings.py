"""Docstrings that share blocks of text: one helper fills their ``%(name)s`` placeholders.

The estimators share their common parameters and attributes (``fairskl._base``), the
inspection tools a doctest setup; each docstring names the block it takes, e.g. ``%(shared)s``.
"""

import functools

__all__ = ["fill_doc"]


def fill_doc(obj=None, /, **blocks):
    """Replace each ``%(name)s`` in the docstring of ``obj`` by ``blocks[name]``.

    Parameters
    ----------
    obj : class or function, optional
        What to document. Without it, ``fill_doc(**blocks)`` is a decorator.
    **blocks : str
        The text of each placeholder, placed as it is (indentation included).

    Returns
    -------
    obj or callable
        ``obj``, its docstring filled; or the decorator that fills it.

    Raises
    ------
    ValueError
        If the docstring lacks a placeholder of ``blocks``.

    Examples
    --------
    >>> from fairskl._docstrings import fill_doc
    >>> @fill_doc(answer="42")
    ... def f():
    ...     '''The answer is %(answer)s.'''
    >>> f.__doc__
    'The answer is 42.'
    """
    if obj is None:
        return functools.partial(fill_doc, **blocks)
    doc = obj.__doc__
    if doc is None:  # docstrings stripped (python -OO)
        return obj
    for name, text in blocks.items():
        placeholder = f"%({name})s"
        if placeholder not in doc:
            raise ValueError(f"The docstring of {obj.__qualname__} has no {placeholder} to fill; "
                             f"add it where the block goes, or do not pass {name}=.")
        doc = doc.replace(placeholder, text)
    obj.__doc__ = doc
    return obj
