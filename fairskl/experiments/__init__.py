"""Experiments: baseline models, the representation study and the figures of the studies."""

from fairskl.experiments._audit import run_baseline_audit
from fairskl.experiments._baseline import make_baseline_cnn
from fairskl.experiments._lambda import lambda_study, plot_lambda_tradeoff
from fairskl.experiments._nir_study import reproduce_nir
from fairskl.experiments._plots import (
    plot_error_by_label,
    plot_prevalence,
    plot_representation_study,
)
from fairskl.experiments._representation import representation_study
from fairskl.experiments._reproduce import reproduce_vae_fairness

__all__ = [
    "lambda_study",
    "make_baseline_cnn",
    "plot_error_by_label",
    "plot_lambda_tradeoff",
    "plot_prevalence",
    "plot_representation_study",
    "representation_study",
    "reproduce_nir",
    "reproduce_vae_fairness",
    "run_baseline_audit",
]
