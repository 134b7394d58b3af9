"""Decoding the compact attention layout: to_dense equals the dense reference's matrix, to_band inverts it,
on ledref's outputs and on transformers' outputs for the same model."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ledref
from conftest import hf_call, hf_model, random_led
from ledref.checkpoint import random_state_dict, save_checkpoint
from ledref.layout import attention_weight, merged_mask, to_band, to_bertviz, to_dense


def dense_attention_matrix(h, mask, w, n_heads, query, key, value, query_global, key_global, value_global):
    """P[b, h, i, j], the weight of token j's value in token i's output, by the rule written out in NumPy:
    local rows over their window's local keys and every global key, global rows (global projections) over
    every non-pad key, pad rows zero.   -> [B, H, L, L]"""
    b, length, dim = h.shape
    d = dim // n_heads

    def heads(p):
        return (h @ p["weight"].T + p["bias"]).reshape(b, length, n_heads, d).transpose(0, 2, 1, 3)

    def masked_softmax(scores, allowed):
        scores = np.where(allowed, scores, np.finfo(scores.dtype).min)
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    i = np.arange(length)
    near = np.abs(i[:, None] - i[None, :]) <= w
    local_allowed = (near[None] & (mask == 1)[:, None, :]) | (mask == 2)[:, None, :]  # [B, L, L]
    local = masked_softmax(heads(query) @ heads(key).transpose(0, 1, 3, 2) / np.sqrt(d), local_allowed[:, None])
    glob = masked_softmax(heads(query_global) @ heads(key_global).transpose(0, 1, 3, 2) / np.sqrt(d),
                          (mask != 0)[:, None, None, :])
    probs = np.where((mask == 2)[:, None, :, None], glob, local)
    return np.where((mask == 0)[:, None, :, None], 0.0, probs)


def dense_reference(model, out, global_attention_mask, attention_mask):
    """Per layer, the dense rule's matrix recomputed from that layer's input hidden states."""
    mask = merged_mask(global_attention_mask, attention_mask, out.encoder_last_hidden_state.shape[:2])
    params = model._params_for(model.default_xp)["encoder"]["layers"]
    return [dense_attention_matrix(h, mask, window // 2, model.config.encoder_attention_heads,
                                   **layer["self_attn"]["longformer_self_attn"])
            for h, layer, window in zip(out.encoder_hidden_states, params, model.config.attention_window)]


@st.composite
def case(draw):
    windows = draw(st.lists(st.sampled_from([2, 4, 6, 8]), min_size=1, max_size=3))
    b = draw(st.integers(1, 3))
    length = draw(st.integers(1, 24))
    lengths = draw(st.lists(st.integers(1, length), min_size=b, max_size=b))
    globals_ = draw(st.lists(st.lists(st.integers(0, length - 1), max_size=4), min_size=b, max_size=b))
    return windows, lengths, length, globals_, draw(st.integers(0, 10**6))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=case())
def test_to_dense_is_the_dense_reference_and_to_band_inverts_it(spec, tmp_path):
    windows, lengths, length, globals_, seed = spec
    config = ledref.LEDConfig(vocab_size=40, d_model=8, encoder_layers=len(windows), decoder_layers=1,
                              encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=8,
                              decoder_ffn_dim=8, max_encoder_position_embeddings=64,
                              max_decoder_position_embeddings=8, attention_window=windows)
    save_checkpoint(tmp_path, config, random_state_dict(config, seed=seed, dtype="float64"))
    model = ledref.LEDForConditionalGeneration.from_pretrained(tmp_path, dtype="float64")
    rng = np.random.default_rng(seed)
    b = len(lengths)
    input_ids = rng.integers(3, 40, (b, length))
    attention_mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
    global_attention_mask = np.zeros((b, length), dtype=np.int64)
    for row, positions in enumerate(globals_):
        global_attention_mask[row, positions] = 1  # some land on padding, where they do not count
    out = model(input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask,
                decoder_input_ids=[[2]] * b, output_attentions=True, output_hidden_states=True)
    references = dense_reference(model, out, global_attention_mask, attention_mask)
    glob = out.encoder_global_attentions or (None,) * len(windows)
    for layer, (local, g, reference, window) in enumerate(zip(out.encoder_attentions, glob, references, windows)):
        dense = to_dense(local, g, global_attention_mask, attention_mask)
        np.testing.assert_allclose(dense, reference, rtol=0, atol=1e-10, err_msg=f"layer {layer}")
        real = attention_mask == 1
        np.testing.assert_allclose(dense.sum(-1)[np.broadcast_to(real[:, None], dense.shape[:3])], 1, atol=1e-12)
        back_local, back_global = to_band(dense, global_attention_mask, attention_mask, window,
                                          padded_length=None if g is None else g.shape[2])
        np.testing.assert_array_equal(back_local, local)
        assert (back_global is None) == (g is None)
        if g is not None:
            np.testing.assert_array_equal(back_global, g)


def test_on_transformers_outputs(make_checkpoint):
    """transformers' outputs decode to the same dense matrices, and re-encode to themselves exactly."""
    hf, path = make_checkpoint("LEDForConditionalGeneration", attention_window=[4, 8])
    rng = np.random.default_rng(5)
    input_ids = rng.integers(3, 97, (3, 19))
    attention_mask = np.ones_like(input_ids)
    attention_mask[1, 12:] = attention_mask[2, 5:] = 0
    global_attention_mask = np.zeros_like(input_ids)
    global_attention_mask[0, [0, 9, 18]] = global_attention_mask[1, 11] = global_attention_mask[2, [1, 7]] = 1
    args = dict(input_ids=input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask,
                decoder_input_ids=np.array([[2]] * 3), output_attentions=True, output_hidden_states=True)
    theirs = hf_call(hf_model(hf, "float64"), "float64", **args)
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype="float64")
    references = dense_reference(model, model(**args), global_attention_mask, attention_mask)
    for local, g, reference, window in zip(theirs.encoder_attentions, theirs.encoder_global_attentions, references,
                                           [4, 8]):
        local, g = local.numpy(), g.numpy()
        dense = to_dense(local, g, global_attention_mask, attention_mask)
        np.testing.assert_allclose(dense, reference, rtol=0, atol=1e-10)
        back_local, back_global = to_band(dense, global_attention_mask, attention_mask, window, g.shape[2])
        np.testing.assert_array_equal(back_local, local)
        np.testing.assert_array_equal(back_global, g)


@pytest.fixture(scope="module")
def small_output(tmp_path_factory):
    model = random_led(tmp_path_factory.mktemp("layout"), seed=1, attention_window=[4, 6])
    am = np.ones((2, 14), dtype=np.int64)
    am[1, 10:] = 0
    gm = np.zeros_like(am)
    gm[0, [0, 6]] = gm[1, 3] = 1
    out = model(np.arange(3, 31).reshape(2, 14), attention_mask=am, global_attention_mask=gm,
                decoder_input_ids=[[2], [2]], output_attentions=True)
    return out, gm, am


def test_attention_weight_reads_single_entries(small_output):
    out, gm, am = small_output
    for layer in range(2):
        local, g = out.encoder_attentions[layer], out.encoder_global_attentions[layer]
        dense = to_dense(local, g, gm, am)
        for i in range(14):
            for j in range(14):
                np.testing.assert_array_equal(attention_weight(local, g, i, j, gm, am), dense[:, :, i, j])


def test_bertviz_export(small_output):
    out, gm, am = small_output
    layers = to_bertviz(out.encoder_attentions, out.encoder_global_attentions, gm, am, row=1)
    assert len(layers) == 2 and layers[0].shape == (1, 2, 10, 10)  # row 1 has 10 real tokens
    full = to_dense(out.encoder_attentions[1], out.encoder_global_attentions[1], gm, am)
    np.testing.assert_array_equal(layers[1][0], full[1, :, :10, :10])
    np.testing.assert_allclose(layers[1].sum(-1), 1, atol=1e-12)


def test_mismatched_masks_are_refused(small_output):
    out, gm, am = small_output
    with pytest.raises(ledref.InputError, match=r"the masks give 1 global tokens .* 2 global slots"):
        to_dense(out.encoder_attentions[0], out.encoder_global_attentions[0], gm * 0 + np.eye(2, 14, dtype=int), am)
    with pytest.raises(ledref.InputError, match=r"global_attention_mask has shape \(2, 3\)"):
        to_dense(out.encoder_attentions[0], out.encoder_global_attentions[0], gm[:, :3], am)
    with pytest.raises(ledref.InputError, match=r"query=14 is outside the 14 tokens"):
        attention_weight(out.encoder_attentions[0], out.encoder_global_attentions[0], 14, 0, gm, am)


@pytest.mark.parametrize("backend", ["array_api_strict", "torch"])
def test_layout_reads_other_backends_outputs(backend, small_output, tmp_path):
    """The same model run on another backend's arrays: its outputs decode to the NumPy run's matrices."""
    from conftest import require, to_backend
    require(backend)
    out, gm, am = small_output
    model = random_led(tmp_path, seed=1, attention_window=[4, 6])
    theirs = model(to_backend(np.arange(3, 31).reshape(2, 14), backend), attention_mask=to_backend(am, backend),
                   global_attention_mask=to_backend(gm, backend), decoder_input_ids=to_backend(np.array([[2], [2]]),
                                                                                              backend),
                   output_attentions=True)
    for layer in range(2):
        expected = to_dense(out.encoder_attentions[layer], out.encoder_global_attentions[layer], gm, am)
        got = to_dense(theirs.encoder_attentions[layer], theirs.encoder_global_attentions[layer],
                       to_backend(gm, backend), to_backend(am, backend))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
