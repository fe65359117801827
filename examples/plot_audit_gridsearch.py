"""
==========================================================
Audit a grid search for group fairness and trade off AUC
==========================================================

A classifier can score well by learning a *shortcut*: an image feature that goes with a
sensitive group rather than with the disease. This example tunes a simple image classifier with
:class:`~sklearn.model_selection.GridSearchCV`, scores every candidate on the gap in true and
false positive rates between age groups as well as on the AUC, and refits the best candidate
whose gap stays under a bound with :class:`~fairskl.metrics.TradeoffRefit`. It then audits the
chosen model on held-out images with :func:`~fairskl.metrics.group_report`.

See the :ref:`user guide <metrics>` for the definitions of the metrics.
"""

# %%
# Synthetic dermoscopy images
# ---------------------------
# :func:`~fairskl.datasets.make_skin_lesions` draws lesions whose border and colour carry the
# label. In the images of patients aged 60 or more, a dark dermoscope vignette usually darkens
# the corners, and with ``bias=2`` these patients are also more often malignant: the vignette
# is a shortcut for the label.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from fairskl.datasets import make_skin_lesions
from fairskl.metrics import (
    TradeoffRefit,
    group_report,
    make_fairness_scorer,
    plot_group_report,
)

data = make_skin_lesions(n_samples=2000, image_size=16, bias=2.0, random_state=0)
X, y = data.images, data.target
A = data.sensitive["age_group"]  # categorical: "<60", "60+"
pd.crosstab(A, y, rownames=["age group"], colnames=["malignant"])

# %%
# A group-aware split
# -------------------
# Each test fold must hold both labels in both age groups, otherwise a true positive rate is
# undefined and the disparity is NaN (with a :class:`~fairskl.FairnessWarning`). We stratify
# on the label crossed with the group, for the held-out set and for the cross-validation folds.
strata = A.astype(str) + "/" + y.astype(str)
X_train, X_test, y_train, y_test, A_train, A_test, strata_train, _ = train_test_split(
    X, y, A, strata, test_size=0.3, stratify=strata, random_state=0
)
cv = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(X_train, strata_train))

# %%
# The model: crop, flatten, logistic regression
# ---------------------------------------------
# The images (N×3×H×W) are cropped by ``margin`` pixels on each side and flattened for a
# logistic regression. Cropping removes the corners where the vignette lies, but also some of
# the lesion: the grid search explores this trade-off together with the regularisation ``C``.


def crop_and_flatten(images, margin=0):
    side = images.shape[-1]
    return images[..., margin : side - margin, margin : side - margin].reshape(len(images), -1)


model = Pipeline(
    [
        ("crop", FunctionTransformer(crop_and_flatten)),
        ("scale", StandardScaler()),
        ("clf", LogisticRegression(class_weight="balanced", solver="liblinear")),
    ]
)
param_grid = {
    "crop__kw_args": [{"margin": 0}, {"margin": 2}, {"margin": 4}],
    "clf__C": [1e-3, 1e-2],
}

# %%
# Fairness scorers and the refit rule
# -----------------------------------
# The fairness scorers need ``sensitive_features`` for each test fold. scikit-learn's metadata
# routing passes them: enable it, then give ``sensitive_features=A_train`` to ``fit``; the
# search splits it like ``X`` and ``y``. Disparity scorers are negated so that higher is
# better for the search, as scikit-learn does for losses: ``mean_test_tpr_difference`` holds
# minus the gap. ``TradeoffRefit`` refits the candidate with the best mean AUC among those with a
# mean TPR gap of at most 0.1.
sklearn.set_config(enable_metadata_routing=True)

scoring = {
    "auc": "roc_auc",
    "tpr_difference": make_fairness_scorer("tpr_difference"),
    "fpr_difference": make_fairness_scorer("fpr_difference"),
}
search = GridSearchCV(
    model,
    param_grid,
    scoring=scoring,
    refit=TradeoffRefit("auc", "tpr_difference", max_disparity=0.1),
    cv=cv,
)
search.fit(X_train, y_train, sensitive_features=A_train)

columns = [
    "param_crop__kw_args",
    "param_clf__C",
    "mean_test_auc",
    "mean_test_tpr_difference",
    "mean_test_fpr_difference",
    "rank_test_auc",
]
pd.DataFrame(search.cv_results_)[columns].round(3)

# %%
# The uncropped images give the best AUC, largely through the shortcut: their TPR and FPR gaps
# between age groups are several times the bound. The refit rule trades some AUC for a model
# within the bound:
print("refitted candidate:", search.best_index_, search.best_params_)

# %%
# Audit on held-out images
# ------------------------
# :func:`~fairskl.metrics.group_report` gives each metric per group, overall and as a
# disparity, with 95% bootstrap intervals. We compare the refitted model with the best-AUC
# candidate (uncropped images), refitted on the same training set. The table shows each
# disparity with its interval; for the worst-group AUC and ES-AUC, higher is better.
best_auc = search.cv_results_["params"][np.argmax(search.cv_results_["mean_test_auc"])]
shortcut_model = sklearn.clone(model).set_params(**best_auc).fit(X_train, y_train)

reports = {
    "best AUC": group_report(
        y_test,
        shortcut_model.predict_proba(X_test)[:, 1],
        sensitive_features=A_test,
        random_state=0,
    ),
    "TradeoffRefit": group_report(
        y_test,
        search.predict_proba(X_test)[:, 1],
        sensitive_features=A_test,
        random_state=0,
    ),
}


def disparities(report):
    rows = report.query("kind == 'disparity'").set_index("metric")
    return rows.apply(lambda r: f"{r.value:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]", axis=1)


pd.DataFrame({name: disparities(report) for name, report in reports.items()})

# %%
# :func:`~fairskl.metrics.plot_group_report` draws the per-group values with their intervals;
# each panel's title gives the gap between groups. The shortcut model flags far more of the 60+
# group, malignant or not: its true and false positive rates are much higher there. Its AUC
# within each age group is also lower than its overall AUC — part of what it ranks well is the
# age group itself. After cropping, the rates of the two groups are much closer.
metrics = ["tpr", "fpr", "auc"]
fig, axes = plt.subplots(2, len(metrics), figsize=(9, 6.5), layout="constrained")
for row, (name, report) in zip(axes, reports.items(), strict=True):
    plot_group_report(report, metrics=metrics, axes=row)
    row[0].set_ylabel(name)
plt.show()

# %%
# Metadata routing is a global setting; turn it off again.
sklearn.set_config(enable_metadata_routing=False)
