"""The fast path (ledref.fast) equals the reference (ledref.reference), float64, to 1e-10: the attention
layer and the kernel, the encoder, the decoder with and without a cache, and the whole model, for random
shapes, per-layer windows (2, and windows that do not divide the largest), masks and global sets.

The reference here runs its dense rule (L x L masks, the rule as written); the reference itself is
checked against transformers in test_parity.py."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import close

import ledref
from conftest import to_backend
from ledref import fast, reference
from ledref.backend import namespace, to_namespace
from ledref.checkpoint import load_params, random_state_dict, save_checkpoint
from ledref.reference.attention import global_slots

PROJECTIONS = ("query", "key", "value", "query_global", "key_global", "value_global")
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def attention_case(draw):
    heads = draw(st.integers(1, 3))
    return dict(b=draw(st.integers(1, 3)), heads=heads, d=draw(st.integers(1, 4)),
                length=draw(st.integers(1, 60)), w=draw(st.integers(1, 20)),
                p_global=draw(st.sampled_from([0.0, 0.05, 0.3, 1.0])), p_pad=draw(st.sampled_from([0.0, 0.2, 0.6])),
                scale=draw(st.sampled_from([0.1, 1.0, 4.0])), seed=draw(st.integers(0, 2**32 - 1)),
                kept_heads=draw(st.none() | st.permutations(range(heads)).flatmap(
                    lambda p: st.integers(1, heads).map(lambda n: p[:n]))))


def attention_inputs(case, backend):
    rng = np.random.default_rng(case["seed"])
    b, length, dim = case["b"], case["length"], case["heads"] * case["d"]
    mask = np.where(rng.random((b, length)) < case["p_pad"], 0,
                    np.where(rng.random((b, length)) < case["p_global"], 2, 1))  # pads anywhere
    weights = {name: {"weight": rng.normal(size=(dim, dim)) * case["scale"], "bias": rng.normal(size=dim)}
               for name in PROJECTIONS}
    return (to_backend(rng.normal(size=(b, length, dim)), backend), to_backend(mask, backend),
            to_namespace(weights, namespace(backend)))


@settings(max_examples=150, **SETTINGS)
@given(case=attention_case())
def test_attention_layer(case, backend):
    """fast.attention.self_attention against reference.attention.self_attention."""
    h, mask, weights = attention_inputs(case, backend)
    slots = global_slots(mask)
    got = fast.attention.self_attention(h, mask, slots, case["w"], case["heads"], output_attentions=True, **weights)
    want = reference.attention.self_attention(h, mask, slots, case["w"], case["heads"], implementation="dense",
                                              **weights)
    for name, a, r in zip(("output", "local_probs", "global_probs"), got, want, strict=True):
        close(a, r, name)
    assert got[1].shape == (case["b"], case["heads"], case["length"], slots[2] + 2 * case["w"] + 1)
    without = fast.attention.self_attention(h, mask, slots, case["w"], case["heads"], **weights)
    close(without[0], want[0], "output without the probabilities")
    assert without[1] is None
    if case["kept_heads"] is not None:  # some heads' probabilities only, in the order asked for
        heads = list(case["kept_heads"])
        some = fast.attention.self_attention(h, mask, slots, case["w"], case["heads"], output_attentions=True,
                                             attention_heads=heads, **weights)
        close(some[0], want[0], "output with some heads' probabilities")
        close(some[1], ledref.to_numpy(want[1])[:, heads], "local_probs of the kept heads")
        kept_global = None if want[2] is None else ledref.to_numpy(want[2])[:, heads]
        close(some[2], kept_global, "global_probs of the kept heads")


@settings(max_examples=60, **SETTINGS)
@given(case=attention_case())
def test_attention_kernel(case, backend):
    """fast.attention.longformer_attention (the conformance suite's signature: q_global at every position)
    against reference.attention.longformer_attention."""
    rng = np.random.default_rng(case["seed"])
    b, length, heads, d, w = case["b"], case["length"], case["heads"], case["d"], case["w"]
    q, k, v, qg, kg, vg = (to_backend(rng.normal(size=(b, heads, length, d)), backend) for _ in range(6))
    _, mask, _ = attention_inputs(case, backend)
    slots = global_slots(mask)
    got = fast.attention.longformer_attention(q, k, v, qg, kg, vg, mask, w)
    want = reference.attention.longformer_attention(q, k, v, reference.attention.take_positions(qg, slots[0], 1),
                                                    kg, vg, mask, slots, w, implementation="dense")
    for name, a, r in zip(("output", "local_probs", "global_probs"), got, want, strict=True):
        close(a, r, name)


@st.composite
def model_case(draw):
    n_layers = draw(st.integers(1, 3))
    b = draw(st.integers(1, 3))
    length = draw(st.integers(1, 40))
    return dict(windows=draw(st.lists(st.sampled_from([2, 4, 6, 8, 10, 16]), min_size=n_layers, max_size=n_layers)),
                lengths=draw(st.lists(st.integers(1, length), min_size=b, max_size=b)), length=length,
                n_globals=draw(st.lists(st.integers(0, 3), min_size=b, max_size=b)),
                activation=draw(st.sampled_from(["gelu", "relu", "gelu_new"])),
                hidden=draw(st.booleans()), seed=draw(st.integers(0, 10**6)),
                attentions=draw(st.booleans() | st.sets(st.integers(0, n_layers - 1), min_size=1).map(sorted)),
                heads=draw(st.none() | st.sampled_from([(0,), (1,), (1, 0)])))


def make_model(case, path):
    config = ledref.LEDConfig(vocab_size=50, d_model=12, encoder_layers=len(case["windows"]), decoder_layers=2,
                              encoder_attention_heads=2, decoder_attention_heads=3, encoder_ffn_dim=20,
                              decoder_ffn_dim=20, max_encoder_position_embeddings=64,
                              max_decoder_position_embeddings=16, attention_window=case["windows"],
                              activation_function=case["activation"])
    save_checkpoint(path, config, random_state_dict(config, seed=case["seed"], dtype="float64"))
    return config, load_params(path, config, head="lm", dtype="float64")


def model_inputs(case):
    rng = np.random.default_rng(case["seed"])
    b, length = len(case["lengths"]), case["length"]
    attention_mask = (np.arange(length)[None, :] < np.array(case["lengths"])[:, None]).astype(np.int64)
    global_attention_mask = np.zeros((b, length), dtype=np.int64)
    for row, n in enumerate(case["n_globals"]):
        global_attention_mask[row, rng.choice(length, size=min(n, length), replace=False)] = 1
    return dict(input_ids=rng.integers(3, 50, (b, length)), attention_mask=attention_mask,
                global_attention_mask=global_attention_mask, decoder_input_ids=rng.integers(3, 50, (b, 4)))


@settings(max_examples=40, **SETTINGS)
@given(case=model_case())
def test_encoder(case, backend, tmp_path):
    """fast.encoder against reference.encoder, with and without hidden states kept (the fast encoder shares
    its buffers between layers only when no layer's hidden state is kept), with the attentions of no layer,
    every layer or some, of every head or some."""
    config, params = make_model(case, tmp_path)
    params = to_namespace(params, namespace(backend))
    args = model_inputs(case)
    mask = to_backend(args["attention_mask"] * (args["global_attention_mask"] + 1), backend)
    ids = to_backend(args["input_ids"], backend)
    flags = dict(output_attentions=case["attentions"], output_hidden_states=case["hidden"],
                 attention_heads=case["heads"] if case["attentions"] else None)
    got = fast.encoder(params, config, ids, mask, **flags)
    want = reference.encoder(params, config, ids, mask, "dense", **flags)
    for field in ("last_hidden_state", "hidden_states", "attentions", "global_attentions"):
        close(getattr(got, field), getattr(want, field), field)


@settings(max_examples=40, **SETTINGS)
@given(case=model_case())
def test_whole_model_and_cached_decoding(case, backend, tmp_path):
    """LEDForConditionalGeneration with attn_implementation "band" (the fast path) against "dense" (the
    reference): every output of a full pass, then the same decoder inputs one token at a time on the cache."""
    config, params = make_model(case, tmp_path)
    fast_model, ref_model = (ledref.LEDForConditionalGeneration(config, params, dtype="float64", attn_implementation=i)
                             for i in ("band", "dense"))
    args = {k: to_backend(v, backend) for k, v in model_inputs(case).items()}
    outs = [m(**args, output_attentions=True, output_hidden_states=True, use_cache=True)
            for m in (fast_model, ref_model)]
    for field in ("logits", "encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions",
                  "encoder_global_attentions", "decoder_hidden_states", "decoder_attentions", "cross_attentions",
                  "past_key_values"):
        close(getattr(outs[0], field), getattr(outs[1], field), field)
    steps = []
    for model in (fast_model, ref_model):
        encoder_outputs = model.encoder(args["input_ids"], args["attention_mask"], args["global_attention_mask"])
        past, logits = None, []
        for t in range(args["decoder_input_ids"].shape[1]):
            out = model(attention_mask=args["attention_mask"], encoder_outputs=encoder_outputs, use_cache=True,
                        decoder_input_ids=args["decoder_input_ids"][:, t:t + 1], past_key_values=past)
            past = out.past_key_values
            logits.append(ledref.to_numpy(out.logits))
        steps.append((np.concatenate(logits, axis=1), past))
    close(steps[0][0], steps[1][0], "logits step by step")
    close(steps[0][0], ledref.to_numpy(outs[1].logits), "step by step against one pass")
    close(steps[0][1], steps[1][1], "cache after the steps")


@pytest.mark.parametrize("length", [1, 7, 64])
def test_window_longer_than_input(length, backend):
    """A window far longer than the input: everything is within reach of every token."""
    rng = np.random.default_rng(length)
    weights = to_namespace({name: {"weight": rng.normal(size=(6, 6)), "bias": rng.normal(size=6)}
                            for name in PROJECTIONS}, namespace(backend))
    h = to_backend(rng.normal(size=(2, length, 6)), backend)
    mask = np.ones((2, length), dtype=np.int64)
    mask[0, 0] = 2
    mask = to_backend(mask, backend)
    slots = global_slots(mask)
    got = fast.attention.self_attention(h, mask, slots, 100, 2, output_attentions=True, **weights)
    want = reference.attention.self_attention(h, mask, slots, 100, 2, implementation="dense", **weights)
    for name, a, r in zip(("output", "local_probs", "global_probs"), got, want, strict=True):
        close(a, r, name)
