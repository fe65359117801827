"""
===================================================
A PerceptualVAE in a Pipeline: latents to diagnosis
===================================================

:class:`~fairskl.PerceptualVAE` is a scikit-learn transformer: ``transform`` gives each image's
latent means (flattened), so it can be the first step of a
:class:`~sklearn.pipeline.Pipeline`. Here a logistic regression on the VAE's latents predicts
malignancy on the synthetic lesions; we look at what the VAE kept (its reconstructions) and at
whether the classifier on top treats light and dark skin alike. See :ref:`vae` for the model.
"""

# %%
# The pipeline
# ------------
# A narrow VAE (32×32 images, two stages, a 8×8×8 latent map: 512 numbers per image), trained
# for a few epochs without the perceptual term, then a logistic regression. ``fit`` trains the
# VAE on the images alone (it ignores ``y``) and the classifier on its latents and ``y``.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from fairskl import PerceptualVAE
from fairskl.datasets import make_skin_lesions
from fairskl.metrics import group_report

data = make_skin_lesions(n_samples=800, image_size=32, bias=0.0, random_state=0)
skin = np.where(data.sensitive["skin_type"].astype(int) <= 3, "FST I-III", "FST IV-VI")
X_train, X_test, y_train, y_test, _, skin_test = train_test_split(
    data.images, data.target, skin, test_size=0.3, stratify=data.target, random_state=0)

pipe = make_pipeline(
    PerceptualVAE(image_size=32, n_stages=2, channel_width=16, latent_channels=8,
                  perceptual_weight=0.0, lr=2e-3, max_epochs=5, batch_size=32, random_state=0,
                  verbose=0),
    LogisticRegression(C=0.1, max_iter=2000),
)
pipe.fit(X_train, y_train)
print(f"latent features per image: {pipe[0].transform(X_test[:1]).shape[1]}")
print(f"held-out accuracy: {pipe.score(X_test, y_test):.3f}")

# %%
# What the VAE kept
# -----------------
# ``pipe[0]`` is the fitted VAE: held-out images (top) and their reconstructions from the latent
# means (bottom). Lesion borders blur first; the colour of skin and lesion survives.
vae = pipe[0]
images = X_test[:6]
fig, axes = plt.subplots(2, 6, figsize=(9, 3.2), layout="constrained")
for k, (original, rebuilt) in enumerate(zip(images, vae.reconstruct(images), strict=True)):
    axes[0, k].imshow(original.transpose(1, 2, 0))
    axes[1, k].imshow(rebuilt.transpose(1, 2, 0))
for ax in axes.ravel():
    ax.set_axis_off()
axes[0, 0].set_title("original", loc="left", fontsize=9)
axes[1, 0].set_title("reconstruction", loc="left", fontsize=9)

plt.show()

# %%
# The classifier by skin type
# ---------------------------
# :func:`~fairskl.metrics.group_report` on the held-out predictions, with 95% bootstrap
# intervals: the true and false positive rates per group and their gaps.
report = group_report(y_test, pipe.predict_proba(X_test)[:, 1], sensitive_features=skin_test,
                      n_bootstrap=200, random_state=0)
report[report.metric.isin(["tpr", "fpr", "auc", "tpr_difference", "fpr_difference"])].round(3)
