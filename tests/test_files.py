"""Images read from disk on access (ImageFiles): the loaders' pixels, worker processes, errors."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from fairskl.datasets import ImageFiles, load_fitzpatrick17k
from fairskl.datasets._fixtures import write_fitzpatrick17k


@pytest.fixture(scope="module")
def fitzpatrick(tmp_path_factory):
    return write_fitzpatrick17k(tmp_path_factory.mktemp("data"), n_samples=12, random_state=0)


@pytest.mark.parametrize("resize", ["squash", "crop"])
def test_images_equal_the_loaders_arrays(fitzpatrick, resize):
    arrays = load_fitzpatrick17k(data_home=fitzpatrick, image_size=16, resize=resize,
                                 cache=False)
    paths = load_fitzpatrick17k(data_home=fitzpatrick, image_size=16, resize=resize,
                                return_paths=True)
    files = ImageFiles(paths.images, y=paths.target, image_size=16, resize=resize)
    assert len(files) == 12 and files.image_shape == (3, 16, 16)
    stacked = torch.stack([files[i][0] for i in range(len(files))]).numpy()
    np.testing.assert_array_equal(stacked, arrays.images)
    assert [int(files[i][1]) for i in range(12)] == list(arrays.target)


def test_worker_processes_read_the_same_batches(fitzpatrick):
    paths = load_fitzpatrick17k(data_home=fitzpatrick, image_size=16, return_paths=True)
    files = ImageFiles(paths.images, image_size=16)
    one = torch.cat([x for x, _ in DataLoader(files, batch_size=5)])
    two = torch.cat([x for x, _ in DataLoader(files, batch_size=5, num_workers=2)])
    assert torch.equal(one, two)


def test_a_bad_file_is_named(tmp_path, fitzpatrick):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    files = ImageFiles([bad, tmp_path / "missing.png"], image_size=8)
    with pytest.raises(OSError, match=r"cannot read image 0 of 2, '.*broken\.jpg'"):
        files[0]
    with pytest.raises(OSError, match=r"cannot read image 1 of 2, '.*missing\.png'"):
        files[1]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(paths="one.png"), TypeError, "sequence of image paths"),
    (dict(paths=[]), ValueError, "paths is empty"),
    (dict(paths=["a.png"], y=[0, 1]), ValueError, "one value per path"),
    (dict(paths=["a.png"], image_size=0), ValueError, "image_size must be a positive int"),
    (dict(paths=["a.png"], resize="stretch"), ValueError, "resize must be 'squash' or 'crop'"),
    (dict(paths=["a.png"], mode="CMYK"), ValueError, "mode must be one of"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ImageFiles(**kwargs)


@pytest.fixture(scope="module")
def lesion_files(tmp_path_factory):
    """120 synthetic lesions saved as PNGs (lossless), with the decoded array they give."""
    from PIL import Image

    from fairskl.datasets import make_skin_lesions

    data = make_skin_lesions(120, 32, bias=2.0, random_state=0)
    folder = tmp_path_factory.mktemp("lesions")
    paths = []
    for i, image in enumerate(data.images):
        paths.append(folder / f"{i}.png")
        Image.fromarray((image.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(paths[-1])
    files = ImageFiles(paths, y=data.target, image_size=32)
    X = torch.stack([files[i][0] for i in range(len(files))]).numpy()
    return files, X, data.target


@pytest.mark.parametrize("workers", [0, 2])
def test_a_classifier_trains_the_same_from_files_as_from_the_array(lesion_files, workers):
    from fairskl import NIRClassifier

    files, X, y = lesion_files
    kw = dict(lambda_nir=0.1, max_epochs=2, batch_size=32, random_state=0, verbose=0)
    from_array = NIRClassifier("small_cnn", **kw).fit(X, y)
    streamed = NIRClassifier("small_cnn", iterator_train__num_workers=workers,
                             iterator_valid__num_workers=workers, **kw).fit(files)  # y: files.y
    for name in ("predict_proba", "penultimate"):
        np.testing.assert_allclose(getattr(streamed, name)(files), getattr(from_array, name)(X),
                                   rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(streamed.predict(files), from_array.predict(X))
    with pytest.raises(ValueError, match="X gives inputs of shape"):
        streamed.predict_proba(ImageFiles(files.paths, image_size=16))


def test_a_users_dataset_gets_the_fitted_estimators_answers(lesion_files):
    """A user's Dataset, or a Subset of it (random_split), is read like the array: string
    labels from predict, DFR's refitted last layer, the VAE's [-1, 1] scaling. Only skorch's
    own split of the training data is passed through as it is, during fit."""
    from fairskl import DFRClassifier, NIRClassifier, PerceptualVAE

    files, X, y = lesion_files
    rows = np.arange(0, 120, 7)
    subset = torch.utils.data.Subset(files, rows)
    labels = np.where(y == 1, "malignant", "benign")
    net = NIRClassifier("small_cnn", max_epochs=1, random_state=0, verbose=0).fit(X, labels)
    np.testing.assert_array_equal(net.predict(files), net.predict(X))
    np.testing.assert_array_equal(net.predict(subset), net.predict(X[rows]))
    with pytest.raises(ValueError, match="X gives inputs of shape"):
        net.predict(torch.utils.data.Subset(ImageFiles(files.paths, image_size=16), rows))
    dfr = DFRClassifier("small_cnn", max_epochs=1, random_state=0, verbose=0).fit(X, y)
    for name in ("predict_proba", "decision_function"):
        expected = getattr(dfr, name)(X)
        np.testing.assert_allclose(getattr(dfr, name)(files), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(getattr(dfr, name)(subset), expected[rows], rtol=1e-5,
                                   atol=1e-6)
    vae = PerceptualVAE(channel_width=8, latent_channels=4, perceptual_weight=0, max_epochs=1,
                        batch_size=16, random_state=0, verbose=0).fit(X)
    np.testing.assert_allclose(vae.score_samples(subset), vae.score_samples(X[rows]),
                               rtol=1e-5, atol=1e-7)


def test_a_dataset_without_targets_needs_y(lesion_files):
    from fairskl import NIRClassifier

    files, _, _ = lesion_files
    with pytest.raises(ValueError, match="requires y to be passed"):
        NIRClassifier("small_cnn", max_epochs=1).fit(ImageFiles(files.paths, image_size=32))


def test_a_dataset_with_groups_gets_a_grouped_validation_split(lesion_files):
    from fairskl import NIRClassifier
    from fairskl.model_selection import GroupedValidSplit

    files, _, y = lesion_files
    grouped = ImageFiles(files.paths, y=y, image_size=32)
    grouped.groups = np.repeat(np.arange(40), 3)  # three images per lesion
    seen = {}

    class Recording(GroupedValidSplit):
        def __call__(self, dataset, y=None, **kwargs):
            train, valid = super().__call__(dataset, y, **kwargs)
            seen["train"], seen["valid"] = train.indices, valid.indices
            return train, valid

    clf = NIRClassifier("small_cnn", max_epochs=1, verbose=0,
                        train_split=Recording(0.25, random_state=0)).fit(grouped)
    assert "valid_loss" in clf.history[-1]
    lesions = grouped.groups
    assert not set(lesions[seen["train"]]) & set(lesions[seen["valid"]])


def test_subset_keeps_targets_and_groups(lesion_files):
    files, _, y = lesion_files
    grouped = ImageFiles(files.paths, y=y, image_size=32, groups=np.arange(120) // 3)
    part = grouped.subset(np.arange(120) % 4 == 0)
    assert len(part) == 30 and part.paths[1] == files.paths[4]
    np.testing.assert_array_equal(part.y, y[::4])
    np.testing.assert_array_equal(part.groups, (np.arange(120) // 3)[::4])
    torch.testing.assert_close(part[1][0], files[4][0])


def test_rnflt_maps_equal_the_harvard_loaders_arrays(tmp_path):
    from fairskl.datasets import load_harvard_glaucoma
    from fairskl.datasets._fixtures import write_harvard_gf

    home = write_harvard_gf(tmp_path, n_samples=6, random_state=0)
    arrays = load_harvard_glaucoma(data_home=home, image_size=16, cache=False)
    paths = load_harvard_glaucoma(data_home=home, image_size=16, return_paths=True)
    files = ImageFiles(paths.images, image_size=16, mode="RNFLT")
    assert files.image_shape == (1, 16, 16)
    stacked = torch.stack([files[i][0] for i in range(len(files))]).numpy()
    np.testing.assert_array_equal(stacked, arrays.images)
    with pytest.raises(ValueError, match="resize must be 'squash'"):
        ImageFiles(paths.images, image_size=16, mode="RNFLT", resize="crop")


def test_a_classifier_fits_image_paths_with_augmentation_and_workers(lesion_files):
    from fairskl import NIRClassifier

    files, X, y = lesion_files
    paths = [str(p) for p in files.paths]
    kw = dict(lambda_nir=0.1, max_epochs=1, batch_size=32, random_state=0, verbose=0)
    from_files = NIRClassifier("small_cnn", **kw).fit(files)
    from_paths = NIRClassifier("small_cnn", image_size=32, **kw).fit(paths, y)  # a plain list
    np.testing.assert_allclose(from_paths.predict_proba(np.array(paths)),
                               from_files.predict_proba(X), rtol=1e-5, atol=1e-6)
    augmented = NIRClassifier("small_cnn", image_size=32, augment="hflip_crop",
                              iterator_train__num_workers=2, **kw).fit(paths, y)
    assert augmented.predict_proba(paths).shape == (120, 2)
    assert not np.allclose(augmented.predict_proba(X), from_files.predict_proba(X))
    with pytest.raises(ValueError, match="image paths, but NIRClassifier has image_size=None"):
        NIRClassifier("small_cnn", max_epochs=1).fit(paths, y)


class RecordingSplit:
    """A GroupedValidSplit that keeps the positions of its last split."""

    def __new__(cls, *args, **kwargs):
        from fairskl.model_selection import GroupedValidSplit

        class Recording(GroupedValidSplit):
            def __call__(self, dataset, y=None, **kw):
                train, valid = super().__call__(dataset, y, **kw)
                self.seen_ = train.indices, valid.indices
                return train, valid

        return Recording(*args, **kwargs)


@pytest.mark.parametrize("as_paths", [True, False])
def test_split_groups_beside_the_methods_groups(lesion_files, as_paths):
    """'groups' weighs the loss (GroupBalancedClassifier), 'split_groups' keeps each lesion
    on one side of the validation split, for paths and for arrays."""
    from fairskl import GroupBalancedClassifier

    files, X, y = lesion_files
    lesion = np.repeat(np.arange(40), 3)
    sex = np.where(np.arange(120) % 5 == 0, "female", "male")
    inputs = np.array([str(p) for p in files.paths]) if as_paths else X
    split = RecordingSplit(0.25, random_state=0)
    clf = GroupBalancedClassifier("small_cnn", image_size=32, max_epochs=1, verbose=0,
                                  train_split=split)
    clf.fit({"X": inputs, "groups": sex, "split_groups": lesion}, y)
    train, valid = split.seen_
    assert not set(lesion[train]) & set(lesion[valid])
    assert "valid_loss" in clf.history[-1]
    assert clf.group_weights_.round(3).to_dict() == {"female": 2.5, "male": 0.625}
    assert clf.predict({"X": inputs, "groups": sex, "split_groups": lesion}).shape == (120,)


def test_the_vae_trains_the_same_from_paths_as_from_the_array(lesion_files):
    from fairskl import PerceptualVAE

    files, X, _ = lesion_files
    paths = [str(p) for p in files.paths[:48]]
    kw = dict(channel_width=4, latent_channels=4, perceptual_weight=0, max_epochs=2,
              batch_size=16, random_state=0, verbose=0)
    from_array = PerceptualVAE(**kw).fit(X[:48])
    streamed = PerceptualVAE(image_size=32, iterator_train__num_workers=2, **kw).fit(paths)
    for name in ("transform", "latent_std", "reconstruct"):
        np.testing.assert_array_equal(getattr(streamed, name)(paths),
                                      getattr(from_array, name)(X[:48]))
    np.testing.assert_array_equal(streamed.latent_activity_, from_array.latent_activity_)
    np.testing.assert_allclose(streamed.score_samples(ImageFiles(paths, image_size=32)),
                               from_array.score_samples(X[:48]), rtol=1e-5)
    np.testing.assert_allclose(streamed.uncertainty(paths, "iwae", n_samples=2, random_state=0),
                               from_array.uncertainty(X[:48], "iwae", n_samples=2,
                                                      random_state=0), rtol=1e-5)
    with pytest.raises(ValueError, match="image paths, but PerceptualVAE has image_size=None"):
        PerceptualVAE(**kw).fit(paths)
    with pytest.raises(ValueError, match="fitted on"):
        streamed.transform(ImageFiles(paths, image_size=64))


def test_the_vae_streams_with_augmentation_a_grouped_split_and_a_grid(lesion_files, tmp_path):
    from fairskl import PerceptualVAE
    from fairskl._vae import ReconstructionGrid

    files, _, _ = lesion_files
    paths = np.array([str(p) for p in files.paths[:48]])
    lesion = np.repeat(np.arange(16), 3)
    split = RecordingSplit(0.25, stratified=False, random_state=0)
    vae = PerceptualVAE(image_size=32, resize="crop", augment="hflip", channel_width=4,
                        latent_channels=4, perceptual_weight=0, max_epochs=1, batch_size=16,
                        train_split=split, random_state=0, verbose=0,
                        callbacks=[ReconstructionGrid(tmp_path / "grid.png", n_images=4)])
    vae.fit({"X": paths, "split_groups": lesion})
    train, valid = split.seen_
    assert not set(lesion[train]) & set(lesion[valid])
    assert "valid_loss" in vae.history[-1] and (tmp_path / "grid.png").exists()
    assert vae.transform(paths).shape == (48, 4 * 4 * 4)  # 32 px halved 3 times
