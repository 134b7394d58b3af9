"""Consistency checks inside the reference: its two forms of the local rows, the band (`band_local`,
"band_matrix") and the L x L rule as written (`dense_local`, "dense"), agree in float64 to 1e-10, for
random shapes, windows (2 and windows that do not divide the largest included), masks and global sets.

Both forms are checked against transformers in test_parity.py; here they check each other where
transformers cannot run (window 2, non-dividing windows, arbitrary masks)."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import close

import ledref
from conftest import to_backend
from ledref.backend import namespace, to_namespace
from ledref.checkpoint import load_params, random_state_dict, save_checkpoint
from ledref.reference.attention import global_slots, self_attention

PROJECTIONS = ("query", "key", "value", "query_global", "key_global", "value_global")


@st.composite
def attention_case(draw):
    b = draw(st.integers(1, 3))
    heads = draw(st.integers(1, 3))
    d = draw(st.integers(1, 4))
    length = draw(st.integers(1, 40))
    w = draw(st.integers(1, 12))
    p_global = draw(st.sampled_from([0.0, 0.05, 0.3, 1.0]))
    p_pad = draw(st.sampled_from([0.0, 0.2, 0.6]))
    seed = draw(st.integers(0, 2**32 - 1))
    return b, heads, d, length, w, p_global, p_pad, seed


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=attention_case())
def test_band_local_equals_dense_local(case, backend):
    b, heads, d, length, w, p_global, p_pad, seed = case
    rng = np.random.default_rng(seed)
    dim = heads * d
    mask = np.where(rng.random((b, length)) < p_pad, 0, np.where(rng.random((b, length)) < p_global, 2, 1))
    weights = {name: {"weight": rng.normal(size=(dim, dim)), "bias": rng.normal(size=dim)} for name in PROJECTIONS}
    h = to_backend(rng.normal(size=(b, length, dim)), backend)
    mask = to_backend(mask, backend)
    weights = to_namespace(weights, namespace(backend))
    slots = global_slots(mask)
    band = self_attention(h, mask, slots, w, heads, implementation="band_matrix", **weights)
    dense = self_attention(h, mask, slots, w, heads, implementation="dense", **weights)
    for name, a, r in zip(("output", "local_probs", "global_probs"), band, dense, strict=True):
        close(a, r, name)
    assert ledref.to_numpy(band[1]).shape == (b, heads, length, slots[2] + 2 * w + 1)


@st.composite
def model_case(draw):
    n_layers = draw(st.integers(1, 3))
    windows = draw(st.lists(st.sampled_from([2, 4, 6, 8, 10, 16]), min_size=n_layers, max_size=n_layers))
    b = draw(st.integers(1, 3))
    length = draw(st.integers(1, 30))
    lengths = draw(st.lists(st.integers(1, length), min_size=b, max_size=b))
    n_globals = draw(st.lists(st.integers(0, 3), min_size=b, max_size=b))
    seed = draw(st.integers(0, 2**32 - 1))
    return windows, lengths, length, n_globals, seed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=model_case())
def test_band_matrix_model_equals_dense_model(case, backend, tmp_path):
    """The whole encoder-decoder, per-layer windows (2, and windows that do not divide the largest)."""
    windows, lengths, length, n_globals, seed = case
    rng = np.random.default_rng(seed)
    config = ledref.LEDConfig(vocab_size=50, d_model=12, encoder_layers=len(windows), decoder_layers=1,
                              encoder_attention_heads=2, decoder_attention_heads=3, encoder_ffn_dim=20,
                              decoder_ffn_dim=20, max_encoder_position_embeddings=64,
                              max_decoder_position_embeddings=16, attention_window=windows)
    save_checkpoint(tmp_path, config, random_state_dict(config, seed=seed % 1000, dtype="float64"))
    params = load_params(tmp_path, config, head="lm", dtype="float64")
    band, dense = (ledref.LEDForConditionalGeneration(config, params, dtype="float64", attn_implementation=i)
                   for i in ("band_matrix", "dense"))
    b = len(lengths)
    attention_mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
    global_attention_mask = np.zeros((b, length), dtype=np.int64)
    for row, n in enumerate(n_globals):
        global_attention_mask[row, rng.choice(length, size=min(n, length), replace=False)] = 1
    args = dict(input_ids=rng.integers(3, 50, (b, length)), attention_mask=attention_mask,
                global_attention_mask=global_attention_mask, decoder_input_ids=rng.integers(3, 50, (b, 3)))
    args = {k: to_backend(v, backend) for k, v in args.items()}
    outs = [m(**args, output_attentions=True, output_hidden_states=True) for m in (band, dense)]
    for field in ("logits", "encoder_last_hidden_state"):
        close(getattr(outs[0], field), getattr(outs[1], field), field)
    for field in ("encoder_hidden_states", "encoder_attentions", "encoder_global_attentions", "cross_attentions"):
        a, r = getattr(outs[0], field), getattr(outs[1], field)
        assert (a is None) == (r is None), field
        for i, (x, y) in enumerate(zip(a or (), r or (), strict=True)):
            close(x, y, f"{field}[{i}]")
    for i, (probs, window) in enumerate(zip(outs[0].encoder_attentions, windows, strict=True)):
        x = 0 if outs[0].encoder_global_attentions is None else outs[0].encoder_global_attentions[i].shape[-1]
        assert probs.shape == (b, 2, length, x + window + 1)
