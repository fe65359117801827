"""fairskl: measure and mitigate group unfairness of deep image models, the scikit-learn way."""

from fairskl._nir import NIRClassifier, nir_penalty
from fairskl._vae import PerceptualVAE
from fairskl.exceptions import FairnessWarning

__version__ = "0.1.0"

__all__ = ["FairnessWarning", "NIRClassifier", "PerceptualVAE", "__version__", "nir_penalty"]
