"""Training as users run it: augmentation, mixed precision, channels-last (classifiers and VAE)."""

import json
import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.dataset import ValidSplit
from torchvision.transforms import v2

import fairskl
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


# -- resumable fits ------------------------------------------------------------------------------


def _tabular(n=160, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    return X, (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)


#: a fit in a process of its own, which kills itself (SIGKILL: no clean-up of any kind) in the
#: middle of epoch 3, or, with a mode, while it saves epoch 3's checkpoint
KILLED_FIT = """
import json, os, signal, sys
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit

import fairskl._training
from fairskl import NIRClassifier

directory, mode, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
rng = np.random.RandomState(0)
X = rng.normal(size=(160, 6)).astype(np.float32)
y = (X[:, 0] + 0.5 * rng.normal(size=160) > 0).astype(int)
kill = lambda: os.kill(os.getpid(), signal.SIGKILL)


class KillInEpoch3(Callback):
    def on_batch_end(self, net, training=False, **kwargs):
        if mode == "mid_epoch" and len(net.history) == 3 and training \\
                and len(net.history[-1]["batches"]) == 2:
            kill()


saves = {"params": 0, "pointer": 0}
torch_save, write_text = torch.save, fairskl._training.write_text


def save(obj, f, *args, **kwargs):
    if Path(str(f)).name == "params.pt":
        saves["params"] += 1
        if mode == "mid_file" and saves["params"] == 3:
            Path(f).write_bytes(b"half a file")  # then the process dies mid-write
            kill()
    return torch_save(obj, f, *args, **kwargs)


def publish(path, text):
    saves["pointer"] += 1
    if mode == "before_publish" and saves["pointer"] == 3:
        kill()  # epoch 3's set is complete and renamed, but checkpoint.json not replaced
    return write_text(path, text)


torch.save, fairskl._training.write_text = save, publish
NIRClassifier(**params, checkpoint=directory, train_split=ValidSplit(5),
              callbacks=[KillInEpoch3()]).fit(X, y)
"""

NIR = dict(backbone="mlp", lr=1e-2, max_epochs=5, batch_size=32, random_state=0, verbose=0)


def _run_killed_fit(directory, mode):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", KILLED_FIT, str(directory), mode,
                             json.dumps(NIR)], cwd=root, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == -9, result.stderr[-3000:]  # killed, not ended
    return json.loads((directory / "checkpoint.json").read_text())


def _adam_steps(net):
    return {int(state["step"]) for state in net.optimizer_.state_dict()["state"].values()}


@pytest.mark.parametrize("mode", ["mid_epoch", "mid_file", "before_publish"])
def test_a_killed_fit_resumes_at_its_last_saved_epoch(tmp_path, mode):
    from skorch.dataset import ValidSplit

    saved = _run_killed_fit(tmp_path, mode)
    assert saved["epoch"] == 2 and not saved["finished"]  # epoch 3 was never published
    X, y = _tabular()
    resumed = NIRClassifier(**NIR, checkpoint=tmp_path, train_split=ValidSplit(5)).fit(X, y)
    whole = NIRClassifier(**NIR, train_split=ValidSplit(5)).fit(X, y)
    assert len(resumed.history) == 5  # 2 loaded + the 3 left of max_epochs
    assert resumed.history[:, "epoch"] == [1, 2, 3, 4, 5]
    # the first two epochs are the killed fit's (loaded), the others trained now: all as in
    # an uninterrupted fit, since the optimizer's state and the random generators were saved
    for key in ("train_loss", "valid_loss", "valid_acc"):
        np.testing.assert_allclose(resumed.history[:, key], whole.history[:, key], rtol=1e-6)
    assert _adam_steps(resumed) == _adam_steps(whole) == {5 * 4}  # 4 batches of 32 an epoch
    np.testing.assert_allclose(resumed.predict_proba(X), whole.predict_proba(X), rtol=1e-6)
    # what a killed save left is gone; the one set left is the finished fit's
    pointer = json.loads((tmp_path / "checkpoint.json").read_text())
    assert pointer["finished"] and pointer["directory"].startswith("epoch_0005_final-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json", pointer["directory"]]


class _Crash(Exception):
    """Stands in for a killed process: the fit stops at once, no callback runs again."""


def _crash_in_epoch(epoch, training=1):
    """A callback raising _Crash in the second batch of ``epoch`` of the ``training``-th
    training of the fit (JTT trains twice)."""
    from skorch.callbacks import Callback

    class Crash(Callback):
        trainings = 0

        def on_train_begin(self, net, **kwargs):
            self.trainings += 1

        def on_batch_end(self, net, training=False, **kwargs):
            if (training and self.trainings == training_run and len(net.history) == epoch
                    and len(net.history[-1]["batches"]) == 2):
                raise _Crash

    training_run = training
    return Crash()


def test_a_finished_fit_is_loaded_not_trained_again(tmp_path):
    X, y = _tabular()
    first = NIRClassifier(**{**NIR, "max_epochs": 3}, checkpoint=tmp_path).fit(X, y)
    published = json.loads((tmp_path / "checkpoint.json").read_text())
    again = NIRClassifier(**{**NIR, "max_epochs": 3, "random_state": 1},
                          checkpoint=tmp_path).fit(X, y)
    assert json.loads((tmp_path / "checkpoint.json").read_text()) == published  # not resaved
    assert len(again.history) == 3
    assert again.history[-1, "dur"] == first.history[-1, "dur"]  # loaded, not trained
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))
    more = NIRClassifier(**{**NIR, "max_epochs": 3}, checkpoint=tmp_path).fit(X, y)
    more.partial_fit(X, y)  # partial_fit trains max_epochs more, and goes on saving
    assert len(more.history) == 6
    assert json.loads((tmp_path / "checkpoint.json").read_text())["epoch"] == 6
    assert more.get_params(deep=True)["checkpoint"] == tmp_path
    warm = NIRClassifier(**{**NIR, "max_epochs": 2}, warm_start=True, checkpoint=tmp_path / "w")
    assert len(warm.fit(X, y).fit(X, y).history) == 4  # warm_start: max_epochs more


def test_an_early_stopped_fit_is_finished_and_its_final_state_saved(tmp_path):
    from skorch.callbacks import EarlyStopping
    from skorch.dataset import ValidSplit

    X, y = _tabular()
    params = dict(NIR, lr=0.3, max_epochs=40, train_split=ValidSplit(5),
                  callbacks=[EarlyStopping(patience=2, load_best=True)])
    first = NIRClassifier(**params, checkpoint=tmp_path).fit(X, y)
    assert len(first.history) < 40
    again = NIRClassifier(**params, checkpoint=tmp_path).fit(X, y)
    assert len(again.history) == len(first.history)
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))


def test_vae_resumes_a_crashed_fit(tmp_path):
    X, _ = _images(16, size=32)
    params = dict(channel_width=4, latent_channels=4, perceptual_weight=0, max_epochs=3,
                  batch_size=8, random_state=0, verbose=0, augment="hflip")
    with pytest.raises(_Crash):
        PerceptualVAE(**params, checkpoint=tmp_path, callbacks=[_crash_in_epoch(2)]).fit(X)
    assert json.loads((tmp_path / "checkpoint.json").read_text())["epoch"] == 1
    resumed = PerceptualVAE(**params, checkpoint=tmp_path).fit(X)
    whole = PerceptualVAE(**params).fit(X)
    assert len(resumed.history) == 3
    np.testing.assert_allclose(resumed.history[:, "train_loss"], whole.history[:, "train_loss"],
                               rtol=1e-6)
    assert _adam_steps(resumed) == _adam_steps(whole) == {3 * 2}
    np.testing.assert_allclose(resumed.transform(X), whole.transform(X), rtol=1e-5, atol=1e-6)


def test_jtt_resumes_in_its_second_training_with_the_saved_error_set(tmp_path):
    X, y = _tabular()
    params = dict(NIR, max_epochs=3, identification_epochs=2, upweight=5)
    with pytest.raises(_Crash):
        JTTClassifier(**params, checkpoint=tmp_path,
                      callbacks=[_crash_in_epoch(2, training=2)]).fit(X, y)
    assert json.loads((tmp_path / "identification/checkpoint.json").read_text())["finished"]
    assert json.loads((tmp_path / "checkpoint.json").read_text())["epoch"] == 1
    resumed = JTTClassifier(**params, checkpoint=tmp_path).fit(X, y)
    whole = JTTClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(resumed.error_set_, whole.error_set_)
    assert len(resumed.identification_history_) == 2 and len(resumed.history) == 3
    np.testing.assert_allclose(resumed.history[:, "train_loss"], whole.history[:, "train_loss"],
                               rtol=1e-6)
    np.testing.assert_allclose(resumed.predict_proba(X), whole.predict_proba(X), rtol=1e-6)


def test_checkpoint_errors(tmp_path):
    X, y = _tabular()
    with pytest.raises(ValueError, match="'checkpoint' .* None, .* 'str' or .* 'os.PathLike'"):
        NIRClassifier(**NIR, checkpoint=3).fit(X, y)
    NIRClassifier(**{**NIR, "max_epochs": 1}, checkpoint=tmp_path / "a").fit(X, y)
    with pytest.raises(ValueError, match=r"written by a NIRClassifier, not a JTTClassifier"):
        JTTClassifier(**NIR, checkpoint=tmp_path / "a").fit(X, y)
    with pytest.raises(ValueError, match=r"does not fit this NIRClassifier.*own checkpoint"):
        NIRClassifier(**NIR, hidden_sizes=(8,), checkpoint=tmp_path / "a").fit(X, y)
    with pytest.raises(ValueError, match="adds callbacks named"):
        from skorch.callbacks import Checkpoint

        NIRClassifier(**NIR, checkpoint=tmp_path / "b",
                      callbacks=[("checkpoint", Checkpoint())]).fit(X, y)


# -- the declared parameter constraints ----------------------------------------------------------


@pytest.mark.parametrize("cls", [
    NIRClassifier, JTTClassifier, PerceptualVAE, fairskl.CVaRDROClassifier,
    fairskl.GroupDROClassifier, fairskl.SpectralDecouplingClassifier,
    fairskl.GroupBalancedClassifier, fairskl.DFRClassifier, fairskl.LfFClassifier,
], ids=lambda cls: cls.__name__)
def test_every_parameter_but_skorchs_has_a_constraint(cls):
    import inspect

    from skorch import NeuralNet, NeuralNetClassifier

    skorch_names = {*inspect.signature(NeuralNet).parameters,
                    *inspect.signature(NeuralNetClassifier).parameters}
    ours = {name for name in cls().get_params(deep=False)
            if name not in skorch_names and "__" not in name}  # iterator_train__shuffle
    assert set(cls._parameter_constraints) == ours


@pytest.mark.parametrize("random_state", [np.random.RandomState(0), -1, 1.5])
def test_random_state_must_be_a_seed_for_torch(random_state):
    X, y = _tabular()
    match = r"'random_state' parameter of NIRClassifier must be None or an int in the range \[0,"
    with pytest.raises(ValueError, match=match):
        NIRClassifier(**{**NIR, "random_state": random_state}).fit(X, y)
    with pytest.raises(ValueError, match=match.replace("NIRClassifier", "PerceptualVAE")):
        PerceptualVAE(random_state=random_state).fit(np.zeros((4, 3, 32, 32), np.float32))
