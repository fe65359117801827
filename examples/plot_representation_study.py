"""
===============================================================
The representation study: does balancing the training set help?
===============================================================

López-Pérez, Hauberg and Feragen trained a VAE on skin images with different shares of light
(Fitzpatrick 1–2) and dark (5–6) skin, and compared the reconstruction error and the latent
uncertainty of the two groups on held-out images. :func:`~fairskl.experiments.representation_study`
runs that protocol for any estimator; ``fairskl reproduce vae-fairness`` runs it at full size.
Here it runs at a tiny scale on the synthetic set, with a narrow :class:`~fairskl.PerceptualVAE`
trained for two epochs. See :ref:`representation_study` for the protocol.
"""

# %%
# Light and dark skin
# -------------------
# The synthetic images carry a Fitzpatrick skin type; as in the study, types 3–4 are left out.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fairskl import PerceptualVAE
from fairskl.datasets import make_skin_lesions
from fairskl.experiments import plot_representation_study, representation_study

data = make_skin_lesions(n_samples=1500, image_size=32, random_state=0)
skin_type = data.sensitive["skin_type"].astype(int).to_numpy()
keep = (skin_type <= 2) | (skin_type >= 5)
X = data.images[keep]
groups = pd.Categorical(np.where(skin_type[keep] <= 2, "light", "dark"),
                        categories=["light", "dark"])
pd.Series(groups).value_counts()

# %%
# The protocol
# ------------
# For each of two repeats: 60 test images per group, drawn without replacement; then three
# training sets of 200 images drawn with replacement from the rest — all light, half and half,
# all dark — each fitting a clone of the VAE. Each group's test images are scored on the
# reconstruction MSE and on the mean posterior standard deviation of the latent map.
vae = PerceptualVAE(image_size=32, n_stages=2, channel_width=8, latent_channels=8,
                    perceptual_weight=0.0, max_epochs=2, batch_size=32, lr=1e-3, verbose=0)
results = representation_study(vae, X, groups=groups, n_train=200, n_test_per_group=60,
                               n_repeats=2, random_state=0, verbose=0)
results.pivot_table(index="mix", columns=["metric", "group"], values="value",
                    observed=True).round(4)

# %%
# The study's figure
# ------------------
# One box per training mix and test group, over the repeats (two here, ten in the study). With
# ``perceptual_weight=0`` this is a plain VAE: the VGG19 perceptual term needs pretrained weights,
# which the study used and this offline example does not download.
axes = plot_representation_study(results)
plt.show()
