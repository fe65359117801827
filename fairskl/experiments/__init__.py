"""Experiments: baseline models and studies of their group fairness."""

from fairskl.experiments._audit import run_baseline_audit
from fairskl.experiments._baseline import make_baseline_cnn

__all__ = ["make_baseline_cnn", "run_baseline_audit"]
