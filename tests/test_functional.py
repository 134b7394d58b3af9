"""erfc, activations and layer norm against independent references (math.erfc, transformers' ACT2FN,
torch's layer_norm)."""

import math

import numpy as np
import pytest

import ledref
from conftest import require, to_backend
from ledref.functional import ACTIVATIONS, by_rows, erfc, exp_inplace, in_blocks, layer_norm, matmul_into


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


@pytest.mark.parametrize("how", ["gelu", "in_blocks"])
def test_gelu_float32_against_math(how, backend):
    """float32 GELU against x * erfc(-x / sqrt 2) / 2 in float64 (math.erfc) at the float32 inputs: to
    float32 rounding in the body, and relative precision kept in the negative tail. `in_blocks` runs,
    on NumPy, the version that writes over its input (functional.IN_PLACE)."""
    x = np.concatenate([np.linspace(-14, 14, 20001), [0.0, 1e-30, -1e-30, 40.0, -40.0, -0.0]]).astype(np.float32)
    expected = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x.astype(np.float64)])
    gelu = ACTIVATIONS["gelu"]
    if how == "gelu":
        got = gelu(to_backend(x, backend))
    else:
        got = in_blocks(gelu, to_backend(x.reshape(1, -1, 3), backend), rows=64)  # a shorter last block
    got = ledref.to_numpy(got).reshape(-1).astype(np.float64)
    assert np.max(np.abs(got - expected) / np.maximum(np.abs(x), 1.0)) <= 2e-7
    normal = np.abs(expected) > np.finfo(np.float32).tiny * 1e3
    assert np.max(np.abs(got - expected)[normal] / np.abs(expected[normal])) <= 3e-5


def test_gelu_written_over_its_input_equals_gelu():
    """NumPy's float32 GELU in place (IN_PLACE, what in_blocks runs) against the standard `gelu`: the same
    formula with two constants folded, so equal to float32 rounding, and written over its input."""
    from ledref.functional import IN_PLACE
    gelu = ACTIVATIONS["gelu"]
    into = IN_PLACE[(gelu, "numpy", "float32")]
    x = (np.random.default_rng(5).standard_normal((3, 40, 7)) * 4).astype(np.float32)
    own = x.copy()
    got = into(own, into.scratch(own))
    assert got is own
    np.testing.assert_allclose(got, gelu(x), rtol=1e-6, atol=2e-7)


def test_layer_norm_against_torch(backend):
    torch = require("torch")
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(3, 5, 16)) * 4 + 1, rng.normal(size=16), rng.normal(size=16)
    expected = torch.nn.functional.layer_norm(torch.from_numpy(x), (16,), torch.from_numpy(w),
                                              torch.from_numpy(b), eps=1e-5).numpy()
    got = ledref.to_numpy(layer_norm(*(to_backend(a, backend) for a in (x, w, b))))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    own = to_backend(x.copy(), backend)  # written over its input on request
    got = layer_norm(own, *(to_backend(a, backend) for a in (w, b)), overwrite=True)
    np.testing.assert_allclose(ledref.to_numpy(got), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(ledref.to_numpy(own), ledref.to_numpy(got))


def test_exp_inplace_equals_standard_exp(backend):
    x = np.linspace(-80, 80, 3000).reshape(3, 1000, 1)
    expected = np.exp(x)  # NumPy's own exp, on a copy: the standard version
    got = ledref.to_numpy(exp_inplace(to_backend(x.copy(), backend)))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("rows", [1, 7, 32, 1000])
def test_in_blocks_and_by_rows_equal_one_pass(rows, backend):
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((2, 45, 6))
    gelu = ACTIVATIONS["gelu"]
    whole = ledref.to_numpy(gelu(to_backend(x, backend)))
    got = ledref.to_numpy(in_blocks(gelu, to_backend(x.copy(), backend), rows=rows))
    np.testing.assert_array_equal(got, whole)
    got = ledref.to_numpy(by_rows(lambda a, b: gelu(a) * b, to_backend(x, backend), to_backend(x, backend),
                                  rows=rows))
    np.testing.assert_array_equal(got, whole * x)


@pytest.mark.parametrize("inner", [7, 1])
@pytest.mark.parametrize("into", ["contiguous", "strided", "none"])
def test_matmul_into_equals_standard_matmul(into, inner, backend):
    """The product into a given array (NumPy's out=, also into a strided view) equals the standard a @ b,
    also with an inner dimension of 1 (an outer product, which NumPy computes by multiplying)."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 5, inner)), rng.standard_normal((2, inner, 4))
    expected = a @ b  # NumPy's own product of fresh arrays: the standard version
    xa, xb = to_backend(a, backend), to_backend(b, backend)
    xp = ledref.backend.namespace(backend)
    out = {"contiguous": xp.zeros((2, 5, 4), dtype=xa.dtype), "strided": xp.zeros((2, 5, 9), dtype=xa.dtype)[..., 2:6],
           "none": None}[into]
    got = matmul_into(xa, xb, out)
    np.testing.assert_array_equal(ledref.to_numpy(got), expected)


@pytest.mark.parametrize("rows", [None, 4, 7, 100])
def test_by_rows_into_a_given_array(rows, backend):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 9, 3))
    xp = ledref.backend.namespace(backend)
    out = xp.zeros((2, 9, 3), dtype=to_backend(x, backend).dtype)
    got = by_rows(lambda a: a * 2.0 + 1.0, to_backend(x, backend), rows=rows, out=out)
    assert got is out
    np.testing.assert_array_equal(ledref.to_numpy(out), x * 2.0 + 1.0)
