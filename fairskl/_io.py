"""Atomic file writes: a reader never sees a half-written file, an error leaves none behind."""

import contextlib
import os
import tempfile
from pathlib import Path

import joblib


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from fairskl._io import atomic_path
    >>> target = Path(tempfile.mkdtemp()) / "report.csv"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("a,b\\n1,2\\n")
    >>> target.read_text()
    'a,b\\n1,2\\n'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_text(path, text):
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_joblib(path, obj):
    """Save ``obj`` to ``path`` atomically with :func:`joblib.dump`."""
    with atomic_path(path) as tmp:
        joblib.dump(obj, tmp)
