"""erfc, activations and layer norm against independent references (math.erfc, transformers' ACT2FN,
torch's layer_norm)."""

import math

import numpy as np
import pytest

import ledref
from conftest import require, to_backend
from ledref.functional import ACTIVATIONS, erfc, layer_norm


@pytest.mark.parametrize("dtype, tol", [("float64", 5e-16), ("float32", 2e-7)])
def test_erfc_against_math(dtype, tol, backend):
    z = np.concatenate([np.linspace(-7, 7, 20001), np.linspace(7, 27, 2001), [0.0, -0.0, 1e-300, -1e-8]])
    z = z.astype(dtype).astype(np.float64)  # the reference at the inputs as the dtype holds them
    expected = np.array([math.erfc(v) for v in z])
    got = ledref.to_numpy(erfc(to_backend(z.astype(dtype), backend))).astype(np.float64)
    # absolute error, and relative error where erfc is tiny (the tail gelu(-x) lives on), down to
    # the smallest normal number of the dtype (below it, subnormals have no relative precision)
    assert np.max(np.abs(got - expected)) <= tol * 2
    tail = (z > 2) & (expected > np.finfo(dtype).tiny * 1e3)
    rel = np.abs(got[tail] - expected[tail]) / expected[tail]
    assert np.max(rel) <= (2e-13 if dtype == "float64" else 1e-5)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_against_transformers(name, backend):
    torch = require("torch")
    act2fn = require("transformers.activations").ACT2FN
    x = np.concatenate([np.linspace(-12, 12, 4801), [-40.0, 40.0, 0.0]])
    expected = act2fn[name](torch.from_numpy(x)).numpy()
    got = ledref.to_numpy(ACTIVATIONS[name](to_backend(x, backend)))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_layer_norm_against_torch(backend):
    torch = require("torch")
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(3, 5, 16)) * 4 + 1, rng.normal(size=16), rng.normal(size=16)
    expected = torch.nn.functional.layer_norm(torch.from_numpy(x), (16,), torch.from_numpy(w),
                                              torch.from_numpy(b), eps=1e-5).numpy()
    got = ledref.to_numpy(layer_norm(*(to_backend(a, backend) for a in (x, w, b))))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
