"""fairskl.nir_penalty against an independent NumPy computation."""

import numpy as np
import pytest
import torch

from fairskl import nir_penalty

FORMS = ["standardize", "global", "mean", None]


def _numpy_penalty(h, p, normalize):
    """Written from the definition, loop by loop, without fairskl."""
    if p.ndim == 1:
        p = np.c_[1 - p, p]
    if normalize == "standardize":  # each neuron to zero mean, unit variance over the batch
        h = (h - h.mean(axis=0)) / np.sqrt(h.var(axis=0) + 1e-8)
    variances = []
    for c in range(p.shape[1]):
        total = p[:, c].sum()
        m = sum(p[i, c] * h[i] for i in range(len(h))) / (total + 1e-8)
        if normalize == "mean":
            m = m / (np.mean(np.abs(m)) + 1e-8)
        variances.append(np.mean((m - m.mean()) ** 2))  # population variance over neurons
    value = np.mean(variances)
    if normalize == "global":
        value = value / (np.var(h) + 1e-8)  # variance of every activation of the batch
    return value


@pytest.mark.parametrize("normalize", FORMS)
@pytest.mark.parametrize("n_classes", [1, 2, 4])
def test_matches_numpy(normalize, n_classes):
    rng = np.random.RandomState(n_classes)
    h = np.maximum(rng.normal(size=(32, 16)), 0) * rng.uniform(0.1, 5, size=16)
    if n_classes == 1:
        p = rng.uniform(size=32)
    else:
        p = rng.dirichlet(np.ones(n_classes), size=32)
    got = nir_penalty(torch.tensor(h), torch.tensor(p), normalize=normalize)
    assert got.item() == pytest.approx(_numpy_penalty(h, p, normalize), rel=1e-9)


def test_sigmoid_vector_equals_two_columns_and_column_vector():
    h, p = torch.rand(10, 5), torch.rand(10)
    two = torch.stack([1 - p, p], dim=1)
    assert nir_penalty(h, p) == pytest.approx(nir_penalty(h, two).item())
    assert nir_penalty(h, p[:, None]) == pytest.approx(nir_penalty(h, two).item())


def test_normalized_penalty_is_scale_free_and_raw_is_not():
    h, p = torch.rand(20, 8), torch.rand(20)
    assert nir_penalty(100 * h, p).item() == pytest.approx(nir_penalty(h, p).item(), rel=1e-5)
    assert nir_penalty(10 * h, p, normalize=None).item() == pytest.approx(
        100 * nir_penalty(h, p, normalize=None).item(), rel=1e-5
    )


@pytest.mark.parametrize("normalize", ["mean", None])
def test_dominant_neurons_are_penalised_more(normalize):
    p = torch.rand(50)
    even = torch.ones(50, 10) + 0.01 * torch.rand(50, 10)
    dominant = even.clone()
    dominant[:, 0] += 5
    assert nir_penalty(dominant, p, normalize=normalize) > 10 * nir_penalty(
        even, p, normalize=normalize)


@pytest.mark.parametrize("normalize", FORMS)
def test_a_neuron_that_alone_follows_the_prediction_is_penalised(normalize):
    # the incidence that the head cannot undo: one neuron carries the predicted class, the
    # others do not, against every neuron carrying it equally
    torch.manual_seed(0)
    p = torch.rand(200)
    noise = 0.1 * torch.rand(200, 10)
    even = noise + p[:, None]
    dominant = noise.clone()
    dominant[:, 0] += 10 * p
    assert nir_penalty(dominant, p, normalize=normalize) > 10 * nir_penalty(
        even, p, normalize=normalize)


# The transformations of the penultimate features that a linear head undoes (W h + b with
# W' = W D^-1, b' = b - W' s), and the forms of the penalty claimed invariant to each (the
# table of the user guide's NIR page).
TRANSFORMS = {
    "common shift": lambda h, rng: h + 3.0,
    "per-neuron shift": lambda h, rng: h + rng.uniform(-2, 5, size=h.shape[1]),
    "common scale": lambda h, rng: 7.0 * h,
    "per-neuron scale": lambda h, rng: h * rng.uniform(0.1, 10, size=h.shape[1]),
}
INVARIANT = {
    None: {"common shift"},
    "mean": {"common scale"},
    "global": {"common shift", "common scale"},
    "standardize": set(TRANSFORMS),
}


@pytest.mark.parametrize("normalize", FORMS)
@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_invariance_table(normalize, transform):
    rng = np.random.RandomState(0)
    h = np.maximum(rng.normal(1, 1, size=(64, 12)), 0) * rng.uniform(0.5, 2, size=12)
    p = torch.tensor(rng.uniform(size=64))
    before = nir_penalty(torch.tensor(h), p, normalize=normalize).item()
    after = nir_penalty(torch.tensor(TRANSFORMS[transform](h, rng)), p,
                        normalize=normalize).item()
    if transform in INVARIANT[normalize]:
        assert after == pytest.approx(before, rel=1e-6)
    else:
        assert after != pytest.approx(before, rel=0.05)  # the table says it is not invariant


def test_default_form_ignores_a_common_shift_and_scale():
    import inspect

    assert inspect.signature(nir_penalty).parameters["normalize"].default == "global"
    assert {"common shift", "common scale"} <= INVARIANT["global"]


def test_class_without_probability_mass_gives_finite_value_and_gradient():
    h = torch.rand(8, 4, requires_grad=True)
    p = torch.zeros(8, 3)
    p[:, 0] = 1.0  # classes 1 and 2 have no mass in this batch
    p.requires_grad_(True)
    value = nir_penalty(h, p)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(h.grad).all() and torch.isfinite(p.grad).all()
    h0 = torch.zeros(8, 4, requires_grad=True)  # all-zero activations
    nir_penalty(h0, torch.rand(8)).backward()
    assert torch.isfinite(h0.grad).all()


def test_gradient_matches_finite_differences():
    h = torch.rand(6, 5, dtype=torch.float64, requires_grad=True)
    p = torch.rand(6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: nir_penalty(a, b), (h, p))


@pytest.mark.parametrize(
    "features, probabilities, kwargs, match",
    [
        (torch.rand(4, 3, 2, 2), torch.rand(4), {}, "pool spatial maps"),
        (torch.rand(4, 3), torch.rand(5), {}, "n_samples=4"),
        (torch.rand(4, 3), torch.rand(4, 2, 2), {}, "n_samples, n_classes"),
        (torch.rand(4, 3), torch.rand(4), {"normalize": "std"}, "normalize must be one of"),
    ],
)
def test_bad_inputs(features, probabilities, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nir_penalty(features, probabilities, **kwargs)
