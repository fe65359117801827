"""Group fairness metrics, bootstrap reports and scorers, built on fairlearn's MetricFrame.

See the :ref:`user guide <metrics>` for the formulas and the NaN policy.
"""

from fairskl.metrics._group_metrics import (
    auc_by_group,
    auc_difference,
    demographic_parity_difference,
    ece_by_group,
    ece_difference,
    equalized_odds_difference,
    equity_scaled_auc,
    fpr_difference,
    mse_by_group,
    mse_difference,
    tpr_difference,
    worst_group_auc,
)
from fairskl.metrics._operating import operating_threshold
from fairskl.metrics._plot import plot_group_report
from fairskl.metrics._report import group_report
from fairskl.metrics._scorers import make_fairness_scorer, make_reconstruction_scorer
from fairskl.metrics._tradeoff import TradeoffRefit

__all__ = [
    "TradeoffRefit",
    "auc_by_group",
    "auc_difference",
    "demographic_parity_difference",
    "ece_by_group",
    "ece_difference",
    "equalized_odds_difference",
    "equity_scaled_auc",
    "fpr_difference",
    "group_report",
    "make_fairness_scorer",
    "make_reconstruction_scorer",
    "mse_by_group",
    "mse_difference",
    "operating_threshold",
    "plot_group_report",
    "tpr_difference",
    "worst_group_auc",
]
