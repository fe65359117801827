"""The transfer testbed: small_cnn pretrained once on a source task, cached, fine-tuned."""

import functools

import numpy as np
import pytest
import torch

from fairskl import NIRClassifier
from fairskl.datasets import make_skin_lesions
from fairskl.experiments import _reproduce_nir, _transfer, pretrain_small_cnn


def test_pretraining_is_cached_and_its_body_is_the_fine_tuning_start(tmp_path):
    path = pretrain_small_cnn(16, n_samples=240, max_epochs=1, data_home=tmp_path)
    assert path.parent == tmp_path / "fairskl_cache" / "pretrained"
    stamp = path.stat().st_mtime_ns
    assert pretrain_small_cnn(16, n_samples=240, max_epochs=1, data_home=tmp_path) == path
    assert path.stat().st_mtime_ns == stamp  # not trained again
    other = pretrain_small_cnn(16, n_samples=240, max_epochs=1, data_home=tmp_path,
                               random_state=1)
    assert other != path  # another setting, another file
    body = torch.load(path, weights_only=True)
    data = make_skin_lesions(60, 16, bias=2.0, random_state=0)
    net = NIRClassifier("small_cnn", weights=str(path), max_epochs=0, verbose=0)
    net.fit(data.images, data.target)  # initialised from the file, not trained
    for name, value in net.module_.body.state_dict().items():
        torch.testing.assert_close(value, body[name])
    assert net.module_.head.out_features == 2  # the source task's 24-way head is not kept


def test_small_cnn_weights_errors(tmp_path):
    X, y = make_skin_lesions(20, 16, random_state=0, return_X_y=True)
    bad = tmp_path / "bad.pt"
    torch.save({"something": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="is not a state_dict of a SmallCNNBody"):
        NIRClassifier("small_cnn", weights=str(bad), max_epochs=1, verbose=0).fit(X, y)


@pytest.mark.parametrize("settings, match", [
    ({"testbed": "imagenet"}, "testbed must be 'scratch' or 'transfer'"),
    ({"testbed": "transfer", "backbone": "resnet18"}, "pretrains small_cnn"),
])
def test_testbed_errors(tmp_path, settings, match):
    with pytest.raises(ValueError, match=match):
        _reproduce_nir.reproduce_nir(tmp_path / "out", settings=settings, verbose=0)


@pytest.mark.slow
def test_the_nir_study_fine_tunes_the_pretrained_body(tmp_path, monkeypatch):
    monkeypatch.setattr(_transfer, "pretrain_small_cnn", functools.partial(
        _transfer.pretrain_small_cnn, n_samples=240, max_epochs=1))
    monkeypatch.setattr("fairskl.experiments.pretrain_small_cnn",
                        _transfer.pretrain_small_cnn)
    fits = []
    fit = NIRClassifier.fit

    def recording_fit(self, X, y=None, **kwargs):
        fits.append(self.get_params())
        return fit(self, X, y, **kwargs)

    monkeypatch.setattr(NIRClassifier, "fit", recording_fit)
    tiny = dict(n_samples=300, n_test=300, image_size=16, max_epochs=1, lambdas=(0.0, 1.0),
                cv=2, seeds=(0,), n_bootstrap=10, testbed="transfer")
    out = tmp_path / "out"
    path = _reproduce_nir.reproduce_nir(out, scale=tiny, data_home=tmp_path / "home", verbose=0)
    source, *fine_tuning = fits  # the source task's training first, once
    assert source["weights"] is None and len(source["classes"]) == 24
    weights = {params["weights"] for params in fine_tuning}
    assert len(weights) == 1 and weights.pop().startswith(str(tmp_path / "home"))
    assert {params["lr"] for params in fine_tuning} == {3e-4}
    assert "Transfer testbed" in path.read_text()
    assert np.isfinite(np.loadtxt(out / "heldout.csv", delimiter=",", skiprows=1,
                                  usecols=6)).any()
