"""PerceptualVAE.uncertainty and ensemble_disagreement, against by-hand computations."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from fairskl import PerceptualVAE
from fairskl.inspection import ensemble_disagreement
from fairskl.inspection._uncertainty import decoder_variance


def _vae(X, seed=0, **kwargs):
    # training batches of 8; one batch of 64 at prediction, so the draws are one tensor
    params = dict(channel_width=8, latent_channels=4, perceptual_weight=0, max_epochs=4,
                  batch_size=64, iterator_train__batch_size=8, lr=1e-3, random_state=seed,
                  verbose=0)
    return PerceptualVAE(**{**params, **kwargs}).fit(X)


@pytest.fixture(scope="module")
def fitted():
    from fairskl.datasets import make_skin_lesions

    X = make_skin_lesions(48, 32, random_state=0).images  # structured: some units get used
    return _vae(X), X


def _encode(vae, X):
    with torch.no_grad():
        vae.module_.eval()
        mu, log_var = vae.module_.encode(torch.as_tensor(X * 2 - 1))
    return mu.numpy().reshape(len(X), -1), log_var.numpy().reshape(len(X), -1)


def test_closed_form_scores_by_hand(fitted):
    vae, X = fitted
    mu, log_var = _encode(vae, X)
    std = np.exp(0.5 * log_var)
    np.testing.assert_allclose(vae.uncertainty(X, "latent_std"), std.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(vae.uncertainty(X, "latent_std"), vae.latent_std(X), rtol=1e-6)
    active = mu.var(axis=0) > 0.01  # the activity on the training images (here: X)
    np.testing.assert_array_equal(vae.active_units_, active)
    assert 0 < active.sum() < active.size
    np.testing.assert_allclose(vae.uncertainty(X, "active_latent_std"),
                               std[:, active].mean(axis=1), rtol=1e-5)
    kl = 0.5 * (mu ** 2 + std ** 2 - 1 - log_var).sum(axis=1)
    np.testing.assert_allclose(vae.uncertainty(X, "kl"), kl, rtol=1e-4)


def test_sampled_scores_by_hand(fitted):
    vae, X = fitted
    k, seed = 5, 3
    mu, log_var = _encode(vae, X)
    # the draws the method makes: one generator seeded from random_state, one batch here
    torch_seed = int(np.random.RandomState(seed).randint(np.iinfo(np.int32).max))
    eps = torch.randn((k, len(X), *vae.latent_shape_),
                      generator=torch.Generator().manual_seed(torch_seed)).numpy()
    eps = eps.reshape(k, len(X), -1)
    z = mu + eps * np.exp(0.5 * log_var)
    with torch.no_grad():
        recon = np.stack([vae.module_.decode(torch.as_tensor(
            zk.reshape(len(X), *vae.latent_shape_))).numpy() for zk in z])
    x = X * 2 - 1
    sq = ((recon - x) ** 2).reshape(k, len(X), -1).sum(axis=-1)  # (k, n)
    sigma2 = vae.beta * x[0].size / (2 * mu.shape[1])
    assert decoder_variance(vae) == pytest.approx(sigma2)
    kl = 0.5 * (mu ** 2 + np.exp(log_var) - 1 - log_var).sum(axis=1)
    elbo = (sq / (2 * sigma2)).mean(axis=0) + kl
    log_w = -sq / (2 * sigma2) + (-0.5 * z ** 2 + 0.5 * eps ** 2 + 0.5 * log_var).sum(axis=-1)
    iwae = -(np.log(np.mean(np.exp(log_w - log_w.max(axis=0)), axis=0)) + log_w.max(axis=0))
    variance = (((recon + 1) / 2).var(axis=0)).reshape(len(X), -1).mean(axis=1)
    got = {kind: vae.uncertainty(X, kind, n_samples=k, random_state=seed)
           for kind in ("elbo", "iwae", "decoder_var")}
    np.testing.assert_allclose(got["elbo"], elbo, rtol=1e-4)
    np.testing.assert_allclose(got["iwae"], iwae, rtol=1e-4)
    np.testing.assert_allclose(got["decoder_var"], variance, rtol=1e-4)
    # the importance-weighted bound is the tighter one (on average over images and draws)
    many = {kind: vae.uncertainty(X, kind, n_samples=64, random_state=0)
            for kind in ("elbo", "iwae")}
    assert many["iwae"].mean() < many["elbo"].mean()
    np.testing.assert_array_equal(vae.uncertainty(X, "iwae", random_state=1),
                                  vae.uncertainty(X, "iwae", random_state=1))


def test_ensemble_disagreement_by_hand(fitted):
    vae, X = fitted
    other = _vae(X, seed=1)
    reconstructions = np.stack([vae.reconstruct(X), other.reconstruct(X)])
    np.testing.assert_allclose(ensemble_disagreement([vae, other], X),
                               reconstructions.var(axis=0).reshape(len(X), -1).mean(axis=1),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="at least two fitted models"):
        ensemble_disagreement([vae], X)


def test_no_active_unit_gives_nan_with_a_warning(fitted):
    vae, X = fitted
    collapsed = vae.active_units_.copy()
    vae.active_units_[:] = False
    try:
        with pytest.warns(UserWarning, match="active_latent_std is NaN: no latent unit"):
            assert np.isnan(vae.uncertainty(X, "active_latent_std")).all()
    finally:
        vae.active_units_ = collapsed


@pytest.mark.parametrize("kwargs, match", [
    (dict(kind="entropy"), "kind must be one of"),
    (dict(kind="elbo", n_samples=0), r"'n_samples' .* range \[1, inf\)\. Got 0"),
])
def test_bad_arguments(fitted, kwargs, match):
    vae, X = fitted
    with pytest.raises(ValueError, match=match):
        vae.uncertainty(X, **kwargs)


@pytest.mark.slow
def test_a_group_never_seen_in_training_is_flagged():
    """Trained on light skin only (FST 1-2), tested on light vs dark (FST 5-6). Measured: the
    study's latent_std gives the unseen group *lower* values (AUROC 0.00 for flagging it), the
    KL 0.999, the negative ELBO and the IWAE bound 1.00, the decoder variance 0.58."""
    from fairskl.datasets import make_skin_lesions

    data = make_skin_lesions(2000, 32, random_state=0)
    fst = data.sensitive["skin_type"].to_numpy()
    light, dark = np.flatnonzero(np.isin(fst, [1, 2])), np.flatnonzero(np.isin(fst, [5, 6]))
    vae = PerceptualVAE(n_stages=2, channel_width=16, latent_channels=16, perceptual_weight=0,
                        lr=1e-3, max_epochs=5, batch_size=32, random_state=0,
                        verbose=0).fit(data.images[light[:300]])
    X = data.images[np.r_[light[300:450], dark[:150]]]
    is_dark = np.r_[np.zeros(150), np.ones(150)]
    auroc = {kind: roc_auc_score(is_dark, vae.uncertainty(X, kind, random_state=0))
             for kind in ("latent_std", "kl", "elbo", "iwae")}
    assert auroc["kl"] >= 0.9 and auroc["elbo"] >= 0.9 and auroc["iwae"] >= 0.9, auroc
    assert auroc["latent_std"] < 0.5, auroc  # the study's statistic points the other way
