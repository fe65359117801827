"""Resumable downloads with retries (urllib only), for users whose machine has network."""

import contextlib
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from sklearn.utils.parallel import Parallel, delayed

USER_AGENT = "fairskl (https://github.com/fairskl; research data set loader)"
_BLOCK = 1 << 16
_PERMANENT = {400, 401, 403, 404, 410, 451}  # HTTP statuses that a retry will not fix


def _open(request, timeout):
    """The opener; tests replace it (no network in tests)."""
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - user-given URLs


def fetch(url, dest, *, n_retries=3, timeout=30.0, backoff=1.0):
    """Download ``url`` to ``dest``, resuming a partial ``dest.part`` file; return ``dest``.

    The bytes go to ``<dest>.part``; an interrupted download is resumed from its size with an
    HTTP ``Range`` request (a server that ignores it sends the whole file, which restarts the
    part file). Transient failures are retried ``n_retries`` times with exponential backoff;
    permanent ones (404, 403, ...) raise at once. The finished file is renamed onto ``dest``,
    so ``dest`` is never partial.
    """
    dest = Path(dest)
    part = Path(f"{dest}.part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(n_retries + 1):
        start = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": USER_AGENT}
        if start:
            headers["Range"] = f"bytes={start}-"
        try:
            with _open(urllib.request.Request(url, headers=headers), timeout) as resp:
                status = getattr(resp, "status", None) or resp.getcode() or 200
                resumed = start and status == 206
                with open(part, "ab" if resumed else "wb") as f:
                    while block := resp.read(_BLOCK):
                        f.write(block)
            os.replace(part, dest)
            return dest
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and start:  # the part file already holds everything
                os.replace(part, dest)
                return dest
            if exc.code in _PERMANENT or attempt == n_retries:
                raise
        except (urllib.error.URLError, OSError, TimeoutError):
            if attempt == n_retries:
                raise
        time.sleep(backoff * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def fetch_many(jobs, *, n_jobs=None, **kwargs):
    """Download ``[(url, dest), ...]``; return ``[(url, dest, error or None), ...]``."""

    def one(url, dest):
        try:
            fetch(url, dest, **kwargs)
            return url, dest, None
        except Exception as exc:  # noqa: BLE001 - reported per file by the caller
            with contextlib.suppress(OSError):
                if Path(dest).exists() and Path(dest).stat().st_size == 0:
                    os.unlink(dest)
            return url, dest, f"{type(exc).__name__}: {exc}"

    return Parallel(n_jobs=n_jobs, prefer="threads")(delayed(one)(u, d) for u, d in jobs)
