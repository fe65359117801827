"""The skin-tone gap, raw and adjusted: the synthetic conditions data with a known answer, the
adjusted gap recovering it, paired comparisons between mixes."""

import inspect

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.utils._param_validation import InvalidParameterError

from fairskl.datasets import make_skin_conditions
from fairskl.datasets._synthetic import _ATLAS_P, _CONDITIONS, _SOURCE_GRAIN, _THREE_P
from fairskl.experiments import (
    adjusted_gap,
    choose_condition_level,
    mix_differences,
    representation_study,
)


@pytest.fixture(scope="module")
def conditions():
    return make_skin_conditions(20000, 16, random_state=0)


def test_conditions_follow_the_documented_process(conditions):
    frame = conditions.frame
    assert conditions.images.shape == (20000, 3, 16, 16)
    assert conditions.images.min() >= 0 and conditions.images.max() <= 1
    for tone in ("light", "dark"):
        part = frame[frame.tone_group == tone]
        shares = part.three_partition_label.value_counts(normalize=True)
        expected = dict(zip(["non-neoplastic", "benign", "malignant"], _THREE_P[tone],
                            strict=True))
        for name, p in expected.items():
            assert shares[name] == pytest.approx(p, abs=0.025)
        atlas = (part.source == "atlasdermatologico").mean()
        assert atlas == pytest.approx(_ATLAS_P[tone], abs=0.025)
    # the grain variance is the documented sum; the realised grain is that, trimmed by clipping
    by_label = {label: v for _, _, label, v in _CONDITIONS}
    expected = (frame.label.map(by_label) + frame.source.astype(str).map(_SOURCE_GRAIN))
    np.testing.assert_allclose(frame.grain_var, expected.astype(float))
    ratio = frame.grain_mse.mean() / frame.grain_var.mean()
    assert 0.9 < ratio <= 1.0
    # the second annotation is the skin type or one type off
    assert (abs(frame.fitzpatrick_centaur - frame.skin_type.astype(int)) <= 1).all()


def test_tone_effect_adds_grain_to_dark_images_only(conditions):
    shifted = make_skin_conditions(20000, 16, tone_effect=0.002, random_state=0).frame
    extra = shifted.grain_var - conditions.frame.grain_var
    dark = (shifted.tone_group == "dark").to_numpy()
    np.testing.assert_allclose(extra[dark], 0.002)
    np.testing.assert_allclose(extra[~dark], 0.0, atol=1e-15)
    with pytest.raises(ValueError, match="tone_effect must be a finite number >= 0"):
        make_skin_conditions(10, 16, tone_effect=-1)


def _table(frame, outcome):
    """The study's per-image layout for images of the synthetic data, 4 pseudo-repeats."""
    keep = frame.tone_group.isin(["light", "dark"]).to_numpy()
    part = frame[keep].reset_index(drop=True)
    return pd.DataFrame({"group": part.tone_group.astype(str), "label": part.label,
                         "source": part.source.astype(str), "mse": outcome[keep],
                         "mix": "one", "repeat": np.arange(len(part)) % 4,
                         "sample": np.arange(len(part))})


@pytest.mark.parametrize("tone_effect", [0.0, 0.002])
def test_adjusted_gap_recovers_the_planted_tone_effect(tone_effect):
    frame = make_skin_conditions(20000, 16, tone_effect=tone_effect, random_state=1).frame
    table = _table(frame, frame.grain_mse.to_numpy())
    summary, per_repeat = adjusted_gap(table, "mse", adjust_for=["label", "source"])
    raw, adjusted = (summary.set_index("model").loc[m] for m in ("raw", "adjusted"))
    # condition and source add ~0.001 to dark images: the raw gap is off by that much
    assert raw.gap - tone_effect > 0.0007
    # within a condition and source only tone is left (0.96: clipping trims grain on light skin)
    for low, high in [(adjusted.low, adjusted.high), (adjusted.pooled_low, adjusted.pooled_high)]:
        assert low - 1e-4 <= 0.96 * tone_effect + 3e-5 and high + 1e-4 >= 0.96 * tone_effect
    assert abs(adjusted.gap - tone_effect) < 2e-4
    assert len(per_repeat) == 8 and set(per_repeat.model) == {"raw", "adjusted"}


def test_adjusted_gap_of_a_real_estimator_moves_with_the_tone_effect():
    """A PCA's reconstruction error: adding tone_effect to dark images moves the adjusted gap
    by about tone_effect (PCA keeps little of the grain), whatever PCA does with skin colour."""
    gaps = {}
    for tone_effect in (0.0, 0.003):
        data = make_skin_conditions(3000, 16, tone_effect=tone_effect, random_state=2)
        frame = data.frame
        keep = frame.tone_group.isin(["light", "dark"]).to_numpy()
        X = data.images[keep].reshape(keep.sum(), -1)
        groups = pd.Categorical(frame.tone_group[keep].astype(str), categories=["light", "dark"])
        _, samples = representation_study(
            PCA(n_components=10, random_state=0), X, groups=groups, train_mixes=[(0.5, 0.5)],
            n_train=400, n_test_per_group=150, n_repeats=3, scoring="reconstruction_mse",
            random_state=0, return_samples=True, verbose=0)
        meta = frame[keep].reset_index(drop=True)
        samples = samples.assign(label=meta.label.to_numpy()[samples["sample"]],
                                 source=meta.source.astype(str).to_numpy()[samples["sample"]])
        summary, _ = adjusted_gap(samples, "value", adjust_for=["label", "source"])
        gaps[tone_effect] = summary.set_index("model").loc["adjusted", "gap"]
    assert gaps[0.003] - gaps[0.0] == pytest.approx(0.003, rel=0.25)


def test_mix_differences_are_paired_by_repeat():
    per_repeat = pd.DataFrame({
        "mix": ["A"] * 6 + ["B"] * 6, "repeat": [0, 1, 2] * 4,
        "model": (["raw"] * 3 + ["adjusted"] * 3) * 2,
        "gap": [0.01, 0.03, 0.02, 0.0, 0.01, 0.02, 0.02, 0.04, 0.03, 0.0, 0.01, 0.02]})
    changes = mix_differences(per_repeat, [("A", "B")]).set_index("model")
    # raw: each repeat's gap grew by exactly 0.01, so the interval is that point
    assert changes.loc["raw", "change"] == pytest.approx(0.01)
    assert changes.loc["raw", "low"] == pytest.approx(0.01)
    assert changes.loc["adjusted", "change"] == pytest.approx(0.0)
    assert changes.loc["raw", "df"] == 2


def test_condition_level_and_bad_input():
    # each fine label: 3 light and 2 dark images
    table = pd.DataFrame({"group": np.where(np.arange(100) // 20 % 2, "dark", "light"),
                          "fine": np.arange(100) % 20,
                          "coarse": np.arange(100) % 2, "mse": 0.0, "mix": "m", "repeat": 0,
                          "sample": np.arange(100)})
    assert choose_condition_level(table, ["fine", "coarse"], min_per_group=3) == "coarse"
    assert choose_condition_level(table, ["fine", "coarse"], min_per_group=2) == "fine"
    with pytest.raises(ValueError, match="has no column"):
        adjusted_gap(table, "missing")
    with pytest.raises(ValueError, match=r"no row of group \['dark'\]"):
        adjusted_gap(table.assign(group="light"), "mse", adjust_for=["coarse"])


@pytest.mark.parametrize("function", [adjusted_gap, choose_condition_level, mix_differences],
                         ids=lambda f: f.__name__)
def test_every_parameter_is_declared(function):
    assert set(function._skl_parameter_constraints) == set(inspect.signature(function).parameters)


@pytest.mark.parametrize("function, kwargs, match", [
    (adjusted_gap, dict(confidence=1.0), r"'confidence' parameter of adjusted_gap .* Got 1\.0"),
    (adjusted_gap, dict(adjust_for="coarse"), r"'adjust_for' .* Got 'coarse' instead"),
    (adjusted_gap, dict(table=[1]), r"'table' .* must be an instance of"),
    (mix_differences, dict(confidence=0), r"'confidence' parameter of mix_differences"),
    (choose_condition_level, dict(min_share=1.5), r"'min_share' .* Got 1\.5 instead"),
    (choose_condition_level, dict(min_per_group=0), r"'min_per_group' .* Got 0 instead"),
])
def test_bad_parameters_are_named(function, kwargs, match):
    table = pd.DataFrame({"group": ["light", "dark"], "fine": [0, 1], "mse": 0.0, "mix": "m",
                          "repeat": 0, "sample": [0, 1]})
    args = {"table": table, "outcome": "mse", "levels": ["fine"], "pairs": [("m", "m")],
            "per_repeat": pd.DataFrame({"mix": ["m"], "repeat": [0], "model": ["raw"],
                                        "gap": [0.0]})}
    names = inspect.signature(function).parameters
    with pytest.raises(InvalidParameterError, match=match):
        function(**{k: v for k, v in {**args, **kwargs}.items() if k in names})
