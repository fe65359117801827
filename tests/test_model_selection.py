"""fairskl.model_selection: train_val_test_split and GroupedValidSplit keep groups whole."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from skorch.callbacks import Callback

from fairskl.model_selection import GroupedValidSplit, train_val_test_split

HAM_CSV = Path(__file__).resolve().parents[1].parent / "shared/data/ham10000/HAM10000_metadata.csv"


def _data(n_groups=300, seed=0):
    rng = np.random.RandomState(seed)
    sizes = rng.choice([1, 1, 1, 2, 3, 5], size=n_groups)
    groups = np.repeat(np.arange(n_groups), sizes)
    y = np.repeat(rng.binomial(1, 0.3, n_groups), sizes)  # a label per group (per lesion)
    sex = np.repeat(rng.choice(["female", "male"], n_groups), sizes)
    return groups, y, sex


def test_groups_never_on_two_sides_and_sizes():
    groups, y, sex = _data()
    idx = np.arange(len(y))
    tr, va, te = train_val_test_split(idx, groups=groups, stratify=np.c_[y, sex],
                                      val_size=0.2, test_size=0.1, random_state=0)
    assert sorted(np.r_[tr, va, te]) == list(idx)  # a partition of the rows
    sets = [set(groups[s]) for s in (tr, va, te)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    np.testing.assert_allclose([len(tr), len(va), len(te)], np.array([0.7, 0.2, 0.1]) * len(y),
                               atol=0.02 * len(y))
    for label in (0, 1):  # every stratum is split in the same proportions
        for s in ("female", "male"):
            stratum = (y == label) & (sex == s)
            shares = [stratum[part].sum() / stratum.sum() for part in (tr, va, te)]
            np.testing.assert_allclose(shares, [0.7, 0.2, 0.1], atol=0.05)


def test_returns_each_array_split_and_pandas_kept():
    groups, y, sex = _data(50)
    X = pd.DataFrame({"a": np.arange(len(y))}, index=np.arange(len(y)) + 1000)
    X_tr, X_va, X_te, y_tr, y_va, y_te = train_val_test_split(
        X, y, groups=groups, stratify=y, random_state=1)
    assert isinstance(X_tr, pd.DataFrame)
    for Xs, ys in ((X_tr, y_tr), (X_va, y_va), (X_te, y_te)):
        np.testing.assert_array_equal(y[Xs["a"].to_numpy()], ys)
        assert list(Xs.index) == sorted(Xs.index)  # original order kept


def test_reproducible_and_seed_dependent():
    groups, y, _ = _data()
    idx = np.arange(len(y))
    a = train_val_test_split(idx, groups=groups, stratify=y, random_state=0)
    b = train_val_test_split(idx, groups=groups, stratify=y, random_state=0)
    c = train_val_test_split(idx, groups=groups, stratify=y, random_state=1)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c, strict=True))


def test_no_validation_set():
    groups, y, _ = _data(40)
    tr, va, te = train_val_test_split(np.arange(len(y)), groups=groups, val_size=0.0,
                                      test_size=0.25, random_state=0)
    assert len(va) == 0 and len(tr) + len(te) == len(y)


@pytest.mark.parametrize("kwargs, match", [
    ({"val_size": 0.5, "test_size": 0.5}, "val_size \\+ test_size must be < 1"),
    ({"test_size": 0.0}, "test_size must be a fraction"),
    ({"val_size": -0.1}, "val_size must be a fraction"),
    ({"groups": None}, "groups is required"),
    ({"groups": [0, 1, np.nan, 2]}, "groups has missing values"),
    ({"groups": [0, 0, 0, 0]}, "Cannot split 1 group"),
    ({"groups": [0, 1, 2]}, "inconsistent numbers of samples"),
])
def test_invalid_arguments(kwargs, match):
    params = {"groups": [0, 1, 2, 3]} | kwargs
    with pytest.raises(ValueError, match=match):
        train_val_test_split(np.arange(4), **params)


@pytest.mark.skipif(not HAM_CSV.is_file(),
                    reason=f"real metadata {HAM_CSV} absent (see ../shared/data/README.md)")
def test_real_ham10000_no_lesion_leaks():
    meta = pd.read_csv(HAM_CSV)
    y = meta["dx"].isin(["mel", "akiec"]).to_numpy().astype(int)
    strata = np.c_[y, meta["sex"]]
    tr, va, te = train_val_test_split(np.arange(len(meta)), groups=meta["lesion_id"],
                                      stratify=strata, random_state=0)
    lesions = [set(meta["lesion_id"].iloc[s]) for s in (tr, va, te)]
    assert not (lesions[0] & lesions[1] | lesions[0] & lesions[2] | lesions[1] & lesions[2])
    assert sum(map(len, lesions)) == meta["lesion_id"].nunique() == 7470
    np.testing.assert_allclose(np.array([len(tr), len(va), len(te)]) / len(meta),
                               [0.7, 0.15, 0.15], atol=0.01)
    for label in (0, 1):
        for sex in ("female", "male"):
            stratum = (y == label) & (meta["sex"].to_numpy() == sex)
            shares = [stratum[s].sum() / stratum.sum() for s in (tr, va, te)]
            np.testing.assert_allclose(shares, [0.7, 0.15, 0.15], atol=0.02)


# -- GroupedValidSplit: the internal validation split of a net ----------------------------------


def _dataset(groups, y):
    from skorch.dataset import Dataset

    X = {"X": np.zeros((len(y), 2), np.float32), "groups": groups}
    return Dataset(X, y)


def _sides(split, groups, y):
    train, valid = split(_dataset(groups, y), y)
    return np.asarray(train.indices), np.asarray(valid.indices)


@pytest.mark.parametrize("cv, share", [(0.2, 0.2), (0.25, 0.25), (5, 0.2)])
def test_grouped_valid_split_keeps_groups_whole_and_stratifies(cv, share):
    groups, y, _ = _data()
    train, valid = _sides(GroupedValidSplit(cv, random_state=0), groups, y)
    assert sorted(np.r_[train, valid]) == list(range(len(y)))  # a partition of the rows
    assert not set(groups[train]) & set(groups[valid])  # no lesion on both sides
    assert abs(len(valid) / len(y) - share) < 0.02
    for label in (0, 1):  # each label split in the same proportion
        stratum = y == label
        assert abs(stratum[valid].sum() / stratum.sum() - share) < 0.03


def test_grouped_valid_split_without_stratification_and_with_a_splitter():
    from sklearn.model_selection import StratifiedGroupKFold

    groups, y, _ = _data()
    train, valid = _sides(GroupedValidSplit(0.3, stratified=False, random_state=0), groups, y)
    assert not set(groups[train]) & set(groups[valid])
    assert abs(len(valid) / len(y) - 0.3) < 0.02
    splitter = StratifiedGroupKFold(4, shuffle=True, random_state=0)
    train, valid = _sides(GroupedValidSplit(splitter), groups, y)
    expected = next(splitter.split(np.zeros(len(y)), y, groups))
    np.testing.assert_array_equal(train, expected[0])
    np.testing.assert_array_equal(valid, expected[1])


def test_grouped_valid_split_is_reproducible_and_seed_dependent():
    groups, y, _ = _data()
    a = _sides(GroupedValidSplit(0.2, random_state=0), groups, y)[1]
    b = _sides(GroupedValidSplit(0.2, random_state=0), groups, y)[1]
    c = _sides(GroupedValidSplit(0.2, random_state=1), groups, y)[1]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_grouped_valid_split_takes_groups_from_an_argument_or_a_dataset_attribute():
    import torch

    groups, y, _ = _data(50)
    split = GroupedValidSplit(0.2, random_state=0)
    dataset = torch.utils.data.TensorDataset(torch.zeros(len(y), 2))
    _, valid = split(dataset, y, groups=groups)
    dataset.groups = groups
    _, again = split(dataset, y)
    np.testing.assert_array_equal(valid.indices, again.indices)
    assert not set(groups[valid.indices]) & set(np.delete(groups, valid.indices))


@pytest.mark.parametrize("make, match", [
    (lambda g, y: (GroupedValidSplit(), np.zeros((len(y), 2)), y),
     r"needs the group \(lesion, patient\) of each sample.*\{'X': images, 'groups'"),
    (lambda g, y: (GroupedValidSplit(), {"X": np.zeros((len(y), 2)), "groups": g}, None),
     r"stratified=True\) stratifies by the labels y, but got none.*stratified=False"),
    (lambda g, y: (GroupedValidSplit(), {"X": np.zeros((len(y), 2)),
                                         "groups": np.r_[[np.nan], g[1:]]}, y),
     "groups has missing values"),
    (lambda g, y: (GroupedValidSplit(), {"X": np.zeros((len(y), 2)),
                                         "groups": np.zeros(len(y))}, y),
     "Cannot split 1 group"),
])
def test_grouped_valid_split_errors(make, match):
    from skorch.dataset import Dataset

    groups, y, _ = _data(30)
    split, X, labels = make(groups, y)
    with pytest.raises(ValueError, match=match):
        split(Dataset(X, labels), labels)


@pytest.mark.parametrize("cv", [0, 1.0, 1, -0.2, True, "0.2"])
def test_grouped_valid_split_rejects_a_bad_cv(cv):
    with pytest.raises(ValueError, match=r"cv must be a float in \(0, 1\)"):
        GroupedValidSplit(cv)


class _RecordSplit(Callback):
    """The rows of the training and validation sets skorch iterates over."""

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        self.train_, self.valid_ = dataset_train.indices, dataset_valid.indices


def test_classifier_early_stops_on_a_grouped_split_and_vae_uses_it_too():
    from skorch.callbacks import EarlyStopping
    from skorch.helper import SliceDict

    from fairskl import NIRClassifier, PerceptualVAE

    groups, y, _ = _data(60)
    groups = np.array([f"HAM_{g:07d}" for g in groups], dtype=object)  # lesion ids as strings
    rng = np.random.RandomState(0)
    X = (rng.normal(size=(len(y), 4)) + y[:, None]).astype(np.float32)
    record = _RecordSplit()
    clf = NIRClassifier("mlp", lr=1e-2, max_epochs=3, random_state=0, verbose=0,
                        train_split=GroupedValidSplit(0.25, random_state=0),
                        callbacks=[record, EarlyStopping(patience=5)])
    clf.fit(SliceDict(X=X, groups=groups), y)
    assert not set(groups[record.train_]) & set(groups[record.valid_])
    assert len(record.valid_) > 0 and "valid_loss" in clf.history[-1]
    with pytest.raises(ValueError, match="needs the group"):
        clone(clf).fit(X, y)  # no groups in X
    with pytest.raises(ValueError, match="groups has missing values"):
        clone(clf).fit(SliceDict(X=X, groups=np.r_[[None], groups[1:]]), y)

    images = rng.uniform(size=(len(y), 3, 32, 32)).astype(np.float32)
    record = _RecordSplit()
    vae = PerceptualVAE(channel_width=4, latent_channels=4, perceptual_weight=0, max_epochs=1,
                        batch_size=32, random_state=0, verbose=0, callbacks=[record],
                        train_split=GroupedValidSplit(0.25, stratified=False, random_state=0))
    vae.fit({"X": images, "groups": groups})
    assert not set(groups[record.train_]) & set(groups[record.valid_])
    assert np.isfinite(vae.history[-1, "valid_loss"])
    assert vae.transform({"X": images[:4], "groups": groups[:4]}).shape == (4, 64)


@pytest.mark.skipif(not HAM_CSV.is_file(),
                    reason=f"real metadata {HAM_CSV} absent (see ../shared/data/README.md)")
def test_grouped_valid_split_on_real_ham10000_lesions():
    meta = pd.read_csv(HAM_CSV)
    y = meta["dx"].isin(["mel", "akiec"]).to_numpy().astype(int)
    lesion = meta["lesion_id"].to_numpy()
    train, valid = _sides(GroupedValidSplit(0.15, random_state=0), lesion, y)
    assert not set(lesion[train]) & set(lesion[valid])
    assert abs(len(valid) / len(y) - 0.15) < 0.01
    assert abs(y[valid].mean() - y.mean()) < 0.01
