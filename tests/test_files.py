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
    (dict(paths=["a.png"], mode="CMYK"), ValueError, "mode must be 'RGB' or 'L'"),
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
