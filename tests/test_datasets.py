"""fairskl.datasets.make_skin_lesions: format, determinism, validation and the planted structure."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from sklearn.metrics import roc_auc_score

from fairskl.datasets import make_skin_lesions

SENSITIVE = ["sex", "age", "age_group", "skin_type"]


def _corners(images):
    """Mean brightness of a small patch (1/16 of the side) in each corner, shape (n_samples, 4)."""
    b = images.mean(axis=1)
    k = max(1, b.shape[-1] // 16)
    return np.stack([b[:, :k, :k], b[:, :k, -k:], b[:, -k:, :k], b[:, -k:, -k:]], axis=1).mean(
        axis=(2, 3)
    )


def _log_odds_ratio(y, exposed):
    """Empirical log odds ratio of y between exposed and not, and its standard error."""
    a = np.sum(y[exposed] == 1)
    b = np.sum(y[exposed] == 0)
    c = np.sum(y[~exposed] == 1)
    d = np.sum(y[~exposed] == 0)
    return np.log(a * d / (b * c)), np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)


@pytest.fixture(scope="module")
def large():
    """Many small images for the statistical tests (the labels do not depend on image_size)."""
    return make_skin_lesions(30000, 16, bias=2.0, prevalence=0.3, random_state=0, as_frame=True)


def test_bunch_format():
    data = make_skin_lesions(300, 24, random_state=0)  # two rendering chunks
    assert set(data) == {"images", "target", "target_names", "sensitive", "frame", "DESCR"}
    assert data.images.shape == (300, 3, 24, 24)
    assert data.images.dtype == np.float32
    assert data.images.min() >= 0 and data.images.max() <= 1
    assert data.images.std() > 0.05  # not a constant image
    assert isinstance(data.target, np.ndarray) and data.target.shape == (300,)
    assert np.issubdtype(data.target.dtype, np.integer)
    assert set(np.unique(data.target)) == {0, 1}
    assert data.target_names == ["benign", "malignant"]
    assert data.frame is None
    assert "Fitzpatrick" in data.DESCR and "{_" not in data.DESCR  # formatted constants

    s = data.sensitive
    assert isinstance(s, pd.DataFrame) and list(s.columns) == SENSITIVE and len(s) == 300
    assert set(s["sex"]) == {"female", "male"}
    assert set(s["age_group"]) == {"<60", "60+"}
    assert np.issubdtype(s["age"].dtype, np.integer)
    assert s["age"].between(20, 89).all()
    assert ((s["age"] >= 60) == (s["age_group"] == "60+")).all()
    assert list(s["skin_type"].cat.categories) == list(range(1, 7))
    assert set(s["skin_type"]) == set(range(1, 7))


@pytest.mark.parametrize("image_size", [16, 33])
def test_small_and_odd_sizes(image_size):
    X, y = make_skin_lesions(5, image_size, return_X_y=True, random_state=1)
    assert X.shape == (5, 3, image_size, image_size) and y.shape == (5,)
    assert np.isfinite(X).all()


def test_single_sample():
    data = make_skin_lesions(1, 16, random_state=0)
    assert data.images.shape == (1, 3, 16, 16) and len(data.sensitive) == 1


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = make_skin_lesions(20, 32, random_state=3, as_frame=True)
    b = make_skin_lesions(20, 32, random_state=3, as_frame=True)
    c = make_skin_lesions(20, 32, random_state=4, as_frame=True)
    np.testing.assert_array_equal(a.images, b.images)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert not np.allclose(a.images, c.images)
    assert not a.frame.equals(c.frame)

    rs = np.random.RandomState(3)  # a RandomState instance is accepted and advanced
    d = make_skin_lesions(20, 32, random_state=rs)
    e = make_skin_lesions(20, 32, random_state=rs)
    np.testing.assert_array_equal(d.images, a.images)
    assert not np.allclose(d.images, e.images)


def test_labels_and_attributes_do_not_depend_on_image_size():
    a = make_skin_lesions(50, 16, random_state=0, as_frame=True)
    b = make_skin_lesions(50, 40, random_state=0, as_frame=True)
    pd.testing.assert_series_equal(a.target, b.target)
    pd.testing.assert_frame_equal(a.sensitive, b.sensitive)
    np.testing.assert_allclose(a.frame["lesion_radius"], b.frame["lesion_radius"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, r"n_samples must be an integer >= 1, got 0"),
        ({"n_samples": -5}, r"n_samples .* got -5"),
        ({"n_samples": 10.0}, r"n_samples .* got 10\.0"),
        ({"n_samples": True}, r"n_samples .* got True"),
        ({"image_size": 15}, r"image_size must be an integer >= 16, got 15"),
        ({"image_size": "64"}, r"image_size .* got '64'"),
        ({"bias": -0.5}, r"bias must be a finite number >= 0, got -0\.5"),
        ({"bias": float("inf")}, r"bias .* got inf"),
        ({"bias": float("nan")}, r"bias .* got nan"),
        ({"bias": None}, r"bias .* got None"),
        ({"prevalence": 0}, r"prevalence must be a number strictly between 0 and 1, got 0"),
        ({"prevalence": 1.0}, r"prevalence .* got 1\.0"),
        ({"prevalence": 1.5}, r"prevalence .* got 1\.5"),
        ({"artefact_strength": 1.5}, r"artefact_strength must be a number in \[0, 1\], got 1\.5"),
        ({"artefact_strength": -0.1}, r"artefact_strength .* got -0\.1"),
    ],
)
def test_invalid_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match) as excinfo:
        make_skin_lesions(**{"n_samples": 4, "image_size": 16, **kwargs})
    assert "e.g." in str(excinfo.value)  # the message says how to fix it


@pytest.mark.parametrize("bias", [0.0, 1.0, 3.0])
@pytest.mark.parametrize("prevalence", [0.1, 0.3, 0.6])
def test_prevalence_is_as_requested(bias, prevalence):
    n = 20000
    _, y = make_skin_lesions(
        n, 16, bias=bias, prevalence=prevalence, return_X_y=True, random_state=1
    )
    se = np.sqrt(prevalence * (1 - prevalence) / n)
    assert abs(y.mean() - prevalence) < 4 * se


def test_label_probability_follows_the_documented_model(large):
    """logit P(y=1 | sex, age) = b0 + bias * (z_sex + z_age), with z = +-1/2."""
    f = large.frame
    z = (f["sex"] == "male").to_numpy() - 0.5 + (f["age_group"] == "60+").to_numpy() - 0.5
    b0 = logit(f["p_malignant"].to_numpy()) - 2.0 * z
    np.testing.assert_allclose(b0, b0[0])  # one intercept for everybody
    # the intercept gives the requested population prevalence (P(male) = 1/2, P(60+) = 30/70)
    p_old = 30 / 70
    weights = {1.0: 0.5 * p_old, 0.0: 0.5 * (1 - p_old) + 0.5 * p_old, -1.0: 0.5 * (1 - p_old)}
    prevalence = sum(w * expit(b0[0] + 2.0 * s) for s, w in weights.items())
    assert prevalence == pytest.approx(0.3, abs=1e-9)
    # the empirical per-group prevalence (pandas groupby) matches the model's probability
    observed = f.groupby(["sex", "age_group"], observed=True)["malignant"].agg(["mean", "size"])
    expected = f.groupby(["sex", "age_group"], observed=True)["p_malignant"].first()
    se = np.sqrt(expected * (1 - expected) / observed["size"])
    assert (np.abs(observed["mean"] - expected) < 4 * se).all()


def test_group_association_is_absent_at_zero_bias():
    data = make_skin_lesions(30000, 16, bias=0.0, random_state=2)
    y = data.target
    for column, privileged in [("sex", "male"), ("age_group", "60+")]:
        rates = pd.Series(y).groupby(data.sensitive[column].to_numpy()).mean()
        assert abs(rates.max() - rates.min()) < 0.025, rates
        lor, se = _log_odds_ratio(y, (data.sensitive[column] == privileged).to_numpy())
        assert abs(lor) < 4 * se
    rates = pd.Series(y).groupby(data.sensitive["skin_type"].to_numpy()).mean()
    assert rates.max() - rates.min() < 0.05


def test_group_association_grows_with_bias():
    """Within an age group, the log odds ratio between male and female is ``bias``."""
    previous = -np.inf
    for bias in [0.0, 1.0, 2.0, 3.0]:
        data = make_skin_lesions(20000, 16, bias=bias, random_state=5)
        s, y = data.sensitive, data.target
        for group in ["<60", "60+"]:
            rows = (s["age_group"] == group).to_numpy()
            lor, se = _log_odds_ratio(y[rows], (s["sex"] == "male").to_numpy()[rows])
            assert abs(lor - bias) < 4 * se, (bias, group, lor)
        marginal = pd.Series(y).groupby(s["age_group"].to_numpy()).mean().loc[["<60", "60+"]].diff()
        assert marginal.iloc[-1] > previous
        previous = marginal.iloc[-1]


def test_background_darkens_with_skin_type(large):
    f = large.frame
    clean = ~f["has_vignette"].to_numpy()
    skin = pd.Series(_corners(large.images).max(axis=1)[clean])  # a corner free of hair
    means = skin.groupby(f["skin_type"].to_numpy()[clean]).mean()
    assert list(means.index) == [1, 2, 3, 4, 5, 6]
    assert (np.diff(means.to_numpy()) < -0.05).all(), means


def test_lesion_contrast_is_lower_on_dark_skin():
    data = make_skin_lesions(3000, 32, random_state=0, as_frame=True)
    f, b = data.frame, data.images.mean(axis=1)
    clean = (~f["has_vignette"] & ~f["has_hair"]).to_numpy()
    cx = np.rint(f["center_x"]).astype(int).to_numpy()
    cy = np.rint(f["center_y"]).astype(int).to_numpy()
    centre = np.array(
        [b[i, cy[i] - 1 : cy[i] + 2, cx[i] - 1 : cx[i] + 2].mean() for i in range(3000)]
    )
    contrast = pd.Series((_corners(data.images).max(axis=1) - centre)[clean])
    means = contrast.groupby(f["skin_type"].to_numpy()[clean]).mean()
    assert (means > 0).all()  # the lesion is darker than the skin around it
    assert (np.diff(means.to_numpy()) < 0).all(), means


def test_vignette_marks_age_group(large):
    corners = _corners(large.images)
    s = large.sensitive
    old = (s["age_group"] == "60+").to_numpy()
    assert corners[old].mean() < 0.5 * corners[~old].mean()
    # all four corners dark: the detected vignette rate is about 0.9 for 60+ and 0.1 for <60
    detected = pd.Series(corners.max(axis=1) < 0.1).groupby(s["age_group"].to_numpy()).mean()
    assert detected["60+"] == pytest.approx(0.9, abs=0.05)
    assert detected["<60"] == pytest.approx(0.1, abs=0.05)
    # per skin type too: the vignette is not just "darker skin"
    for skin_type in range(1, 7):
        rows = (s["skin_type"] == skin_type).to_numpy()
        assert corners[rows & old].mean() < corners[rows & ~old].mean()


def test_hair_marks_sex():
    data = make_skin_lesions(3000, 32, random_state=0, as_frame=True)
    f, b, H = data.frame, data.images.mean(axis=1), 32
    yy, xx = np.mgrid[:H, :H]
    band = np.hypot(yy - (H - 1) / 2, xx - (H - 1) / 2) > 0.42 * H  # away from the lesion
    clean = ~f["has_vignette"].to_numpy()
    pixels = b[clean][:, band]
    dark = (pixels < 0.6 * np.median(pixels, axis=1, keepdims=True)).mean(axis=1)
    fraction = pd.Series(dark).groupby(f["sex"].to_numpy()[clean]).mean()
    assert fraction["male"] > 4 * fraction["female"], fraction
    assert roc_auc_score(f["has_hair"].to_numpy()[clean], dark) > 0.95
    rate = f.groupby("sex", observed=True)["has_hair"].mean()
    assert rate["male"] == pytest.approx(0.9, abs=0.04)
    assert rate["female"] == pytest.approx(0.1, abs=0.04)


@pytest.mark.parametrize("strength, high, low", [(1.0, 0.9, 0.1), (0.5, 0.7, 0.3),
                                                  (0.0, 0.5, 0.5)])
def test_artefact_strength_sets_the_artefact_rates_and_nothing_else(strength, high, low):
    data = make_skin_lesions(4000, 16, bias=2.0, artefact_strength=strength, random_state=0,
                             as_frame=True)
    f = data.frame
    hair = f.groupby("sex", observed=True)["has_hair"].mean()
    vignette = f.groupby("age_group", observed=True)["has_vignette"].mean()
    assert hair["male"] == pytest.approx(high, abs=0.03)
    assert hair["female"] == pytest.approx(low, abs=0.03)
    assert vignette["60+"] == pytest.approx(high, abs=0.03)
    assert vignette["<60"] == pytest.approx(low, abs=0.03)
    default = make_skin_lesions(4000, 16, bias=2.0, random_state=0, as_frame=True)
    np.testing.assert_array_equal(data.target, default.target)  # the labels do not change
    pd.testing.assert_frame_equal(data.sensitive, default.sensitive)
    if strength == 1.0:  # the default's images, to the bit
        np.testing.assert_array_equal(data.images, default.images)


def test_latent_irregularity_separates_the_classes(large):
    f = large.frame
    assert f["irregularity"].between(0, 1).all()
    auc = roc_auc_score(f["malignant"], f["irregularity"])
    assert 0.88 < auc < 0.95  # informative but not perfect (DESCR: Phi(2 / sqrt 2) = 0.921)


def test_as_frame():
    data = make_skin_lesions(40, 16, random_state=0, as_frame=True)
    assert isinstance(data.target, pd.Series) and data.target.name == "malignant"
    f = data.frame
    assert isinstance(f, pd.DataFrame) and len(f) == 40
    assert list(f.columns[:5]) == ["malignant"] + SENSITIVE
    for column in ["irregularity", "lesion_radius", "has_hair", "has_vignette", "p_malignant"]:
        assert column in f.columns
    pd.testing.assert_series_equal(f["malignant"], data.target)
    pd.testing.assert_frame_equal(f[SENSITIVE], data.sensitive)
    assert (f["n_hairs"][~f["has_hair"]] == 0).all()
    plain = make_skin_lesions(40, 16, random_state=0)
    np.testing.assert_array_equal(plain.images, data.images)
    np.testing.assert_array_equal(plain.target, data.target.to_numpy())


def test_return_X_y():
    data = make_skin_lesions(10, 16, random_state=0)
    X, y = make_skin_lesions(10, 16, random_state=0, return_X_y=True)
    np.testing.assert_array_equal(X, data.images)
    np.testing.assert_array_equal(y, data.target)
    X, y = make_skin_lesions(10, 16, random_state=0, return_X_y=True, as_frame=True)
    assert isinstance(y, pd.Series) and y.name == "malignant"
