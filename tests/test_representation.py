"""The representation study: its sampling protocol, scoring, checkpoints and resume."""

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score

from fairskl.experiments import representation_study
from fairskl.experiments._representation import _split_sizes

GROUP_SIZES = {"light": 90, "dark": 50}


def _groups():
    return pd.Categorical(np.repeat(list(GROUP_SIZES), list(GROUP_SIZES.values())),
                          categories=list(GROUP_SIZES))


class Recorder(BaseEstimator):
    """Fits nothing; remembers the rows it was trained on (X holds each row's position)."""

    log = []
    max_fits = None  # interrupt the study after this many fits

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, y=None):
        n_fits = sum(kind == "fit" for kind, *_ in Recorder.log)
        if Recorder.max_fits is not None and n_fits >= Recorder.max_fits:
            raise KeyboardInterrupt("simulated interrupt")
        self.train_ = np.asarray(X)[:, 0].astype(int)
        Recorder.log.append(("fit", self.train_, self.random_state))
        return self

    def transform(self, X):
        return np.asarray(X)

    def inverse_transform(self, Z):
        return np.asarray(Z) + self.random_state % 7 * 1e-3


def record_test(estimator, X, y=None):
    Recorder.log.append(("test", np.asarray(X)[:, 0].astype(int), estimator.random_state))
    return float(len(X))


@pytest.fixture
def log():
    Recorder.log, Recorder.max_fits = [], None
    yield Recorder.log
    Recorder.max_fits = None


def test_sampling_follows_the_protocol(log):
    n = sum(GROUP_SIZES.values())
    X = np.arange(n, dtype=float)[:, None]
    groups = np.asarray(_groups())
    mixes = [(1, 0), (0.5, 0.5), (0.3, 0.7), (0, 1)]
    with pytest.warns(UserWarning, match=r"draws 120 training samples of 'dark' with "
                                         r"replacement from a pool of only 30: about 29"):
        results = representation_study(
            Recorder(), X, groups=_groups(), train_mixes=mixes, n_train=120,
            n_test_per_group=20, n_repeats=3, scoring={"n": record_test}, random_state=0,
            verbose=0,
        )
    # Each cell: one fit, then one test call per group (light, dark), in that order.
    assert len(log) == 3 * len(mixes) * 3
    cells = [log[i:i + 3] for i in range(0, len(log), 3)]
    tests_by_repeat = {}
    for k, ((_, train, seed), (_, test_light, _), (_, test_dark, _)) in enumerate(cells):
        r, m = divmod(k, len(mixes))
        # Test sets: n_test_per_group per group, drawn without replacement, within the group.
        for test, name in [(test_light, "light"), (test_dark, "dark")]:
            assert len(test) == 20 and len(np.unique(test)) == 20
            assert (groups[test] == name).all()
        # The same test set for every mix of a repeat; a new one for each repeat.
        tests_by_repeat.setdefault(r, set()).add((tuple(test_light), tuple(test_dark)))
        # Training set: n_train rows with the mix's shares, none from the repeat's test set.
        assert len(train) == 120
        n_light = np.sum(groups[train] == "light")
        assert n_light == round(mixes[m][0] * 120)
        assert not np.isin(train, np.concatenate([test_light, test_dark])).any()
        # With replacement: 60 draws from the 30 dark rows outside the test set repeat rows.
        if mixes[m] == (0.5, 0.5):
            assert len(np.unique(train[groups[train] == "dark"])) < 60
        assert isinstance(seed, int)
    assert all(len(s) == 1 for s in tests_by_repeat.values())
    assert len({next(iter(s)) for s in tests_by_repeat.values()}) == 3
    # Each fit got its own seed.
    assert len({seed for kind, _, seed in log if kind == "fit"}) == 3 * len(mixes)
    assert results["value"].eq(20).all()
    assert list(results.columns) == ["repeat", "mix", "group", "train_share", "n_train",
                                     "n_distinct", "metric", "value"]
    # n_train and n_distinct count each cell's draws from each group.
    fits = [train for kind, train, _ in log if kind == "fit"]
    for k, train in enumerate(fits):
        r, m = divmod(k, len(mixes))
        for name in GROUP_SIZES:
            row = results[(results.repeat == r) & (results.mix == results.mix.cat.categories[m])
                          & (results.group == name)].iloc[0]
            drawn = train[groups[train] == name]
            assert (row.n_train, row.n_distinct) == (len(drawn), len(np.unique(drawn)))
    assert list(results["mix"].cat.categories) == [
        "100% light / 0% dark", "50% light / 50% dark", "30% light / 70% dark",
        "0% light / 100% dark"]


@pytest.mark.parametrize("mix, n, expected", [
    ((0.5, 0.5), 1668, [834, 834]),
    ((1 / 3, 2 / 3), 10, [3, 7]),
    ((1 / 3, 1 / 3, 1 / 3), 10, [4, 3, 3]),
    ((1, 0), 7, [7, 0]),
])
def test_split_sizes_sum_to_n(mix, n, expected):
    assert _split_sizes(mix, n).tolist() == expected


def test_classifier_scores_match_an_independent_fit(log):
    rng = np.random.default_rng(0)
    n = sum(GROUP_SIZES.values())
    groups = np.asarray(_groups())
    y = rng.integers(0, 2, n)
    X = np.column_stack([np.arange(n), y + rng.normal(scale=0.8 + (groups == "dark"), size=n)])

    class Logged(ClassifierMixin, Recorder):
        def fit(self, X, y):
            super().fit(X)
            self.model_ = LogisticRegression().fit(X[:, 1:], y)
            self.classes_ = self.model_.classes_
            return self

        def predict(self, X):
            record_test(self, X)
            return self.model_.predict(X[:, 1:])

        def predict_proba(self, X):
            return self.model_.predict_proba(X[:, 1:])

    results = representation_study(
        Logged(), X, y, groups=_groups(), n_train=100, n_test_per_group=30, n_repeats=1,
        random_state=1, verbose=0,
    )
    assert set(results["metric"]) == {"roc_auc", "tpr", "fpr"}
    # Recompute the first cell (100% light) by hand from the rows it used.
    train = log[0][1]
    test_dark = [rows for kind, rows, _ in log if kind == "test"][2]  # tpr: light, dark
    model = LogisticRegression().fit(X[train, 1:], y[train])
    expected = recall_score(y[test_dark], model.predict(X[test_dark, 1:]))
    got = results.query("mix == '100% light / 0% dark' and group == 'dark' and metric == 'tpr'")
    assert got["value"].item() == pytest.approx(expected)


def test_resume_after_an_interrupt_gives_the_same_tables(tmp_path, log):
    rng = np.random.default_rng(0)
    n = sum(GROUP_SIZES.values())
    X = np.column_stack([np.arange(n), rng.normal(size=(n, 3))])
    kwargs = dict(groups=_groups(), n_train=60, n_test_per_group=20, n_repeats=3,
                  random_state=3, return_samples=True, verbose=0)
    full, full_samples = representation_study(Recorder(), X, **kwargs)

    log.clear()
    Recorder.max_fits = 4
    with pytest.raises(KeyboardInterrupt):
        representation_study(Recorder(), X, checkpoint_dir=tmp_path, **kwargs)
    assert len(list(tmp_path.glob("cell_*.samples.csv"))) == 4
    log.clear()
    Recorder.max_fits = None
    with pytest.raises(ValueError, match=r"other \['estimator'\]"):
        representation_study(Recorder(random_state=1), X, checkpoint_dir=tmp_path, **kwargs)
    resumed, resumed_samples = representation_study(Recorder(), X, checkpoint_dir=tmp_path,
                                                    **kwargs)
    # Only the 5 missing cells were fitted: none lost, none done twice.
    assert sum(kind == "fit" for kind, *_ in log) == 9 - 4
    assert_frame_equal(resumed, full, check_exact=True)
    assert_frame_equal(resumed_samples, full_samples, check_exact=True)

    # More repeats extend the saved study; other data is refused.
    log.clear()
    longer = representation_study(Recorder(), X, checkpoint_dir=tmp_path,
                                  **{**kwargs, "n_repeats": 4})[0]
    assert sum(kind == "fit" for kind, *_ in log) == 3
    assert_frame_equal(longer[longer.repeat < 3].reset_index(drop=True), full)
    with pytest.raises(ValueError, match=r"other \['X'\]"):
        representation_study(Recorder(), X + 1, checkpoint_dir=tmp_path, **kwargs)
    with pytest.raises(ValueError, match=r"other \['n_train'\]"):
        representation_study(Recorder(), X, checkpoint_dir=tmp_path, **{**kwargs, "n_train": 61})


def test_parallel_equals_sequential():
    rng = np.random.default_rng(0)
    n = sum(GROUP_SIZES.values())
    X = rng.normal(size=(n, 6)) * np.where(np.asarray(_groups()) == "dark", 2, 1)[:, None]
    kwargs = dict(groups=_groups(), n_train=50, n_test_per_group=20, n_repeats=2,
                  random_state=0, verbose=0)
    one = representation_study(PCA(n_components=2), X, n_jobs=1, **kwargs)
    two = representation_study(PCA(n_components=2), X, n_jobs=2, **kwargs)
    assert_frame_equal(one, two)
    # PCA trained on one group reconstructs that group best.
    means = one.groupby(["mix", "group"], observed=True)["value"].mean()
    assert means["100% light / 0% dark", "light"] < means["0% light / 100% dark", "light"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(groups=np.r_[["a"] * 70, [None] * 70]), "missing values"),
    (dict(groups=["a"] * 140), "at least 2 distinct groups"),
    (dict(train_mixes=[(1, 0, 0)]), "tuples of 2 shares"),
    (dict(train_mixes=[(0.6, 0.6)]), "sum to 1"),
    (dict(n_test_per_group=50), "more than n_test_per_group=50"),
    (dict(n_repeats=0), r"'n_repeats' parameter of representation_study must be an int in "
                        r"the range \[1, inf\)"),
    (dict(checkpoint_dir="unused"), "needs an int random_state"),
    (dict(y=np.zeros(3)), "y has 3 samples"),
    (dict(scoring="tpr"), "needs labels"),
])
def test_bad_input_is_named(kwargs, match):
    X = np.zeros((140, 2))
    args = dict(groups=_groups(), n_train=10, n_test_per_group=10, n_repeats=1, verbose=0)
    with pytest.raises(ValueError, match=match):
        representation_study(PCA(n_components=1), X, **{**args, **kwargs})


def test_study_figures(tmp_path):
    import matplotlib.pyplot as plt

    from fairskl.experiments import plot_error_by_label, plot_representation_study

    rng = np.random.default_rng(0)
    n = sum(GROUP_SIZES.values())
    X = rng.normal(size=(n, 6)) * np.where(np.asarray(_groups()) == "dark", 2, 1)[:, None]
    results, samples = representation_study(
        PCA(n_components=2), X, groups=_groups(), n_train=50, n_test_per_group=20, n_repeats=2,
        random_state=0, return_samples=True, verbose=0)
    axes = plot_representation_study(results)
    # One box per (mix, group): 3 mixes x 2 groups.
    assert len(axes[0].patches) == 6
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["light", "dark"]
    labels = np.array(["acne", "eczema", "psoriasis"] * n)[:n]
    axes = plot_error_by_label(samples, labels, min_count=3)
    mixes = list(results["mix"].cat.categories)
    assert [ax.get_title().split(":")[0] for ax in axes] == mixes  # one panel per mix
    for ax, mix in zip(axes, mixes, strict=True):
        # by hand: each distinct test image once (its mean over the repeats that drew it),
        # then the mean over a label's images, within this mix only
        rows = samples[(samples["mix"] == mix) & (samples["metric"] == "reconstruction_mse")]
        per_image = {}
        for (sample, group), values in rows.groupby(["sample", "group"], observed=True):
            per_image[sample] = (group, values["value"].mean())
        expected = {}
        for group in ("light", "dark"):
            for label in ("acne", "eczema", "psoriasis"):
                values = [v for s, (g, v) in per_image.items()
                          if g == group and labels[s] == label]
                expected[group, label] = np.mean(values)
        x, y = ax.collections[0].get_offsets().T
        np.testing.assert_allclose(x, [expected["light", k] for k in ("acne", "eczema",
                                                                       "psoriasis")])
        np.testing.assert_allclose(y, [expected["dark", k] for k in ("acne", "eczema",
                                                                      "psoriasis")])
    # min_count counts distinct images: a repeat drawing the same images again adds none
    twice = pd.concat([samples, samples.assign(repeat=samples["repeat"] + 10)])
    n_dark = samples.loc[samples["group"] == "dark", "sample"].nunique()
    kept = plot_error_by_label(twice, np.zeros(n, dtype=int), min_count=n_dark)
    assert len(kept[0].collections[0].get_offsets()) == 1
    dropped = plot_error_by_label(twice, np.zeros(n, dtype=int), min_count=n_dark + 1)
    assert len(dropped[0].collections[0].get_offsets()) == 0
    assert "1 with < " in dropped[0].get_title()
    with pytest.raises(ValueError, match="not in results"):
        plot_representation_study(results, ["auc"])
    plt.close("all")


def test_without_replacement_and_exclude(log):
    n = sum(GROUP_SIZES.values())
    X = np.arange(n, dtype=float)[:, None]
    shared = np.r_[0:5, 90:95]  # 5 light and 5 dark never drawn
    results = representation_study(
        Recorder(), X, groups=_groups(), train_mixes=[(0.5, 0.5)], n_train=40,
        n_test_per_group=20, n_repeats=2, scoring={"n": record_test}, replace=False,
        exclude=shared, random_state=0, verbose=0,
    )
    for kind, rows, _ in log:
        assert not np.isin(rows, shared).any()
        if kind == "fit":  # without replacement: every draw distinct
            assert len(np.unique(rows)) == len(rows) == 40
    assert (results.n_distinct == results.n_train).all()
    # a boolean mask is the same as positions
    log.clear()
    mask = np.isin(np.arange(n), shared)
    again = representation_study(
        Recorder(), X, groups=_groups(), train_mixes=[(0.5, 0.5)], n_train=40,
        n_test_per_group=20, n_repeats=2, scoring={"n": record_test}, replace=False,
        exclude=mask, random_state=0, verbose=0,
    )
    assert_frame_equal(results, again)
    # a pool too small for draws without replacement is an error naming the fix
    with pytest.raises(ValueError, match="replace=False: mix '0% light / 100% dark' draws 60 "
                                         "samples of 'dark' from a pool of 25"):
        representation_study(Recorder(), X, groups=_groups(), train_mixes=[(0, 1)], n_train=60,
                             n_test_per_group=20, replace=False, exclude=shared, verbose=0)
    with pytest.raises(ValueError, match="exclude must be positions"):
        representation_study(Recorder(), X, groups=_groups(), exclude=[n + 1], verbose=0)


def test_dict_scorers_and_returned_estimators(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(140, 4))

    def both(estimator, X, y=None):
        err = ((estimator.inverse_transform(estimator.transform(X)) - X) ** 2).mean(axis=1)
        return {"err": err, "n_components": float(estimator.n_components_)}

    kw = dict(groups=_groups(), train_mixes=[(1, 0), (0, 1)], n_train=30, n_test_per_group=10,
              n_repeats=2, scoring={"both": both}, random_state=0, verbose=0,
              return_samples=True, return_estimators=True)
    results, samples, models = representation_study(PCA(n_components=2), X,
                                                    checkpoint_dir=tmp_path, **kw)
    assert set(results.metric) == {"err", "n_components"}
    assert set(samples.metric) == {"err"}
    assert sorted(models) == [(0, "0% light / 100% dark"), (0, "100% light / 0% dark"),
                              (1, "0% light / 100% dark"), (1, "100% light / 0% dark")]
    # each returned model is the one that was scored
    row = samples[(samples.repeat == 1) & (samples.mix == "0% light / 100% dark")]
    model = models[(1, "0% light / 100% dark")]
    by_hand = ((model.inverse_transform(model.transform(X[row["sample"]])) - X[row["sample"]])
               ** 2).mean(axis=1)
    np.testing.assert_allclose(row["value"], by_hand)
    # a resumed run loads the saved models
    assert len(list(tmp_path.glob("*.joblib"))) == 4
    results2, _, models2 = representation_study(PCA(n_components=2), X,
                                                checkpoint_dir=tmp_path, **kw)
    assert_frame_equal(results, results2)
    np.testing.assert_allclose(models2[(1, "0% light / 100% dark")].components_,
                               model.components_)
