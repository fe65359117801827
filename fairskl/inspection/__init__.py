"""Which penultimate neurons a classifier's predictions rest on, and which groups drive them.

:func:`neuron_incidence` measures the *incidence* of each predicted class on the penultimate
neurons — the statistic that the :ref:`NIR penalty <nir>` spreads out — and how strongly each
sensitive group co-activates the dominant neurons; :class:`NeuronIncidenceDisplay` draws it as
one heat map per class, e.g. before and after training with NIR.
"""

from fairskl.inspection._incidence import NeuronIncidenceDisplay, neuron_incidence

__all__ = ["NeuronIncidenceDisplay", "neuron_incidence"]
