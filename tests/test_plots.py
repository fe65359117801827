"""The figures of the VAE study drawn as the paper does: prevalence scatter (Fig. 7) and
reconstruction grids (Figs. 4-5)."""

import inspect

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

from fairskl.experiments import (  # noqa: E402
    plot_error_by_label,
    plot_prevalence,
    plot_reconstructions,
    plot_representation_study,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labels_and_groups(n=600, n_conditions=30, seed=0):
    rng = np.random.default_rng(seed)
    groups = rng.choice(["light", "dark"], size=n, p=[0.7, 0.3])
    fine = np.array([f"condition number {k}" for k in range(n_conditions)])
    # dark images favour the high-numbered conditions, so that points leave the diagonal
    weights = np.linspace(1, 3, n_conditions)
    light_p, dark_p = weights[::-1] / weights.sum(), weights / weights.sum()
    label = np.where(groups == "light", rng.choice(fine, size=n, p=light_p),
                     rng.choice(fine, size=n, p=dark_p))
    coarse = np.where([int(name.split()[-1]) % 2 for name in label], "odd", "even")
    labels = pd.DataFrame({"coarse": coarse, "label": label})
    return labels, pd.Categorical(groups, categories=["light", "dark"])


def _dashed_diagonal(ax):
    return [line for line in ax.get_lines() if line.get_linestyle() == "--"
            and np.allclose(line.get_xdata(), line.get_ydata())]


def test_prevalence_scatter_is_the_share_of_each_group_counted_by_hand():
    labels, groups = _labels_and_groups()
    axes = plot_prevalence(labels, groups, kind="scatter")
    assert [ax.get_title() for ax in axes] == ["coarse", "label"]
    for ax, level in zip(axes, labels.columns, strict=True):
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("prevalence among light",
                                                      "prevalence among dark")
        conditions = sorted(set(labels[level]))
        expected = [[np.mean(labels[level][np.asarray(groups) == g] == c)
                     for g in ("light", "dark")] for c in conditions]
        np.testing.assert_allclose(ax.collections[0].get_offsets(), expected)
        (diagonal,) = _dashed_diagonal(ax)
        high = np.max(expected)
        assert diagonal.get_xdata()[0] == 0 and diagonal.get_xdata()[-1] >= high
        assert ax.get_xlim() == ax.get_ylim() and ax.get_xlim()[0] == 0
        assert ax.get_xlim()[1] >= high
        # the conditions farthest from y = x are the named ones, at most five
        gaps = {c: abs(d - light) for c, (light, d) in zip(conditions, expected, strict=True)}
        farthest = sorted(gaps, key=gaps.get, reverse=True)[:5]
        names = [text.get_text().replace("\n", " ") for text in ax.texts]
        assert sorted(names) == sorted(farthest)


def test_prevalence_scatter_names_stay_inside_and_apart():
    labels, groups = _labels_and_groups(n_conditions=60)
    axes = plot_prevalence(labels, groups, kind="scatter")
    figure = axes[0].figure
    figure.canvas.draw()
    for ax in axes:
        box = ax.get_window_extent()
        boxes = [text.get_window_extent() for text in ax.texts]
        assert 0 < len(boxes) <= 5
        for k, one in enumerate(boxes):
            assert box.x0 <= one.x0 and one.x1 <= box.x1 and box.y0 <= one.y0 <= one.y1 <= box.y1
            assert not any(one.overlaps(other) for other in boxes[k + 1:])
    # the names leave the layout alone: the axis labels are inside the figure
    for ax in axes:
        label = ax.xaxis.label.get_window_extent()
        assert label.y0 >= 0 and label.x1 <= figure.bbox.x1


def test_prevalence_scatter_group_order_and_choice():
    labels = pd.DataFrame({"level": ["a", "a", "b", "b", "b", "c"]})
    plain = ["light", "dark", "light", "dark", "dark", "medium"]
    # no categorical: sorted, so with three groups x and y must be given
    with pytest.raises(ValueError, match=r"\['dark', 'light', 'medium'\].*x= and y="):
        plot_prevalence(labels, plain, kind="scatter")
    (ax,) = plot_prevalence(labels, plain, kind="scatter", x="medium", y="light")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("prevalence among medium",
                                                  "prevalence among light")
    # by hand: medium has one image (c); light has a and b
    np.testing.assert_allclose(ax.collections[0].get_offsets(),
                               [[0, 0.5], [0, 0.5], [1, 0]])
    two = plain[:5]
    (ax,) = plot_prevalence(labels.iloc[:5], two, kind="scatter")
    assert ax.get_xlabel() == "prevalence among dark"  # sorted: dark before light
    (ax,) = plot_prevalence(labels.iloc[:5], pd.Series(two, dtype=pd.CategoricalDtype(
        ["light", "dark"])), kind="scatter")
    assert ax.get_xlabel() == "prevalence among light"  # the categorical's order
    (ax,) = plot_prevalence(labels.iloc[:5], two, kind="scatter", y="dark")
    assert ax.get_xlabel() == "prevalence among light"  # the other of two groups
    with pytest.raises(ValueError, match=r"x='purple' is not a group"):
        plot_prevalence(labels, plain, kind="scatter", x="purple", y="dark")
    with pytest.raises(ValueError, match="both 'dark'"):
        plot_prevalence(labels, plain, kind="scatter", x="dark", y="dark")
    with pytest.raises(ValueError, match=r"'kind' parameter of plot_prevalence must be a str "
                                         r"among \{'(bar|scatter)', '(bar|scatter)'\}\. Got 'pie'"):
        plot_prevalence(labels, plain, kind="pie")
    _, two_axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="axes has 2 Axes but labels has 1 levels"):
        plot_prevalence(labels, plain, kind="scatter", x="dark", y="light", axes=two_axes)


def test_prevalence_bar_stays_the_default():
    labels, groups = _labels_and_groups()
    axes = plot_prevalence(labels, groups, top=4)
    # bars: one per condition kept and group; no diagonal, no names
    assert len(axes[1].patches) == 4 * 2
    assert len(axes[0].patches) == 2 * 2
    assert axes[1].get_xlabel() == "share of the group's images"
    assert not _dashed_diagonal(axes[1]) and not axes[1].texts
    # a categorical Series keeps its order too (light before dark), as a Categorical does
    for given in (groups, pd.Series(groups)):
        axes = plot_prevalence(labels, given, top=4)
        assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["light", "dark"]


def _images(n, channels=3, size=4, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, channels, size, size))


def test_reconstructions_tile_originals_over_reconstructions():
    originals = {"all light — light": _images(8), "all light — dark": _images(8, seed=1)}
    reconstructions = {key: images[:, ::-1] for key, images in originals.items()}
    samples = {"all light": _images(2, seed=2)}
    axes = plot_reconstructions(originals, reconstructions, n_images=3, samples=samples)
    assert [ax.get_title() for ax in axes] == ["all light — light", "all light — dark",
                                               "all light"]
    for ax, key in zip(axes[:2], originals, strict=True):
        (image,) = ax.images
        picture = np.asarray(image.get_array())
        assert picture.shape == (2 * 4, 3 * 4, 3)
        # by hand: image j of a row occupies columns 4j..4j+3, channel-last
        for j in range(3):
            np.testing.assert_allclose(picture[:4, 4 * j:4 * j + 4],
                                       originals[key][j].transpose(1, 2, 0))
            np.testing.assert_allclose(picture[4:, 4 * j:4 * j + 4],
                                       reconstructions[key][j].transpose(1, 2, 0))
        assert [t.get_text() for t in ax.get_yticklabels()] == ["original", "reconstruction"]
    # two samples only: one row of two
    assert np.asarray(axes[2].images[0].get_array()).shape == (4, 2 * 4, 3)
    assert [t.get_text() for t in axes[2].get_yticklabels()] == ["prior sample"]


def test_reconstructions_convert_uint8_clip_floats_and_draw_grey():
    grey = {"x": np.full((2, 1, 3, 3), 255, dtype=np.uint8)}
    recon = {"x": np.full((2, 1, 3, 3), 1.7)}
    (ax,) = plot_reconstructions(grey, recon, row_labels=["in", "out"])
    picture = np.asarray(ax.images[0].get_array())
    assert picture.shape == (6, 6)  # one channel: a 2-D picture in grey
    np.testing.assert_allclose(picture, 1.0)
    assert ax.images[0].get_cmap().name == "gray"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["in", "out"]
    _, given = plt.subplots(1, 2)
    axes = plot_reconstructions(grey, recon, samples={"s": _images(1, 1, 3)}, axes=given)
    assert list(axes) == list(given)


@pytest.mark.parametrize("change, error, match", [
    (dict(reconstructions={"a": _images(2)}), ValueError,
     r"same keys.*\['a'\] that originals lacks.*\['b'\] that reconstructions lacks"),
    (dict(reconstructions={"b": _images(3)}), ValueError,
     r"reconstructions\['b'\] has shape \(3, 3, 4, 4\) but originals\['b'\] has \(2, 3, 4, 4\)"),
    (dict(originals={"b": _images(2).transpose(0, 2, 3, 1)},
          reconstructions={"b": _images(2).transpose(0, 2, 3, 1)}), ValueError,
     r"originals\['b'\] must have shape \(n, C, H, W\).*got \(2, 4, 4, 3\).*transpose"),
    (dict(originals={"b": np.ones((2, 3, 4, 4), dtype=int)}), TypeError,
     r"originals\['b'\] has dtype int64"),
    (dict(samples={"s": _images(2, 2)}), ValueError, r"samples\['s'\] must have shape"),
    (dict(reconstructions={}), ValueError, "reconstructions is empty"),
    (dict(originals=[_images(2)]), TypeError,
     r"'originals' parameter of plot_reconstructions must be an instance of "
     r"'collections\.abc\.Mapping'"),
    (dict(n_images=0), ValueError,
     r"'n_images' parameter of plot_reconstructions must be an int in the range \[1, inf\)\. "
     r"Got 0 instead"),
    (dict(row_labels=["only one"]), ValueError, "row_labels names the two rows"),
])
def test_reconstructions_errors_name_the_key_and_shapes(change, error, match):
    args = {"originals": {"b": _images(2)}, "reconstructions": {"b": _images(2)}, **change}
    with pytest.raises(error, match=match):
        plot_reconstructions(args.pop("originals"), args.pop("reconstructions"), **args)


def test_reconstructions_axes_must_match_the_panels():
    _, given = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="axes has 3 Axes but there are 1 panels"):
        plot_reconstructions({"b": _images(2)}, {"b": _images(2)}, axes=given)


@pytest.mark.parametrize("function", [plot_error_by_label, plot_prevalence, plot_reconstructions,
                                      plot_representation_study], ids=lambda f: f.__name__)
def test_every_parameter_of_the_figures_is_declared(function):
    declared = set(function._skl_parameter_constraints)
    assert declared == set(inspect.signature(function).parameters)


@pytest.mark.parametrize("function, kwargs, match", [
    (plot_prevalence, dict(top=0), r"'top' parameter of plot_prevalence .* Got 0 instead"),
    (plot_prevalence, dict(axes="ax"), r"'axes' parameter of plot_prevalence .* Got 'ax'"),
    (plot_error_by_label, dict(min_count=-1), r"'min_count' .* Got -1 instead"),
    (plot_error_by_label, dict(samples=[1]), r"'samples' .* must be an instance of"),
    (plot_representation_study, dict(results={"value": [1]}), r"'results' .* must be an inst"),
])
def test_figures_reject_bad_parameters(function, kwargs, match):
    args = {"labels": pd.DataFrame({"level": ["a", "b"]}), "groups": ["light", "dark"],
            "samples": pd.DataFrame(), "results": pd.DataFrame()}
    names = inspect.signature(function).parameters
    with pytest.raises(InvalidParameterError, match=match):
        function(**{k: v for k, v in {**args, **kwargs}.items() if k in names})
