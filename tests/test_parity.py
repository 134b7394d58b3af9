"""ledref against transformers (torch, CPU) on random checkpoints: every output tensor, every layer, for each
attn_implementation (the fast path "band", and the reference's "band_matrix" and "dense").

Tolerance per tensor: max |ours - HF| <= 1e-4 * max(1, max |HF|) in float32, 1e-9 * ... in float64
(HF run in float64 too, its encoder softmax kept in float64, see conftest)."""

import numpy as np
import pytest
from support import CASES, SEQ2SEQ_FIELDS, make_inputs

import ledref
from conftest import assert_close, assert_tree_close, hf_cache, hf_call, hf_model, numpy_tree, to_backend

pytestmark = pytest.mark.parity


def ledref_call(fn, backend, **arrays):
    return fn(**{k: to_backend(v, backend) if isinstance(v, np.ndarray) else v for k, v in arrays.items()})


def compare_seq2seq(ours, theirs, dtype, fields):
    errors = {f: assert_tree_close(getattr(ours, f), getattr(theirs, f), dtype, f) for f in fields}
    errors["past_key_values"] = assert_tree_close(ours.past_key_values, hf_cache(theirs.cache), dtype,
                                                  "past_key_values")
    return errors


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(CASES))
def test_conditional_generation_matches_transformers(case, dtype, backend, implementation, make_checkpoint):
    spec = CASES[case]
    hf, path = make_checkpoint("LEDForConditionalGeneration", **spec["config"])
    inputs = make_inputs(spec)
    labels = inputs["decoder_input_ids"].copy()
    labels[0, -1] = -100  # ignored position
    theirs = hf_call(hf_model(hf, dtype), dtype, **inputs, labels=labels, use_cache=True,
                     output_attentions=True, output_hidden_states=True)
    # transformers turns use_cache off when labels are given; run the cache once more without labels
    theirs_cache = hf_call(hf_model(hf, dtype), dtype, **inputs, use_cache=True)
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype=dtype, attn_implementation=implementation)
    ours = ledref_call(model, backend, **inputs, labels=labels, use_cache=True, output_attentions=True,
                       output_hidden_states=True)
    assert_close(ours.logits, theirs.logits, dtype, "logits")
    assert_close(ours.loss, theirs.loss, dtype, "loss")
    theirs.cache = theirs_cache.cache
    compare_seq2seq(ours, theirs, dtype, SEQ2SEQ_FIELDS)
    if spec["globals"] is None or not any(spec["globals"][r] and min(spec["globals"][r]) < n
                                          for r, n in enumerate(spec["lengths"])):
        assert ours.encoder_global_attentions is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bare_model_without_prefix(dtype, backend, implementation, make_checkpoint):
    """LEDModel checkpoints carry no `led.` prefix; last_hidden_state is the decoder output."""
    hf, path = make_checkpoint("LEDModel")
    inputs = make_inputs(CASES["globals_mixed"])
    theirs = hf_call(hf_model(hf, dtype), dtype, **inputs, use_cache=True, output_attentions=True,
                     output_hidden_states=True)
    model = ledref.LEDModel.from_pretrained(path, dtype=dtype, attn_implementation=implementation)
    ours = ledref_call(model, backend, **inputs, use_cache=True, output_attentions=True, output_hidden_states=True)
    assert_close(ours.last_hidden_state, theirs.last_hidden_state, dtype, "last_hidden_state")
    compare_seq2seq(ours, theirs, dtype, SEQ2SEQ_FIELDS)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["globals_mixed", "no_global_mask", "per_layer_windows"])
def test_encoder_alone(case, dtype, backend, implementation, make_checkpoint):
    spec = CASES[case]
    hf, path = make_checkpoint("LEDForConditionalGeneration", **spec["config"])
    inputs = make_inputs(spec)
    enc_inputs = {k: inputs[k] for k in ("input_ids", "attention_mask", "global_attention_mask")}
    theirs = hf_call(hf_model(hf, dtype).get_encoder(), dtype, **enc_inputs, output_attentions=True,
                     output_hidden_states=True)
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype=dtype, attn_implementation=implementation)
    ours = ledref_call(model.encoder, backend, **enc_inputs, output_attentions=True, output_hidden_states=True)
    for field in ("last_hidden_state", "hidden_states", "attentions", "global_attentions"):
        assert_tree_close(getattr(ours, field), getattr(theirs, field), dtype, field)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_question_answering_head_and_loss(dtype, backend, implementation, make_checkpoint):
    hf, path = make_checkpoint("LEDForQuestionAnswering")
    inputs = make_inputs(CASES["globals_mixed"])
    # one position past the decoder length: clamped to T and ignored, as transformers does
    start, end = np.array([1, 3, 9]), np.array([4, 3, 2])
    theirs = hf_call(hf_model(hf, dtype), dtype, **inputs, start_positions=start, end_positions=end,
                     output_attentions=True, output_hidden_states=True)
    model = ledref.LEDForQuestionAnswering.from_pretrained(path, dtype=dtype, attn_implementation=implementation)
    ours = ledref_call(model, backend, **inputs, start_positions=start, end_positions=end,
                       output_attentions=True, output_hidden_states=True)
    for field in ("start_logits", "end_logits", "loss"):
        assert_close(getattr(ours, field), getattr(theirs, field), dtype, field)
    for field in SEQ2SEQ_FIELDS:
        assert_tree_close(getattr(ours, field), getattr(theirs, field), dtype, field)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_decoder_inputs_derived_from_labels_and_input_ids(dtype, backend, implementation, make_checkpoint):
    """Without decoder_input_ids: shift_tokens_right(labels) when labels are given, else of input_ids."""
    hf, path = make_checkpoint("LEDForConditionalGeneration")
    inputs = make_inputs(CASES["globals_mixed"])
    del inputs["decoder_input_ids"], inputs["decoder_attention_mask"]
    labels = np.array([[5, 6, 7, -100], [8, 9, -100, -100], [10, 11, 12, 13]])
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype=dtype, attn_implementation=implementation)
    theirs = hf_call(hf_model(hf, dtype), dtype, **inputs, labels=labels)
    ours = ledref_call(model, backend, **inputs, labels=labels)
    assert_close(ours.logits, theirs.logits, dtype, "logits from labels")
    assert_close(ours.loss, theirs.loss, dtype, "loss")
    theirs = hf_call(hf_model(hf, dtype), dtype, **inputs)
    ours = ledref_call(model, backend, **inputs)
    assert_close(ours.logits, theirs.logits, dtype, "logits from input_ids")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cached_incremental_decoding(dtype, backend, implementation, make_checkpoint):
    """One token at a time with past_key_values gives the logits of one full pass, ledref's and HF's."""
    hf, path = make_checkpoint("LEDForConditionalGeneration")
    inputs = make_inputs(CASES["globals_mixed"])
    enc_args = {k: inputs[k] for k in ("input_ids", "attention_mask", "global_attention_mask")}
    decoder_input_ids = inputs["decoder_input_ids"]
    theirs = hf_call(hf_model(hf, dtype), dtype, **enc_args, decoder_input_ids=decoder_input_ids)
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype=dtype, attn_implementation=implementation)
    full = ledref_call(model, backend, **enc_args, decoder_input_ids=decoder_input_ids)
    assert_close(full.logits, theirs.logits, dtype, "full pass")
    encoder_outputs = ledref_call(model.encoder, backend, **enc_args)
    past, steps = None, []
    for t in range(decoder_input_ids.shape[1]):
        out = ledref_call(model, backend, attention_mask=enc_args["attention_mask"],
                          encoder_outputs=encoder_outputs, decoder_input_ids=decoder_input_ids[:, t:t + 1],
                          past_key_values=past, use_cache=True)
        past = out.past_key_values
        steps.append(ledref.to_numpy(out.logits))
    assert past[0][0].shape[2] == decoder_input_ids.shape[1]
    assert_close(np.concatenate(steps, axis=1), numpy_tree(theirs.logits), dtype, "incremental vs HF full pass")
    # two tokens at a time after a prefix of three exercises the causal mask under a cache
    prefix = ledref_call(model, backend, attention_mask=enc_args["attention_mask"], encoder_outputs=encoder_outputs,
                         decoder_input_ids=decoder_input_ids[:, :3], use_cache=True)
    rest = ledref_call(model, backend, attention_mask=enc_args["attention_mask"], encoder_outputs=encoder_outputs,
                       decoder_input_ids=decoder_input_ids[:, 3:5], past_key_values=prefix.past_key_values,
                       use_cache=True)
    assert_close(rest.logits, numpy_tree(theirs.logits)[:, 3:5], dtype, "chunk after a cached prefix")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_decoder_mask_with_left_padding_and_holes(dtype, backend, implementation, make_checkpoint):
    """Rows whose every key is masked get transformers' uniform attention (additive finfo.min masks)."""
    hf, path = make_checkpoint("LEDForConditionalGeneration")
    rng = np.random.default_rng(3)
    inputs = dict(input_ids=rng.integers(3, 97, (2, 10)), decoder_input_ids=rng.integers(3, 97, (2, 5)),
                  decoder_attention_mask=np.array([[0, 0, 1, 1, 1], [1, 0, 1, 0, 1]]))
    theirs = hf_call(hf_model(hf, dtype), dtype, **inputs, output_attentions=True)
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype=dtype, attn_implementation=implementation)
    ours = ledref_call(model, backend, **inputs, output_attentions=True)
    assert_close(ours.logits, theirs.logits, dtype, "logits")
    assert_tree_close(ours.decoder_attentions, theirs.decoder_attentions, dtype, "decoder_attentions")


def taken(tensors, layers, heads):
    """transformers' full per-layer attentions at the selected layers and heads, None elsewhere."""
    tensors = numpy_tree(tensors)
    return [t[:, list(heads)] if i in layers else None for i, t in enumerate(tensors)]


SELECTIONS = [((1,), (2,)), ((0, 1), (2, 0)), ((-1,), None), ((0,), (1, 2, 0))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layers, heads", SELECTIONS)
def test_selected_attentions_match_transformers(layers, heads, dtype, backend, implementation, make_checkpoint):
    """output_attentions=[layers], attention_heads=[heads]: the selected layers' local and global attentions
    equal transformers' full outputs at those layers and heads, the other layers give None, and no decoder
    or cross-attentions come back; with output_attentions=True the heads are taken from every attention."""
    spec = CASES["globals_mixed"]
    hf, path = make_checkpoint("LEDForConditionalGeneration", **spec["config"])
    inputs = make_inputs(spec)
    theirs = hf_call(hf_model(hf, dtype), dtype, **inputs, output_attentions=True)
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype=dtype, attn_implementation=implementation)
    ours = ledref_call(model, backend, **inputs, output_attentions=list(layers), attention_heads=heads)
    n_heads = model.config.encoder_attention_heads
    kept, chosen = {layer % model.config.encoder_layers for layer in layers}, heads or range(n_heads)
    assert_tree_close(ours.encoder_attentions, taken(theirs.encoder_attentions, kept, chosen), dtype, "attentions")
    assert_tree_close(ours.encoder_global_attentions, taken(theirs.encoder_global_attentions, kept, chosen), dtype,
                      "global_attentions")
    assert ours.decoder_attentions is None and ours.cross_attentions is None
    assert_close(ours.logits, theirs.logits, dtype, "logits")
    every = ledref_call(model, backend, **inputs, output_attentions=True, attention_heads=heads)
    everything = set(range(model.config.encoder_layers))
    for field in ("encoder_attentions", "encoder_global_attentions", "decoder_attentions", "cross_attentions"):
        assert_tree_close(getattr(every, field), taken(getattr(theirs, field), everything, chosen), dtype, field)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_encoder_alone_with_selected_attentions(dtype, backend, implementation, make_checkpoint):
    """model.encoder takes the same selection; per-layer windows, rows without global tokens."""
    spec = CASES["three_layers_windows_8_4_16"]
    hf, path = make_checkpoint("LEDForConditionalGeneration", **spec["config"])
    inputs = make_inputs(spec)
    enc_inputs = {k: inputs[k] for k in ("input_ids", "attention_mask", "global_attention_mask")}
    theirs = hf_call(hf_model(hf, dtype).get_encoder(), dtype, **enc_inputs, output_attentions=True,
                     output_hidden_states=True)
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype=dtype, attn_implementation=implementation)
    ours = ledref_call(model.encoder, backend, **enc_inputs, output_attentions=(2, 1), attention_heads=[1],
                       output_hidden_states=True)
    assert_tree_close(ours.attentions, taken(theirs.attentions, {1, 2}, [1]), dtype, "attentions")
    assert_tree_close(ours.global_attentions, taken(theirs.global_attentions, {1, 2}, [1]), dtype, "global_attentions")
    assert_tree_close(ours.hidden_states, theirs.hidden_states, dtype, "hidden_states")
