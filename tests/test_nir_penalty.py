"""fairskl.nir_penalty against an independent NumPy computation."""

import numpy as np
import pytest
import torch

from fairskl import nir_penalty


def _numpy_penalty(h, p, normalize):
    """Written from the definition, loop by loop, without fairskl."""
    if p.ndim == 1:
        p = np.c_[1 - p, p]
    variances = []
    for c in range(p.shape[1]):
        total = p[:, c].sum()
        m = sum(p[i, c] * h[i] for i in range(len(h))) / (total + 1e-8)
        if normalize == "mean":
            m = m / (np.mean(np.abs(m)) + 1e-8)
        variances.append(np.mean((m - m.mean()) ** 2))  # population variance over neurons
    return np.mean(variances)


@pytest.mark.parametrize("normalize", ["mean", None])
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


def test_dominant_neurons_are_penalised_more():
    p = torch.rand(50)
    even = torch.ones(50, 10) + 0.01 * torch.rand(50, 10)
    dominant = even.clone()
    dominant[:, 0] += 5
    assert nir_penalty(dominant, p) > 10 * nir_penalty(even, p)


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
