"""fairskl: measure and mitigate group unfairness of deep image models, the scikit-learn way."""

from fairskl._dfr import DFRClassifier
from fairskl._dro import CVaRDROClassifier
from fairskl._group_dro import GroupDROClassifier
from fairskl._jtt import JTTClassifier
from fairskl._lff import LfFClassifier
from fairskl._nir import NIRClassifier, nir_penalty
from fairskl._postprocess import ThresholdOptimizedClassifier
from fairskl._reweight import GroupBalancedClassifier
from fairskl._spectral import SpectralDecouplingClassifier
from fairskl._vae import PerceptualVAE
from fairskl.exceptions import FairnessWarning

__version__ = "0.1.0"

__all__ = [
    "CVaRDROClassifier",
    "DFRClassifier",
    "FairnessWarning",
    "GroupBalancedClassifier",
    "GroupDROClassifier",
    "JTTClassifier",
    "LfFClassifier",
    "NIRClassifier",
    "PerceptualVAE",
    "SpectralDecouplingClassifier",
    "ThresholdOptimizedClassifier",
    "__version__",
    "nir_penalty",
]
