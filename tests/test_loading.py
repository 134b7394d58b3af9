"""Loading checkpoints: the layouts that exist in the wild, and a clear error for each way one can be wrong."""

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from support import CASES, make_inputs

import ledref
from conftest import BACKENDS, assert_close, hf_call, require

pytestmark = pytest.mark.parity


def rewrite(src, dst, change):
    """Copy a checkpoint directory, passing its tensors through change(dict) -> dict."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "config.json", dst / "config.json")
    tensors = change(load_file(src / "model.safetensors"))
    save_file(tensors, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


def logits_close(ours_path, hf, cls=ledref.LEDForConditionalGeneration, field="logits"):
    """The loaded model, on every backend, gives transformers' output."""
    inputs = make_inputs(CASES["globals_mixed"])
    theirs = hf_call(hf, "float32", **inputs)
    for backend in BACKENDS:
        ours = cls.from_pretrained(ours_path, backend=backend)(**inputs)
        assert_close(getattr(ours, field), getattr(theirs, field), "float32", f"{field} ({backend})")


# ------------------------------------------------------------------------------------ layouts that load

def test_transformers4_checkpoint_with_tied_copies(make_checkpoint, tmp_path):
    hf, path = make_checkpoint()

    def add_copies(t):
        shared = t["led.shared.weight"]
        return {**t, "led.encoder.embed_tokens.weight": shared, "led.decoder.embed_tokens.weight": shared,
                "lm_head.weight": shared}
    logits_close(rewrite(path, tmp_path / "v4", add_copies), hf)


def test_tied_copy_instead_of_shared(make_checkpoint, tmp_path):
    hf, path = make_checkpoint()

    def only_lm_head(t):
        t = dict(t)
        t["lm_head.weight"] = t.pop("led.shared.weight")
        return t
    logits_close(rewrite(path, tmp_path / "lm_head_only", only_lm_head), hf)


def test_sharded_checkpoint(make_checkpoint, tmp_path):
    hf, _ = make_checkpoint()
    hf.save_pretrained(tmp_path, safe_serialization=True, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").exists() and not (tmp_path / "model.safetensors").exists()
    logits_close(tmp_path, hf)


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_precision_weights_are_converted(half, make_checkpoint, tmp_path):
    torch = require("torch")
    hf, _ = make_checkpoint()
    import copy
    low = copy.deepcopy(hf).to(getattr(torch, half))
    low.save_pretrained(tmp_path, safe_serialization=True)
    reference = low.float()  # the same rounded weights, computed in float32
    logits_close(tmp_path, reference)
    model = ledref.LEDForConditionalGeneration.from_pretrained(tmp_path, dtype="float64")
    assert model._host_params["shared"]["weight"].dtype == np.float64


def test_final_logits_bias_absent_means_zeros(make_checkpoint, tmp_path):
    transformers = require("transformers")
    _, path = make_checkpoint()
    stripped = rewrite(path, tmp_path / "nobias", lambda t: {k: v for k, v in t.items() if k != "final_logits_bias"})
    logits_close(stripped, transformers.LEDForConditionalGeneration.from_pretrained(stripped).eval())


def test_bare_model_from_summarisation_checkpoint(make_checkpoint):
    """LEDModel ignores the LM head's keys, as transformers does when loading the base model."""
    transformers = require("transformers")
    _, path = make_checkpoint()
    base = transformers.LEDModel.from_pretrained(path).eval()
    logits_close(path, base, cls=ledref.LEDModel, field="last_hidden_state")


# ------------------------------------------------------------------------------------ errors

def test_missing_key(make_checkpoint, tmp_path):
    _, path = make_checkpoint()
    key = "led.encoder.layers.1.self_attn.longformer_self_attn.key_global.bias"
    bad = rewrite(path, tmp_path / "missing", lambda t: {k: v for k, v in t.items() if k != key})
    with pytest.raises(ledref.CheckpointError, match=r"missing key encoder\.layers\.1\.self_attn\.longformer_self_attn"
                                                     r"\.key_global\.bias") as e:
        ledref.LEDForConditionalGeneration.from_pretrained(bad)
    assert e.value.missing == [key[len("led."):]]


def test_unexpected_key(make_checkpoint, tmp_path):
    _, path = make_checkpoint()
    bad = rewrite(path, tmp_path / "extra", lambda t: {**t, "led.encoder.layers.0.adapter.weight": np.zeros(3)})
    with pytest.raises(ledref.CheckpointError, match=r"unexpected key encoder\.layers\.0\.adapter\.weight"):
        ledref.LEDForConditionalGeneration.from_pretrained(bad)


def test_wrong_shape(make_checkpoint, tmp_path):
    _, path = make_checkpoint()
    key = "led.decoder.layers.0.fc1.weight"
    bad = rewrite(path, tmp_path / "shape", lambda t: {**t, key: t[key][:, :-1].copy()})
    with pytest.raises(ledref.CheckpointError, match=r"decoder\.layers\.0\.fc1\.weight has shape \(40, 23\), "
                                                     r"expected \(40, 24\)"):
        ledref.LEDForConditionalGeneration.from_pretrained(bad)


def test_untied_copy_is_refused(make_checkpoint, tmp_path):
    _, path = make_checkpoint()
    bad = rewrite(path, tmp_path / "untied", lambda t: {**t, "lm_head.weight": t["led.shared.weight"] + 1})
    with pytest.raises(ledref.CheckpointError, match=r"lm_head\.weight differs from shared\.weight"):
        ledref.LEDForConditionalGeneration.from_pretrained(bad)


def test_head_missing_from_checkpoint(make_checkpoint):
    """A QA model from a summarisation checkpoint: transformers would initialise qa_outputs at random."""
    _, path = make_checkpoint()
    with pytest.raises(ledref.CheckpointError, match=r"missing key qa_outputs\.weight"):
        ledref.LEDForQuestionAnswering.from_pretrained(path)


def test_missing_files(make_checkpoint, tmp_path):
    with pytest.raises(ledref.CheckpointNotFoundError, match="checkpoint directory .*nowhere does not exist"):
        ledref.LEDModel.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ledref.CheckpointNotFoundError, match="is neither a checkpoint directory nor a Hugging "
                                                             "Face repo id"):
        ledref.LEDModel.from_pretrained("no such model")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ledref.CheckpointNotFoundError, match=r"config\.json"):
        ledref.LEDModel.from_pretrained(empty)
    _, path = make_checkpoint()
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    shutil.copy(path / "config.json", no_weights / "config.json")
    with pytest.raises(ledref.CheckpointNotFoundError, match=r"neither model\.safetensors nor"):
        ledref.LEDModel.from_pretrained(no_weights)
    (no_weights / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ledref.CheckpointNotFoundError, match=r"only PyTorch weights.*Convert"):
        ledref.LEDModel.from_pretrained(no_weights)
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    shutil.copy(path / "config.json", sharded / "config.json")
    (sharded / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"led.shared.weight": "model-00001-of-00002.safetensors"}}))
    with pytest.raises(ledref.CheckpointNotFoundError, match=r"model-00001-of-00002\.safetensors"):
        ledref.LEDModel.from_pretrained(sharded)


@pytest.mark.parametrize("field, value, message", [
    ("attention_window", 7, r"attention_window=7; expected an even positive int"),
    ("attention_window", 0, r"attention_window=0; expected an even positive int"),
    ("attention_window", [8, 8, 8], r"attention_window has 3 entries; expected one per encoder layer"),
    ("attention_window", [8, -2], r"attention_window\[1\]=-2"),
    ("encoder_attention_heads", 5, r"d_model=24 is not divisible by encoder_attention_heads=5"),
    ("activation_function", "gelu_magic", r"activation_function='gelu_magic' is not supported"),
    ("d_model", "24", r"d_model='24'; expected an int"),
    ("model_type", "bart", r"model_type='bart'; expected 'led'"),
    ("pad_token_id", 500, r"pad_token_id=500; expected an int >= 0 and < 97"),
])
def test_bad_config_field(field, value, message, make_checkpoint, tmp_path):
    _, path = make_checkpoint()
    config = json.loads((path / "config.json").read_text())
    config[field] = value
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps(config))
    shutil.copy(path / "model.safetensors", bad / "model.safetensors")
    with pytest.raises(ledref.ConfigError, match=message):
        ledref.LEDForConditionalGeneration.from_pretrained(bad)


def test_config_not_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ledref.ConfigError, match="not valid JSON"):
        ledref.LEDConfig.from_pretrained(tmp_path)


def test_written_checkpoint_loads_in_transformers(tmp_path):
    """save_checkpoint writes what transformers reads: both give the same logits."""
    transformers = require("transformers")
    from ledref.checkpoint import random_state_dict, save_checkpoint
    config = ledref.LEDConfig(vocab_size=97, d_model=24, encoder_layers=2, decoder_layers=2,
                              encoder_attention_heads=3, decoder_attention_heads=3, encoder_ffn_dim=40,
                              decoder_ffn_dim=40, max_encoder_position_embeddings=160,
                              max_decoder_position_embeddings=40, attention_window=[4, 8])
    save_checkpoint(tmp_path, config, random_state_dict(config, seed=5))
    logits_close(tmp_path, transformers.LEDForConditionalGeneration.from_pretrained(tmp_path).eval())
