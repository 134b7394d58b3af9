"""transformers habits work unchanged: the same snippet runs against transformers and against ledref on the
same checkpoint, and the results agree (names and structure exactly, arrays within the parity tolerance).

Covered: outputs as mappings and tuples, return_dict=False, the config flags, the encoder and decoder run
alone, num_parameters, inputs_embeds, eval, dtype/torch_dtype, and save_pretrained in both directions.
"""

import copy
import json

import numpy as np
import pytest

import ledref
from conftest import assert_close, hf_cache, hf_call, numpy_tree, parity_inputs, require

pytestmark = pytest.mark.parity


def inputs():
    """Three rows of 21 tokens, two of them padded, with global tokens; 6 decoder tokens."""
    return {k: v for k, v in parity_inputs().items() if k != "decoder_attention_mask"}


def field_name(name):
    """transformers 5 calls the cache `cache` (past_key_values before); ledref keeps past_key_values."""
    return "past_key_values" if name == "cache" else name


def is_cache(value):
    return hasattr(value, "self_attention_cache")


def assert_same(ours, theirs, name="output"):
    """Same structure (tuples, records, caches) and every array within the parity tolerance."""
    if is_cache(theirs):
        theirs = hf_cache(theirs)
    if theirs is None or ours is None:
        assert ours is None and theirs is None, f"{name}: {type(ours).__name__} vs {type(theirs).__name__}"
    elif isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(theirs), f"{name}: lengths differ"
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(a, b, f"{name}[{i}]")
    else:
        assert_close(ours, numpy_tree(theirs), "float32", name)


def both(make_checkpoint, cls="LEDForConditionalGeneration"):
    """(transformers' model, a copy of it whose config the test may change, ledref's model)."""
    hf, path = make_checkpoint(cls)
    return hf, copy.deepcopy(hf), getattr(ledref, cls).from_pretrained(path)


def torch_args(arrays):
    torch = require("torch")
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in arrays.items()}


def hf_run(fn, **arrays):
    return hf_call(fn, "float32", **arrays)


def test_outputs_are_mappings(make_checkpoint):
    hf, _, model = both(make_checkpoint)
    calls = (dict(), dict(use_cache=False), dict(output_attentions=True), dict(labels=inputs()["decoder_input_ids"]))
    for call in calls:
        theirs, ours = hf_run(hf, **inputs(), **call), model(**inputs(), **call)
        names = [field_name(k) for k in theirs.keys()]
        assert list(ours.keys()) == names and list(ours) == names and len(ours) == len(theirs), call
        assert [field_name(k) for k, _ in theirs.items()] == [k for k, _ in ours.items()]
        assert ("logits" in ours) and ("logits" in theirs)
        for name in ("loss", "decoder_attentions", "past_key_values"):
            assert (name in ours) == (name in theirs), name
        assert (0 in ours) is (0 in theirs) is False
        assert_same(ours["logits"], theirs["logits"], "out['logits']")
        assert_same(ours[0], theirs[0], "out[0]")
        assert_same(ours[-1], theirs[-1], "out[-1]")
        assert_same(ours[1:], theirs[1:], "out[1:]")
        assert_same(ours.to_tuple(), theirs.to_tuple(), "to_tuple()")
        assert_same(tuple(ours.values()), tuple(theirs.values()), "values()")
        assert ours.get("loss") is None if theirs.get("loss") is None else ours.get("loss") is not None
        assert dict(ours).keys() == {field_name(k) for k in dict(theirs)}
        for absent in ("encoder_global_attentions", "no_such_field"):
            if absent not in theirs:
                with pytest.raises(KeyError):
                    theirs[absent]
                with pytest.raises(KeyError):
                    ours[absent]


CALLS = [dict(), dict(use_cache=False), dict(output_attentions=True, output_hidden_states=True)]
TARGETS = {"LEDForConditionalGeneration": dict(labels=inputs()["decoder_input_ids"]),
           "LEDForQuestionAnswering": dict(start_positions=np.array([1, 3, 0]), end_positions=np.array([2, 4, 5]))}
TUPLE_CASES = [(cls, call) for cls in ("LEDForConditionalGeneration", "LEDModel", "LEDForQuestionAnswering")
               for call in CALLS + ([TARGETS[cls], {**TARGETS[cls], "output_hidden_states": True}]
                                    if cls in TARGETS else [])]


@pytest.mark.parametrize("cls, call", TUPLE_CASES, ids=[f"{c}-{','.join(k) or 'default'}" for c, k in TUPLE_CASES])
def test_return_dict_false_gives_transformers_tuple(cls, call, make_checkpoint):
    hf, _, model = both(make_checkpoint, cls)
    theirs, ours = hf_run(hf, **inputs(), **call, return_dict=False), model(**inputs(), **call, return_dict=False)
    assert isinstance(ours, tuple) and isinstance(theirs, tuple)
    assert_same(ours, theirs, f"{cls}(return_dict=False)")


def test_config_flags_are_defaults(make_checkpoint):
    """model.config.output_attentions / output_hidden_states / use_cache / return_dict set the defaults of
    the arguments left at None, and an argument given still wins."""
    _, hf, model = both(make_checkpoint)
    for config in (hf.config, model.config):
        config.output_attentions = True
        config.output_hidden_states = True
        config.use_cache = False
    theirs, ours = hf_run(hf, **inputs()), model(**inputs())
    assert list(ours.keys()) == [field_name(k) for k in theirs.keys()]
    assert "encoder_attentions" in ours and "decoder_hidden_states" in ours and "past_key_values" not in ours
    assert_same(ours.to_tuple(), theirs.to_tuple())
    theirs, ours = hf_run(hf, **inputs(), output_attentions=False), model(**inputs(), output_attentions=False)
    assert list(ours.keys()) == [field_name(k) for k in theirs.keys()] and "encoder_attentions" not in ours
    hf.config.return_dict = model.config.return_dict = False
    theirs, ours = hf_run(hf, **inputs()), model(**inputs())
    assert isinstance(ours, tuple)
    assert_same(ours, theirs)
    theirs = hf_run(hf.get_encoder(), **{k: v for k, v in inputs().items() if k != "decoder_input_ids"})
    ours = model.get_encoder()(**{k: v for k, v in inputs().items() if k != "decoder_input_ids"})
    assert isinstance(ours, tuple)
    assert_same(ours, theirs, "encoder")
    assert model(**inputs(), return_dict=True).logits.shape == (3, 6, 97)


def test_encoder_and_decoder_alone(make_checkpoint):
    """get_encoder() and get_decoder() called as transformers' LEDEncoder and LEDDecoder, then a cached
    decoding step through the decoder alone."""
    hf, _, model = both(make_checkpoint)
    args = inputs()
    encoder_args = {k: args[k] for k in ("input_ids", "attention_mask", "global_attention_mask")}
    theirs_enc = hf_run(hf.get_encoder(), **encoder_args, output_attentions=True, output_hidden_states=True)
    ours_enc = model.get_encoder()(**encoder_args, output_attentions=True, output_hidden_states=True)
    assert list(ours_enc.keys()) == list(theirs_enc.keys())
    assert_same(ours_enc.to_tuple(), theirs_enc.to_tuple(), "encoder")

    state = theirs_enc.last_hidden_state.numpy()
    decoder_args = dict(input_ids=args["decoder_input_ids"][:, :3], encoder_hidden_states=state,
                        encoder_attention_mask=args["attention_mask"])
    theirs = hf_run(hf.get_decoder(), **decoder_args, use_cache=True, output_attentions=True,
                    output_hidden_states=True)
    ours = model.get_decoder()(**decoder_args, use_cache=True, output_attentions=True, output_hidden_states=True)
    assert list(ours.keys()) == [field_name(k) for k in theirs.keys()]
    assert_same(ours.to_tuple(), theirs.to_tuple(), "decoder")
    step = dict(input_ids=args["decoder_input_ids"][:, 3:4], encoder_hidden_states=state,
                encoder_attention_mask=args["attention_mask"])
    theirs_step = hf_run(hf.get_decoder(), **step, past_key_values=theirs[1], return_dict=False)
    ours_step = model.get_decoder()(**step, past_key_values=ours.past_key_values, return_dict=False)
    assert_same(ours_step, theirs_step, "cached step")
    # the whole model's last decoder state at that position is the same
    full = model(**{**args, "decoder_input_ids": args["decoder_input_ids"][:, :4]}, output_hidden_states=True)
    assert_close(ours_step[0][:, 0], full.decoder_hidden_states[-1][:, 3], "float32", "step vs full")
    with pytest.raises(ledref.InputError, match=r"encoder_hidden_states is None"):
        model.get_decoder()(input_ids=args["decoder_input_ids"])


@pytest.mark.parametrize("cls", ["LEDForConditionalGeneration", "LEDModel", "LEDForQuestionAnswering"])
def test_num_parameters(cls, make_checkpoint):
    hf, _, model = both(make_checkpoint, cls)
    for kwargs in (dict(), dict(exclude_embeddings=True), dict(only_trainable=True)):
        assert model.num_parameters(**kwargs) == hf.num_parameters(**kwargs), kwargs
    assert model.eval() is model
    text = repr(model)
    assert text.startswith(f"{cls}(") and f"{model.num_parameters():,} parameters" in text


def test_inputs_embeds(make_checkpoint):
    """Embeddings given instead of ids (for the encoder, whose input is padded to the window, and for the
    decoder): the same logits as transformers given the same embeddings, and as the ids themselves."""
    hf, _, model = both(make_checkpoint)
    args = inputs()
    torch = require("torch")
    embeds = model.get_input_embeddings()(args["input_ids"])
    assert_same(embeds, hf.get_input_embeddings()(torch.from_numpy(args["input_ids"])).detach(), "embeddings")
    rng = np.random.default_rng(0)
    shifted = (embeds * 0.8 + rng.normal(0, 0.1, embeds.shape)).astype(np.float32)  # not any token's embedding
    decoder_embeds = model.get_input_embeddings()(args["decoder_input_ids"]) + np.float32(0.05)
    call = dict(attention_mask=args["attention_mask"], global_attention_mask=args["global_attention_mask"],
                output_hidden_states=True)
    theirs = hf_run(hf, **call, inputs_embeds=shifted, decoder_inputs_embeds=decoder_embeds)
    ours = model(**call, inputs_embeds=shifted, decoder_inputs_embeds=decoder_embeds)
    assert_same(ours.to_tuple(), theirs.to_tuple(), "inputs_embeds")
    by_ids = model(**call, input_ids=args["input_ids"], decoder_input_ids=args["decoder_input_ids"])
    by_embeds = model(**call, inputs_embeds=embeds,
                      decoder_inputs_embeds=model.get_input_embeddings()(args["decoder_input_ids"]))
    np.testing.assert_allclose(by_embeds.logits, by_ids.logits, rtol=0, atol=1e-5)
    theirs_enc = hf_run(hf.get_encoder(), inputs_embeds=shifted, attention_mask=args["attention_mask"])
    assert_same(model.get_encoder()(inputs_embeds=shifted, attention_mask=args["attention_mask"]).to_tuple(),
                theirs_enc.to_tuple(), "encoder inputs_embeds")
    with pytest.raises(ledref.InputError, match=r"input_ids and inputs_embeds are both given"):
        model(input_ids=args["input_ids"], inputs_embeds=embeds, decoder_input_ids=args["decoder_input_ids"])
    with pytest.raises(ledref.InputError, match=r"decoder_input_ids and decoder_inputs_embeds are both given"):
        model(**args, decoder_inputs_embeds=decoder_embeds)
    with pytest.raises(ledref.InputError, match=r"no labels or input_ids to derive them from"):
        model(inputs_embeds=embeds)
    with pytest.raises(ledref.InputError, match=r"inputs_embeds has shape \(3, 21, 5\); expected \(batch, "
                                                r"length >= 1, 24\)"):
        model(inputs_embeds=embeds[..., :5], decoder_input_ids=args["decoder_input_ids"])


def test_dtype_and_torch_dtype(make_checkpoint, tmp_path):
    torch = require("torch")
    _, path = make_checkpoint()
    cls = ledref.LEDForConditionalGeneration
    assert cls.from_pretrained(path, torch_dtype=torch.float64).dtype == "float64"
    assert cls.from_pretrained(path, torch_dtype="float64").dtype == "float64"
    assert cls.from_pretrained(path, dtype=np.float64).dtype == "float64"
    assert cls.from_pretrained(path, torch_dtype="auto").dtype == "float32"
    cls.from_pretrained(path, dtype="float64").save_pretrained(tmp_path / "f64")
    assert cls.from_pretrained(tmp_path / "f64", torch_dtype="auto").dtype == "float64"
    assert cls.from_pretrained(path, torch_dtype=torch.float16).dtype == "float16"  # emulated (ledref.lowp)
    with pytest.raises(ledref.LedrefError, match=r"dtype='int8'"):
        cls.from_pretrained(path, torch_dtype=torch.int8)
    with pytest.raises(ledref.LedrefError, match=r"disagree"):
        cls.from_pretrained(path, dtype="float32", torch_dtype=torch.float64)


def logits(model_or_hf, args=None):
    args = args or inputs()
    if hasattr(model_or_hf, "parameters"):
        return hf_run(model_or_hf, **args).logits.numpy()
    return model_or_hf(**args).logits


def test_save_pretrained_round_trips(make_checkpoint, tmp_path):
    """ledref -> transformers, transformers -> ledref -> transformers, and ledref -> ledref: the same
    weights, the same logits, the same configs."""
    transformers = require("transformers")
    hf, path = make_checkpoint()
    ours = ledref.LEDForConditionalGeneration.from_pretrained(path)
    ours.save_pretrained(tmp_path / "ledref")
    assert sorted(p.name for p in (tmp_path / "ledref").iterdir()) == ["config.json", "generation_config.json",
                                                                       "model.safetensors"]
    # ledref -> transformers: identical weights, so identical logits to the original, and ledref's within tolerance
    reloaded = transformers.LEDForConditionalGeneration.from_pretrained(tmp_path / "ledref").eval()
    for name, p in hf.state_dict().items():
        assert np.array_equal(reloaded.state_dict()[name].numpy(), p.numpy()), name
    np.testing.assert_array_equal(logits(reloaded), logits(hf))
    assert_close(logits(ours), logits(reloaded), "float32", "ledref vs transformers after save")
    generation = transformers.GenerationConfig.from_pretrained(tmp_path / "ledref")
    assert (generation.decoder_start_token_id, generation.eos_token_id, generation.pad_token_id) == (2, 2, 1)
    # transformers -> ledref -> transformers (a second trip through transformers' own save)
    reloaded.save_pretrained(tmp_path / "hf")
    again = ledref.LEDForConditionalGeneration.from_pretrained(tmp_path / "hf")
    again.save_pretrained(tmp_path / "ledref2")
    final = transformers.LEDForConditionalGeneration.from_pretrained(tmp_path / "ledref2").eval()
    np.testing.assert_array_equal(logits(final), logits(hf))
    assert_close(logits(again), logits(final), "float32", "after two trips")
    # ledref -> ledref: the same parameters, config and generation settings
    back = ledref.LEDForConditionalGeneration.from_pretrained(tmp_path / "ledref")
    from ledref.checkpoint import flatten
    mine, theirs = flatten(ours._host_params), flatten(back._host_params)
    assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)
    assert back.generation_config == ours.generation_config
    saved = back.config.to_dict()
    assert saved.pop("architectures") == ["LEDForConditionalGeneration"] and saved.pop("dtype") == "float32"
    original = ours.config.to_dict()
    original.pop("dtype", None), original.pop("architectures", None)
    assert saved == original
    np.testing.assert_array_equal(logits(back), logits(ours))


@pytest.mark.parametrize("cls", ["LEDModel", "LEDForQuestionAnswering"])
def test_save_pretrained_other_heads(cls, make_checkpoint, tmp_path):
    transformers = require("transformers")
    hf, path = make_checkpoint(cls)
    getattr(ledref, cls).from_pretrained(path).save_pretrained(tmp_path)
    reloaded = getattr(transformers, cls).from_pretrained(tmp_path).eval()
    for name, p in hf.state_dict().items():
        assert np.array_equal(reloaded.state_dict()[name].numpy(), p.numpy()), name
    assert not (tmp_path / "generation_config.json").exists()


def test_float64_model_saves_float64(make_checkpoint, tmp_path):
    """A float64 model writes float64 weights and dtype "float64"; transformers loads them as they are."""
    transformers, torch = require("transformers"), require("torch")
    hf, path = make_checkpoint()
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype="float64")
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["dtype"] == "float64"
    reloaded = transformers.LEDForConditionalGeneration.from_pretrained(tmp_path, dtype="auto").eval()
    assert reloaded.dtype == torch.float64
    theirs = hf_call(reloaded, "float64", **inputs()).logits.numpy()
    assert_close(model(**inputs()).logits, theirs, "float64", "float64 logits")


def test_config_save_pretrained_and_json(tmp_path):
    transformers = require("transformers")
    config = ledref.LEDConfig(vocab_size=97, d_model=24, encoder_layers=2, decoder_layers=2, encoder_attention_heads=3,
                              decoder_attention_heads=3, attention_window=[4, 8], output_attentions=True,
                              use_cache=False)
    config.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert json.loads(config.to_json_string()) == written and written["model_type"] == "led"
    assert "output_hidden_states" not in written and "return_dict" not in written  # at their defaults
    assert json.loads(config.to_json_string(use_diff=False))["return_dict"] is True
    theirs = transformers.LEDConfig.from_pretrained(tmp_path)
    for name in ("vocab_size", "d_model", "encoder_layers", "attention_window", "output_attentions", "use_cache",
                 "output_hidden_states", "return_dict", "pad_token_id", "decoder_start_token_id"):
        assert getattr(theirs, name) == getattr(config, name), name
    assert ledref.LEDConfig.from_pretrained(tmp_path).to_dict() == config.to_dict()
    with pytest.raises(ledref.ConfigError, match=r"output_attentions='yes'; expected true or false"):
        ledref.LEDConfig(output_attentions="yes")
    # what transformers writes, ledref reads, flags included
    hf_config = transformers.LEDConfig(vocab_size=97, d_model=24, encoder_layers=2, decoder_layers=2,
                                       encoder_attention_heads=3, decoder_attention_heads=3, attention_window=8,
                                       output_hidden_states=True, return_dict=False)
    hf_config.save_pretrained(tmp_path / "hf")
    ours = ledref.LEDConfig.from_pretrained(tmp_path / "hf")
    assert (ours.output_hidden_states, ours.return_dict, ours.output_attentions, ours.use_cache) == (True, False,
                                                                                                     False, True)
