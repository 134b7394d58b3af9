"""The reference's building blocks against independent references: erfc against math.erfc, the
activations against transformers' ACT2FN, layer norm and softmax against torch."""

import math

import numpy as np
import pytest

import ledref
from conftest import require, to_backend
from ledref.reference.functional import ACTIVATIONS, erfc, layer_norm, linear, softmax


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


def test_gelu_float32_against_math(backend):
    """float32 GELU against x * erfc(-x / sqrt 2) / 2 in float64 (math.erfc) at the float32 inputs: to
    float32 rounding in the body, and relative precision kept in the negative tail."""
    x = np.concatenate([np.linspace(-14, 14, 20001), [0.0, 1e-30, -1e-30, 40.0, -40.0, -0.0]]).astype(np.float32)
    expected = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x.astype(np.float64)])
    got = ledref.to_numpy(ACTIVATIONS["gelu"](to_backend(x, backend))).astype(np.float64)
    assert np.max(np.abs(got - expected) / np.maximum(np.abs(x), 1.0)) <= 2e-7
    normal = np.abs(expected) > np.finfo(np.float32).tiny * 1e3
    assert np.max(np.abs(got - expected)[normal] / np.abs(expected[normal])) <= 3e-5


def test_layer_norm_linear_and_softmax_against_torch(backend):
    torch = require("torch")
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(3, 5, 16)) * 4 + 1, rng.normal(size=16), rng.normal(size=16)
    t = [torch.from_numpy(a) for a in (x, w, b)]
    expected = torch.nn.functional.layer_norm(t[0], (16,), t[1], t[2], eps=1e-5).numpy()
    got = ledref.to_numpy(layer_norm(*(to_backend(a, backend) for a in (x, w, b))))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    weight = rng.normal(size=(7, 16))
    expected = torch.nn.functional.linear(t[0], torch.from_numpy(weight), t[2][:7]).numpy()
    got = ledref.to_numpy(linear(*(to_backend(a, backend) for a in (x, weight, b[:7]))))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    scores = x * 50  # large enough that exp overflows without the maximum subtracted
    expected = torch.softmax(torch.from_numpy(scores), dim=-1).numpy()
    np.testing.assert_allclose(ledref.to_numpy(softmax(to_backend(scores, backend))), expected, rtol=1e-12, atol=1e-15)



