"""Backend behaviour: the forward pass reads nothing back to the host (the property that keeps a GPU
busy), checked by counting every conversion of an array_api_strict array to a Python scalar or to another
library while the encoder, the decoder and the LM head run; and clear errors for unusable backends."""

import importlib

import numpy as np
import pytest

import ledref
from conftest import random_led, require
from ledref import fast, reference
from ledref.reference.attention import global_slots
from ledref.reference.model import lm_head

CONVERSIONS = ("__bool__", "__int__", "__float__", "__index__", "__complex__", "__array__", "__dlpack__")


def encoder(params, config, ids, mask, implementation, **kwargs):
    """The encoder an implementation runs: the fast path for "band", the reference otherwise."""
    if implementation == "band":
        return fast.encoder(params, config, ids, mask, **kwargs)
    return reference.encoder(params, config, ids, mask, implementation, **kwargs)


def decoder(implementation, *args, **kwargs):
    return (fast.decoder if implementation == "band" else reference.decoder)(*args, **kwargs)


@pytest.mark.parametrize("implementation", ["band", "band_matrix", "dense"])
def test_forward_pass_makes_no_device_to_host_transfer(implementation, tmp_path, monkeypatch):
    xp = require("array_api_strict")
    model = random_led(tmp_path, backend="array_api_strict", attention_window=[4, 8], decoder_layers=2)
    config, params = model.config, model._params_for(xp)
    am = np.ones((2, 13), dtype=np.int64)
    am[1, 9:] = 0
    gm = np.zeros_like(am)
    gm[0, [0, 6]] = gm[1, 2] = 1
    ids, mask = xp.asarray(np.arange(26).reshape(2, 13) % 50 + 3), xp.asarray(am * (gm + 1))
    dec = xp.asarray(np.array([[2, 5, 7], [2, 9, 4]]))
    slots = global_slots(mask)  # the global count sizes the arrays: read once, before the forward pass
    seen = []
    array_type = type(ids)
    for name in CONVERSIONS:
        if hasattr(array_type, name):
            original = getattr(array_type, name)
            monkeypatch.setattr(array_type, name,
                                lambda self, *a, _n=name, _o=original, **k: seen.append(_n) or _o(self, *a, **k))
    out = encoder(params, config, ids, mask, implementation, output_attentions=True, output_hidden_states=True,
                  slots=slots)
    h, _, _, _, cache = decoder(implementation, params, config, dec, out.last_hidden_state, xp.asarray(am))
    lm_head(h, params)
    step, _, _, _, _ = decoder(implementation, params, config, dec[:, -1:], out.last_hidden_state, xp.asarray(am),
                               past_key_values=cache)
    lm_head(step, params)
    monkeypatch.undo()
    assert seen == [], f"the forward pass converted arrays to host values: {seen}"
    # the counting itself works: an explicit conversion is seen
    original = array_type.__bool__
    monkeypatch.setattr(array_type, "__bool__", lambda self: seen.append("__bool__") or original(self))
    bool(xp.any(mask == 2))
    assert seen == ["__bool__"]


def test_cupy_backend_without_cupy_or_gpu_is_a_clear_error(tmp_path):
    try:
        cupy = importlib.import_module("cupy")
        usable = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        usable = False
    if usable:
        pytest.skip("CuPy and a GPU are present; the GPU tests cover this backend")
    with pytest.raises(ledref.LedrefError, match=r"backend='cupy' needs"):
        random_led(tmp_path, backend="cupy")


def test_outputs_stay_on_the_backend_and_come_back_with_to_numpy(tmp_path, same_operations_everywhere):
    xp = require("array_api_strict")
    model = random_led(tmp_path, backend="array_api_strict")
    out = model([[5, 6, 7, 8]], decoder_input_ids=[[2, 5]])
    assert type(out.logits) is type(xp.asarray(0.0))
    back = ledref.to_numpy(out.logits)
    assert isinstance(back, np.ndarray) and back.shape == (1, 2, 60)
    numpy_model = random_led(tmp_path / "np")
    np.testing.assert_array_equal(back, numpy_model([[5, 6, 7, 8]], decoder_input_ids=[[2, 5]]).logits)


@pytest.mark.parametrize("implementation", ["band", "band_matrix", "dense"])
def test_forward_pass_stays_on_the_inputs_device(implementation, tmp_path):
    """Weights and inputs on a second array_api_strict device: every array the forward pass makes must be
    created there (array_api_strict refuses to mix devices), as CuPy needs on a GPU."""
    xp = require("array_api_strict")
    device = xp.Device("device1")
    model = random_led(tmp_path, attention_window=[4, 8], decoder_layers=2)

    def move(tree):
        if isinstance(tree, dict):
            return {k: move(v) for k, v in tree.items()}
        if isinstance(tree, list):
            return [move(v) for v in tree]
        return xp.asarray(tree, device=device)

    params = move(model._host_params)
    am = np.ones((2, 13), dtype=np.int64)
    am[1, 9:] = 0
    gm = np.zeros_like(am)
    gm[0, [0, 6]] = gm[1, 2] = 1
    input_ids, decoder_input_ids = np.arange(26).reshape(2, 13) % 50 + 3, np.array([[2, 5, 7], [2, 9, 4]])
    ids, mask, dec = move(input_ids), move(am * (gm + 1)), move(decoder_input_ids)
    out = encoder(params, model.config, ids, mask, implementation, output_attentions=True,
                  slots=global_slots(mask))
    h, _, _, _, cache = decoder(implementation, params, model.config, dec, out.last_hidden_state, move(am))
    step, _, _, _, _ = decoder(implementation, params, model.config, dec[:, -1:], out.last_hidden_state, move(am),
                               past_key_values=cache)
    for array in (out.last_hidden_state, *out.attentions, *out.global_attentions, lm_head(h, params),
                  lm_head(step, params)):
        assert array.device == device
    reference = model(input_ids, attention_mask=am, global_attention_mask=gm, decoder_input_ids=decoder_input_ids)
    logits = lm_head(h, params).to_device(xp.Device("CPU_DEVICE"))
    np.testing.assert_allclose(ledref.to_numpy(logits), reference.logits, rtol=0, atol=1e-12)


@pytest.mark.parametrize("implementation", ["band", "band_matrix", "dense"])
def test_model_weights_follow_the_inputs_device(implementation, tmp_path):
    """A model called with arrays on a second array_api_strict device places its weights there (as on a
    torch CUDA device) and returns arrays there, equal to the run on the default device."""
    xp = require("array_api_strict")
    other = xp.Device("device1")
    model = random_led(tmp_path, attention_window=[4, 8], decoder_layers=2)
    model.attn_implementation = implementation
    am = np.ones((2, 13), dtype=np.int64)
    am[1, 9:] = 0
    gm = np.zeros_like(am)
    gm[0, [0, 6]] = 1
    args = dict(input_ids=np.arange(26).reshape(2, 13) % 50 + 3, attention_mask=am, global_attention_mask=gm,
                decoder_input_ids=np.array([[2, 5, 7], [2, 9, 4]]))
    out = model(**{k: xp.asarray(v, device=other) for k, v in args.items()}, output_attentions=True)
    for array in (out.logits, *out.encoder_attentions, *out.encoder_global_attentions):
        assert array.device == other
    expected = model(**args)
    logits = out.logits.to_device(xp.Device("CPU_DEVICE"))
    np.testing.assert_allclose(ledref.to_numpy(logits), expected.logits, rtol=0, atol=1e-12)


def test_torch_tensors_in_torch_tensors_out(tmp_path):
    """torch tensors in (through array-api-compat), torch tensors out, equal to the NumPy run."""
    torch = require("torch")
    model = random_led(tmp_path, attention_window=[4, 8])
    ids = np.arange(3, 23).reshape(2, 10)
    out = model(torch.from_numpy(ids), decoder_input_ids=torch.tensor([[2, 5], [2, 7]]), output_hidden_states=True)
    assert isinstance(out.logits, torch.Tensor) and out.logits.dtype == torch.float64
    assert all(isinstance(h, torch.Tensor) for h in out.encoder_hidden_states)
    expected = model(ids, decoder_input_ids=[[2, 5], [2, 7]])
    np.testing.assert_allclose(ledref.to_numpy(out.logits), expected.logits, rtol=0, atol=1e-12)


def test_to_numpy_reads_torch_bfloat16_bit_for_bit():
    torch = require("torch")
    values = torch.randn(3, 5, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    got = ledref.to_numpy(values)
    assert got.dtype.name == "bfloat16"
    # the same bits: torch's widening to float32 (exact) against ml_dtypes' widening of the NumPy copy
    np.testing.assert_array_equal(got.astype(np.float32), values.float().numpy())
