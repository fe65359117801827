"""Which penultimate neurons a classifier's predictions rest on, and which groups drive them.

:func:`neuron_incidence` measures the *incidence* of each predicted class on the penultimate
neurons — the statistic that the :ref:`NIR penalty <nir>` spreads out — and how strongly each
sensitive group co-activates the dominant neurons; :class:`NeuronIncidenceDisplay` draws it as
one heat map per class, e.g. before and after training with NIR.

:func:`ensemble_disagreement` is the epistemic uncertainty of several fitted
:class:`~fairskl.PerceptualVAE` on each image; the per-model scores are
:meth:`fairskl.PerceptualVAE.uncertainty` (several at once: :func:`vae_uncertainty`).
"""

from fairskl.inspection._incidence import NeuronIncidenceDisplay, neuron_incidence
from fairskl.inspection._uncertainty import ensemble_disagreement, vae_uncertainty

__all__ = ["NeuronIncidenceDisplay", "ensemble_disagreement", "neuron_incidence",
           "vae_uncertainty"]
