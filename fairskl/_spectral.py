"""Spectral decoupling: cross-entropy plus a penalty on the squared logits."""

import numbers

from sklearn.utils._param_validation import Interval

from fairskl._base import (
    SHARED_ATTRIBUTES,
    SHARED_PARAMETERS,
    _RegularizedClassifier,
)
from fairskl._docstrings import fill_doc

__all__ = ["SpectralDecouplingClassifier"]


@fill_doc(shared=SHARED_PARAMETERS, attributes=SHARED_ATTRIBUTES)
class SpectralDecouplingClassifier(_RegularizedClassifier):
    r"""Classifier trained with spectral decoupling: cross-entropy + (λ/2)·mean(logits²).

    Pezeshki et al.'s remedy for gradient starvation, where a network learns the dominant
    (possibly spurious) features and starves the others: penalising the squared logits
    decouples the features' learning dynamics. It needs no demographic labels and acts on the
    network's output, not on its penultimate neurons: the control for the question "is NIR just
    a generic activation penalty?". The mean runs over the batch and the logits (one per
    class). See :ref:`mitigations` for the equation.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="resnet18"
        As in :class:`NIRClassifier`: a torchvision model by name, ``"small_cnn"``, ``"mlp"``
        for 2-D X, or a module returning ``(logits, penultimate)``.
    lambda_sd : float, default=0.1
        Weight λ ≥ 0 of the penalty; 0 gives the plain classifier.
%(shared)s
    Attributes
    ----------
%(attributes)s    history_ : skorch History
        Per epoch ``train_loss`` (= ``train_ce`` + λ ``train_sd``), ``train_ce``, ``train_sd``
        (= mean(logits²)/2) and, with a validation split, their ``valid_`` counterparts.

    See Also
    --------
    NIRClassifier, CVaRDROClassifier, JTTClassifier

    References
    ----------
    .. [1] Pezeshki, Kaba, Bengio, Courville, Precup, Lajoie, "Gradient Starvation: A Learning
       Proclivity in Neural Networks", NeurIPS 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl import SpectralDecouplingClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 5)).astype("float32")
    >>> y = (X[:, 0] > 0).astype(int)
    >>> clf = SpectralDecouplingClassifier("mlp", lambda_sd=0.1, lr=1e-2, max_epochs=20,
    ...                                    random_state=0, verbose=0).fit(X, y)
    >>> bool(clf.score(X, y) > 0.9), {"train_ce", "train_sd"} <= set(clf.history[-1])
    (True, True)
    """

    _loss_terms = ("ce", "sd")
    _strength_hint = " or lambda_sd"

    _parameter_constraints = {
        **_RegularizedClassifier._parameter_constraints,
        "lambda_sd": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(self, backbone="resnet18", *, lambda_sd=0.1, **kwargs):
        super().__init__(backbone, **kwargs)
        self.lambda_sd = lambda_sd

    def regularized_loss(self, logits, features, losses, sample_weight):
        ce = losses.mean()
        sd = 0.5 * logits.square().mean()
        return ce + self.lambda_sd * sd, {"ce": ce, "sd": sd}
