"""Decoding the compact attention layout: to_dense equals the dense reference's matrix, to_band inverts it,
on ledref's outputs and on transformers' outputs for the same model."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ledref
import ledref.layout
import ledref.viz
from conftest import hf_call, hf_model, random_led, require, to_backend
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
            for h, layer, window in zip(out.encoder_hidden_states, params, model.config.attention_window, strict=False)]


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
    layers = zip(out.encoder_attentions, glob, references, windows, strict=True)
    for layer, (local, g, reference, window) in enumerate(layers):
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
                                           [4, 8], strict=True):
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


def test_windows_are_slices_of_the_dense_matrix(small_output):
    """to_dense(..., start, stop) is the window of the whole matrix, for windows over global tokens, pad
    tokens, the edges, and a single token."""
    out, gm, am = small_output
    for layer in range(2):
        local, g = out.encoder_attentions[layer], out.encoder_global_attentions[layer]
        full = to_dense(local, g, gm, am)
        for start, stop in [(0, 14), (2, 9), (6, 7), (9, 14), (0, 1), (5, 12)]:
            np.testing.assert_array_equal(to_dense(local, g, gm, am, start=start, stop=stop),
                                          full[:, :, start:stop, start:stop], err_msg=f"{layer} {start}..{stop}")
    with pytest.raises(ledref.InputError, match=r"token range 5\.\.20 is not inside 0\.\.14"):
        to_dense(local, g, gm, am, start=5, stop=20)


def test_bertviz_export(small_output):
    """What bertviz's head_view takes (its documented arguments): per layer a torch tensor [1, H, n, n], and
    n tokens; the window's real tokens of one row, equal to the dense matrix there."""
    torch = require("torch")
    out, gm, am = small_output
    attention, tokens = to_bertviz(out.encoder_attentions, out.encoder_global_attentions, gm, am, row=1)
    assert len(attention) == 2 and all(isinstance(a, torch.Tensor) for a in attention)
    assert attention[0].shape == (1, 2, 10, 10) and tokens == [str(i) for i in range(10)]  # 10 real tokens
    full = to_dense(out.encoder_attentions[1], out.encoder_global_attentions[1], gm, am)
    np.testing.assert_array_equal(attention[1][0].numpy(), full[1, :, :10, :10])
    np.testing.assert_allclose(attention[1].sum(-1).numpy(), 1, atol=1e-12)
    names = [f"tok{i}" for i in range(14)]
    attention, tokens = to_bertviz(out.encoder_attentions, out.encoder_global_attentions, gm, am, row=0, start=4,
                                   stop=11, tokens=names)
    assert tokens == names[4:11] and attention[0].shape == (1, 2, 7, 7)
    full = to_dense(out.encoder_attentions[0], out.encoder_global_attentions[0], gm, am)
    np.testing.assert_array_equal(attention[0][0].numpy(), full[0, :, 4:11, 4:11])
    attention, _ = to_bertviz((None, out.encoder_attentions[1]), (None, out.encoder_global_attentions[1]), gm, am)
    assert len(attention) == 1  # layers not asked for are left out


def test_bertviz_tokens_from_a_tokenizer(small_output):
    """Readable tokens: each id decoded on its own (a space, not the byte-level marker)."""
    from ledref.tokenizer import LEDTokenizer
    tokenizer = LEDTokenizer.from_pretrained("ledref/tiny-needle")
    ids = np.array(tokenizer(["hello world and more " * 3] * 2, padding=True)["input_ids"])[:, :14]
    out, gm, am = small_output
    _, tokens = to_bertviz(out.encoder_attentions, out.encoder_global_attentions, gm, am, start=0, stop=8,
                           tokenizer=tokenizer, input_ids=ids)
    assert tokens == [tokenizer.decode([int(i)]) for i in ids[0, :8]] and tokens[0] == "<s>"
    raw = tokenizer.convert_ids_to_tokens([int(i) for i in ids[0, :8]])
    assert any("\u0120" in t for t in raw) and not any("\u0120" in t for t in tokens)  # "Ġworld" reads " world"


def test_bertviz_limits_are_checked_before_anything_is_built(small_output, monkeypatch):
    out, gm, am = small_output
    built = []
    monkeypatch.setattr(ledref.layout, "to_dense", lambda *a, **k: built.append(1))
    with pytest.raises(ledref.InputError, match=r"14 tokens in 0\.\.14 is more than bertviz draws usefully "
                                                r"\(max_tokens=8\); pass start and stop"):
        to_bertviz(out.encoder_attentions, out.encoder_global_attentions, gm, am, max_tokens=8)
    with pytest.raises(ledref.InputError, match=r"tokens has 3 entries; expected one per position \(14\)"):
        to_bertviz(out.encoder_attentions, out.encoder_global_attentions, gm, am, tokens=["a", "b", "c"])
    assert not built


def test_a_window_of_a_16k_document_builds_no_square_of_its_length(tmp_path):
    """A dense view and a bertviz export of a 100-token window of a 16,384-token document: the peak of
    what is allocated (tracemalloc; NumPy reports its buffers to it) stays far below one L x L array of the
    attentions' dtype, and the window equals the layout's own numbers (attention_weight, entry by entry)."""
    import tracemalloc

    from ledref import viz
    length = 16384
    model = random_led(tmp_path, ledref.LEDModel, dtype="float32", seed=3, d_model=8, encoder_layers=1,
                       attention_window=16, max_encoder_position_embeddings=length)
    ids = np.random.default_rng(0).integers(3, 60, (1, length))
    gm = np.zeros_like(ids)
    gm[0, [0, 8050]] = 1
    out = model.encoder(ids, global_attention_mask=gm, output_attentions=True)
    local, g = out.attentions[0], out.global_attentions[0]
    square = length * length * local.dtype.itemsize  # 1 GB
    start, stop = 8000, 8100
    for build in (lambda: to_dense(local, g, gm, start=start, stop=stop),
                  lambda: to_bertviz(out.attentions, out.global_attentions, gm, start=start, stop=stop),
                  lambda: viz.plot_dense(local, g, gm, start=start, stop=stop).savefig(tmp_path / "w.png")):
        build()  # once before measuring: the imports (torch, matplotlib's fonts) are not the window's cost
        tracemalloc.start()
        try:
            build()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < square / 50, peak
    window = to_dense(local, g, gm, start=start, stop=stop)
    for i, j in [(8000, 8000), (8010, 8003), (8050, 8099), (8099, 8050), (8030, 8090), (8060, 8052)]:
        np.testing.assert_array_equal(window[:, :, i - start, j - start], attention_weight(local, g, i, j, gm))


def test_mismatched_masks_are_refused(small_output):
    out, gm, am = small_output
    with pytest.raises(ledref.InputError, match=r"the masks give 1 global tokens .* 2 global slots"):
        to_dense(out.encoder_attentions[0], out.encoder_global_attentions[0], gm * 0 + np.eye(2, 14, dtype=int), am)
    with pytest.raises(ledref.InputError, match=r"global_attention_mask has shape \(2, 3\)"):
        to_dense(out.encoder_attentions[0], out.encoder_global_attentions[0], gm[:, :3], am)
    with pytest.raises(ledref.InputError, match=r"query=14 is outside the 14 tokens"):
        attention_weight(out.encoder_attentions[0], out.encoder_global_attentions[0], 14, 0, gm, am)


@pytest.mark.parametrize("backend", ["array_api_strict", "torch"])
def test_layout_reads_other_backends_outputs_consistency(backend, small_output, tmp_path):
    """A consistency check (ledref against itself; the NumPy run is checked against the dense rule above):
    the same model run on another backend's arrays: its outputs decode to the NumPy run's matrices."""

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


def check_compact_columns(local, g, reference, gm, am, window):
    """Every entry compact_columns names 'local' or 'global' holds the dense rule's weight of its query on its
    key; every other kind is exactly 0 in the compact layout."""
    columns = ledref.layout.compact_columns(gm, am, window=window)
    assert columns.keys.shape == columns.kinds.shape == (local.shape[0], local.shape[2], local.shape[3])
    assert set(np.unique(columns.kinds)) <= set(ledref.layout.KINDS)
    for row, query, column in np.ndindex(columns.kinds.shape):
        kind, key = columns.kinds[row, query, column], columns.keys[row, query, column]
        if kind in ("local", "global"):
            np.testing.assert_allclose(local[row, :, query, column], reference[row, :, query, key], rtol=0,
                                       atol=1e-10)
            assert (reference[row, :, query, key] > 0).all()
        else:
            assert (local[row, :, query, column] == 0).all(), (row, query, column, kind)
    if g is not None:  # global_attentions' token axis is the padded length
        assert g.shape[2] == ledref.layout.padded_length(local.shape[2], window)


def test_compact_columns_name_every_entry_of_transformers_layout(make_checkpoint):
    hf, path = make_checkpoint("LEDForConditionalGeneration", attention_window=[4, 4])
    rng = np.random.default_rng(3)
    input_ids = rng.integers(3, 97, (3, 15))
    attention_mask = np.ones_like(input_ids)
    attention_mask[1, 12:] = attention_mask[2, 6:] = 0
    global_attention_mask = np.zeros_like(input_ids)
    global_attention_mask[0, [0, 6, 7]] = global_attention_mask[1, 11] = global_attention_mask[2, 8] = 1  # 8: pad
    args = dict(input_ids=input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask,
                decoder_input_ids=np.array([[2]] * 3), output_attentions=True, output_hidden_states=True)
    theirs = hf_call(hf_model(hf, "float64"), "float64", **args)
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype="float64")
    references = dense_reference(model, model(**args), global_attention_mask, attention_mask)
    for local, g, reference in zip(theirs.encoder_attentions, theirs.encoder_global_attentions, references,
                                   strict=True):
        check_compact_columns(local.numpy(), g.numpy(), reference, global_attention_mask, attention_mask, 4)
    kinds = ledref.layout.compact_columns(global_attention_mask, attention_mask, window=4).kinds
    assert list(kinds[0, 5]) == ["global", "global", "global", "local", "local", "local", "global key", "global key"]
    assert list(kinds[1, 0]) == ["global", "filler", "filler", "edge", "edge", "local", "local", "local"]
    assert set(kinds[2, 8]) == {"pad query"} and set(kinds[0, 6]) == {"global query"}


def test_band_column_and_padded_length(small_output):
    out, gm, am = small_output
    for layer, window in enumerate([4, 6]):
        local, g = out.encoder_attentions[layer], out.encoder_global_attentions[layer]
        dense = to_dense(local, g, gm, am)
        x = g.shape[-1]
        for offset in range(-(window // 2), window // 2 + 1):
            column = ledref.layout.band_column(offset, window, x)
            for query in range(max(0, -offset), min(14, 14 - offset)):
                if (merged_mask(gm, am, (2, 14))[:, [query, query + offset]] == 1).all():
                    np.testing.assert_array_equal(local[:, :, query, column], dense[:, :, query, query + offset])
    assert [ledref.layout.padded_length(n, 4) for n in (1, 4, 5, 16, 17)] == [4, 4, 8, 16, 20]
    with pytest.raises(ledref.InputError, match=r"offset=3; expected an int from -2 to \+2"):
        ledref.layout.band_column(3, 4)
    with pytest.raises(ledref.InputError, match="window=5"):
        ledref.layout.padded_length(10, 5)


@settings(max_examples=200, deadline=None)
@given(length=st.integers(1, 40), window=st.sampled_from([2, 4, 6, 8, 10]), dilation=st.integers(1, 4),
       autoregressive=st.booleans(), data=st.data())
def test_attention_pattern_is_the_dense_rule(length, window, dilation, autoregressive, data):
    """attention_pattern against the rule written out: |i - j| <= w r, (j - i) a multiple of r, j <= i when
    autoregressive, j local; or j global; or i global."""
    g = data.draw(st.lists(st.integers(0, length - 1), max_size=4))
    pattern = ledref.layout.attention_pattern(length, window, dilation, g, autoregressive)
    i = np.arange(length)
    offset = i[None, :] - i[:, None]
    is_global = np.isin(i, g)
    near = (np.abs(offset) <= window // 2 * dilation) & (offset % dilation == 0)
    near &= (offset <= 0) | (not autoregressive)
    expected = (near & ~is_global[None, :]) | is_global[None, :] | is_global[:, None]
    np.testing.assert_array_equal(pattern, expected)
    if dilation == 1 and not autoregressive:
        assert pattern.sum() == ledref.viz.computed_pairs(length, window, g)[0]


def test_attention_pattern_refuses_bad_arguments():
    with pytest.raises(ledref.InputError, match="global position=9 is outside the 8 tokens"):
        ledref.layout.attention_pattern(8, 4, global_positions=[9])
    with pytest.raises(ledref.InputError, match="dilation"):
        ledref.layout.attention_pattern(8, 4, dilation=0)
