"""fairskl.inspection against incidences computed by hand with NumPy loops."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from fairskl import nir_penalty  # noqa: E402
from fairskl.inspection import NeuronIncidenceDisplay, neuron_incidence  # noqa: E402
from fairskl.metrics import group_report  # noqa: E402


class Logistic(ClassifierMixin, BaseEstimator):
    """The penultimate activations are X itself; P(class 1) = sigmoid(2 * X[:, 0] - 1)."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def penultimate(self, X):
        return np.asarray(X, dtype=float)

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-(2 * np.asarray(X, dtype=float)[:, 0] - 1)))
        return np.column_stack([1 - p, p])


class Softmax(Logistic):
    """Three classes: softmax of the first three activations."""

    def predict_proba(self, X):
        z = np.exp(3 * np.asarray(X, dtype=float)[:, :3])
        return z / z.sum(axis=1, keepdims=True)


class NoPenultimate(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), 2), 0.5)


def _data(n=16, d=5, seed=0):
    rng = np.random.RandomState(seed)
    H = rng.uniform(size=(n, d))
    sex = np.array(["female", "male"] * (n // 2))
    y = (np.arange(n) // 2) % 2  # every (sex, y) cell is filled
    H[sex == "male", 0] += 1.0  # men over-activate neuron 0
    H[:, 1] += y
    return H, sex, y


def _incidence(H, w):
    """sum_i w_i h_i / sum_i w_i, with explicit loops."""
    total, acc = 0.0, np.zeros(H.shape[1])
    for h_i, w_i in zip(H, w, strict=True):
        acc += w_i * h_i
        total += w_i
    return acc / total


def test_incidence_matches_numpy_by_hand():
    H, sex, y = _data()
    clf = Logistic().fit(H, ["neg" if v == 0 else "pos" for v in y])
    P = clf.predict_proba(H)
    result = neuron_incidence(clf, H, sensitive_features=sex, top_k=3)
    frame = result.incidence
    assert list(frame.columns) == [
        "class", "rank", "neuron", "class_incidence", "group", "label", "n", "incidence",
        "relative_incidence",
    ]
    assert len(frame) == 2 * 3 * 2
    assert frame["label"].isna().all()
    for c, name in enumerate(["neg", "pos"]):
        m = _incidence(H, P[:, c])
        np.testing.assert_allclose(result.class_incidence[c], m)
        top = sorted(range(H.shape[1]), key=lambda d: -m[d])[:3]
        rows = frame[frame["class"] == name]
        assert rows.drop_duplicates("rank")["neuron"].tolist() == top
        for group in ["female", "male"]:
            mask = sex == group
            m_g = _incidence(H[mask], P[mask, c])
            cell = rows[rows["group"] == group].sort_values("rank")
            assert (cell["n"] == mask.sum()).all()
            np.testing.assert_allclose(cell["class_incidence"], m[top])
            np.testing.assert_allclose(cell["incidence"], m_g[top])
            np.testing.assert_allclose(cell["relative_incidence"], m_g[top] / m[top])
    # neuron 0 drives the positive class, and men over-activate it
    pos = frame[(frame["class"] == "pos") & (frame["rank"] == 1)].set_index("group")
    assert pos["neuron"].iloc[0] == 0
    assert pos.loc["male", "relative_incidence"] > 1 > pos.loc["female", "relative_incidence"]


def test_relative_incidence_averages_to_one_over_probability_mass():
    H, sex, _ = _data(n=20, seed=1)
    clf = Logistic().fit(H, [0, 1] * 10)
    P = clf.predict_proba(H)
    frame = neuron_incidence(clf, H, sensitive_features=sex, top_k=5).incidence
    for c in (0, 1):
        share = {g: P[sex == g, c].sum() / P[:, c].sum() for g in ["female", "male"]}
        for _, rows in frame[frame["class"] == c].groupby("neuron"):
            pairs = zip(rows["group"], rows["relative_incidence"], strict=True)
            weighted = sum(share[g] * r for g, r in pairs)
            assert weighted == pytest.approx(1.0)


def test_summary_gap_and_nir_statistic():
    H, sex, _ = _data(n=18, d=6, seed=2)
    clf = Softmax().fit(H, [0, 1, 2] * 6)
    P = clf.predict_proba(H)
    result = neuron_incidence(clf, H, sensitive_features=sex, top_k=2)
    summary = result.summary.set_index("class")
    assert list(summary.index) == [0, 1, 2]
    for c in range(3):
        m = _incidence(H, P[:, c])
        top = int(np.argmax(m))
        rel = {g: _incidence(H[sex == g], P[sex == g, c])[top] / m[top]
               for g in ["female", "male"]}
        row = summary.loc[c]
        assert row["top_neuron"] == top
        assert row["incidence_gap"] == pytest.approx(max(rel.values()) - min(rel.values()))
        assert row["max_group"] == max(rel, key=rel.get)
        assert row["min_group"] == min(rel, key=rel.get)
        # squared coefficient of variation, written out
        mean_abs = sum(abs(v) for v in m) / len(m)
        cv2 = sum((v / mean_abs - m.mean() / mean_abs) ** 2 for v in m) / len(m)
        assert row["nir_statistic"] == pytest.approx(cv2)
        # ... which is the class's term of nir_penalty(normalize="mean"): the column twice
        # gives its term alone
        column = torch.tensor(P[:, [c, c]])
        assert row["nir_statistic"] == pytest.approx(
            float(nir_penalty(torch.tensor(H), column, normalize="mean")), rel=1e-6
        )
    penalty = float(nir_penalty(torch.tensor(H), torch.tensor(P), normalize="mean"))
    assert summary["nir_statistic"].mean() == pytest.approx(penalty, rel=1e-6)


def test_two_sensitive_columns_make_intersections():
    H, sex, _ = _data(n=16)
    age = np.array(["<60"] * 4 + ["60+"] * 12)
    groups = pd.DataFrame({"sex": sex, "age": age})
    clf = Logistic().fit(H, [0, 1] * 8)
    P = clf.predict_proba(H)
    frame = neuron_incidence(clf, H, sensitive_features=groups, top_k=1).incidence
    cells = frame[frame["class"] == 1].set_index("group")
    assert sorted(cells.index) == sorted(
        f"sex={s}, age={a}" for s in ["female", "male"] for a in ["<60", "60+"]
    )
    mask = (sex == "male") & (age == "<60")
    cell = cells.loc["sex=male, age=<60"]
    assert cell["n"] == mask.sum() == 2
    m_g = _incidence(H[mask], P[mask, 1])
    assert cell["incidence"] == pytest.approx(m_g[int(cell["neuron"])])


def test_groups_are_named_as_in_group_report():
    H, sex, y = _data(n=16)
    for groups, names in [
        (np.array([1, 2] * 8), ["1", "2"]),
        (pd.DataFrame({"sex": sex, "age": [40, 60] * 4 + [60, 40] * 4}),
         ["sex=female, age=40", "sex=female, age=60", "sex=male, age=40", "sex=male, age=60"]),
    ]:
        frame = neuron_incidence(Logistic().fit(H, y), H, sensitive_features=groups).incidence
        report = group_report(y, H[:, 0] / 2, sensitive_features=groups, n_bootstrap=0)
        assert sorted(set(frame["group"])) == names
        assert sorted(set(report.query("kind == 'group'")["group"])) == names

def test_with_y_splits_groups_by_true_label():
    H, sex, y = _data(n=24, seed=3)
    clf = Logistic().fit(H, y)
    P = clf.predict_proba(H)
    result = neuron_incidence(clf, H, sensitive_features=sex, y=y, top_k=2)
    frame = result.incidence
    assert set(zip(frame["group"], frame["label"], strict=True)) == {
        (g, v) for g in ["female", "male"] for v in [0, 1]
    }
    c = 1
    m = _incidence(H, P[:, c])
    top = int(np.argmax(m))
    rel = {}
    for g in ["female", "male"]:
        for v in [0, 1]:
            mask = (sex == g) & (y == v)
            row = frame[(frame["class"] == c) & (frame["rank"] == 1)
                        & (frame["group"] == g) & (frame["label"] == v)].iloc[0]
            assert row["n"] == mask.sum()
            rel[g, v] = _incidence(H[mask], P[mask, c])[top] / m[top]
            assert row["relative_incidence"] == pytest.approx(rel[g, v])
    gaps = {v: abs(rel["male", v] - rel["female", v]) for v in [0, 1]}
    worst = max(gaps, key=gaps.get)
    summary = result.summary.set_index("class").loc[c]
    assert summary["label"] == worst
    assert summary["incidence_gap"] == pytest.approx(gaps[worst])


def test_pandas_inputs_and_top_k_larger_than_layer():
    H, sex, y = _data(n=8, d=3)
    index = pd.RangeIndex(100, 108)
    X = pd.DataFrame(H, index=index)
    clf = Logistic().fit(H, y)
    result = neuron_incidence(
        clf, X, sensitive_features=pd.Series(sex, index=index, name="sex"),
        y=pd.Series(y, index=index), top_k=10,
    )
    assert sorted(result.incidence["rank"].unique()) == [1, 2, 3]  # only 3 neurons


@pytest.mark.parametrize("top_k", [0, -1, 1.5, True, "3"])
def test_bad_top_k(top_k):
    H, sex, y = _data()
    with pytest.raises(ValueError, match="top_k must be an int >= 1"):
        neuron_incidence(Logistic().fit(H, y), H, sensitive_features=sex, top_k=top_k)


def test_estimator_checks():
    H, sex, y = _data()
    with pytest.raises(TypeError, match=r"'estimator' .* 'predict_proba' and 'penultimate'"):
        neuron_incidence(NoPenultimate().fit(H, y), H, sensitive_features=sex)
    with pytest.raises(TypeError, match=r"'estimator' .* 'predict_proba' and 'penultimate'"):
        neuron_incidence(object(), H, sensitive_features=sex)
    with pytest.raises(NotFittedError):
        neuron_incidence(Logistic(), H, sensitive_features=sex)


def test_input_checks():
    H, sex, y = _data(n=16)
    clf = Logistic().fit(H, y)
    with pytest.raises(ValueError, match="sensitive_features has 15"):
        neuron_incidence(clf, H, sensitive_features=sex[:15])
    with pytest.raises(ValueError, match="y has 10"):
        neuron_incidence(clf, H, sensitive_features=sex, y=y[:10])
    with pytest.raises(ValueError, match="different indexes"):
        neuron_incidence(clf, pd.DataFrame(H), sensitive_features=pd.Series(sex, index=H[:, 0]))
    with pytest.raises(ValueError, match="missing values"):
        neuron_incidence(clf, H, sensitive_features=np.where(sex == "male", None, sex))
    with pytest.raises(ValueError, match="3 classes_"):
        neuron_incidence(Logistic().fit(H, [0, 1, 2, 0] * 4), H, sensitive_features=sex)
    H_nan = H.copy()
    H_nan[0, 1] = np.nan
    with pytest.raises(ValueError, match=r"penultimate\(X\) returned NaN"):
        neuron_incidence(clf, H_nan, sensitive_features=sex)


def test_class_with_zero_probability_is_an_error():
    class Certain(Logistic):
        def predict_proba(self, X):
            return np.column_stack([np.ones(len(X)), np.zeros(len(X))])

    H, sex, y = _data()
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] have zero total"):
        neuron_incidence(Certain().fit(H, y), H, sensitive_features=sex)


def test_display_one_panel_per_class():
    H, sex, y = _data(n=18, d=6, seed=2)
    clf = Softmax().fit(H, [0, 1, 2] * 6)
    disp = NeuronIncidenceDisplay.from_estimator(clf, H, sensitive_features=sex, top_k=3)
    frame = disp.incidence
    assert len(disp.ax_) == 3 and len(disp.im_) == 3
    assert disp.figure_ is disp.ax_[0].figure
    assert disp.colorbar_ is not None
    for c, ax in enumerate(disp.ax_):
        rows = frame[frame["class"] == c]
        neurons = rows.drop_duplicates("rank")["neuron"].tolist()
        assert ax.get_title().splitlines()[0] == f"class {c}"
        assert [t.get_text() for t in ax.get_xticklabels()] == [str(n) for n in neurons]
        # the groups are named once, left of the row
        expected = ["female", "male"] if c == 0 else []
        assert [t.get_text() for t in ax.get_yticklabels()] == expected
        image = disp.im_[c].get_array()
        assert image.shape == (2, 3)
        male = rows[rows["group"] == "male"].sort_values("rank")["relative_incidence"]
        np.testing.assert_allclose(image[1], male)
        assert disp.text_[c][1, 0].get_text() == f"{male.iloc[0]:.2f}"
    # one colour scale for all panels
    assert {im.norm.vmin for im in disp.im_} == {frame["relative_incidence"].min()}
    plt.close("all")


def test_display_with_y_and_given_axes():
    H, sex, y = _data(n=24, seed=3)
    clf = Logistic().fit(H, y)
    fig, axes = plt.subplots(2, 2)
    for row in axes:  # before / after: one row each
        disp = NeuronIncidenceDisplay.from_estimator(
            clf, H, sensitive_features=sex, y=y, top_k=2, ax=row, vmin=0.0, vmax=2.0,
            values_format=None, colorbar=False,
        )
        assert list(disp.ax_) == list(row)
        assert disp.text_ == [None, None] and disp.colorbar_ is None
        assert disp.im_[0].norm.vmax == 2.0
    labels = [t.get_text() for t in axes[1, 0].get_yticklabels()]
    assert labels == ["female, y=0", "female, y=1", "male, y=0", "male, y=1"]
    with pytest.raises(ValueError, match="ax has 1 Axes but there are 2 classes"):
        NeuronIncidenceDisplay.from_estimator(clf, H, sensitive_features=sex, ax=axes[0, 0])
    plt.close("all")
