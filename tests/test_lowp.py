"""ledref.lowp, the bfloat16 and float16 modes: each operation rounds its result once (checked against
ml_dtypes' rounding of a float32 computation), matrix products and sums accumulate in float32, layer norm,
softmax, linear and the activations round only their result; and a whole model in these modes lands as
far from the float64 reference as transformers' own bfloat16 and float16 runs do."""

import os
import sys

import ml_dtypes
import numpy as np
import pytest

import ledref
from conftest import require
from ledref import lowp
from ledref.reference import functional

LOW = {"bfloat16": ml_dtypes.bfloat16, "float16": np.float16}


def rounded(a, name):
    return np.asarray(a, np.float32).astype(LOW[name]).astype(np.float32)


@pytest.fixture(params=sorted(LOW))
def name(request):
    return request.param


def nearest_bfloat16(x):
    """float64 x rounded to bfloat16's 8 significant bits, to nearest even, by frexp: the reference for
    normal numbers."""
    m, e = np.frexp(x)  # x = m 2^e, 0.5 <= |m| < 1: m 2^8 holds the 8 bits and the rest as a fraction
    return np.ldexp(np.round(m * 2.0 ** 8), e - 8)  # np.round: ties to even


def test_float64_reaches_bfloat16_in_one_rounding():
    xp = lowp.namespace("bfloat16")
    rng = np.random.default_rng(3)
    # a value just above a tie (1 + 2^-8 + 2^-40: float32 would make it the tie, then round to even), ties,
    # and random values whose bits below float32's precision decide
    ties = 1.0 + 2.0 ** -8 * np.array([1, 3, 5])
    special = np.array([1 + 2.0 ** -8 + 2.0 ** -40, 1 + 2.0 ** -8 - 2.0 ** -40, -(1 + 2.0 ** -8 + 2.0 ** -40)])
    near = (1 + (np.arange(1, 200) + 0.5) * 2.0 ** -8) * (1 + rng.choice([-1, 1], 199) * 2.0 ** -35)
    values = np.concatenate([ties, special, near, rng.normal(size=500) * 10.0 ** rng.integers(-30, 30, 500)])
    np.testing.assert_array_equal(xp.asarray(values).data, nearest_bfloat16(values))
    assert xp.asarray(np.array([1 + 2.0 ** -8 + 2.0 ** -40])).data[0] == 1.0078125


def test_bfloat16_inputs_are_floating_arrays_of_the_mode():
    xp = lowp.namespace("bfloat16")
    values = np.random.default_rng(4).normal(size=(3, 5)).astype(ml_dtypes.bfloat16)
    x = xp.asarray(values)
    assert x.data.dtype == np.float32 and x.dtype == np.dtype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(xp.sum(x, axis=1).data, rounded(np.sum(values.astype(np.float32), axis=1),
                                                                    "bfloat16"))


def test_every_operation_rounds_once(name):
    xp = lowp.namespace(name)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    x, y = xp.asarray(a), xp.asarray(b)
    assert x.dtype == np.dtype(LOW[name]) and np.asarray(x).dtype == np.dtype(LOW[name])
    np.testing.assert_array_equal(x.data, rounded(a.astype(LOW[name]), name))  # from float64 in one rounding
    for got, want in ((x + y, x.data + y.data), (x * y, x.data * y.data), (x / y, x.data / y.data),
                      (xp.exp(x), np.exp(x.data)), (-x, -x.data), (x - 0.1, x.data - np.float32(0.1)),
                      (xp.sum(x, axis=1), np.sum(x.data, axis=1))):
        np.testing.assert_array_equal(got.data, rounded(want, name))
    assert xp.finfo(x.dtype).min == float(ml_dtypes.finfo(LOW[name]).min)
    assert (x > 0).dtype == np.bool_ and xp.astype(x > 0, xp.int64).dtype == np.int64


def test_matrix_products_accumulate_in_float32(name):
    """4096 ones summed: 4096 in a float32 accumulator; 256 + 1 stays 256 in bfloat16 (2048 + 1 in float16)."""
    xp = lowp.namespace(name)
    ones = xp.ones((1, 4096))
    assert float((ones @ xp.ones((4096, 1)))[0, 0]) == 4096.0
    assert float(xp.sum(ones)) == 4096.0
    stall = 256.0 if name == "bfloat16" else 2048.0
    assert float(xp.asarray(stall) + 1.0) == stall  # one operation, rounded: the type's own arithmetic


@pytest.mark.parametrize("fn", ["softmax", "layer_norm", "linear", "gelu"])
def test_fused_building_blocks_round_only_their_result(name, fn):
    """What torch runs as one kernel computes in float32 and rounds once, as transformers' softmax(float32)."""
    xp = lowp.namespace(name)
    rng = np.random.default_rng(1)
    x, w, b = (xp.asarray(rng.normal(size=s) * 3) for s in ((4, 9), (6, 9), (6,)))
    ref = {"softmax": lambda: functional.softmax(x.data),
           "layer_norm": lambda: functional.layer_norm(x.data, w.data[0], b.data[:1].repeat(9)),
           "linear": lambda: functional.linear(x.data, w.data, b.data),
           "gelu": lambda: functional.gelu(x.data)}[fn]()
    got = {"softmax": lambda: functional.softmax(x),
           "layer_norm": lambda: functional.layer_norm(x, w[0, :], b[:1] * xp.ones(9)),
           "linear": lambda: functional.linear(x, w, b), "gelu": lambda: functional.gelu(x)}[fn]()
    assert got.kernel is not None  # still the kernel's float32 result ...
    after = got + 0.0  # ... rounded by the next operation outside the kernel
    np.testing.assert_array_equal(after.data, rounded(ref, name))
    np.testing.assert_array_equal(np.asarray(got).astype(np.float32), rounded(ref, name))  # and on export


def test_a_low_precision_model_and_its_errors(tmp_path, name):
    from conftest import random_led
    model64 = random_led(tmp_path / "m", dtype="float64")
    low = ledref.LEDForConditionalGeneration.from_pretrained(tmp_path / "m", dtype=name)
    ids = np.array([[0, 5, 9, 13, 7, 2, 1, 1], [0, 8, 4, 2, 1, 1, 1, 1]])
    args = dict(input_ids=ids, attention_mask=(ids != 1).astype(np.int64),
                global_attention_mask=np.eye(1, 8, dtype=np.int64).repeat(2, 0), decoder_input_ids=[[2, 0], [2, 5]],
                output_attentions=True)
    want, got = model64(**args), low(**args)
    logits = ledref.to_numpy(got.logits)
    assert logits.dtype == np.dtype(LOW[name])
    eps = float(ml_dtypes.finfo(LOW[name]).eps)
    error = np.max(np.abs(logits.astype(np.float64) - want.logits)) / np.max(np.abs(want.logits))
    assert eps / 16 < error < 30 * eps, error  # rounded, and only by a few units of the type
    with pytest.raises(ledref.LedrefError, match="emulated over NumPy"):
        ledref.LEDForConditionalGeneration.from_pretrained(tmp_path / "m", dtype=name, backend="array_api_strict")


@pytest.mark.parity
def test_errors_of_the_order_of_transformers(make_checkpoint, name):
    """Against the float64 reference, per tensor: ledref's bfloat16 / float16 error at most 3 times
    transformers' own run in that dtype (plus one unit of the type), on a randomised LED."""
    torch = require("torch")
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
    from measure_tolerances import hf_tensors

    from ledref.golden import case_inputs, record
    hf, path = make_checkpoint(seed=4)
    inputs = case_inputs("global_first", 97, seed=1)
    reference = record(ledref.LEDForConditionalGeneration.from_pretrained(path, dtype="float64"), inputs)
    ours = record(ledref.LEDForConditionalGeneration.from_pretrained(path, dtype=name), inputs)
    import copy
    theirs = hf_tensors(copy.deepcopy(hf).to(getattr(torch, name)), inputs)
    eps = float(ml_dtypes.finfo(LOW[name]).eps)
    compared = 0
    for tensor, value in theirs.items():
        ref = reference[tensor]
        scale = max(1.0, float(np.max(np.abs(ref))))
        error_ours = np.max(np.abs(ours[tensor].astype(np.float64) - ref)) / scale
        error_theirs = np.max(np.abs(value.astype(np.float64) - ref)) / scale
        assert error_ours <= 3 * error_theirs + eps, (tensor, error_ours, error_theirs)
        compared += 1
    assert compared >= 10
