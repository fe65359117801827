"""Per-image uncertainty scores of a fitted PerceptualVAE, and the disagreement of an ensemble.

Which score flags images unlike the training set? The study's ``latent_std`` averages the
posterior standard deviation over every latent element, most of which a VAE leaves unused
(their posterior stays the prior, σ ≈ 1): the few informative ones drown. The scores here are
the ones the VAE literature uses instead; see the :ref:`user guide <vae-uncertainty>` for
their equations.
"""

import warnings
from numbers import Integral

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_is_fitted

from fairskl._constraints import RANDOM_STATE
from fairskl._vae import PerceptualVAE

__all__ = ["UNCERTAINTY_KINDS", "ensemble_disagreement", "vae_uncertainty"]

UNCERTAINTY_KINDS = ("latent_std", "active_latent_std", "kl", "elbo", "iwae", "decoder_var")
#: Burda et al.'s threshold on Cov_x(E_q[z_j]) below which a latent unit is inactive
ACTIVITY_THRESHOLD = 0.01


@validate_params(
    {
        "vae": [PerceptualVAE],
        "X": "no_validation",  # images in any form the VAE takes: PerceptualVAE._check_X
        "kind": [str, "array-like"],  # each one of UNCERTAINTY_KINDS: checked below
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "random_state": RANDOM_STATE,
    },
    prefer_skip_nested_validation=True,
)
def vae_uncertainty(vae, X, kind="kl", *, n_samples=16, random_state=None):
    """Per-image uncertainty scores of a fitted :class:`~fairskl.PerceptualVAE`; higher is
    less sure.

    :meth:`fairskl.PerceptualVAE.uncertainty` for one ``kind``; several kinds at once share one
    encoding and one set of posterior draws (a score is the same alone or with others).

    Parameters
    ----------
    vae : fitted PerceptualVAE
    X : array-like of shape (n_samples, C, H, W)
    kind : str or sequence of str, default="kl"
        One of ``UNCERTAINTY_KINDS`` (see :meth:`fairskl.PerceptualVAE.uncertainty`), or
        several.
    n_samples : int, default=16
        Posterior draws per image for ``"elbo"``, ``"iwae"`` and ``"decoder_var"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the posterior draws.

    Returns
    -------
    scores : ndarray of shape (n_samples,), or dict of them
        A dict keyed by kind when ``kind`` is a sequence.

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl import PerceptualVAE
    >>> from fairskl.inspection import vae_uncertainty
    >>> X = np.random.RandomState(0).uniform(size=(8, 3, 32, 32)).astype("float32")
    >>> vae = PerceptualVAE(channel_width=8, latent_channels=4, perceptual_weight=0,
    ...                     max_epochs=1, batch_size=8, random_state=0, verbose=0).fit(X)
    >>> scores = vae_uncertainty(vae, X, ["kl", "iwae"], n_samples=4, random_state=0)
    >>> bool(np.allclose(scores["iwae"], vae.uncertainty(X, "iwae", n_samples=4,
    ...                                                   random_state=0)))
    True
    """
    check_is_fitted(vae, "latent_shape_")
    kinds = [kind] if isinstance(kind, str) else list(kind)
    unknown = [k for k in kinds if k not in UNCERTAINTY_KINDS]
    if unknown or not kinds:
        raise ValueError(f"kind must be one of {UNCERTAINTY_KINDS} or a list of them, got "
                         f"{kind!r}.")
    X = vae._check_X(X)
    mu, log_var = vae._batches(X, vae.module_.encode)
    mu, log_var = mu.reshape(len(mu), -1), log_var.reshape(len(log_var), -1)
    std = np.exp(0.5 * log_var)
    scores = {"latent_std": std.mean(axis=1)}
    if "active_latent_std" in kinds:
        active = vae.active_units_
        if active.any():
            scores["active_latent_std"] = std[:, active].mean(axis=1)
        else:
            warnings.warn(f"active_latent_std is NaN: no latent unit is active (every unit's "
                          f"mean varies by less than {ACTIVITY_THRESHOLD} over the training "
                          f"images), the VAE has collapsed to its prior; train longer or lower "
                          f"beta.", UserWarning, stacklevel=3)
            scores["active_latent_std"] = np.full(len(std), np.nan)
    kl = 0.5 * (mu ** 2 + std ** 2 - 1 - log_var).sum(axis=1)
    scores["kl"] = kl
    if {"elbo", "iwae", "decoder_var"} & set(kinds):
        scores.update(_sampled_scores(vae, X, kl, n_samples, random_state))
    if isinstance(kind, str):
        return scores[kind]
    return {k: scores[k] for k in kinds}


def _sampled_scores(vae, X, kl, n_samples, random_state):
    """The scores over ``n_samples`` posterior draws per image: -ELBO, IWAE, decoder var."""
    generator = torch.Generator().manual_seed(
        int(check_random_state(random_state).randint(np.iinfo(np.int32).max)))

    def draws(x):
        """Per image: the k reconstructions' squared errors and log-weights of z ~ q(z|x)."""
        m, lv = vae.module_.encode(x)
        eps = torch.randn((n_samples, *m.shape), generator=generator).to(m.device, m.dtype)
        z = m + eps * torch.exp(0.5 * lv)  # (k, B, ...)
        recon = torch.stack([vae.module_.decode(zk) for zk in z])  # (k, B, C, H, W)
        sq = (recon - x).pow(2).flatten(2).sum(-1)  # (k, B)
        # log p(z) - log q(z|x), without the constants that cancel
        log_ratio = (-0.5 * z.pow(2) + 0.5 * eps.pow(2) + 0.5 * lv).flatten(2).sum(-1)
        return sq.T, log_ratio.T, recon.var(dim=0, unbiased=False).flatten(1).mean(-1)

    sq, log_ratio, variance = vae._batches(X, draws)  # (n, k), (n, k), (n,)
    sigma2 = decoder_variance(vae)
    log_lik = -sq / (2 * sigma2)  # (B, k): log p(x|z) up to the Gaussian's constant
    log_w = log_lik + log_ratio
    top = log_w.max(axis=1, keepdims=True)
    return {"elbo": -(log_lik.mean(axis=1)) + kl,
            "iwae": -(top[:, 0] + np.log(np.exp(log_w - top).mean(axis=1))),
            "decoder_var": variance / 4}  # on the [0, 1] scale of score_samples


def decoder_variance(vae):
    """The variance σ² of the Gaussian decoder that the training loss implies.

    The loss ``MSE + β KL`` takes means over the D pixel values and the L latent elements; it
    is ``β / L`` times ``D MSE / (2σ²) + KL_sum``, the negative ELBO of a Gaussian decoder
    ``N(x̂, σ² I)``, when ``σ² = β D / (2 L)``.
    """
    n_pixels = int(np.prod(vae.input_shape_))
    n_latent = int(np.prod(vae.latent_shape_))
    return vae.beta * n_pixels / (2 * n_latent)


@validate_params(
    {"models": ["array-like"], "X": "no_validation"}, prefer_skip_nested_validation=True
)
def ensemble_disagreement(models, X):
    """Epistemic uncertainty: how much fitted VAEs disagree on each image.

    The variance across ``models`` of their reconstructions (from the latent means), averaged
    over the pixels, on the [0, 1] scale: (n_samples,). Models trained on resamples of the
    same population (the representation study's repeats) agree where the training data were
    dense and disagree where they were thin.

    Parameters
    ----------
    models : sequence of fitted PerceptualVAE
        At least two, fitted on images of the same shape.
    X : array-like of shape (n_samples, C, H, W)

    Returns
    -------
    ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from fairskl import PerceptualVAE
    >>> from fairskl.inspection import ensemble_disagreement
    >>> X = np.random.RandomState(0).uniform(size=(8, 3, 32, 32)).astype("float32")
    >>> models = [PerceptualVAE(channel_width=8, latent_channels=4, perceptual_weight=0,
    ...                         max_epochs=1, batch_size=8, random_state=s, verbose=0).fit(X)
    ...           for s in (0, 1)]
    >>> ensemble_disagreement(models, X).shape
    (8,)
    """
    models = list(models)
    if len(models) < 2:
        raise ValueError(f"ensemble_disagreement needs at least two fitted models, got "
                         f"{len(models)}.")
    reconstructions = np.stack([model.reconstruct(X) for model in models])
    return reconstructions.var(axis=0).reshape(reconstructions.shape[1], -1).mean(axis=1)
