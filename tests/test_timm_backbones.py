"""backbone="timm:<name>": timm models as NIRClassifier bodies (random or local weights only)."""

import sys

import numpy as np
import pytest
import torch
from torch import nn

from fairskl import NIRClassifier
from fairskl._backbones import build_network

timm = pytest.importorskip("timm")


def _images(n=16, channels=3, size=32, seed=0):
    rng = np.random.RandomState(seed)
    return rng.uniform(size=(n, channels, size, size)).astype(np.float32), np.arange(n) % 2


def test_resnet_features_are_the_global_average_of_its_feature_maps():
    network = build_network("timm:resnet18", weights=None, input_shape=(3, 32, 32), n_classes=3)
    network.eval()
    X = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        logits, features = network(X)
        by_hand = network.body.forward_features(X).mean(dim=(2, 3))
    assert logits.shape == (4, 3) and features.shape == (4, 512)  # ResNet-18's 512 channels
    torch.testing.assert_close(features, by_hand)
    torch.testing.assert_close(logits, features @ network.head.weight.T + network.head.bias)
    assert isinstance(network.normalization, nn.Identity)  # random weights: no input scaling


def test_vit_at_32_pixels_takes_the_class_token_of_its_own_size():
    network = build_network("timm:vit_tiny_patch16_224", weights=None, input_shape=(3, 32, 32),
                            n_classes=2)
    network.eval()
    assert network.body.pos_embed.shape == (1, 1 + 2 * 2, 192)  # class token + 2x2 patches of 16
    X = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        logits, features = network(X)
        class_token = network.body.forward_features(X)[:, 0]
    assert logits.shape == (4, 2) and features.shape == (4, 192)
    torch.testing.assert_close(features, class_token)


def test_nir_classifier_fits_timm_backbones_on_small_images():
    X, y = _images()
    clf = NIRClassifier("timm:resnet18", max_epochs=1, batch_size=8, random_state=0,
                        verbose=0).fit(X, y)
    assert {"train_ce", "train_nir"} <= set(clf.history[-1])
    assert np.isfinite(clf.history[-1, "train_loss"])
    assert clf.penultimate(X).shape == (16, 512)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1, rtol=1e-5)
    grey = NIRClassifier("timm:convnext_atto", max_epochs=1, batch_size=8, random_state=0,
                         verbose=0).fit(X[:, :1], y)
    assert grey.module_.body.stem[0].in_channels == 1  # timm's in_chans
    assert grey.penultimate(X[:, :1]).shape == (16, 320)  # ConvNeXt-atto's last stage


def test_local_state_dict_round_trips_with_its_input_normalisation(tmp_path):
    torch.manual_seed(1)
    reference = timm.create_model("vit_tiny_patch16_224", img_size=32)  # with its classifier
    path = tmp_path / "vit.pth"
    torch.save(reference.state_dict(), path)
    X, y = _images(8)
    clf = NIRClassifier("timm:vit_tiny_patch16_224", weights=str(path), max_epochs=1, lr=0.0,
                        verbose=0, random_state=0).fit(X, y)
    body = clf.module_.body
    torch.testing.assert_close(body.blocks[0].attn.qkv.weight, reference.blocks[0].attn.qkv.weight)
    np.testing.assert_allclose(clf.module_.normalization.mean.flatten().numpy(), [0.5] * 3)
    np.testing.assert_allclose(clf.module_.normalization.std.flatten().numpy(), [0.5] * 3)
    reference.eval()
    with torch.no_grad():  # the body sees the inputs scaled as during ViT's pretraining
        by_hand = reference.forward_features(torch.as_tensor((X - 0.5) / 0.5))[:, 0]
    np.testing.assert_allclose(clf.penultimate(X), by_hand.numpy(), rtol=1e-4, atol=1e-5)

    body_path = tmp_path / "body.pth"  # a fitted body, without classifier, loads back
    torch.save(body.state_dict(), body_path)
    again = NIRClassifier("timm:vit_tiny_patch16_224", weights=body_path, max_epochs=1, lr=0.0,
                          verbose=0, random_state=0).fit(X, y)
    np.testing.assert_allclose(again.penultimate(X), by_hand.numpy(), rtol=1e-4, atol=1e-5)

    with pytest.raises(ValueError, match=r"is not a state_dict of timm's 'resnet18' \(missing"):
        build_network("timm:resnet18", weights=path, input_shape=(3, 32, 32), n_classes=2)
    with pytest.raises(FileNotFoundError, match="no such file"):
        build_network("timm:resnet18", weights=tmp_path / "none.pth", input_shape=(3, 32, 32),
                      n_classes=2)


@pytest.mark.parametrize(("weights", "name"), [
    ("pretrained", "vit_tiny_patch16_224"),
    ("augreg_in21k", "vit_tiny_patch16_224.augreg_in21k"),
])
def test_pretrained_weights_are_asked_of_timm_by_tag(monkeypatch, weights, name):
    calls = []
    create_model = timm.create_model

    def no_download(model_name, pretrained=False, **kwargs):
        calls.append((model_name, pretrained))
        return create_model(model_name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", no_download)
    network = build_network("timm:vit_tiny_patch16_224", weights=weights,
                            input_shape=(3, 32, 32), n_classes=2)
    assert calls == [(name, True)]
    np.testing.assert_allclose(network.normalization.mean.flatten().numpy(), [0.5] * 3)


def test_unknown_names_say_how_to_find_the_right_ones():
    shape = dict(input_shape=(3, 32, 32), n_classes=2)
    with pytest.raises(ValueError, match=r"did you mean 'resnet18'.*timm\.list_models"):
        build_network("timm:resnt18", weights=None, **shape)
    with pytest.raises(ValueError, match=r"'IMAGENET1K_V1' is not a pretrained tag.*'a1_in1k'"):
        build_network("timm:resnet18", weights="IMAGENET1K_V1", **shape)
    with pytest.raises(ValueError, match="give the tag once"):
        build_network("timm:resnet18.a1_in1k", weights="a2_in1k", **shape)


def test_missing_timm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    X, y = _images(4)
    with pytest.raises(ImportError, match=r"pip install 'fairskl\[timm\]'"):
        NIRClassifier("timm:resnet50", max_epochs=1, verbose=0).fit(X, y)
