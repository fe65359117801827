"""Shared pytest fixtures."""

import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything():
    """Seed Python, NumPy and torch before every test, so that no test depends on the order."""
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - the legacy global state is what some code still uses
    torch.manual_seed(0)


@pytest.fixture
def dump_dom(tmp_path):
    """``dump_dom(path)``: the DOM of a local HTML file after headless Chromium ran its scripts.

    Skips where no Chromium is installed (Debian: ``apt-get install chromium``).
    """
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    if browser is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")

    def dump(path):
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu",
                   f"--user-data-dir={tmp_path / 'chromium-profile'}",
                   "--virtual-time-budget=10000", "--dump-dom", Path(path).resolve().as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    return dump
