"""fairskl.model_selection.train_val_test_split: groups kept whole, strata and sizes balanced."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairskl.model_selection import train_val_test_split

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
