"""
=====================================================
The λ study: cross-validated fairness along a λ grid
=====================================================

:func:`~fairskl.experiments.lambda_study` is the protocol behind ``fairskl reproduce nir``: it
cross-validates :class:`~fairskl.NIRClassifier` for each λ of a grid, with folds stratified by
label × sensitive group, scores every fold on the AUC and on the TPR and FPR gaps (the
sensitive attribute goes to the scoring only, never to the network) — at 0.5 and at the
*matched* operating point, where each λ flags as many images as λ=0 does at 0.5 — and picks λ
with :class:`~fairskl.metrics.TradeoffRefit` on the matched gap. This example runs it at a tiny
scale on the synthetic set, where patients of 60 or more carry a dermoscope vignette that is a
shortcut for the label. See :ref:`nir` for the penalty and :ref:`studies` for the protocol.
"""

# %%
# The study
# ---------
# A small CNN (``backbone="small_cnn"``), 3 folds, 3 values of λ: 9 fits of a few seconds.
import matplotlib.pyplot as plt

from fairskl import NIRClassifier
from fairskl.datasets import make_skin_lesions
from fairskl.experiments import lambda_study, plot_lambda_tradeoff
from fairskl.inspection import NeuronIncidenceDisplay

data = make_skin_lesions(n_samples=900, image_size=16, bias=3.0, random_state=0)
A = data.sensitive["age_group"]
net = NIRClassifier("small_cnn", max_epochs=6, random_state=0, verbose=0)
study = lambda_study(net, data.images, data.target, sensitive_features=A,
                     lambdas=[0.0, 0.1, 1.0], cv=3, max_disparity=0.1, max_auc_drop=0.02,
                     verbose=0)
study.summary.pivot(index="lambda_nir", columns="metric", values="mean").round(3)

# %%
# The trade-off
# -------------
# Each point is a λ: its mean TPR gap between the age groups, at the matched operating point,
# against its mean AUC over the folds, with one standard deviation each way. The star is the λ
# that the trade-off rule picked: the best AUC among the λ whose gap is at most 0.1 and whose
# AUC is at most 0.02 below λ=0's — else λ=0 itself (a λ that flags nobody has no gap, and is
# never chosen).
ax = plot_lambda_tradeoff(study.summary, disparity="tpr_difference_matched",
                          best_lambda=study.best_lambda)
ax.set_title(f"chosen λ = {study.best_lambda:g}")

# %%
# The dominant neurons before and after
# -------------------------------------
# ``refit=True`` (the default) refitted λ=0 and the chosen λ on all the images. Their relative
# incidence shows how unevenly the age groups activate each class's dominant neurons; NIR
# spreads the incidence over more neurons, which lowers its statistic in the panel titles.
for lam in sorted(study.estimators):
    display = NeuronIncidenceDisplay.from_estimator(
        study.estimators[lam], data.images, sensitive_features=A, y=data.target, top_k=4)
    display.figure_.suptitle(f"λ = {lam:g}")
plt.show()
