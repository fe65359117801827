"""Just Train Twice (JTT): train, find the training errors, retrain with them up-weighted."""

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import column_or_1d

from fairskl._base import (
    SHARED_ATTRIBUTES,
    SHARED_PARAMETERS,
    _RegularizedClassifier,
    weighted_loss,
)
from fairskl._docstrings import fill_doc

__all__ = ["JTTClassifier"]


@fill_doc(shared=SHARED_PARAMETERS, attributes=SHARED_ATTRIBUTES)
class JTTClassifier(_RegularizedClassifier):
    r"""Just Train Twice: up-weight the samples that a first, plain model gets wrong.

    ``fit`` trains the network by plain cross-entropy for ``identification_epochs`` epochs,
    takes the training samples it misclassifies as the *error set* :math:`E`, then trains the
    network again from its initial weights for ``max_epochs`` epochs with the samples of
    :math:`E` weighted ``upweight`` (:math:`\lambda_{up}`) and the others 1: each batch's
    loss is :math:`\sum_i w_i \ell_i / \sum_i w_i` (see :ref:`mitigations`). It needs no
    demographic labels: the error set stands in for the groups a model serves badly. Liu et
    al. up-*sample* :math:`E` by :math:`\lambda_{up}`; weighting the loss is the same in
    expectation and keeps epochs the same length. Both parameters are searchable with
    :class:`~sklearn.model_selection.GridSearchCV`.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="resnet18"
        As in :class:`NIRClassifier`: a torchvision model by name, ``"small_cnn"``, ``"mlp"``
        for 2-D X, or a module returning ``(logits, penultimate)``.
    identification_epochs : int, default=2
        Epochs T of the first, plain training.
    upweight : float, default=10.0
        Weight :math:`\lambda_{up} \geq 1` of the error set in the second training (1 = plain
        ERM twice). Liu et al. search values from 5 to 100.
%(shared)s
    Attributes
    ----------
%(attributes)s    error_set_ : ndarray of bool, shape (n_samples,)
        Which training samples the first model misclassified.
    identification_history_ : skorch History
        The first training's history.
    history_ : skorch History
        The second training's: per epoch ``train_loss`` (= ``train_weighted_ce``),
        ``train_ce`` (unweighted) and, with a validation split, their ``valid_``
        counterparts.

    See Also
    --------
    NIRClassifier, CVaRDROClassifier, SpectralDecouplingClassifier

    Notes
    -----
    ``partial_fit`` on an unfitted classifier runs ``fit``; on a fitted one it continues the
    second training on the data given, with the samples that the current network
    misclassifies up-weighted. With ``checkpoint=DIR`` the first training is checkpointed in
    ``DIR/identification`` and the second in ``DIR``: a resumed fit takes the error set
    from the first network as it was saved.

    References
    ----------
    .. [1] Liu, Haghgoo, Chen, Raghunathan, Koh, Sagawa, Liang, Finn, "Just Train Twice:
       Improving Group Robustness without Training Group Information", ICML 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl import JTTClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 5)).astype("float32")
    >>> y = (X[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    >>> clf = JTTClassifier("mlp", identification_epochs=2, upweight=5, lr=1e-2,
    ...                     max_epochs=20, random_state=0, verbose=0).fit(X, y)
    >>> bool(0 < clf.error_set_.mean() < 0.5), len(clf.identification_history_)
    (True, 2)
    """

    _loss_terms = ("ce", "weighted_ce")
    _strength_hint = " or upweight"
    #: whether the first training is running (it is checkpointed in a directory of its own)
    _identifying = False

    _parameter_constraints = {
        **_RegularizedClassifier._parameter_constraints,
        "identification_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "upweight": [Interval(numbers.Real, 1, None, closed="left")],
    }

    def __init__(self, backbone="resnet18", *, identification_epochs=2, upweight=10.0,
                 **kwargs):
        super().__init__(backbone, **kwargs)
        self.identification_epochs = identification_epochs
        self.upweight = upweight

    def fit(self, X, y, **fit_params):
        """Train twice: plain for ``identification_epochs``, then with the error set
        up-weighted for ``max_epochs``. X as in :class:`NIRClassifier` (a dict X's groups are
        not used by the loss; a grouped ``train_split`` reads them)."""
        return self._fit_twice(X, y, None, **fit_params)

    def partial_fit(self, X, y, classes=None, **fit_params):
        """``fit`` for an unfitted classifier; a fitted one trains ``max_epochs`` more epochs.

        On a fitted classifier, the samples of X that the current network misclassifies are
        weighted ``upweight`` (the error set of this data, found by the network at hand).
        """
        if "_routing_method" in fit_params:  # the second training, called by skorch's fit
            return super().partial_fit(X, y, classes=classes, **fit_params)
        if not (self.initialized_ and hasattr(self, "label_encoder_")):
            return self._fit_twice(X, y, classes, **fit_params)
        X, groups = self._check_X(X)
        y = self.label_encoder_.transform(column_or_1d(y))
        wrong = self.predict_proba(X).argmax(axis=1) != y
        data = self._training_data(X, y, groups, np.where(wrong, self.upweight, 1.0))
        return super(_RegularizedClassifier, self).partial_fit(data, y, classes=classes,
                                                               **fit_params)

    def _fit_twice(self, X, y, classes, **fit_params):
        X, y, groups = self._prepare(X, y, classes)
        self._identifying = True
        try:
            self.initialize()
            data = self._training_data(X, y, groups, np.ones(len(y)))
            self.notify("on_train_begin", X=data, y=y)  # a checkpoint of it is loaded here
            try:  # as skorch's partial_fit: EarlyStopping ends training by KeyboardInterrupt
                epochs = self._remaining_epochs(self.identification_epochs)
                self.fit_loop(data, y, epochs=epochs, **fit_params)
            except KeyboardInterrupt:
                pass
            self.notify("on_train_end", X=data, y=y)
        finally:
            self._identifying = False
        self.error_set_ = self.predict_proba(X).argmax(axis=1) != y
        self.identification_history_, self.history_ = self.history_, None  # kept, not cleared
        data = self._training_data(X, y, groups, np.where(self.error_set_, self.upweight, 1.0))
        self.initialize()  # the second network starts from the same initial weights
        # skorch's fit without its initialize (done just above, also under warm_start)
        return super(_RegularizedClassifier, self).partial_fit(data, y, _routing_method="fit",
                                                               **fit_params)

    def _checkpoint_directory(self):
        # checkpoint=DIR: the first training in DIR/identification, the second in DIR
        directory = super()._checkpoint_directory()
        return directory / "identification" if self._identifying else directory

    def regularized_loss(self, logits, features, losses, sample_weight):
        return weighted_loss(losses, sample_weight)
