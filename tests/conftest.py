"""Shared pytest fixtures."""

import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything():
    """Seed Python, NumPy and torch before every test, so that no test depends on the order."""
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - the legacy global state is what some code still uses
    torch.manual_seed(0)
