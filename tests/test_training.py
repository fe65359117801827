"""Training as users run it: augmentation, mixed precision, channels-last (classifiers and VAE)."""

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.dataset import ValidSplit
from torchvision.transforms import v2

from fairskl import JTTClassifier, NIRClassifier, PerceptualVAE
from fairskl._augment import _crop_boxes, augment_images, resized_crop

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _images(n=64, size=16, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(size=(n, 3, size, size)).astype(np.float32)
    y = (X[:, 0, :, : size // 2].mean(axis=(1, 2)) > X[:, 0, :, size // 2:].mean(axis=(1, 2)))
    return X, y.astype(int)


def _cnn(cls=NIRClassifier, **kwargs):
    params = dict(backbone="small_cnn", lr=1e-2, max_epochs=1, batch_size=16, random_state=0,
                  verbose=0)
    return cls(**{**params, **kwargs})


class _Seen(NIRClassifier):
    """Records every batch the network is run on, with the mode (training or not)."""

    seen = []

    def infer(self, x, **fit_params):
        images = x["X"] if isinstance(x, dict) else x
        _Seen.seen.append((self.module_.training, images.detach().cpu().numpy().copy()))
        return super().infer(x, **fit_params)


def _kinds(X):
    """Per image run in training and in other steps: 'given', 'mirrored' or 'other'."""
    given, mirrored = {x.tobytes() for x in X}, {x[..., ::-1].tobytes() for x in X}
    out = {True: [], False: []}
    for training, batch in _Seen.seen:
        for x in batch:
            key = x.tobytes()
            out[training].append("given" if key in given else
                                 "mirrored" if key in mirrored else "other")
    return {mode: np.array(kinds) for mode, kinds in out.items()}


# -- the augmentations themselves ----------------------------------------------------------------


def test_resized_crop_is_torchvisions_crop_then_resize():
    X = torch.rand(2, 3, 16, 16)
    full = torch.tensor([[0.0, 0.0, 16.0, 16.0]] * 2)
    torch.testing.assert_close(resized_crop(X, full), X, atol=1e-5, rtol=0)
    boxes = torch.tensor([[0.0, 0.0, 8.0, 8.0], [4.0, 2.0, 8.0, 12.0]])
    out = resized_crop(X, boxes)
    for image, box, result in zip(X, boxes.int().tolist(), out, strict=True):
        left, top, width, height = box
        expected = v2.functional.resized_crop(image, top, left, height, width, [16, 16],
                                              antialias=False)
        # equal but on the outer rows and columns, which interpolate with the pixels beyond
        # the crop where torchvision repeats the crop's border
        torch.testing.assert_close(result[:, 1:-1, 1:-1], expected[:, 1:-1, 1:-1], atol=1e-5,
                                   rtol=0)


def test_crop_boxes_have_torchvisions_scale_ratio_and_fit_the_image():
    torch.manual_seed(0)
    left, top, w, h = _crop_boxes(4000, 24, 32).unbind(1)
    area, ratio = (w * h / (24 * 32)).numpy(), (w / h).numpy()
    assert area.min() >= 0.8 - 1e-6 and area.max() <= 1 + 1e-6
    assert ratio.min() >= 3 / 4 - 1e-6 and ratio.max() <= 4 / 3 + 1e-6
    assert (left >= 0).all() and (top >= 0).all()
    assert (left + w <= 32 + 1e-4).all() and (top + h <= 24 + 1e-4).all()
    assert ratio.min() > 1  # a wide image fits wide crops only (as in torchvision)
    _, _, w, h = _crop_boxes(4000, 32, 32).unbind(1)
    # a square image: log-uniform ratios, about as many above 1 as below
    assert 0.4 < np.mean((w / h).numpy() > 1) < 0.6
    assert np.std((w * h).numpy() / 32**2) > 0.03  # not one fixed box


def test_named_augmentations_draw_from_torchs_seeded_generator():
    X = torch.rand(8, 3, 16, 16)
    torch.manual_seed(3)
    first = augment_images(X, "hflip_crop")
    torch.manual_seed(3)
    torch.testing.assert_close(augment_images(X, "hflip_crop"), first, rtol=0, atol=0)
    assert first.shape == X.shape and not torch.allclose(first, X)
    torch.manual_seed(3)
    flips = augment_images(X, "hflip")
    mirrored = [torch.equal(f, x.flip(-1)) for f, x in zip(flips, X, strict=True)]
    kept = [torch.equal(f, x) for f, x in zip(flips, X, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True)) and any(mirrored)


def test_a_pipeline_gets_each_image_on_the_0_1_scale_and_must_keep_its_shape():
    X = torch.rand(4, 3, 8, 8) * 2 - 1  # the VAE's [-1, 1]
    seen = []

    def record(image):
        seen.append(image)
        return image.flip(-1)

    out = augment_images(X, record, value_range=(-1.0, 1.0))
    assert len(seen) == 4 and all(s.shape == (3, 8, 8) for s in seen)
    assert min(float(s.min()) for s in seen) >= 0 and max(float(s.max()) for s in seen) <= 1
    torch.testing.assert_close(out, X.flip(-1))
    with pytest.raises(ValueError, match=r"return each image as a tensor of its shape "
                                         r"\(3, 8, 8\).*got \(3, 4, 4\)"):
        augment_images(X, v2.Resize(4))


# -- the classifiers -----------------------------------------------------------------------------


def test_classifier_hflip_augments_training_batches_only():
    X, y = _images(72)
    _Seen.seen = []
    clf = _Seen(backbone="small_cnn", augment="hflip", max_epochs=2, batch_size=16,
                train_split=ValidSplit(4, stratified=True), random_state=0, verbose=0).fit(X, y)
    kinds = _kinds(X)
    assert len(kinds[True]) == 2 * 54 and set(kinds[True]) == {"given", "mirrored"}
    assert 0.35 < np.mean(kinds[True] == "mirrored") < 0.65  # probability 0.5
    assert set(kinds[False]) == {"given"}  # validation
    _Seen.seen = []
    clf.predict_proba(X), clf.penultimate(X), clf.decision_function(X)
    assert set(_kinds(X)[False]) == {"given"} and not _kinds(X)[True].size


def test_classifier_hflip_crop_and_a_pipeline():
    X, y = _images(32)
    _Seen.seen = []
    _Seen(backbone="small_cnn", augment="hflip_crop", max_epochs=1, batch_size=16,
          random_state=0, verbose=0).fit(X, y)
    kinds = _kinds(X)[True]
    assert len(kinds) == 32 and np.mean(kinds == "other") > 0.9  # cropped and resized
    assert all(batch.shape[1:] == (3, 16, 16) for _, batch in _Seen.seen)

    _Seen.seen = []
    clf = _Seen(backbone="small_cnn", augment=v2.RandomHorizontalFlip(p=1.0), max_epochs=1,
                batch_size=16, random_state=0, verbose=0).fit(X, y)
    assert set(_kinds(X)[True]) == {"mirrored"}  # the pipeline, on each image
    assert clone(clf).augment.p == 1.0
    clf.set_params(augment=v2.RandomVerticalFlip())  # a parameter, not a part of the network
    assert "augment" not in clf.prefixes_ and isinstance(clf.augment, v2.RandomVerticalFlip)


def test_classifier_augmentation_is_reproducible_and_changes_the_fit():
    X, y = _images(48)
    first = _cnn(augment="hflip_crop", max_epochs=2).fit(X, y).predict_proba(X)
    again = _cnn(augment="hflip_crop", max_epochs=2).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, again)
    plain = _cnn(max_epochs=2).fit(X, y).predict_proba(X)
    assert not np.allclose(first, plain, atol=1e-4)


def test_jtt_augments_both_trainings():
    X, y = _images(32)
    clf = _cnn(JTTClassifier, augment="hflip", identification_epochs=1).fit(X, y)
    assert len(clf.identification_history_) == 1 and len(clf.history) == 1


def test_vae_takes_the_same_vocabulary():
    X, _ = _images(16, size=32)
    params = dict(channel_width=4, latent_channels=4, perceptual_weight=0, max_epochs=1,
                  batch_size=8, random_state=0, verbose=0)
    plain = PerceptualVAE(**params).fit(X).transform(X)
    # an identity pipeline sees [0, 1] images and gives back the plain fit
    identity = PerceptualVAE(augment=lambda image: image, **params).fit(X).transform(X)
    np.testing.assert_allclose(identity, plain, atol=1e-5)
    cropped = PerceptualVAE(augment="hflip_crop", **params).fit(X).transform(X)
    assert not np.allclose(cropped, plain, atol=1e-4)


# -- precision and memory format -----------------------------------------------------------------


def test_channels_last_on_cpu_gives_the_same_network():
    X, y = _images(32)
    plain = _cnn().fit(X, y)
    last = _cnn(channels_last=True).fit(X, y)
    conv = next(m for m in last.module_.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(last.predict_proba(X), plain.predict_proba(X), atol=1e-4)


def test_fp16_needs_cuda_and_the_scaler_is_off_otherwise():
    X, y = _images(32)
    with pytest.raises(ValueError, match=r"precision='fp16' needs a CUDA device.*"
                                         r"device='cpu'; use precision='bf16' on CPU"):
        _cnn(precision="fp16").fit(X, y)
    clf = _cnn().fit(X, y)
    assert not clf.grad_scaler_.is_enabled()


@CUDA
@pytest.mark.parametrize("precision", ["float32", "bf16", "fp16"])
def test_cuda_precisions_train_and_return_float_outputs(precision):
    X, y = _images(64)
    clf = _cnn(device="cuda", precision=precision, channels_last=True, augment="hflip_crop",
               max_epochs=3).fit(X, y)
    assert next(clf.module_.parameters()).is_cuda
    assert clf.grad_scaler_.is_enabled() == (precision == "fp16")
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64 and np.isfinite(proba).all()
    assert clf.penultimate(X).dtype == np.float32
    losses = clf.history[:, "train_loss"]
    assert all(math.isfinite(v) for v in losses)
    if precision == "fp16":
        assert clf.grad_scaler_.get_scale() > 0  # the scaler ran the steps


@CUDA
def test_cuda_fp16_is_close_to_float32():
    X, y = _images(64)
    full = _cnn(device="cuda", max_epochs=3).fit(X, y).predict_proba(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        half = _cnn(device="cuda", precision="fp16", max_epochs=3).fit(X, y).predict_proba(X)
    assert not np.array_equal(full, half)  # fp16 really ran
    np.testing.assert_allclose(half, full, atol=0.1)
