"""Experiments: the representation study, the λ study, method comparisons, the reproductions
and their figures."""

from fairskl.experiments._compare import compare_methods, plot_method_comparison
from fairskl.experiments._figures import (
    plot_error_by_label,
    plot_prevalence,
    plot_reconstructions,
    plot_representation_study,
)
from fairskl.experiments._gaps import adjusted_gap, choose_condition_level, mix_differences
from fairskl.experiments._lambda import lambda_study, plot_lambda_tradeoff
from fairskl.experiments._representation import representation_study
from fairskl.experiments._reproduce_nir import reproduce_nir
from fairskl.experiments._reproduce_vae import reproduce_vae_fairness
from fairskl.experiments._transfer import pretrain_small_cnn

__all__ = [
    "adjusted_gap",
    "choose_condition_level",
    "compare_methods",
    "lambda_study",
    "mix_differences",
    "plot_error_by_label",
    "plot_lambda_tradeoff",
    "plot_method_comparison",
    "plot_prevalence",
    "plot_reconstructions",
    "plot_representation_study",
    "pretrain_small_cnn",
    "representation_study",
    "reproduce_nir",
    "reproduce_vae_fairness",
]
