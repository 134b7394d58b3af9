"""The band implementation equals the dense masked reference (float64, <= 1e-10), for random shapes,
windows (2 and windows that do not divide the largest included), masks and global sets.

The dense reference is itself checked against transformers in test_parity.py; here it is the oracle
for what transformers cannot run (window 2, non-dividing windows, arbitrary masks)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ledref
from conftest import to_backend
from ledref.attention import SELF_ATTENTION, dense_self_attention, global_slots
from ledref.backend import namespace, to_namespace
from ledref.checkpoint import load_params, random_state_dict, save_checkpoint

TOL = 1e-10
PROJECTIONS = ("query", "key", "value", "query_global", "key_global", "value_global")


def close(a, b, name):
    if a is None or b is None:
        assert a is None and b is None, name
        return
    a, b = ledref.to_numpy(a), ledref.to_numpy(b)
    assert a.shape == b.shape, (name, a.shape, b.shape)
    assert np.max(np.abs(a - b), initial=0.0) <= TOL, (name, np.max(np.abs(a - b)))


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


@pytest.mark.parametrize("implementation", ["band", "band_matrix"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=attention_case())
def test_band_attention_equals_dense(case, backend, implementation):
    b, heads, d, length, w, p_global, p_pad, seed = case
    rng = np.random.default_rng(seed)
    dim = heads * d
    u = rng.random((b, length))
    mask = np.where(u < p_pad, 0, np.where(rng.random((b, length)) < p_global, 2, 1))  # pads anywhere
    weights = {name: {"weight": rng.normal(size=(dim, dim)), "bias": rng.normal(size=dim)} for name in PROJECTIONS}
    xp = namespace(backend)
    h = to_backend(rng.normal(size=(b, length, dim)), backend)
    mask = to_backend(mask, backend)
    weights = to_namespace(weights, xp)
    slots = global_slots(mask)
    band = SELF_ATTENTION[implementation](h, mask, slots, w, heads, output_attentions=True, **weights)
    dense = dense_self_attention(h, mask, slots, w, heads, output_attentions=True, **weights)
    for name, a, r in zip(("output", "local_probs", "global_probs"), band, dense):
        close(a, r, name)
    probs = ledref.to_numpy(band[1])
    assert probs.shape == (b, heads, length, slots[2] + 2 * w + 1)


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


@pytest.mark.parametrize("implementation", ["band", "band_matrix"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=model_case())
def test_band_model_equals_dense_model(case, backend, tmp_path, implementation):
    """Whole encoder-decoder, per-layer windows (2, and windows that do not divide the largest)."""
    windows, lengths, length, n_globals, seed = case
    rng = np.random.default_rng(seed)
    config = ledref.LEDConfig(vocab_size=50, d_model=12, encoder_layers=len(windows), decoder_layers=1,
                              encoder_attention_heads=2, decoder_attention_heads=3, encoder_ffn_dim=20,
                              decoder_ffn_dim=20, max_encoder_position_embeddings=64,
                              max_decoder_position_embeddings=16, attention_window=windows)
    save_checkpoint(tmp_path, config, random_state_dict(config, seed=seed % 1000, dtype="float64"))
    params = load_params(tmp_path, config, head="lm", dtype="float64")
    band = ledref.LEDForConditionalGeneration(config, params, dtype="float64", attn_implementation=implementation)
    dense = ledref.LEDForConditionalGeneration(config, params, dtype="float64", attn_implementation="dense")
    b = len(lengths)
    input_ids = rng.integers(3, 50, (b, length))
    attention_mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
    global_attention_mask = np.zeros((b, length), dtype=np.int64)
    for row, n in enumerate(n_globals):
        global_attention_mask[row, rng.choice(length, size=min(n, length), replace=False)] = 1
    args = dict(input_ids=input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask,
                decoder_input_ids=rng.integers(3, 50, (b, 3)))
    args = {k: to_backend(v, backend) for k, v in args.items()}
    outs = [m(**args, output_attentions=True, output_hidden_states=True) for m in (band, dense)]
    for field in ("logits", "encoder_last_hidden_state"):
        close(getattr(outs[0], field), getattr(outs[1], field), field)
    for field in ("encoder_hidden_states", "encoder_attentions", "encoder_global_attentions", "cross_attentions"):
        a, r = getattr(outs[0], field), getattr(outs[1], field)
        assert (a is None) == (r is None), field
        for i, (x, y) in enumerate(zip(a or (), r or ())):
            close(x, y, f"{field}[{i}]")
    for i, (probs, window) in enumerate(zip(outs[0].encoder_attentions, windows)):
        x = 0 if outs[0].encoder_global_attentions is None else outs[0].encoder_global_attentions[i].shape[-1]
        assert probs.shape == (b, 2, length, x + window + 1)


@pytest.mark.parametrize("implementation", ["band", "band_matrix"])
@pytest.mark.parametrize("length", [1, 7, 64])
def test_window_longer_than_input(length, backend, implementation):
    """A window far longer than the input still gives the dense answer (everything within reach)."""
    rng = np.random.default_rng(length)
    xp = namespace(backend)
    weights = to_namespace({name: {"weight": rng.normal(size=(6, 6)), "bias": rng.normal(size=6)}
                            for name in PROJECTIONS}, xp)
    h = to_backend(rng.normal(size=(2, length, 6)), backend)
    mask = to_backend(np.ones((2, length), dtype=np.int64), backend)
    slots = global_slots(mask)
    band = SELF_ATTENTION[implementation](h, mask, slots, 100, 2, output_attentions=True, **weights)
    dense = dense_self_attention(h, mask, slots, 100, 2, output_attentions=True, **weights)
    close(band[0], dense[0], "output")
    close(band[1], dense[1], "local_probs")


@pytest.mark.parametrize("scale, large", [(0.05, False), (3.0, True)])
@pytest.mark.parametrize("n_global", [0, 2])
def test_softmax_with_and_without_the_max_subtracted(scale, large, n_global):
    """NumPy's band kernel skips the row maximum where |q| |k| bounds every score within UNSHIFTED_BOUND.
    Both sides of the bound equal the dense rule, including pad rows whose whole window is pad (whose
    unshifted sum is 0) and rows that reach only global keys."""
    from ledref.attention import UNSHIFTED_BOUND, _norms_for_bounds, _projections
    rng = np.random.default_rng(n_global)
    heads, dim, length, w = 2, 8, 40, 3
    weights = {name: {"weight": rng.normal(size=(dim, dim)) * scale, "bias": rng.normal(size=dim) * scale}
               for name in PROJECTIONS}
    h = rng.normal(size=(2, length, dim))
    mask = np.ones((2, length), dtype=np.int64)
    mask[1, 20:] = 0  # pad rows 24.. see only pad keys
    mask[:, rng.choice(20, size=n_global, replace=False)] = 2
    slots = global_slots(mask)
    q, k, _ = _projections(h, heads, weights["query"], weights["key"], weights["value"])
    q_len, k_len, _ = _norms_for_bounds(q, k, None)
    assert (float(q_len[0].max()) * float(k_len[0].max()) > UNSHIFTED_BOUND) == large, UNSHIFTED_BOUND
    band = SELF_ATTENTION["band"](h, mask, slots, w, heads, output_attentions=True, **weights)
    dense = dense_self_attention(h, mask, slots, w, heads, output_attentions=True, **weights)
    assert not np.isnan(band[0]).any()
    for name, a, r in zip(("output", "local_probs", "global_probs"), band, dense):
        close(a, r, name)


@pytest.mark.parametrize("w", [20, 64])
def test_chunks_masked_by_their_triangles_equal_dense(w):
    """On NumPy, a chunk whose keys are all local is masked by the two triangles outside its windows alone
    (attention._band_masks), a chunk that meets pad or global keys by its whole mask. A long input with both
    kinds (pads inside and at the end, globals) against the dense rule (float64)."""
    from ledref.attention import _band_masks
    from ledref.backend import attention_chunk
    rng = np.random.default_rng(w)
    heads, dim, length = 2, 8, 7 * w + 13
    xp = namespace("numpy")
    weights = to_namespace({name: {"weight": rng.normal(size=(dim, dim)), "bias": rng.normal(size=dim)}
                            for name in PROJECTIONS}, xp)
    h = xp.asarray(rng.normal(size=(2, length, dim)))
    mask = np.ones((2, length), dtype=np.int64)
    mask[0, [3, length // 2]] = 2
    mask[1, 2 * w:2 * w + 5] = 0
    mask[1, length - w // 2:] = 0
    mask = xp.asarray(mask)
    rows, _ = attention_chunk(xp, w, heads)
    parts = {len(chunk) for chunks in _band_masks(xp, mask, rows, w, xp.float64) for chunk in chunks}
    assert parts == {1, 2}  # whole masks, and pairs of triangles
    slots = global_slots(mask)
    band = SELF_ATTENTION["band"](h, mask, slots, w, heads, output_attentions=True, **weights)
    dense = dense_self_attention(h, mask, slots, w, heads, output_attentions=True, **weights)
    for name, a, r in zip(("output", "local_probs", "global_probs"), band, dense):
        close(a, r, name)


def chunk_bound(norms, s, e, lo, hi):
    """The softmax bound of one chunk from its own rows: whether queries s..e against keys lo..hi and the
    global keys might score beyond UNSHIFTED_BOUND (the longest query times the longest key)."""
    from ledref.attention import UNSHIFTED_BOUND
    q_len, k_len, global_len = norms
    longest_key = max(float(k_len[:, lo:hi].max()), float(global_len.max()))
    return float(q_len[:, s:e].max()) * longest_key > UNSHIFTED_BOUND


@pytest.mark.parametrize("rows, w, length", [(16, 32, 200), (16, 20, 201), (128, 512, 2048), (7, 3, 50)])
def test_chunks_to_shift_agree_with_the_bound_of_each_chunk(rows, w, length):
    """The band kernel's per-chunk decision (maxima by blocks of `rows`) against the bound of each chunk's
    own queries and keys: equal where w is a multiple of `rows`, and never unshifted where the chunk's own
    bound says shift."""
    from ledref.attention import _chunks_to_shift
    rng = np.random.default_rng(length)
    heads = 3
    for _ in range(20):
        scale = rng.choice([0.5, 2.0, 6.0])  # products of norms around the bound of 30
        norms = tuple(np.abs(rng.normal(size=shape)) * scale * np.where(rng.random(shape) < 0.05, 4.0, 1.0)
                      for shape in ((heads, length), (heads, length), (heads, 1)))
        got = _chunks_to_shift(norms, rows, w, length)
        own = [chunk_bound(norms, s, min(s + rows, length), max(s - w, 0), min(s + rows + w, length))
               for s in range(0, length, rows)]
        assert len(got) == len(own)
        assert all(g or not o for g, o in zip(got, own))
        if w % rows == 0:
            assert got == own


@pytest.mark.parametrize("globals_per_row", [(1, 1), (2, 0), (3, 1)])
def test_factored_global_attention_equals_projected_keys_and_values(globals_per_row, backend):
    """The global rows computed with the projections folded onto the queries and the probabilities equal
    the plain rule on projected k_global and v_global (float64), unused slots and pad keys included."""
    from ledref.attention import factored_global_attention, global_attention, global_slots, split_heads
    from ledref.functional import linear
    rng = np.random.default_rng(sum(globals_per_row))
    b, length, dim, heads = 2, 13, 12, 3
    h = rng.normal(size=(b, length, dim))
    mask = np.ones((b, length), dtype=np.int64)
    mask[1, 10:] = 0
    for row, count in enumerate(globals_per_row):
        mask[row, rng.choice(9, size=count, replace=False)] = 2
    key_global, value_global = ({"weight": rng.normal(size=(dim, dim)), "bias": rng.normal(size=dim)}
                                for _ in range(2))
    xb = lambda a: to_backend(a, backend)  # noqa: E731
    slots = global_slots(xb(mask))
    q_global = xb(rng.normal(size=(b, heads, slots[2], dim // heads)))
    kg, vg = ({k: xb(v) for k, v in p.items()} for p in (key_global, value_global))
    k = split_heads(linear(xb(h), **kg), heads)
    v = split_heads(linear(xb(h), **vg), heads)
    expected_out, expected_probs = global_attention(q_global, k, v, xb(mask), slots)
    out, probs = factored_global_attention(xb(h), q_global, kg, vg, xb(mask), slots)
    np.testing.assert_allclose(ledref.to_numpy(probs), ledref.to_numpy(expected_probs), rtol=0, atol=1e-13)
    np.testing.assert_allclose(ledref.to_numpy(out), ledref.to_numpy(expected_out), rtol=0, atol=1e-12)
