"""
======================================================================
Spread the neuron incidence with NIR and choose λ by a fairness search
======================================================================

A convolutional network trained on images in which a sensitive group leaves a visible trace can
route its positive predictions through a few *dominant* neurons of its penultimate layer, which
the privileged group activates more than the others. Neuron Incidence Redistribution (NIR)
adds a penalty, weighted by λ, that spreads this incidence over the neurons; it needs no
demographic labels. This example chooses λ with :class:`~sklearn.model_selection.GridSearchCV`,
scoring each candidate on the AUC and on the gaps in true and false positive rates between age
groups, audits the chosen model on held-out images with :func:`~fairskl.metrics.group_report`,
and shows the dominant neurons before and after NIR with
:class:`~fairskl.inspection.NeuronIncidenceDisplay`.

See the :ref:`user guide <nir>` for the penalty and :ref:`metrics` for the fairness metrics.
"""

# %%
# Synthetic dermoscopy images with an age shortcut
# ------------------------------------------------
# :func:`~fairskl.datasets.make_skin_lesions` draws lesions whose border and colour carry the
# label. A dark dermoscope vignette usually darkens the corners of the images of patients aged
# 60 or more, and with ``bias=3`` these patients are also far more often malignant: the
# vignette is a shortcut for the label. Malignant lesions of patients under 60 are rare.
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import sklearn
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from skorch.callbacks import LRScheduler
from torch import nn

from fairskl import FairnessWarning, NIRClassifier
from fairskl.datasets import make_skin_lesions
from fairskl.inspection import NeuronIncidenceDisplay
from fairskl.metrics import TradeoffRefit, group_report, make_fairness_scorer

data = make_skin_lesions(n_samples=1200, image_size=16, bias=3.0, random_state=0)
X, y = data.images, data.target
A = data.sensitive["age_group"]  # categorical: "<60", "60+"
pd.crosstab(A, y, rownames=["age group"], colnames=["malignant"])

# %%
# A group-aware split
# -------------------
# Every test fold must hold both labels in both age groups, otherwise a true positive rate is
# undefined and the gap is NaN. We stratify on the label crossed with the age group, for the
# held-out set and for the three cross-validation folds.
strata = A.astype(str) + "/" + y.astype(str)
X_train, X_test, y_train, y_test, A_train, A_test, strata_train, _ = train_test_split(
    X, y, A, strata, test_size=0.3, stratify=strata, random_state=0
)
cv = list(StratifiedKFold(n_splits=3, shuffle=True, random_state=0).split(X_train, strata_train))

# %%
# A small network that returns its penultimate layer
# --------------------------------------------------
# :class:`~fairskl.NIRClassifier` takes a torchvision model by name (``"resnet18"``) or any
# module whose ``forward`` returns ``(logits, penultimate)``. ResNet-18 is made for photographs
# of 224 pixels: on these 16-pixel images its feature maps are down to one pixel from its third
# stage on, its 11 million weights are many for 840 images, and an epoch takes an order of
# magnitude longer on a CPU than with the network below. Three convolution blocks and a global
# average pooling give 32 penultimate neurons; the ReLU before the pooling keeps them
# non-negative, as :func:`~fairskl.inspection.neuron_incidence` assumes.
#
# The module given to :class:`~fairskl.NIRClassifier` is copied at every ``fit``, so all the
# candidates start from the same weights (drawn here after seeding torch) and, with
# ``random_state``, see the batches in the same order: they differ by λ only. The learning rate
# decays to zero along a half cosine, so that each fitted network, and its error rates at the
# 0.5 threshold, do not depend on the last few noisy steps.


class SmallCNN(nn.Module):
    def __init__(self, n_classes=2, width=32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(width, n_classes)

    def forward(self, X):
        features = self.body(X)
        return self.head(features), features


torch.manual_seed(0)
max_epochs = 15
model = NIRClassifier(
    SmallCNN(),
    max_epochs=max_epochs,
    batch_size=64,
    callbacks=[("lr_decay", LRScheduler("CosineAnnealingLR", T_max=max_epochs))],
    random_state=0,
    verbose=0,
)

# %%
# Choosing λ with fairness scorers
# --------------------------------
# ``fit`` never sees the age groups: only the scorers need them. With scikit-learn's metadata
# routing enabled, ``sensitive_features=A_train`` given to the search's ``fit`` is split like
# ``X`` and ``y`` and handed to the scorers made by
# :func:`~fairskl.metrics.make_fairness_scorer`. :class:`~fairskl.metrics.TradeoffRefit`
# refits the candidate with the best mean AUC among those whose mean TPR gap is at most 0.1
# and whose mean AUC is at most 0.02 below λ=0's (a floor: a model that flags nobody has no
# gap); when none is, it refits λ=0 and says so with a :class:`~fairskl.FairnessWarning`,
# which we print. These gaps are read at the threshold 0.5: a λ that flags fewer cases lowers
# its FPR gaps without being fairer, which is why :func:`~fairskl.experiments.lambda_study`
# also reads them at a matched operating point.
sklearn.set_config(enable_metadata_routing=True)

scoring = {
    "auc": "roc_auc",
    "tpr_difference": make_fairness_scorer("tpr_difference"),
    "fpr_difference": make_fairness_scorer("fpr_difference"),
}
search = GridSearchCV(
    model,
    {"lambda_nir": [0, 0.1, 1.0]},
    scoring=scoring,
    refit=TradeoffRefit("auc", "tpr_difference", max_disparity=0.1, max_drop=0.02,
                        reference={"lambda_nir": 0}),
    cv=cv,
)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", FairnessWarning)
    search.fit(X_train, y_train, sensitive_features=A_train)
for warning in caught:
    print(f"{warning.category.__name__}: {warning.message}")

# %%
# The disparity scorers are negated so that higher is better for the search, so
# ``mean_test_tpr_difference`` holds minus the gap; the table turns them back into gaps, with
# the spread of the TPR gap over the three folds.
results = pd.DataFrame(search.cv_results_)
pd.DataFrame(
    {
        "lambda_nir": results["param_lambda_nir"],
        "AUC": results["mean_test_auc"],
        "TPR gap": -results["mean_test_tpr_difference"],
        "TPR gap (sd)": results["std_test_tpr_difference"],
        "FPR gap": -results["mean_test_fpr_difference"],
    }
).round(3)

# %%
# Read the table from the top: does a larger λ lower the TPR and FPR gaps, and what does it
# cost in AUC? Compare each change with the spread over the folds: each test fold holds only
# about twenty malignant lesions of patients under 60, so the TPR of that group, and with it
# the gap, moves by several points from one fold to the next, and a difference between candidates
# smaller than that spread is noise. When no candidate is within the bound and above the AUC
# floor, the refitted one is λ=0.
chosen = search.best_params_["lambda_nir"]
within = -search.cv_results_["mean_test_tpr_difference"] <= 0.1
print(f"refitted: lambda_nir={chosen}; candidates within the bound: {int(within.sum())} of 3")

# %%
# Audit on held-out images
# ------------------------
# We compare the refitted model with λ=0 trained on the same images from the same initial
# weights (if the search kept λ=0, the two columns are the same model).
# :func:`~fairskl.metrics.group_report` gives each metric per group, overall and as a
# disparity between the age groups, with 95% bootstrap intervals; the table shows the overall
# AUC and the disparities (for the worst-group AUC and the equity-scaled AUC, higher is better).
baseline = clone(model).set_params(lambda_nir=0).fit(X_train, y_train)
models = {"lambda_nir=0": baseline, f"lambda_nir={chosen} (refit)": search.best_estimator_}


def summary(report):
    rows = report.query("kind == 'disparity' or (metric == 'auc' and kind == 'overall')")
    rows = rows.set_index(np.where(rows["kind"] == "overall", "auc (overall)", rows["metric"]))
    return rows.apply(lambda r: f"{r.value:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]", axis=1)


reports = {
    name: group_report(
        y_test, clf.predict_proba(X_test)[:, 1], sensitive_features=A_test, random_state=0
    )
    for name, clf in models.items()
}
pd.DataFrame({name: summary(report) for name, report in reports.items()})

# %%
# On held-out images, ask the same questions as in the search, with the intervals in mind:
# the test set holds only a few dozen malignant lesions of patients under 60, so the intervals
# of the TPR gap are wide, and two models whose intervals overlap widely are not told apart by
# this test set. The per-group rates show which group a gap favours: a network that reads the
# vignette gives the 60+ group the higher true *and* false positive rates — it over-diagnoses
# them.
rates = pd.DataFrame(
    {
        name: report.query("metric in ['tpr', 'fpr'] and kind == 'group'")
        .set_index(["metric", "group"])["value"]
        for name, report in reports.items()
    }
)
rates.round(3)

# %%
# The dominant neurons, before and after NIR
# ------------------------------------------
# :class:`~fairskl.inspection.NeuronIncidenceDisplay` draws one panel per predicted class
# (0 benign, 1 malignant). Its columns are the class's five dominant penultimate neurons, the
# most dominant on the left; its rows the age groups, each split by true label (``y=y_test``),
# so that a group that merely has more malignant lesions is not mistaken for one that
# over-activates a neuron. A cell is the group's *relative incidence* on the neuron: above 1,
# the group activates it more than average when the class is predicted. Each title gives the
# largest gap between groups on the dominant neuron, within a true label, and the class's
# NIR statistic: the spread of its incidence across all the neurons (its squared coefficient
# of variation, the ``nir_normalize="mean"`` form of the penalty), 0 when it is even.
#
# The two rows share one colour scale (``vmin``, ``vmax``), so colours compare between them.
fig, axes = plt.subplots(2, 2, figsize=(9, 6), layout="constrained")
for row, (name, clf) in zip(axes, models.items(), strict=True):
    NeuronIncidenceDisplay.from_estimator(
        clf, X_test, sensitive_features=A_test, y=y_test, top_k=5, ax=row, vmin=0.5, vmax=1.5
    )
    row[0].set_ylabel(name)
plt.show()

# %%
# To read it, compare rows with the *same* true label: that malignant lesions (``y=1``) drive
# the neurons of malignant predictions more than benign ones is the label at work, not a bias.
# Start with the leftmost column of each panel of the top row, the class's dominant neuron:
# does one age group activate it more than the other within a label? The paper's diagnosis is
# that the privileged group (here 60+) over-activates the dominant neuron of positive
# predictions, and the disadvantaged group that of negative predictions; the title's gap is
# the largest such difference. Then compare the titles of the two rows: NIR lowers the NIR
# statistic when it spreads the incidence over more neurons. A lower statistic does not by
# itself close the gaps of the tables above: with a shortcut as strong as the vignette, the
# network can spread the age signal over several neurons rather than drop it. Judge NIR on
# the held-out gaps and their intervals; the display tells *where* the predictions come from.

# %%
# Metadata routing is a global setting; turn it off again.
sklearn.set_config(enable_metadata_routing=False)
