"""PerceptualVAE, its perceptual loss, and the per-group reconstruction scorers."""

import pickle
import warnings

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch.callbacks import Callback, GradientNormClipping
from torch import nn

from fairskl import PerceptualVAE
from fairskl._perceptual import PerceptualLoss, vgg19_features
from fairskl._vae import ReconstructionGrid, ResidualVAE
from fairskl.datasets import make_skin_lesions
from fairskl.metrics import make_reconstruction_scorer, mse_by_group, mse_difference


@pytest.fixture(scope="module")
def lesions32():
    return make_skin_lesions(96, 32, random_state=0)


def _vae(**kwargs):
    params = dict(channel_width=8, latent_channels=8, perceptual_weight=0, lr=2e-3,
                  max_epochs=2, batch_size=16, random_state=0, verbose=0)
    return PerceptualVAE(**{**params, **kwargs})


def _quiet(**kwargs):
    """A VAE with the random-VGG perceptual loss, its warning silenced."""
    return _vae(perceptual_weight=1.0, **kwargs)


def test_architecture_shapes_and_blocks():
    module = ResidualVAE(3, latent_channels=64, channel_width=64, n_stages=3)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    module.eval()
    reconstruction, mu, log_var = module(x)
    assert reconstruction.shape == x.shape and mu.shape == log_var.shape == (2, 64, 8, 8)
    assert reconstruction.abs().max() <= 1  # tanh output
    convs = [m for m in module.decoder if isinstance(m, nn.Conv2d)]
    assert convs[-1].kernel_size == (5, 5)
    assert module.to_mu.kernel_size == (1, 1) and module.to_log_var.kernel_size == (1, 1)
    widths = [block.conv2.out_channels for block in module.encoder[1:4]]
    assert widths == [128, 256, 512]  # channel_width × (2, 4, 8) after the three stages
    group = ResidualVAE(3, 4, 16, 2, norm="group")
    assert any(isinstance(m, nn.GroupNorm) for m in group.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in group.modules())


def test_fit_transform_roundtrip_shapes_and_history(lesions32):
    X = lesions32.images
    vae = _vae().fit(X)
    assert vae.input_shape_ == (3, 32, 32) and vae.latent_shape_ == (8, 4, 4)
    Z = vae.transform(X)
    assert Z.shape == (96, 128) and Z.dtype == np.float32
    Z2, std = vae.transform(X, return_std=True)
    np.testing.assert_array_equal(Z, Z2)
    np.testing.assert_allclose(vae.latent_std(X), std)
    assert std.shape == (96,) and (std > 0).all()
    images = vae.inverse_transform(Z)
    assert images.shape == X.shape and images.min() >= 0 and images.max() <= 1
    np.testing.assert_allclose(vae.reconstruct(X), images, atol=1e-6)
    assert vae.sample(5, random_state=0).shape == (5, 3, 32, 32)
    np.testing.assert_array_equal(vae.sample(3, random_state=1), vae.sample(3, random_state=1))
    assert vae.get_feature_names_out()[0] == "perceptualvae0"
    for row in vae.history:
        assert row["train_perceptual"] == 0
        assert row["train_loss"] == pytest.approx(row["train_mse"] + row["train_kl"], rel=1e-5)
    # uint8 images give the same latents as the float images
    np.testing.assert_allclose(vae.transform((X * 255).round().astype(np.uint8)),
                               vae.transform(np.round(X * 255) / 255), rtol=1e-4, atol=1e-4)


def test_scores_are_negative_mse_computed_by_hand(lesions32):
    X = lesions32.images
    vae = _vae().fit(X)
    errors = ((vae.reconstruct(X).astype(float) - X) ** 2).reshape(len(X), -1).mean(axis=1)
    np.testing.assert_allclose(-vae.score_samples(X), errors, rtol=1e-5)
    assert vae.score(X) == pytest.approx(-errors.mean(), rel=1e-5)
    groups = lesions32.sensitive["skin_type"]
    by_hand = {g: errors[(groups == g).to_numpy()].mean() for g in groups.unique()}
    by_group = mse_by_group(X, vae.reconstruct(X), sensitive_features=groups)
    for g, value in by_hand.items():
        assert by_group[g] == pytest.approx(value, rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("size, epochs", [(32, 6), (64, 2)])
def test_loss_decreases_and_beats_the_mean_image(size, epochs):
    data = make_skin_lesions(192, size, random_state=1)
    X_train, X_test = data.images[:160], data.images[160:]
    with pytest.warns(UserWarning, match="randomly initialised VGG19"):
        vae = _quiet(max_epochs=epochs, channel_width=8, latent_channels=16).fit(X_train)
    losses = vae.history[:, "train_loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    assert vae.history[-1, "train_perceptual"] < vae.history[0, "train_perceptual"]
    mean_image = X_train.mean(axis=0)
    baseline = ((X_test - mean_image) ** 2).mean()
    assert -vae.score(X_test) < 0.8 * baseline


def _vgg_maps_by_hand(reference, x):
    """The 16 pre-ReLU conv outputs of VGG19 (configuration "E") with plain torch calls."""
    convs = [m for m in reference.features if isinstance(m, nn.Conv2d)]
    pool_after = {1, 3, 7, 11}  # VGG19: 2, 2, 4, 4, 4 convs per stage, max-pool between
    maps = []
    for i, conv in enumerate(convs):
        x = torch.nn.functional.conv2d(x, conv.weight, conv.bias, padding=1)
        maps.append(x)
        x = torch.relu(x)
        if i in pool_after:
            x = torch.nn.functional.max_pool2d(x, 2)
    return maps


@pytest.mark.parametrize("imagenet_normalization", [False, True])
@pytest.mark.parametrize("layer_reduction", ["mean", "half_sum"])
def test_perceptual_term_by_hand(tmp_path, imagenet_normalization, layer_reduction):
    import torchvision

    torch.manual_seed(4)
    reference = torchvision.models.vgg19(weights=None).eval()
    torch.save(reference.state_dict(), tmp_path / "vgg19.pth")
    loss = PerceptualLoss(tmp_path / "vgg19.pth", imagenet_normalization=imagenet_normalization,
                          layer_reduction=layer_reduction)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        if imagenet_normalization:  # torchvision's preprocessing, from [-1, 1] to [0, 1]
            mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
            std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
            a_in, b_in = ((a + 1) / 2 - mean) / std, ((b + 1) / 2 - mean) / std
        else:  # the reference implementation feeds the [-1, 1] images as they are
            a_in, b_in = a, b
        layer_terms = [((ma - mb) ** 2).sum() / ma.numel()  # mean over N, C, H, W
                       for ma, mb in zip(_vgg_maps_by_hand(reference, a_in),
                                         _vgg_maps_by_hand(reference, b_in), strict=True)]
        assert len(layer_terms) == 16
        if layer_reduction == "mean":  # reference: sum of the 16 layer means, / 16
            by_hand = sum(layer_terms) / 16
        else:  # the paper's Eq. 2: each layer 1 / (2 C H W) ||.||^2 (per image), summed
            by_hand = sum(layer_terms) / 2
        value = loss(a, b)
    assert value.item() == pytest.approx(by_hand.item(), rel=1e-4)
    assert float(loss(a, a)) == 0.0
    # the forward stops after the last conv layer (no ReLU or pooling after it)
    assert isinstance(loss.features[-1], nn.Conv2d) and len(loss.features) == 35
    with pytest.raises(ValueError, match="layer_reduction must be one of"):
        PerceptualLoss(None, layer_reduction="sum")


def test_perceptual_vae_passes_its_loss_options_and_defaults_follow_the_reference():
    params = PerceptualVAE().get_params()
    assert params["perceptual_imagenet_normalization"] is False
    assert params["perceptual_reduction"] == "mean"
    assert params["gradient_clip_norm"] == 10.0 and params["lr"] == 1e-4
    X = make_skin_lesions(16, 32, random_state=0).images
    with pytest.warns(UserWarning, match="random"):
        vae = _quiet(max_epochs=1, perceptual_imagenet_normalization=True,
                     perceptual_reduction="half_sum").fit(X)
    assert vae.criterion_.imagenet_normalization is True
    assert vae.criterion_.layer_reduction == "half_sum"
    with pytest.raises(ValueError, match="'perceptual_reduction' .* a str among"):
        _vae(perceptual_reduction="sum").fit(X)


def test_uint8_images_are_scored_on_one_scale_in_every_mse_path(lesions32):
    from fairskl.experiments._representation import reconstruction_mse

    X8 = (lesions32.images * 255).round().astype(np.uint8)
    vae = _vae().fit(X8)
    reconstruction = vae.reconstruct(X8)  # floats in [0, 1]
    assert reconstruction.dtype == np.float32 and reconstruction.max() <= 1
    by_hand = ((X8 / 255.0 - reconstruction) ** 2).reshape(len(X8), -1).mean(axis=1)
    assert by_hand.max() < 0.5  # on [0, 1]; 0..255 against [0, 1] would be ~10^4
    np.testing.assert_allclose(-vae.score_samples(X8), by_hand, rtol=1e-4)
    np.testing.assert_allclose(reconstruction_mse(vae, X8), by_hand, rtol=1e-4)
    groups = lesions32.sensitive["skin_type"].to_numpy() <= 3
    got = mse_by_group(X8, reconstruction, sensitive_features=groups)
    assert got[True] == pytest.approx(by_hand[groups].mean(), rel=1e-4)
    assert got[False] == pytest.approx(by_hand[~groups].mean(), rel=1e-4)
    gap = abs(by_hand[groups].mean() - by_hand[~groups].mean())
    assert mse_difference(X8, reconstruction, sensitive_features=groups) == pytest.approx(
        gap, rel=1e-4)
    # both sides uint8: the same [0, 1] scale
    rec8 = (reconstruction * 255).round().astype(np.uint8)
    both = ((X8 / 255.0 - rec8 / 255.0) ** 2).reshape(len(X8), -1).mean(axis=1)
    assert mse_by_group(X8, rec8, sensitive_features=groups)[True] == pytest.approx(
        both[groups].mean())
    with sklearn.config_context(enable_metadata_routing=True):
        score = make_reconstruction_scorer("worst_group_mse")(vae, X8, sensitive_features=groups)
    assert -score == pytest.approx(max(by_hand[groups].mean(), by_hand[~groups].mean()),
                                   rel=1e-4)


def test_worst_group_mse_follows_the_missing_group_policy():
    from fairskl import FairnessWarning
    from fairskl.metrics._scorers import reconstruction_mse_difference, worst_group_mse

    scores = -np.array([0.1, 0.3, 0.2])
    groups = ["light", "light", "light"]
    for metric in (worst_group_mse, reconstruction_mse_difference):
        with pytest.warns(FairnessWarning, match=r"\['dark'\].*no sample"):
            assert np.isnan(metric(None, scores, sensitive_features=groups,
                                   expected_groups=["light", "dark"]))
    assert worst_group_mse(None, scores, sensitive_features=["light", "dark", "dark"]) == (
        pytest.approx(0.25))


def test_random_vgg_is_fixed_and_local_state_dict_loads(tmp_path):
    import torchvision

    first, second = vgg19_features(None), vgg19_features(None)
    torch.testing.assert_close(first[-1].weight, second[-1].weight)  # the same random VGG
    torch.manual_seed(3)
    reference = torchvision.models.vgg19(weights=None)
    path = tmp_path / "vgg19.pth"
    torch.save(reference.state_dict(), path)
    loaded = vgg19_features(str(path))
    torch.testing.assert_close(loaded[34].weight, reference.features[34].weight)
    features_only = tmp_path / "features.pth"
    torch.save(reference.features.state_dict(), features_only)
    torch.testing.assert_close(vgg19_features(features_only)[0].weight,
                               reference.features[0].weight)
    with pytest.raises(ValueError, match="not a state_dict of torchvision's vgg19"):
        torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r.pth")
        vgg19_features(tmp_path / "r.pth")
    with pytest.raises(ValueError, match="neither a path to an existing file nor a VGG19"):
        vgg19_features("IMAGENET_V9")
    with pytest.raises(ValueError, match="is not an existing file"):
        vgg19_features(str(tmp_path / "missing" / "vgg.pth"))


def test_vgg_frozen_not_trained_not_in_state_dict_and_pickles(tmp_path):
    X = make_skin_lesions(32, 32, random_state=2).images
    with pytest.warns(UserWarning, match="random"):
        vae = _quiet(max_epochs=1).fit(X)
    vgg = vae.criterion_.features
    before = [p.detach().clone() for p in vgg19_features(None).parameters()]
    after = list(vgg.parameters())
    assert len(after) == 32 and not any(p.requires_grad for p in after)
    for b, a in zip(before, after, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # the VGG was not trained
    assert not vgg.training
    vae.criterion_.train()
    assert not vgg.training  # train() cannot switch it out of eval mode
    optimised = {id(p) for group in vae.optimizer_.param_groups for p in group["params"]}
    assert optimised == {id(p) for p in vae.module_.parameters()}  # the VGG is not optimised
    assert not any(k.startswith(("features", "criterion")) for k in vae.module_.state_dict())
    assert len(vae.criterion_.state_dict()) == 0
    # save_params / load_params: the state_dict loads back into the same module
    vae.save_params(f_params=tmp_path / "vae.pt", f_criterion=tmp_path / "crit.pt")
    assert (tmp_path / "vae.pt").stat().st_size < 2_000_000  # no VGG (80 MB) in it
    fresh = _vae(random_state=5).fit(X[::-1].copy())
    assert not np.allclose(fresh.transform(X), vae.transform(X))
    fresh.load_params(f_params=tmp_path / "vae.pt")
    np.testing.assert_allclose(fresh.transform(X), vae.transform(X), rtol=1e-5, atol=1e-6)
    state = torch.load(tmp_path / "vae.pt", weights_only=True)
    module = ResidualVAE(3, 8, 8, 3)
    module.load_state_dict(state)  # strict: the same module, key for key
    # pickling drops the VGG; it is rebuilt, identical, when training goes on
    blob = pickle.dumps(vae)
    assert len(blob) < 5_000_000
    restored = pickle.loads(blob)
    np.testing.assert_allclose(restored.transform(X), vae.transform(X), rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        restored.partial_fit(X)
        torch.testing.assert_close(restored.criterion_.features[0].weight, before[0])


def test_sklearn_api_clone_get_params_and_pipeline(lesions32):
    X, y = lesions32.images, lesions32.target
    vae = _vae(beta=0.5)
    params = vae.get_params()
    assert params["beta"] == 0.5 and "module" not in params and params["lr"] == 2e-3
    assert PerceptualVAE().get_params()["lr"] == 1e-4  # the study's defaults
    assert PerceptualVAE().get_params()["max_epochs"] == 15
    assert PerceptualVAE().get_params()["batch_size"] == 64
    assert clone(vae).set_params(beta=2.0).beta == 2.0
    for method in ("transform", "reconstruct", "score_samples", "latent_std"):
        with pytest.raises(NotFittedError):
            getattr(vae, method)(X)
    with pytest.raises(NotFittedError):
        vae.sample(2)
    pipe = make_pipeline(_vae(max_epochs=3), LogisticRegression(max_iter=500)).fit(X, y)
    assert pipe.predict_proba(X).shape == (96, 2)
    assert pipe.score(X, y) > 0.5


@pytest.mark.slow
def test_grid_search_and_cross_validate_with_routed_group_scorer():
    data = make_skin_lesions(96, 32, random_state=3)
    X = data.images
    A = np.where(data.sensitive["skin_type"].to_numpy() <= 3, "I-III", "IV-VI")
    folds = list(StratifiedKFold(2, shuffle=True, random_state=0).split(X, A))
    with sklearn.config_context(enable_metadata_routing=True):
        scoring = {
            "gap": make_reconstruction_scorer("mse_difference"),
            "worst": make_reconstruction_scorer("worst_group_mse"),
        }
        cv = cross_validate(_vae(), X, cv=folds, scoring=scoring, error_score="raise",
                            params={"sensitive_features": A})
        search = GridSearchCV(_vae(), {"beta": [0.1, 1.0]}, cv=folds, scoring=scoring,
                              refit="gap", error_score="raise").fit(X, sensitive_features=A)
    assert np.isfinite(cv["test_gap"]).all() and (cv["test_gap"] <= 0).all()
    assert (cv["test_worst"] <= cv["test_gap"]).all()  # worst MSE >= gap (both negated)
    assert search.best_params_["beta"] in (0.1, 1.0)
    # the scorer's number, recomputed by hand on the refitted model
    with sklearn.config_context(enable_metadata_routing=True):
        score = make_reconstruction_scorer()(search.best_estimator_, X, sensitive_features=A)
    best = search.best_estimator_
    assert score == pytest.approx(
        -mse_difference(X, best.reconstruct(X), sensitive_features=A), rel=1e-5)
    with pytest.raises(RuntimeError, match="metadata routing"):
        make_reconstruction_scorer()
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(ValueError, match=r"'metric' .* str among .* Got 'psnr'"):
            make_reconstruction_scorer("psnr")


@pytest.mark.parametrize(
    "params, X, match",
    [
        ({}, np.zeros((4, 3, 48, 48), np.float32), r"48×48 pixels.*power of two >= 32"),
        ({}, np.zeros((4, 3, 16, 16), np.float32), "power of two >= 32"),
        ({}, np.zeros((4, 3, 32, 64), np.float32), "square"),
        ({"image_size": 64}, np.zeros((4, 3, 32, 32), np.float32), "image_size=64"),
        ({"image_size": 50}, np.zeros((4, 3, 32, 32), np.float32), "image_size must be"),
        ({}, np.zeros((4, 32, 32), np.float32), "N×C×H×W"),
        ({}, np.full((4, 3, 32, 32), np.nan, np.float32), "NaN"),
        ({}, np.full((4, 3, 32, 32), 255.0, np.float32), r"values in \[255, 255\]"),
        ({"n_stages": 6}, np.zeros((4, 3, 32, 32), np.float32), "n_stages=6"),
        ({"beta": -1}, np.zeros((4, 3, 32, 32), np.float32), "'beta' parameter"),
        ({"norm": "layer"}, np.zeros((4, 3, 32, 32), np.float32), "'norm' .* a str among"),
        ({"precision": "fp8"}, np.zeros((4, 3, 32, 32), np.float32), "'precision' .* a str among"),
        ({"augment": "vflip"}, np.zeros((4, 3, 32, 32), np.float32),
         r"'augment' .* None, a str among \{.*\} or a callable\. Got 'vflip'"),
        ({"augment": True}, np.zeros((4, 3, 32, 32), np.float32), "Got True instead"),
        ({"precision": "fp16"}, np.zeros((4, 3, 32, 32), np.float32), "needs a CUDA"),
        ({"perceptual_weight": 1, "perceptual_weights": "IMAGENET_V9"},
         np.zeros((4, 3, 32, 32), np.float32), "neither a path"),
        ({"perceptual_weight": 1}, np.zeros((4, 1, 32, 32), np.float32), "RGB"),
    ],
)
def test_bad_inputs(params, X, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match=match):
            _vae(max_epochs=1, **params).fit(X)


def test_bad_inputs_at_transform(lesions32):
    vae = _vae(max_epochs=1).fit(lesions32.images[:32])
    with pytest.raises(ValueError, match=r"shape \(1, 32, 32\) .* fitted on \(3, 32, 32\)"):
        vae.transform(np.zeros((2, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match=r"give it images with 3 channels of 32×32"):
        vae.transform(np.zeros((2, 3, 64, 64), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        vae.transform(np.full((2, 3, 32, 32), np.nan, np.float32))
    with pytest.raises(ValueError, match="10 latent features.*has 128"):
        vae.inverse_transform(np.zeros((2, 10), np.float32))


class _SeenVAE(PerceptualVAE):
    """Records every batch the network is run on in skorch's steps, with the mode."""

    seen = []

    def infer(self, x, **fit_params):
        _SeenVAE.seen.append((self.module_.training, x.detach().cpu().numpy().copy()))
        return super().infer(x, **fit_params)


def _flipped(seen, X):
    """Per image run in training and in validation steps: was it X's image mirrored?"""
    scaled = X * 2 - 1  # the [-1, 1] images the estimator works on, as _check_X computes them
    as_given = {x.tobytes() for x in scaled}
    mirrored = {x[..., ::-1].tobytes() for x in scaled} - as_given
    out = {True: [], False: []}
    for training, batch in seen:
        for x in batch:
            key = x.tobytes()
            assert key in as_given or key in mirrored, "an image that is neither X's nor mirrored"
            out[training].append(key in mirrored)
    return {mode: np.array(flags) for mode, flags in out.items()}


def test_hflip_flips_half_the_training_images_and_nothing_else(lesions32):
    from skorch.dataset import ValidSplit

    X = lesions32.images
    params = dict(channel_width=8, latent_channels=8, perceptual_weight=0, lr=2e-3,
                  max_epochs=1, batch_size=24, random_state=0, verbose=0,
                  train_split=ValidSplit(4, stratified=False))
    _SeenVAE.seen = []
    vae = _SeenVAE(augment="hflip", **params).fit(X)
    flipped = _flipped(_SeenVAE.seen, X)
    assert len(flipped[True]) == 72 and len(flipped[False]) == 24
    assert 0.3 < flipped[True].mean() < 0.7  # each training image with probability 0.5
    assert not flipped[False].any()  # validation steps see the images as given

    # transform, reconstruct and the scores: the encoder on the images as given, every time
    vae.module_.eval()
    with torch.no_grad():
        mu, _ = vae.module_.encode(torch.as_tensor(X * 2 - 1))
    np.testing.assert_allclose(vae.transform(X), mu.reshape(len(X), -1).numpy(), atol=1e-5)
    np.testing.assert_array_equal(vae.transform(X), vae.transform(X))
    np.testing.assert_array_equal(vae.score_samples(X), vae.score_samples(X))
    np.testing.assert_array_equal(vae.reconstruct(X), vae.reconstruct(X))

    _SeenVAE.seen = []
    _SeenVAE(**params).fit(X)
    assert not any(_flipped(_SeenVAE.seen, X)[True])  # augment=None: nothing flipped


def test_hflip_fit_is_reproducible_and_differs_from_no_augmentation(lesions32):
    X = lesions32.images[:32]
    first = _vae(augment="hflip", max_epochs=1).fit(X)
    again = _vae(augment="hflip", max_epochs=1).fit(X)
    np.testing.assert_array_equal(first.transform(X), again.transform(X))
    assert first.history[-1, "train_loss"] == again.history[-1, "train_loss"]
    plain = _vae(max_epochs=1).fit(X)
    assert not np.allclose(first.transform(X), plain.transform(X), atol=1e-4)
    assert clone(first).get_params()["augment"] == "hflip"


def test_nan_loss_names_epoch_and_batch(lesions32):
    with pytest.raises(RuntimeError, match=r"loss became (nan|inf) in epoch 1, batch [2-9]"):
        _vae(lr=1e30).fit(lesions32.images)


def test_partial_fit_gradient_clipping_bf16_and_grid_callback(lesions32, tmp_path):
    X = lesions32.images[:32]
    vae = _vae(max_epochs=1, gradient_clip_norm=0.5).fit(X)
    vae.partial_fit(X)
    assert len(vae.history) == 2
    half = _vae(max_epochs=1, precision="bf16", channels_last=True).fit(X)
    assert half.transform(X).dtype == np.float32
    assert not np.allclose(half.transform(X), _vae(max_epochs=1).fit(X).transform(X))
    grid = ReconstructionGrid(tmp_path / "grid_{epoch}.png", n_images=4)
    _vae(max_epochs=2, callbacks=[grid]).fit(X)
    import matplotlib.image

    picture = matplotlib.image.imread(tmp_path / "grid_2.png")
    assert picture.shape[:2] == (64, 128)  # two rows of 32 pixels, four images of 32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid_1.png", "grid_2.png"]



class _GradientNorms(Callback):
    """Records the norm of all the VAE's gradients each time they are computed."""

    def initialize(self):
        self.norms_ = []
        return self

    def on_grad_computed(self, net, named_parameters, **kwargs):
        grads = [p.grad.flatten() for _, p in named_parameters if p.grad is not None]
        self.norms_.append(float(torch.cat(grads).norm()))


def test_gradient_clipping_is_skorchs_callback_and_follows_set_params(lesions32):
    X = lesions32.images[:32]  # two batches of 16
    clipped = _vae(max_epochs=1, gradient_clip_norm=0.05, callbacks=[("norms", _GradientNorms())])
    clipped.fit(X)
    callbacks = dict(clipped.callbacks_)
    assert isinstance(callbacks["gradient_clipping"], GradientNormClipping)
    assert len(callbacks["norms"].norms_) == 2  # the user's callback sees clipped gradients
    assert max(callbacks["norms"].norms_) <= 0.05 * (1 + 1e-5)
    free = _vae(max_epochs=1, gradient_clip_norm=None, callbacks=[("norms", _GradientNorms())])
    assert min(dict(free.fit(X).callbacks_)["norms"].norms_) > 0.05  # so the clipping clipped
    clipped.set_params(gradient_clip_norm=0.01).partial_fit(X)
    assert len(callbacks["norms"].norms_) == 4
    assert max(callbacks["norms"].norms_[2:]) <= 0.01 * (1 + 1e-5)

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["float32", "bf16", "fp16"])
def test_cuda(lesions32, precision):
    X = lesions32.images
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        vae = _quiet(device="cuda", precision=precision, gradient_clip_norm=10).fit(X)
    assert next(vae.module_.parameters()).is_cuda
    assert next(vae.criterion_.features.parameters()).is_cuda
    assert vae.transform(X).shape == (96, 128)
    assert np.isfinite(vae.history[-1, "train_loss"])


_IMAGE_ONLY = (
    "needs images N×C×H×W with a square power-of-two side >= 32; the check fits on 2-D "
    "tabular data (tested on images in tests/test_vae.py instead)"
)


@parametrize_with_checks(
    [_vae(max_epochs=1)],
    legacy=False,  # the API contract only: the legacy checks all feed 2-D tabular X
    expected_failed_checks=lambda est: {
        "check_no_attributes_set_in_init": (
            "skorch's NeuralNet.__init__ sets history_, initialized_ and virtual_params_; "
            "every skorch estimator fails this check"
        ),
        "check_fit_score_takes_y": _IMAGE_ONLY,
        "check_estimators_overwrite_params": _IMAGE_ONLY,
        "check_dont_overwrite_parameters": _IMAGE_ONLY,
        "check_estimators_fit_returns_self": _IMAGE_ONLY,
        "check_readonly_memmap_input": _IMAGE_ONLY,
        "check_n_features_in_after_fitting": _IMAGE_ONLY,
        "check_positive_only_tag_during_fit": _IMAGE_ONLY,
    },
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
