"""Bad input from careless calls and hostile files: every case gets a named ledref error whose message names
the culprit (the argument, config field, file, tensor or step).

One table per area (loading, config, forward inputs, generation, tokenizer, layout, figures, the oracle tools,
the command line as a subprocess), each row asserting the error class and a pattern that names the culprit.
Then the properties that hold for whole classes of input: shard names never lead out of the checkpoint
directory and nothing outside it is opened (the Hugging Face cache's symlinks still load), an absurd config
fails fast without growing memory, `convert` never runs a pickle, and hypothesis-corrupted weight files,
configs and indexes either load correctly or raise a ledref error, under a memory limit (tests/fuzz_loader.py).
"""

import hashlib
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import ledref
from conftest import require
from ledref import layout, needle, viz
from ledref.checkpoint import random_state_dict, save_checkpoint
from ledref.conformance_files import check as check_files
from ledref.conformance_files import dump as dump_files
from ledref.errors import CompareError
from ledref.explorer import build_page, explore
from ledref.golden import case_inputs, record, tiny_model, write_golden
from ledref.testing import (
    CATALOGUE,
    ConformanceError,
    check_longformer_attention,
    load_kernel,
    make_case,
    run_case,
)

TESTS = Path(__file__).parent
TOKENIZER = TESTS / "data" / "tokenizer"
SETTINGS = dict(vocab_size=60, d_model=8, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                decoder_attention_heads=2, encoder_ffn_dim=12, decoder_ffn_dim=12, max_encoder_position_embeddings=64,
                max_decoder_position_embeddings=32, attention_window=8)
IDS = np.array([[0, 5, 6, 7, 8, 2], [0, 9, 10, 2, 1, 1]])
MASK = (IDS != 1).astype(np.int64)
GLOBAL = np.zeros_like(IDS)
GLOBAL[:, 0] = 1


# ------------------------------------------------------------------------------------------------ helpers

def split_safetensors(raw):
    """(header dict, data bytes) of a safetensors file, parsed here with json and struct alone."""
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def join_safetensors(header, data):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data




def flat_params(params, prefix=""):
    """The nested params of a model as {dotted name: array}."""
    out = {}
    items = params.items() if isinstance(params, dict) else enumerate(params)
    for k, v in items:
        if isinstance(v, (dict, list)):
            out.update(flat_params(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class Context:
    """What the table rows call: a small checkpoint and its model, a tokenizer, encoder outputs, and ways to make
    broken copies of the checkpoint and tokenizer directories."""

    def __init__(self, root):
        self.root = root
        self.config = ledref.LEDConfig(**SETTINGS)
        self.state = random_state_dict(self.config, seed=3)
        self.base = root / "base"
        save_checkpoint(self.base, self.config, self.state)
        self.raw = (self.base / "model.safetensors").read_bytes()
        self.model = ledref.LEDForConditionalGeneration.from_pretrained(self.base)
        self.tok = ledref.LEDTokenizer.from_pretrained(TOKENIZER)
        self.out = self.model.encoder(IDS, attention_mask=MASK, global_attention_mask=GLOBAL, output_attentions=True)
        self.attentions, self.globals = self.out.attentions, self.out.global_attentions
        self.count = 0
        self.text_model = root / "text_model"  # the test tokenizer's vocabulary, with its files beside the weights
        config = ledref.LEDConfig(**{**SETTINGS, "vocab_size": len(self.tok)})
        save_checkpoint(self.text_model, config, random_state_dict(config, seed=4))
        for name in ("vocab.json", "merges.txt"):
            shutil.copy(TOKENIZER / name, self.text_model / name)

    def fresh(self, name):
        self.count += 1
        path = self.root / f"{name}{self.count}"
        path.mkdir()
        return path

    def variant(self, source=None, **files):
        """A copy of the checkpoint (or of `source`) with files replaced (bytes or str), or deleted (None)."""
        path = self.fresh("ckpt")
        for item in Path(source or self.base).iterdir():
            shutil.copy(item, path / item.name)
        for name, content in files.items():
            name = name.replace("__", ".")
            target = path / name
            if content is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def config_variant(self, **fields):
        config = {**self.config.to_dict(), **fields}
        return self.variant(config__json=json.dumps(config))

    def header_variant(self, change):
        """model.safetensors with its header passed through change(header) (data bytes unchanged)."""
        header, data = split_safetensors(self.raw)
        change(header)
        return self.variant(model__safetensors=join_safetensors(header, data))

    def sharded(self, names=None):
        """The checkpoint as two shards and an index; `names` overrides the shard file name per tensor."""
        path = self.fresh("sharded")
        shutil.copy(self.base / "config.json", path / "config.json")
        from safetensors.numpy import save_file
        keys = sorted(self.state)
        halves = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
        weight_map = {}
        for file, part in halves.items():
            save_file({k: self.state[k] for k in part}, path / file, metadata={"format": "pt"})
            weight_map.update({k: file for k in part})
        weight_map.update(names or {})
        (path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
        return path

    def tokenizer_variant(self, **files):
        return self.variant(TOKENIZER, **{k: v for k, v in files.items()})

    def first_two(self):
        """The names of the first two tensors in the data section of model.safetensors."""
        header, _ = split_safetensors(self.raw)
        order = sorted((v["data_offsets"][0], k) for k, v in header.items() if k != "__metadata__")
        return order[0][1], order[1][1]


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    return Context(tmp_path_factory.mktemp("bad_input"))


def load(path, cls=ledref.LEDForConditionalGeneration, **kwargs):
    return cls.from_pretrained(path, **kwargs)


def overlapping(c):
    first, second = c.first_two()

    def change(h):
        h[second]["data_offsets"] = [h[first]["data_offsets"][0], h[second]["data_offsets"][1]]
    return c.header_variant(change)


def reversed_offsets(c):
    first, _ = c.first_two()

    def change(h):
        h[first]["data_offsets"] = h[first]["data_offsets"][::-1]
    return c.header_variant(change)


def retyped(c, key, dtype):
    def change(h):
        h[key]["dtype"] = dtype
    return c.header_variant(change)


def int_weights(c):
    state = dict(c.state)
    state["led.encoder.layers.0.fc1.bias"] = np.arange(12, dtype=np.int32)
    path = c.fresh("ints")
    save_checkpoint(path, c.config, state)
    return path


def prefix_twice(c):
    state = {**c.state, "shared.weight": c.state["led.shared.weight"]}
    path = c.fresh("twice")
    save_checkpoint(path, c.config, state)
    return path


def duplicated_shard(c):
    """A sharded checkpoint whose index also names a copy of the first shard: its tensors are in two files."""
    path = c.sharded()
    shutil.copy(path / "model-00001-of-00002.safetensors", path / "copy.safetensors")
    index = json.loads((path / "model.safetensors.index.json").read_text())
    index["weight_map"]["extra"] = "copy.safetensors"
    (path / "model.safetensors.index.json").write_text(json.dumps(index))
    return path


def hub_cache_with_ref(c, commit):
    folder = c.fresh("models--own--tiny")
    (folder / "snapshots" / "abc").mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    return folder


def inf_model(c):
    state = dict(c.state)
    weight = state["led.decoder.layers.0.fc2.weight"].copy()
    weight[0, 0] = np.inf
    state["led.decoder.layers.0.fc2.weight"] = weight
    path = c.fresh("inf")
    save_checkpoint(path, c.config, state)
    return load(path)


def classifier(c, **fields):
    config = ledref.LEDConfig(**{**SETTINGS, **fields})
    path = c.fresh("cls")
    save_checkpoint(path, config, random_state_dict(config, head="classification", seed=1))
    return load(path, ledref.LEDForSequenceClassification)


def qa_model(c):
    path = c.fresh("qa")
    save_checkpoint(path, c.config, random_state_dict(c.config, head="qa", seed=1))
    return load(path, ledref.LEDForQuestionAnswering)


def wrong_params(c):
    params = flat_params(c.model._host_params)
    params["decoder.layers.0.fc1.weight"] = params["decoder.layers.0.fc1.weight"][:, :-1]
    from ledref.checkpoint import nest
    return ledref.LEDModel(c.config, nest(params))


# ------------------------------------------------------------------------------------------------ the tables
# (id, call taking the Context, error class, regex the message must match: it names the culprit)

LOADING = [
    ("layer_number_not_ascii", lambda c: load(c.header_variant(
        lambda h: h.__setitem__("led.encoder.layers.\u00b2.fc1.weight", h.pop("led.encoder.layers.0.fc1.weight")))),
     ledref.CheckpointError, "unexpected key encoder\\.layers\\.\u00b2\\.fc1\\.weight"),
    ("shard_up_one_level", lambda c: load(c.sharded({"led.shared.weight": "../elsewhere/x.safetensors"})),
     ledref.CheckpointError, r"model\.safetensors\.index\.json names the shard '\.\./elsewhere/x\.safetensors'"),
    ("shard_absolute", lambda c: load(c.sharded({"led.shared.weight": "/etc/passwd"})),
     ledref.CheckpointError, r"index\.json names the shard '/etc/passwd'"),
    ("shard_to_etc_passwd", lambda c: load(c.sharded({"led.shared.weight": "../../../../etc/passwd"})),
     ledref.CheckpointError, r"index\.json names the shard '\.\./\.\./\.\./\.\./etc/passwd' for 'led\.shared"),
    ("shard_up_inside_name", lambda c: load(c.sharded({"led.shared.weight": "sub/../../x.safetensors"})),
     ledref.CheckpointError, r"names the shard 'sub/\.\./\.\./x\.safetensors'"),
    ("shard_backslash", lambda c: load(c.sharded({"led.shared.weight": "..\\x.safetensors"})),
     ledref.CheckpointError, r"names the shard '\.\.\\\\x\.safetensors'"),
    ("shard_not_a_string", lambda c: load(c.sharded({"led.shared.weight": 7})),
     ledref.CheckpointError, r"names the shard 7 for 'led\.shared\.weight'"),
    ("shard_empty_name", lambda c: load(c.sharded({"led.shared.weight": ""})),
     ledref.CheckpointError, r"names the shard '' for"),
    ("shard_missing", lambda c: load(c.sharded({"led.shared.weight": "model-00003-of-00002.safetensors"})),
     ledref.CheckpointNotFoundError, r"shard .*model-00003-of-00002\.safetensors named in .*index\.json"),
    ("index_not_json", lambda c: load(c.variant(model__safetensors=None, model__safetensors__index__json="{oops")),
     ledref.CheckpointError, r"checkpoint index .*model\.safetensors\.index\.json as JSON.*line 1, column 2"),
    ("index_not_utf8", lambda c: load(c.variant(model__safetensors=None, model__safetensors__index__json=b"\xff{}")),
     ledref.CheckpointError, r"index\.json is not UTF-8 text \(byte 0xff at offset 0\)"),
    ("index_is_a_list", lambda c: load(c.variant(model__safetensors=None, model__safetensors__index__json="[]")),
     ledref.CheckpointError, r"index\.json holds a JSON array; expected an object"),
    ("index_weight_map_list",
     lambda c: load(c.variant(model__safetensors=None, model__safetensors__index__json='{"weight_map": []}')),
     ledref.CheckpointError, r"index\.json has no 'weight_map' object"),
    ("safetensors_truncated", lambda c: load(c.variant(model__safetensors=c.raw[:-9])),
     ledref.CheckpointError, r"model\.safetensors is not a readable safetensors file"),
    ("safetensors_empty", lambda c: load(c.variant(model__safetensors=b"")),
     ledref.CheckpointError, r"model\.safetensors is not a readable safetensors file \(header"),
    ("header_length_past_end", lambda c: load(c.variant(model__safetensors=struct.pack("<Q", 10 ** 9) + c.raw[8:])),
     ledref.CheckpointError, r"model\.safetensors is not a readable safetensors file \(header"),
    ("header_not_json", lambda c: load(c.variant(model__safetensors=struct.pack("<Q", 6) + b"{{{{{{" + c.raw[14:])),
     ledref.CheckpointError, r"model\.safetensors is not a readable safetensors file \(header: invalid JSON"),
    ("header_not_utf8", lambda c: load(c.variant(model__safetensors=struct.pack("<Q", 4) + b"\xff\xfe\xfd\xfc"
                                                 + c.raw[12:])),
     ledref.CheckpointError, r"model\.safetensors is not a readable safetensors file \(header: invalid UTF-8"),
    ("offsets_overlap", lambda c: load(overlapping(c)),
     ledref.CheckpointError, r"model\.safetensors is not a readable safetensors file"),
    ("offsets_reversed", lambda c: load(reversed_offsets(c)),
     ledref.CheckpointError, r"model\.safetensors is not a readable safetensors file \(header: invalid offset for "
                             r"tensor"),
    ("unknown_dtype", lambda c: load(retyped(c, "led.shared.weight", "F33")),
     ledref.CheckpointError, r"model\.safetensors is not a readable safetensors file .*unknown variant `F33`"),
    ("integer_weights", lambda c: load(int_weights(c)),
     ledref.CheckpointError, r"tensor led\.encoder\.layers\.0\.fc1\.bias of .*model\.safetensors has dtype I32"),
    ("key_in_two_shards", lambda c: load(duplicated_shard(c)),
     ledref.CheckpointError, r"tensor \S+ is in both .*copy\.safetensors and .*model-00001-of-00002\.safetensors"),
    ("key_with_and_without_prefix", lambda c: load(prefix_twice(c)),
     ledref.CheckpointError, r"holds both led\.shared\.weight and shared\.weight|holds both shared\.weight"),
    ("generation_config_not_json", lambda c: load(c.variant(generation_config__json="{'a': 1}")),
     ledref.GenerationError, r"generation config .*generation_config\.json as JSON.*line 1, column 2"),
    ("generation_config_bad_field", lambda c: load(c.variant(generation_config__json='{"num_beams": "4"}')),
     ledref.GenerationError, r"generation_config\.json: num_beams='4'; expected an int >= 1 and <= 65536"),
    ("generation_config_list", lambda c: load(c.variant(generation_config__json="[1]")),
     ledref.GenerationError, r"generation_config\.json holds a JSON array"),
    ("hub_ref_leads_out", lambda c: load(hub_cache_with_ref(c, "../../../etc")),
     ledref.CheckpointNotFoundError, r"cache ref file .*refs/main names the commit '\.\./\.\./\.\./etc'"),
    ("hub_revision_leads_out", lambda c: load(hub_cache_with_ref(c, "abc"), revision="../../x"),
     ledref.CheckpointNotFoundError, r"revision '\.\./\.\./x' is not a branch, tag or commit name"),
    ("path_not_a_path", lambda c: load(123), ledref.InputError, r"name_or_path=123 is a int; expected a path"),
    ("dtype_int8", lambda c: load(c.base, dtype="int8"), ledref.InputError, r"dtype='int8' is not supported"),
    ("attn_implementation_list", lambda c: load(c.base, attn_implementation=["band"]),
     ledref.InputError, r"attn_implementation=\['band'\] is not supported"),
    ("backend_unknown", lambda c: load(c.base, backend="jax"), ledref.InputError, r"backend='jax' is not supported"),
    ("backend_not_a_string", lambda c: load(c.base, backend=["numpy"]), ledref.InputError, r"backend=\['numpy'\]"),
    ("revision_not_a_string", lambda c: load(c.base, revision=5), ledref.InputError, r"revision=5 is a int"),
    ("revision_a_path", lambda c: load(c.base, revision=Path("main")), ledref.InputError,
     r"revision=PosixPath\('main'\) is a PosixPath; expected a str \(a branch, tag or commit\)"),
    ("cache_dir_a_number", lambda c: load(c.base, cache_dir=5), ledref.InputError,
     r"cache_dir=5 is a int; expected a path or None"),
    ("model_from_a_dict_config", lambda c: ledref.LEDModel(SETTINGS, c.model._host_params),
     ledref.ConfigError, r"config is a dict; expected an LEDConfig"),
    ("model_from_no_params", lambda c: ledref.LEDModel(c.config, {}),
     ledref.CheckpointError, r"missing key shared\.weight"),
    ("model_from_misshapen_params", wrong_params,
     ledref.CheckpointError, r"key decoder\.layers\.0\.fc1\.weight has shape \(12, 7\), expected \(12, 8\)"),
    ("nest_of_a_list", lambda c: ledref.checkpoint.nest([1, 2]), ledref.CheckpointError, r"flat=\[1, 2\]"),
    ("nest_of_clashing_names", lambda c: ledref.checkpoint.nest({"a": 1, "a.b": 2}), ledref.CheckpointError,
     r"key a\.b nests under another key's tensor"),
    ("random_weights_for_an_unknown_head", lambda c: ledref.checkpoint.random_state_dict(c.config, head="mlm"),
     ledref.CheckpointError, r"head='mlm'; expected None or one of \['lm', 'qa', 'classification'\]"),
    ("model_from_a_list_of_params", lambda c: ledref.LEDModel(c.config, [1, 2]),
     ledref.CheckpointError, r"params is a list"),
]

CONFIG = [
    ("config_saved_onto_a_file", lambda c: c.config.save_pretrained(c.base / "config.json"), ledref.ConfigError,
     r"save_directory='.*config\.json' exists and is not a directory; expected a directory to write into"),
    ("config_saved_to_a_number", lambda c: c.config.save_pretrained(3), ledref.ConfigError,
     r"save_directory=3 is a int; expected a path"),
    ("model_saved_onto_a_file", lambda c: c.model.save_pretrained(c.base / "config.json"), ledref.InputError,
     r"save_directory='.*config\.json' exists and is not a directory"),
    ("model_saved_to_a_list", lambda c: c.model.save_pretrained(["out"]), ledref.InputError,
     r"save_directory=\['out'\] is a list; expected a path"),
    ("generation_config_saved_to_a_number", lambda c: c.model.generation_config.save_pretrained(3),
     ledref.GenerationError, r"save_directory=3 is a int; expected a path"),
    ("decoder_layers_absurd", lambda c: load(c.config_variant(decoder_layers=10_000_000)),
     ledref.ConfigError, r"config\.json: config field decoder_layers=10000000; expected an int >= 1 and <= 4096"),
    ("encoder_layers_absurd", lambda c: load(c.config_variant(encoder_layers=10 ** 12)),
     ledref.ConfigError, r"encoder_layers=1000000000000"),
    ("vocab_size_absurd", lambda c: load(c.config_variant(vocab_size=10 ** 10)), ledref.ConfigError,
     r"vocab_size=10000000000"),
    ("d_model_absurd", lambda c: load(c.config_variant(d_model=2 ** 40)), ledref.ConfigError, r"d_model=1099511627776"),
    ("decoder_layers_beyond_the_weights", lambda c: load(c.config_variant(decoder_layers=3000)),
     ledref.ConfigError, r"config field decoder_layers=3000, but the weights in .* hold decoder layers up to 0"),
    ("encoder_layers_beyond_the_weights", lambda c: load(c.config_variant(encoder_layers=3, attention_window=8)),
     ledref.ConfigError, r"config field encoder_layers=3, but the weights"),
    ("vocab_size_against_the_weights", lambda c: load(c.config_variant(vocab_size=1_000_000)),
     ledref.ConfigError, r"config field vocab_size=1000000, but shared\.weight in .* has shape \(60, 8\)"),
    ("d_model_against_the_weights", lambda c: load(c.config_variant(d_model=16)),
     ledref.ConfigError, r"config field d_model=16, but shared\.weight"),
    ("positions_against_the_weights", lambda c: load(c.config_variant(max_encoder_position_embeddings=2 ** 20)),
     ledref.ConfigError, r"max_encoder_position_embeddings=1048576, but encoder\.embed_positions\.weight"),
    ("ffn_against_the_weights", lambda c: load(c.config_variant(decoder_ffn_dim=99_999)),
     ledref.ConfigError, r"decoder_ffn_dim=99999, but decoder\.layers\.0\.fc1\.weight"),
    ("config_not_json", lambda c: load(c.variant(config__json="{\n  \"d_model\": 8,\n}")),
     ledref.ConfigError, r"config file .*config\.json as JSON: it is not valid JSON .*line 3, column 1"),
    ("config_not_utf8", lambda c: load(c.variant(config__json=b'{"d_model": "\xe9"}')),
     ledref.ConfigError, r"config file .*config\.json is not UTF-8 text \(byte 0xe9 at offset 13\)"),
    ("config_a_list", lambda c: load(c.variant(config__json="[1, 2]")),
     ledref.ConfigError, r"config\.json holds a JSON array; expected an object"),
    ("config_deeply_nested", lambda c: load(c.variant(config__json="[" * 100_000 + "]" * 100_000)),
     ledref.ConfigError, r"config\.json as JSON: it is not valid JSON"),
    ("activation_a_list", lambda c: ledref.LEDConfig(activation_function=["gelu"]),
     ledref.ConfigError, r"activation_function=\['gelu'\] is not supported"),
    ("id2label_an_int", lambda c: ledref.LEDConfig.from_dict({"id2label": 5}),
     ledref.ConfigError, r"id2label=5; expected an object"),
    ("id2label_empty", lambda c: ledref.LEDConfig.from_dict({"id2label": {}}),
     ledref.ConfigError, r"num_labels=0"),
    ("from_dict_a_list", lambda c: ledref.LEDConfig.from_dict([("d_model", 8)]),
     ledref.ConfigError, r"config is a list; expected a dict"),
    ("window_a_string", lambda c: ledref.LEDConfig(attention_window="512"),
     ledref.ConfigError, r"attention_window='512'"),
    ("window_odd_in_list", lambda c: ledref.LEDConfig(encoder_layers=2, attention_window=[8, 7]),
     ledref.ConfigError, r"attention_window\[1\]=7"),
    ("window_absurd", lambda c: ledref.LEDConfig(attention_window=2 ** 40),
     ledref.ConfigError, r"attention_window=1099511627776"),
    ("problem_type_a_list", lambda c: ledref.LEDConfig(problem_type=["regression"]),
     ledref.ConfigError, r"problem_type=\['regression'\]"),
    ("d_model_a_bool", lambda c: ledref.LEDConfig(d_model=True), ledref.ConfigError, r"d_model=True"),
    ("vocab_size_a_float", lambda c: ledref.LEDConfig(vocab_size=50265.0), ledref.ConfigError, r"vocab_size=50265\.0"),
    ("pad_token_negative", lambda c: ledref.LEDConfig(pad_token_id=-1), ledref.ConfigError, r"pad_token_id=-1"),
    ("from_pretrained_not_a_path", lambda c: ledref.LEDConfig.from_pretrained(3.5),
     ledref.ConfigError, r"path=3\.5 is a float"),
]


def forward(c, **kwargs):
    return c.model(**{"input_ids": IDS, "attention_mask": MASK, **kwargs})


FORWARD = [
    ("empty_batch", lambda c: c.model(np.zeros((0, 6), np.int64)), ledref.InputError,
     r"input_ids has batch size 0; expected at least one row"),
    ("ids_a_string", lambda c: c.model("hello world"), ledref.InputError, r"input_ids is a str"),
    ("ids_floats", lambda c: c.model([[0.0, 5.5]]), ledref.InputError, r"input_ids has dtype float64"),
    ("ids_ragged", lambda c: c.model([[0, 5, 2], [0, 2]]), ledref.InputError, r"input_ids is not a rectangular"),
    ("ids_outside_vocab", lambda c: c.model([[0, 60, 2]]), ledref.InputError,
     r"input_ids holds ids outside \[0, 60\)"),
    ("ids_a_dict", lambda c: c.model({"input_ids": [[0, 2]]}), ledref.InputError, r"input_ids is a dict"),
    ("mask_strings", lambda c: forward(c, attention_mask=[["1"] * 6] * 2), ledref.InputError,
     r"attention_mask is not a rectangular array of numbers"),
    ("mask_wrong_shape", lambda c: forward(c, attention_mask=MASK[:, :4]), ledref.InputError,
     r"attention_mask has shape \(2, 4\); expected \(2, 6\)"),
    ("global_mask_values", lambda c: forward(c, global_attention_mask=GLOBAL * 2), ledref.InputError,
     r"global_attention_mask holds values other than 0 and 1"),
    ("decoder_ids_batch", lambda c: forward(c, decoder_input_ids=[[2, 0]]), ledref.InputError,
     r"decoder_input_ids has batch size 1; expected 2"),
    ("encoder_outputs_a_string", lambda c: forward(c, encoder_outputs="cached"), ledref.InputError,
     r"encoder_outputs\.last_hidden_state is a str"),
    ("encoder_outputs_wrong_width", lambda c: forward(c, encoder_outputs=(np.zeros((2, 6, 5)),)), ledref.InputError,
     r"encoder_outputs\.last_hidden_state has shape \(2, 6, 5\); expected \(batch, length, 8\)"),
    ("past_a_list_of_ints", lambda c: forward(c, decoder_input_ids=[[2], [2]], past_key_values=[[1, 2, 3, 4]]),
     ledref.InputError, r"past_key_values must hold 1 entries"),
    ("past_a_string", lambda c: forward(c, past_key_values="past"), ledref.InputError, r"past_key_values must hold"),
    ("output_attentions_a_string", lambda c: forward(c, output_attentions="yes"), ledref.InputError,
     r"output_attentions='yes'; expected True or False"),
    ("use_cache_a_string", lambda c: forward(c, use_cache="no"), ledref.InputError, r"use_cache='no'"),
    ("recorder_an_int", lambda c: forward(c, recorder=5), ledref.InputError,
     r"recorder=5; expected a ledref\.Recorder"),
    ("recorder_pattern_an_int", lambda c: ledref.Recorder(only=5), ledref.InputError, r"only=5; expected an fnmatch"),
    ("progress_not_callable", lambda c: c.model.encoder(IDS, progress="bar"), ledref.InputError,
     r"progress='bar' is not callable"),
    ("labels_outside_vocab", lambda c: forward(c, labels=[[5, 99], [5, 5]]), ledref.InputError,
     r"labels holds ids outside \[0, 60\) or -100"),
    ("input_too_long", lambda c: c.model(np.zeros((1, 65), np.int64)), ledref.InputError,
     r"input_ids has length 65, padded to 72 .* max_encoder_position_embeddings=64"),
    ("decoder_too_long", lambda c: forward(c, decoder_input_ids=np.zeros((2, 33), np.int64)), ledref.InputError,
     r"decoder positions reach 33 .* max_decoder_position_embeddings=32"),
    ("shift_tokens_floats", lambda c: ledref.shift_tokens_right([[1.5, 2.0]], 1, 2), ledref.InputError,
     r"ids has shape \(1, 2\) and dtype float64"),
    ("shift_tokens_pad_a_string", lambda c: ledref.shift_tokens_right([[1, 2]], "1", 2), ledref.InputError,
     r"pad_token_id='1'"),
    ("to_numpy_a_string", lambda c: ledref.to_numpy("abc"), ledref.InputError, r"to_numpy takes an array"),
    ("classification_labels_length", lambda c: classifier(c, num_labels=3)(IDS, attention_mask=MASK, labels=[0, 1, 2]),
     ledref.InputError, r"labels has shape \(3,\); expected 2 values, one per row for single_label_classification"),
    ("classification_labels_float_shape",
     lambda c: classifier(c, num_labels=3)(IDS, attention_mask=MASK, labels=np.zeros((2, 2))),
     ledref.InputError, r"labels has shape \(2, 2\); expected shape \(2, 3\) for multi_label_classification"),
    ("encoder_outputs_empty", lambda c: forward(c, encoder_outputs=()), ledref.InputError,
     r"encoder_outputs is empty"),
    ("backend_an_array", lambda c: load(c.base, backend=np.zeros(2)), ledref.InputError,
     r"backend=<ndarray of shape \(2,\) and dtype float64> is not supported"),
    ("qa_positions_shape", lambda c: qa_model(c)(IDS, start_positions=[1, 2, 3], end_positions=[1, 2]),
     ledref.InputError, r"start_positions has shape \(3,\)"),
]


def gen(c, **kwargs):
    return c.model.generate(IDS, attention_mask=MASK, **kwargs)


GENERATION = [
    ("length_penalty_a_string", lambda c: gen(c, num_beams=2, length_penalty="2.0"), ledref.GenerationError,
     r"length_penalty='2\.0'; expected a finite number"),
    ("length_penalty_nan", lambda c: gen(c, num_beams=2, length_penalty=float("nan")), ledref.GenerationError,
     r"length_penalty=nan"),
    ("max_new_tokens_negative", lambda c: gen(c, max_new_tokens=-3), ledref.GenerationError,
     r"^max_new_tokens=-3; expected an int >= 1$"),
    ("max_new_tokens_a_float", lambda c: gen(c, max_new_tokens=1.5), ledref.GenerationError, r"max_new_tokens=1\.5"),
    ("max_new_tokens_too_many", lambda c: gen(c, max_new_tokens=40), ledref.GenerationError,
     r"max_new_tokens=40 \(max_length 41, the start token included\) exceeds max_decoder_position_embeddings=32"),
    ("max_length_one", lambda c: gen(c, max_length=1), ledref.GenerationError,
     r"max_length=1 leaves no room to generate"),
    ("max_length_too_long", lambda c: gen(c, max_length=33), ledref.GenerationError,
     r"^max_length=33 exceeds max_decoder_position_embeddings=32$"),
    ("default_length_too_long", lambda c: ledref.GenerationConfig(decoder_start_token_id=2).validate(
        ledref.LEDConfig(**{**SETTINGS, "max_decoder_position_embeddings": 8})), ledref.GenerationError,
     r"the default of 20 new tokens \(max_length 21, the start token included\) exceeds"),
    ("num_beams_zero", lambda c: gen(c, num_beams=0), ledref.GenerationError,
     r"num_beams=0; expected an int >= 1 and <= 65536"),
    ("num_beams_a_float", lambda c: gen(c, num_beams=2.0), ledref.GenerationError, r"num_beams=2\.0"),
    ("return_sequences_beyond_beams", lambda c: gen(c, num_beams=2, num_return_sequences=3), ledref.GenerationError,
     r"num_return_sequences=3 must be between 1 and num_beams=2"),
    ("early_stopping_a_string", lambda c: gen(c, num_beams=2, early_stopping="maybe"), ledref.GenerationError,
     r"early_stopping='maybe'"),
    ("early_stopping_an_int", lambda c: gen(c, num_beams=2, early_stopping=1), ledref.GenerationError,
     r"early_stopping=1"),
    ("ngram_negative", lambda c: gen(c, no_repeat_ngram_size=-1), ledref.GenerationError, r"no_repeat_ngram_size=-1"),
    ("eos_outside_vocab", lambda c: gen(c, eos_token_id=[2, 600]), ledref.GenerationError,
     r"eos_token_id=\[2, 600\]; expected token ids in the vocabulary \[0, 60\)"),
    ("forced_bos_a_string", lambda c: gen(c, forced_bos_token_id="0"), ledref.GenerationError,
     r"forced_bos_token_id='0'"),
    ("min_new_tokens_negative", lambda c: gen(c, min_new_tokens=-1), ledref.GenerationError, r"min_new_tokens=-1"),
    ("generate_use_cache_a_string", lambda c: gen(c, use_cache="no"), ledref.GenerationError, r"use_cache='no'"),
    ("temperature_zero", lambda c: gen(c, do_sample=True, temperature=0), ledref.GenerationError,
     r"temperature=0; expected a number > 0"),
    ("top_p_above_one", lambda c: gen(c, do_sample=True, top_p=1.5), ledref.GenerationError,
     r"top_p=1.5; expected a number between 0 and 1"),
    ("unsupported_setting", lambda c: gen(c, num_beam_groups=2), ledref.GenerationError,
     r"generation setting num_beam_groups=2 is not supported"),
    ("unknown_setting", lambda c: gen(c, beams=2), ledref.GenerationError, r"unknown generation setting beams=2"),
    ("return_dict_a_string", lambda c: gen(c, return_dict_in_generate="yes"), ledref.GenerationError,
     r"return_dict_in_generate='yes'"),
    ("step_progress_not_callable", lambda c: gen(c, step_progress=5), ledref.GenerationError,
     r"step_progress=5 is not callable"),
    ("encoder_outputs_junk", lambda c: c.model.generate(None, encoder_outputs=[1, 2, 3]), ledref.InputError,
     r"encoder_outputs\.last_hidden_state is a int"),
    ("generate_empty_batch", lambda c: c.model.generate(np.zeros((0, 4), np.int64)), ledref.InputError,
     r"input_ids has batch size 0"),
    ("inf_weight_greedy", lambda c: inf_model(c).generate(IDS, attention_mask=MASK, max_new_tokens=4),
     ledref.GenerationError, r"scores stopped being finite at decoding step 1, batch row 0: they hold nan"),
    ("inf_weight_beams", lambda c: inf_model(c).generate(IDS, attention_mask=MASK, num_beams=3, max_new_tokens=4),
     ledref.GenerationError, r"stopped being finite at decoding step 1, batch row 0 \(beam 0\)"),
    ("num_beams_absurd", lambda c: gen(c, num_beams=10 ** 30), ledref.GenerationError,
     r"num_beams=1000000000000000000000000000000; expected an int >= 1 and <= 65536"),
    ("settings_not_a_dict", lambda c: ledref.GenerationConfig.from_dict([("num_beams", 2)]), ledref.GenerationError,
     r"generation settings are a list"),
]


def tok(c):
    return c.tok


TOKENIZER_CASES = [
    ("decode_a_string", lambda c: tok(c).decode("hello"), ledref.TokenizerError,
     r"token_ids is a str; expected token ids \(ints\), not text"),
    ("decode_none", lambda c: tok(c).decode(None), ledref.TokenizerError, r"token_ids is a NoneType"),
    ("decode_a_float", lambda c: tok(c).decode(1.5), ledref.TokenizerError, r"token_ids is a float"),
    ("decode_outside_vocab", lambda c: tok(c).decode([0, 99_999]), ledref.TokenizerError,
     r"token id 99999 is not in the vocabulary; expected ints in \[0, 3000\)"),
    ("decode_three_dimensions", lambda c: tok(c).decode(np.zeros((1, 2, 2), np.int64)), ledref.TokenizerError,
     r"sequences\[0\] holds lists"),
    ("decode_flag_a_string", lambda c: tok(c).decode([5], skip_special_tokens="yes"), ledref.TokenizerError,
     r"skip_special_tokens='yes'"),
    ("batch_decode_a_string", lambda c: tok(c).batch_decode("abc"), ledref.TokenizerError, r"sequences is a str"),
    ("ids_to_tokens_a_string", lambda c: tok(c).convert_ids_to_tokens("abc"), ledref.TokenizerError,
     r"ids is a str"),
    ("tokens_to_ids_an_int", lambda c: tok(c).convert_tokens_to_ids(5), ledref.TokenizerError,
     r"tokens=5; expected a token string"),
    ("global_mask_of_a_string", lambda c: tok(c).global_attention_mask("the text"), ledref.TokenizerError,
     r"input_ids is a str; expected a list of ids"),
    ("global_mask_of_floats", lambda c: tok(c).global_attention_mask([0.0, 5.0, 2.0]), ledref.TokenizerError,
     r"input_ids is \[0\.0, 5\.0, 2\.0\]; expected a list of int token ids"),
    ("global_mask_position_outside", lambda c: tok(c).global_attention_mask([[0, 5, 2]], positions=[5]),
     ledref.TokenizerError, r"global attention position 5 is outside row 0 of input_ids"),
    ("global_mask_positions_none", lambda c: tok(c).global_attention_mask([0, 5, 2], positions=None),
     ledref.TokenizerError, r"positions=None"),
    ("text_none", lambda c: tok(c)(None), ledref.TokenizerError, r"text must be a str or a list of str"),
    ("text_list_with_an_int", lambda c: tok(c)(["a", 5]), ledref.TokenizerError, r"text\[1\] is a int"),
    ("padding_a_word", lambda c: tok(c)("a", padding="yes"), ledref.TokenizerError, r"padding='yes'"),
    ("max_length_negative", lambda c: tok(c)("a", max_length=-1), ledref.TokenizerError, r"max_length=-1"),
    ("return_tensors_pt", lambda c: tok(c)("a", return_tensors="pt"), ledref.TokenizerError,
     r"return_tensors='pt' is not supported"),
    ("max_length_below_specials", lambda c: tok(c)("a b c", max_length=1, truncation=True), ledref.TokenizerError,
     r"max_length=1 is smaller than the 2 special tokens"),
    ("add_special_tokens_an_array", lambda c: tok(c)("a", add_special_tokens=np.ones(2)), ledref.TokenizerError,
     r"add_special_tokens=<ndarray of shape \(2,\)"),
    ("text_pair_an_array", lambda c: tok(c)("a", np.ones(2)), ledref.TokenizerError, r"text_pair is a ndarray"),
    ("padding_to_absurd_length", lambda c: tok(c)("a", padding="max_length", max_length=10 ** 12),
     ledref.TokenizerError, r"padding would make rows of 1,000,000,000,000 tokens \(max_length=1000000000000"),
    ("from_pretrained_an_int", lambda c: ledref.LEDTokenizer.from_pretrained(5), ledref.TokenizerError,
     r"directory=5 is a int"),
    ("tokenizer_json_not_json", lambda c: ledref.LEDTokenizer.from_pretrained(
        c.tokenizer_variant(tokenizer__json='{"model": ')), ledref.TokenizerError,
     r"tokenizer file .*tokenizer\.json as JSON.*line 1, column 11"),
    ("tokenizer_json_not_utf8", lambda c: ledref.LEDTokenizer.from_pretrained(
        c.tokenizer_variant(tokenizer__json=b"\x80")), ledref.TokenizerError, r"tokenizer\.json is not UTF-8 text"),
    ("tokenizer_json_vocab_list", lambda c: ledref.LEDTokenizer.from_pretrained(
        c.tokenizer_variant(tokenizer__json='{"model": {"type": "BPE", "vocab": [["a", 1]]}}')),
     ledref.TokenizerError, r"tokenizer\.json model\.vocab is a list"),
    ("tokenizer_json_added_tokens_junk", lambda c: ledref.LEDTokenizer.from_pretrained(
        c.tokenizer_variant(tokenizer__json='{"model": {"vocab": {}}, "added_tokens": [5]}')),
     ledref.TokenizerError, r"tokenizer\.json has added_tokens=\[5\]"),
    ("vocab_negative_id", lambda c: ledref.LEDTokenizer.from_pretrained(
        c.tokenizer_variant(vocab__json='{"<s>": -1}')), ledref.TokenizerError, r"vocab\.json maps '<s>' to -1"),
    ("vocab_not_an_object", lambda c: ledref.LEDTokenizer.from_pretrained(
        c.tokenizer_variant(vocab__json='["<s>"]')), ledref.TokenizerError, r"vocab\.json is not a vocabulary"),
    ("merges_bad_line", lambda c: ledref.LEDTokenizer.from_pretrained(
        c.tokenizer_variant(merges__txt="#version: 0.2\nĠ t\nh e x\n")), ledref.TokenizerError,
     r"merges\.txt line 3 is 'h e x'"),
    ("merges_not_utf8", lambda c: ledref.LEDTokenizer.from_pretrained(
        c.tokenizer_variant(merges__txt=b"\xc3\x28 a\n")), ledref.TokenizerError, r"merges\.txt is not UTF-8 text"),
    ("merges_unknown_token", lambda c: ledref.LEDTokenizer.from_pretrained(
        c.tokenizer_variant(merges__txt="zzqq yyxx\n")), ledref.TokenizerError,
     r"vocabulary and merges do not make a BPE model .*zzqq"),
    ("tokenizer_config_added_tokens_int", lambda c: ledref.LEDTokenizer.from_pretrained(
        c.tokenizer_variant(tokenizer_config__json='{"added_tokens_decoder": 5}')), ledref.TokenizerError,
     r"tokenizer_config\.json has added_tokens_decoder=5"),
    ("tokenizer_config_left_padding", lambda c: ledref.LEDTokenizer.from_pretrained(
        c.tokenizer_variant(tokenizer_config__json='{"padding_side": "left"}')), ledref.TokenizerError,
     r"tokenizer_config\.json sets padding_side='left'"),
    ("constructor_vocab_an_int", lambda c: ledref.LEDTokenizer(5, []), ledref.TokenizerError,
     r"vocab is a int; expected a dict"),
    ("constructor_merges_a_string", lambda c: ledref.LEDTokenizer(tok(c).vocab, "ab"), ledref.TokenizerError,
     r"merges is a str"),
    ("constructor_merge_of_three", lambda c: ledref.LEDTokenizer(tok(c).vocab, [("a", "b", "c")]),
     ledref.TokenizerError, r"merges\[0\] is \('a', 'b', 'c'\)"),
    ("special_token_flag_a_string", lambda c: ledref.LEDTokenizer.from_pretrained(
        TOKENIZER, mask_token={"content": "<mask>", "lstrip": "yes"}), ledref.TokenizerError,
     r"mask_token has lstrip='yes'"),
    ("add_prefix_space_a_string", lambda c: ledref.LEDTokenizer.from_pretrained(TOKENIZER, add_prefix_space="yes"),
     ledref.TokenizerError, r"add_prefix_space='yes'"),
]

A = "attentions"  # shorthands for the layout rows: the first layer's outputs of the fixture model
LAYOUT = [
    ("to_dense_of_a_string", lambda c: layout.to_dense("attention"), ledref.InputError,
     r"attentions is a str; expected an array"),
    ("to_dense_three_dimensions", lambda c: layout.to_dense(c.attentions[0][0], None), ledref.InputError,
     r"attentions has shape \(2, 6, 10\); expected \(batch, heads, tokens, x \+ window \+ 1\)"),
    ("to_dense_mask_values", lambda c: layout.to_dense(c.attentions[0], c.globals[0], GLOBAL * 3, MASK),
     ledref.InputError, r"global_attention_mask holds values other than 0 and 1"),
    ("to_dense_mask_strings", lambda c: layout.to_dense(c.attentions[0], c.globals[0], [["x"] * 6] * 2, MASK),
     ledref.InputError, r"global_attention_mask has dtype <U1"),
    ("to_dense_wrong_global_slots", lambda c: layout.to_dense(c.attentions[0], c.globals[0], None, MASK),
     ledref.InputError, r"the masks give 0 global tokens .* 1 global slots"),
    ("to_band_odd_window", lambda c: layout.to_band(np.zeros((1, 1, 4, 4)), window=3), ledref.InputError,
     r"window=3; expected the layer's even attention window"),
    ("to_band_float_window", lambda c: layout.to_band(np.zeros((1, 1, 4, 4)), window=4.0), ledref.InputError,
     r"window=4\.0"),
    ("to_band_absurd_window", lambda c: layout.to_band(np.zeros((1, 1, 4, 4)), window=10 ** 30),
     ledref.InputError, r"window=1000000000000000000000000000000; expected the layer's even attention window"),
    ("to_band_padded_negative", lambda c: layout.to_band(np.zeros((1, 1, 4, 4)), window=2, padded_length=-1),
     ledref.InputError, r"padded_length=-1"),
    ("weight_query_a_float", lambda c: layout.attention_weight(c.attentions[0], c.globals[0], 1.5, 0, GLOBAL, MASK),
     ledref.InputError, r"query=1\.5 is not an int"),
    ("weight_key_outside", lambda c: layout.attention_weight(c.attentions[0], c.globals[0], 1, 6, GLOBAL, MASK),
     ledref.InputError, r"key=6 is outside the 6 tokens"),
    ("bertviz_row_outside", lambda c: layout.to_bertviz(c.attentions, c.globals, GLOBAL, MASK, row=5),
     ledref.InputError, r"row=5 is outside the 2 rows of the batch"),
    ("bertviz_no_layers", lambda c: layout.to_bertviz((), None), ledref.InputError,
     r"attentions is \(\); expected the per-layer tuple"),
    ("bertviz_globals_per_layer", lambda c: layout.to_bertviz(c.attentions, c.globals[:1], GLOBAL, MASK),
     ledref.InputError, r"global_attentions is .*; expected None or one entry per layer \(2\)"),
    ("bertviz_max_tokens_zero", lambda c: layout.to_bertviz(c.attentions, c.globals, GLOBAL, MASK, max_tokens=0),
     ledref.InputError, r"max_tokens=0"),
]


def band(c, **kwargs):
    return viz.plot_band(c.attentions[0], c.globals[0], GLOBAL, MASK, **kwargs)


def dense(c, **kwargs):
    return viz.plot_dense(c.attentions[0], c.globals[0], GLOBAL, MASK, **kwargs)


FIGURES = [
    ("band_head_a_float", lambda c: band(c, head=1.0), ledref.InputError, r"head=1\.0 is not an int"),
    ("band_head_outside", lambda c: band(c, head=2), ledref.InputError, r"head=2 is outside the 2 heads"),
    ("band_row_outside", lambda c: band(c, row=2), ledref.InputError, r"row=2 is outside the 2 rows"),
    ("band_max_rows_zero", lambda c: band(c, max_rows=0), ledref.InputError, r"max_rows=0"),
    ("band_pool_unknown", lambda c: band(c, pool="median"), ledref.InputError, r"pool='median'"),
    ("band_log_a_string", lambda c: band(c, log="yes"), ledref.InputError, r"log='yes'"),
    ("band_start_negative", lambda c: band(c, start=-1), ledref.InputError, r"token range -1\.\.6 is not inside"),
    ("band_stop_a_float", lambda c: band(c, stop=2.5), ledref.InputError, r"stop=2\.5"),
    ("band_ax_not_axes", lambda c: band(c, ax="axes"), ledref.InputError, r"ax='axes'; expected a matplotlib Axes"),
    ("band_title_an_array", lambda c: band(c, title=np.zeros(3)), ledref.InputError, r"title=<ndarray"),
    ("dense_row_outside", lambda c: dense(c, row=3), ledref.InputError, r"row=3 is outside the 2 rows"),
    ("dense_tokens_too_few", lambda c: dense(c, tokens=["<s>", "a"]), ledref.InputError,
     r"tokens has 2 tokens; expected a list of 6 token strings"),
    ("dense_tokens_a_string", lambda c: dense(c, tokens="<s> a b c d </s>"), ledref.InputError,
     r"tokens has a str; expected a list of 6"),
    ("grid_no_layers", lambda c: viz.plot_grid((), None), ledref.InputError, r"attentions is \(\)"),
    ("grid_head_outside", lambda c: viz.plot_grid(c.attentions, c.globals, GLOBAL, MASK, heads=[5]),
     ledref.InputError, r"head=5 is outside the 2 heads"),
    ("grid_layers_empty", lambda c: viz.plot_grid(c.attentions, c.globals, GLOBAL, MASK, layers=[]),
     ledref.InputError, r"layers=\[\]; expected a non-empty list"),
    ("grid_view_unknown", lambda c: viz.plot_grid(c.attentions, c.globals, GLOBAL, MASK, view="3d"),
     ledref.InputError, r"view='3d'"),
    ("grid_globals_per_layer", lambda c: viz.plot_grid(c.attentions, c.globals[:1], GLOBAL, MASK),
     ledref.InputError, r"global_attentions is .*one entry per layer \(2\)"),
    ("sparsity_negative_window", lambda c: viz.plot_sparsity(100, -4), ledref.InputError,
     r"window=-4; expected an even int from 2 to 16777216"),
    ("sparsity_odd_window", lambda c: viz.plot_sparsity(100, 5), ledref.InputError, r"window=5"),
    ("sparsity_float_positions", lambda c: viz.plot_sparsity(100, 4, [1.5]), ledref.InputError,
     r"global_positions=\[1\.5\]; expected int token positions"),
    ("sparsity_position_outside", lambda c: viz.plot_sparsity(100, 4, [100]), ledref.InputError,
     r"global positions must be inside 0\.\.99"),
    ("sparsity_absurd_window", lambda c: viz.plot_sparsity(100, 10 ** 30), ledref.InputError,
     r"window=1000000000000000000000000000000"),
    ("sparsity_length_zero", lambda c: viz.plot_sparsity(0, 4), ledref.InputError, r"length=0"),
    ("sparsity_length_absurd", lambda c: viz.plot_sparsity(10 ** 9, 4), ledref.InputError, r"length=1000000000"),
    ("pairs_negative_window", lambda c: viz.computed_pairs(100, -4), ledref.InputError, r"window=-4"),
    ("explainer_no_globals", lambda c: viz.plot_layout_explainer(global_positions=()), ledref.InputError,
     r"global_positions=\(\); expected at least one"),
    ("explainer_odd_window", lambda c: viz.plot_layout_explainer(window=3), ledref.InputError, r"window=3"),
    ("explainer_too_long", lambda c: viz.plot_layout_explainer(length=1000), ledref.InputError, r"length=1000"),
    ("pool_rows_zero", lambda c: viz.pool_rows(np.ones((4, 3)), 0), ledref.InputError, r"max_rows=0"),
]


def tiny_golden_model():
    return tiny_model("global_first", dtype="float32")


ORACLE = [
    ("compare_negative_rtol", lambda c: ledref.compare({"a": np.ones(2)}, {"a": np.ones(2)}, rtol=-1e-5),
     CompareError, r"rtol=-1e-05; expected a finite number >= 0"),
    ("compare_atol_a_string", lambda c: ledref.compare({"a": np.ones(2)}, {"a": np.ones(2)}, atol="1e-6"),
     CompareError, r"atol='1e-6'"),
    ("compare_atol_nan", lambda c: ledref.compare({"a": np.ones(2)}, {"a": np.ones(2)}, atol=float("nan")),
     CompareError, r"atol=nan"),
    ("compare_only_an_int", lambda c: ledref.compare({"a": np.ones(2)}, {"a": np.ones(2)}, only=5),
     CompareError, r"only=5; expected an fnmatch pattern"),
    ("compare_none", lambda c: ledref.compare(None, None), CompareError, r"reference=None is a NoneType"),
    ("compare_string_tensors", lambda c: ledref.compare({"a": "x"}, {"a": "y"}), CompareError,
     r"reference tensor a has dtype <U1; expected real numbers"),
    ("compare_complex_tensors", lambda c: ledref.compare({"a": np.ones(2) * 1j}, {"a": np.ones(2)}), CompareError,
     r"reference tensor a has dtype complex128"),
    ("compare_ragged_tensor", lambda c: ledref.compare({"a": [[1], [1, 2]]}, {"a": np.ones(2)}), CompareError,
     r"reference tensor a is not an array"),
    ("compare_int_names", lambda c: ledref.compare({1: np.ones(2)}, {1: np.ones(2)}), CompareError,
     r"reference has the tensor name 1"),
    ("compare_dict_and_path", lambda c: ledref.compare({"a": np.ones(2)}, c.base), CompareError,
     r"reference and other must both be dicts"),
    ("compare_corrupt_file", lambda c: ledref.compare(c.variant(model__safetensors=c.raw[:40]) / "model.safetensors",
                                                      c.base / "model.safetensors"),
     CompareError, r"model\.safetensors: not a readable safetensors file"),
    ("compare_missing_file", lambda c: ledref.compare(c.base / "nothing.safetensors", c.base / "model.safetensors"),
     CompareError, r"reference .*nothing\.safetensors: no such file or directory"),
    ("golden_unknown_case", lambda c: case_inputs("nope", 50), ledref.InputError, r"unknown golden case 'nope'"),
    ("golden_small_vocab", lambda c: case_inputs("no_global", 2), ledref.InputError, r"vocab_size=2"),
    ("golden_absurd_vocab", lambda c: case_inputs("no_global", 10 ** 30), ledref.InputError,
     r"vocab_size=1000000000000000000000000000000"),
    ("golden_negative_seed", lambda c: case_inputs("no_global", 50, seed=-1), ledref.InputError, r"seed=-1"),
    ("golden_tiny_unknown_case", lambda c: tiny_model("nope"), ledref.InputError, r"unknown golden case 'nope'"),
    ("golden_tiny_dtype", lambda c: tiny_model(dtype="int8"), ledref.InputError, r"dtype='int8'"),
    ("golden_case_leads_out", lambda c: write_golden(c.model, {"input_ids": IDS}, c.root, "../escape"),
     ledref.InputError, r"case='\.\./escape'; expected a plain name"),
    ("golden_record_unknown_input", lambda c: record(c.model, {"input_ids": IDS, "foo": 1}), ledref.InputError,
     r"inputs=.*expected a dict with keys among"),
    ("golden_record_not_a_model", lambda c: record("model", {"input_ids": IDS}), ledref.InputError,
     r"model is a str"),
    ("compare_tolerance_nan", lambda c: ledref.compare({"x": np.zeros(2)}, {"x": np.zeros(2)},
                                                       tolerances={"x": (0, float("nan"))}), CompareError,
     r"tolerances entry \('x', 0, nan\): atol=nan; expected a finite number >= 0"),
    ("compare_tolerance_a_string", lambda c: ledref.compare({"x": np.zeros(2)}, {"x": np.zeros(2)},
                                                            tolerances=[("x", "tight", 1e-6)]), CompareError,
     r"tolerances entry \('x', 'tight', 1e-06\): rtol='tight'; expected a finite number >= 0"),
    ("compare_tolerance_not_a_pair", lambda c: ledref.compare({"x": np.zeros(2)}, {"x": np.zeros(2)},
                                                              tolerances={"x": 0.1}), CompareError,
     r"tolerances entry \('x', 0\.1\): expected \(pattern, rtol >= 0, atol >= 0\)"),
    ("conformance_fn_an_int", lambda c: check_longformer_attention(5, examples=0), ConformanceError,
     r"fn=5 is not callable"),
    ("conformance_examples_negative", lambda c: check_longformer_attention(lambda *a: None, examples=-1),
     ConformanceError, r"examples=-1"),
    ("conformance_rtol_negative", lambda c: check_longformer_attention(lambda *a: None, rtol=-1, examples=0),
     ConformanceError, r"rtol=-1"),
    ("conformance_cases_junk", lambda c: check_longformer_attention(lambda *a: None, examples=0, cases=[5]),
     ConformanceError, r"cases holds 5"),
    ("conformance_cases_a_string", lambda c: check_longformer_attention(lambda *a: None, examples=0,
                                                                        cases="no_globals"),
     ConformanceError, r"cases='no_globals'; expected a list"),
    ("conformance_case_batch_zero", lambda c: make_case("x", 0, 1, 4, 2, 1), ConformanceError, r"batch=0"),
    ("conformance_case_length_past", lambda c: make_case("x", 1, 1, 4, 2, 1, lengths=[9]), ConformanceError,
     r"lengths\[i\]=9; expected an int >= 0 and <= 4"),
    ("conformance_case_global_outside", lambda c: make_case("x", 1, 1, 4, 2, 1, global_positions=[[4]]),
     ConformanceError, r"global_positions row \[4\]"),
    ("conformance_case_absurd_batch", lambda c: make_case("x", 10 ** 30, 1, 4, 2, 1), ConformanceError,
     r"batch=1000000000000000000000000000000"),
    ("conformance_case_too_large", lambda c: make_case("x", 1024, 16, 4096, 64, 1), ConformanceError,
     r"batch \* heads \* length \* head_dim = 4,294,967,296"),
    ("conformance_case_dense_too_large", lambda c: make_case("x", 1, 1, 2 ** 14, 1, 1), ConformanceError,
     r"batch \* heads \* length \*\* 2 = 268,435,456 \(the dense reference's scores\); expected at most 67,108,864"),
    ("files_inputs_lead_out", lambda c: check_files(dumped(c, inputs="../../../etc/passwd")), ConformanceError,
     r"manifest\.json: case 'no_globals': inputs='\.\./\.\./\.\./etc/passwd'; expected a relative path inside"),
    ("files_outputs_absolute", lambda c: check_files(dumped(c, outputs="/tmp/x.safetensors")), ConformanceError,
     r"case 'no_globals': outputs='/tmp/x\.safetensors'; expected a relative path inside"),
    ("files_length_absurd", lambda c: check_files(dumped(c, length=10 ** 7)), ConformanceError,
     r"case no_globals: batch \* heads \* length \* head_dim = 320,000,000"),
    ("files_heads_a_string", lambda c: check_files(dumped(c, heads="2")), ConformanceError,
     r"case no_globals: heads='2'; expected an int >= 1"),
    ("files_mask_short", lambda c: check_files(dumped(c, attention_mask=[[1, 1]])), ConformanceError,
     r"case 'no_globals': attention_mask=\[\[1, 1\]\]; expected 2 rows of 37 zeros and ones"),
    ("files_dilation_missing", lambda c: check_files(dumped(c, dilation=None)), ConformanceError,
     r"dilation=None; expected 2 ints >= 1"),
    ("files_entry_a_number", lambda c: check_files(dumped(c, entry=7)), ConformanceError,
     r"a case entry is 7; expected an object"),
    ("files_inputs_larger_than_said", lambda c: check_files(dumped(c, length=36, attention_mask=[[1] * 36] * 2,
                                                                         global_attention_mask=[[0] * 36] * 2)),
     ConformanceError,
     r"tensor q is \(2, 2, 37, 8\); expected shape \(2, 2, 36, 8\) as the manifest says"),
    ("files_manifest_missing", lambda c: check_files(c.fresh("no_manifest")), ConformanceError,
     r"manifest\.json: cannot read the manifest \(no such file\)"),
    ("files_check_a_number", lambda c: check_files(5), ConformanceError,
     r"directory=5 is a int; expected a path"),
    ("files_dump_examples_negative", lambda c: dump_files(c.fresh("dump"), examples=-2), ConformanceError,
     r"examples=-2; expected an int >= 0"),
    ("files_dump_case_name_leads_out", lambda c: dump_files(c.fresh("dump"), cases=[
        make_case("../x", 1, 1, 4, 2, 1)]), ConformanceError, r"case name '\.\./x'; expected a plain name"),
    ("conformance_case_lengths_an_int", lambda c: make_case("x", 1, 1, 4, 2, 1, lengths=4), ConformanceError,
     r"lengths=4; expected a list"),
    ("conformance_run_case_junk", lambda c: run_case(lambda *a: None, "no_globals"), ConformanceError,
     r"case='no_globals'; expected a ledref\.testing\.Case"),
    ("conformance_kernel_an_int", lambda c: load_kernel(5), ConformanceError, r"kernel 5: expected a str"),
    ("needle_seed_a_string", lambda c: needle.make_document("seven"), ledref.InputError, r"seed='seven'"),
    ("needle_words_absurd", lambda c: needle.make_document(0, n_words=10 ** 12), ledref.InputError,
     r"n_words=1000000000000"),
    ("needle_facts_nine", lambda c: needle.make_document(0, n_facts=9), ledref.InputError, r"n_facts=9"),
    ("explore_text_an_int", lambda c: explore(c.text_model, 5, c.root / "p.html"), ledref.InputError,
     r"text is a int; expected the document as a str"),
    ("explore_out_a_directory", lambda c: explore(c.text_model, "text", c.root), ledref.InputError,
     r"out='.*' is a directory; expected the path of the \.html page"),
    ("explore_layer_a_float", lambda c: explore(c.text_model, "text", c.root / "p.html", layer=1.5),
     ledref.InputError, r"layer=1\.5; expected an int"),
    ("explore_summarize_a_string", lambda c: explore(c.text_model, "text", c.root / "p.html", summarize="yes"),
     ledref.InputError, r"summarize='yes'; expected True or False"),
    ("explore_global_a_float", lambda c: explore(c.text_model, "text", c.root / "p.html", global_positions=[1.9]),
     ledref.InputError, r"global_positions=\[1\.9\]; expected a sequence of token positions"),
    ("explore_progress_not_callable", lambda c: explore(c.text_model, "text", c.root / "p.html", page_progress=3),
     ledref.InputError, r"page_progress=3 is not callable"),
    ("explorer_page_past_16_bits", lambda c: build_page("", [(0, 0)] * 65537, ["a"] * 65537,
                                                        np.zeros((1, 1, 65537, 3), np.float32)),
     ledref.InputError, r"the document is 65,537 tokens long; an explorer page holds at most 65,536"),
    ("demo_text_an_int", lambda c: __import__("ledref.demo").demo.run(text=5), ledref.InputError, r"text is a int"),
]

TABLE = LOADING + CONFIG + FORWARD + GENERATION + TOKENIZER_CASES + LAYOUT + FIGURES + ORACLE


@pytest.mark.parametrize("call, error, pattern", [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_named_error(call, error, pattern, c):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=pattern) as raised:
            call(c)
    assert isinstance(raised.value, ledref.LedrefError)
    assert "\n" not in str(raised.value) or isinstance(raised.value, ledref.CheckpointError), \
        "one line, except the checkpoint's list of keys"


def test_the_table_is_large_and_distinct():
    names = [row[0] for row in TABLE]
    assert len(names) == len(set(names))
    assert len(TABLE) + len(CLI) >= 100


# ------------------------------------------------------------------------------------------------ the command line

def ledref_command(*args, stdin=None, env=None, code=None):
    """Run `ledref ARGS` (or python -c code) as a subprocess; returns the CompletedProcess (bytes stdin ok)."""
    exe = Path(sys.executable).parent / "ledref"
    command = ([sys.executable, "-c", code] if code else [str(exe)] if exe.exists() else
               [sys.executable, "-m", "ledref"]) + [str(a) for a in args]
    environment = {k: v for k, v in os.environ.items() if k != "LEDREF_DEBUG"}
    environment.update({"PYTHONWARNINGS": "ignore", **(env or {})})
    return subprocess.run(command, input=stdin, capture_output=True, timeout=300, env=environment)


def one_line(run, status, pattern):
    """Exit status, one `ledref: ...` line on standard error naming the culprit, no traceback."""
    import re
    stderr = run.stderr.decode(errors="replace")
    assert run.returncode == status, (run.returncode, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ledref: "), stderr
    assert "Traceback" not in stderr
    assert re.search(pattern, lines[0]), lines[0]


def text_file(c, content):
    path = c.fresh("text") / "doc.txt"
    path.write_bytes(content)
    return path


def malicious_pickle(c, marker, zipped):
    """A pytorch_model.bin whose unpickling would create `marker` (checked here with plain pickle)."""
    path = c.fresh("evil")
    shutil.copy(c.base / "config.json", path / "config.json")

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    data = {"led.shared.weight": Payload()}
    if zipped:
        torch = require("torch")
        torch.save(data, path / "pytorch_model.bin")
    else:
        (path / "pytorch_model.bin").write_bytes(pickle.dumps(data, protocol=2))
    return path


def pytorch_index(c, shard):
    path = c.fresh("binindex")
    shutil.copy(c.base / "config.json", path / "config.json")
    (path / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": {"led.shared.weight": shard}}))
    return path


def garbage_golden_input(c):
    path = c.fresh("golden_input") / "inputs.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    return path


def dumped(c, entry=None, **fields):
    """A dumped conformance directory of one case (no_globals: batch 2, heads 2, length 37, head_dim 8) whose
    manifest entry has `fields` changed (None: removed), or is replaced by `entry`."""
    path = c.fresh("conformance_files")
    dump_files(path, cases=[case for case in CATALOGUE if case.name == "no_globals"])
    manifest = json.loads((path / "manifest.json").read_text())
    case = manifest["cases"][0] if entry is None else entry
    if entry is None:
        for name, value in fields.items():
            case.pop(name) if value is None else case.__setitem__(name, value)
    manifest["cases"] = [case]
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


CRASH = "import sys, ledref.cli as cli; cli.info = lambda args: 1 / 0; sys.exit(cli.main(sys.argv[1:]))"

CLI = [
    ("summarize_text_not_utf8", lambda c: ["summarize", "--model", c.base, text_file(c, b"caf\xe9 au lait")], None,
     1, r"text file .*doc\.txt is not UTF-8 text \(byte 0xe9 at offset 3\)"),
    ("summarize_stdin_not_utf8", lambda c: ["summarize", "--model", c.base, "-"], b"\xff\xfe", 1,
     r"standard input is not UTF-8 text"),
    ("summarize_text_endless", lambda c: ["summarize", "--model", c.base, "/dev/zero"], None, 1,
     r"text file /dev/zero holds more than 67108864 bytes; expected a text of at most 64 MiB"),
    ("summarize_corrupt_weights", lambda c: ["summarize", "--model", c.variant(model__safetensors=c.raw[:-3]),
                                             text_file(c, b"text")], None,
     1, r"model\.safetensors is not a readable safetensors file"),
    ("summarize_shard_outside", lambda c: ["summarize", "--model",
                                           c.sharded({"led.shared.weight": "../../../../etc/passwd"}),
                                           text_file(c, b"text")], None,
     1, r"names the shard '\.\./\.\./\.\./\.\./etc/passwd'"),
    ("summarize_max_new_tokens_negative", lambda c: ["summarize", "--model", c.text_model, "--max-new-tokens", "-3",
                                                     text_file(c, b"text")], None, 1, r"max_new_tokens=-3"),
    ("summarize_length_penalty_nan", lambda c: ["summarize", "--model", c.text_model, "--num-beams", "2",
                                                "--length-penalty", "nan", text_file(c, b"text")], None,
     1, r"length_penalty=nan"),
    ("info_absurd_config", lambda c: ["info", c.config_variant(decoder_layers=10_000_000)], None, 1,
     r"decoder_layers=10000000"),
    ("info_config_not_json", lambda c: ["info", c.variant(config__json="{")], None, 1,
     r"config\.json as JSON: it is not valid JSON"),
    ("info_header_not_json", lambda c: ["info", c.variant(model__safetensors=struct.pack("<Q", 4) + b"abcd")], None,
     1, r"model\.safetensors is not a readable safetensors file"),
    ("convert_malicious_pickle", lambda c: ["convert", malicious_pickle(c, c.root / "pwned_cli", True),
                                            c.root / "converted"], None,
     1, r"pytorch_model\.bin is not a PyTorch checkpoint of plain tensors \(its pickle calls (io|builtins)\.open"),
    ("convert_garbage", lambda c: ["convert", c.variant(pytorch_model__bin=b"garbage" * 9), c.root / "conv2"], None,
     1, r"pytorch_model\.bin is not a PyTorch checkpoint of plain tensors"),
    ("convert_index_leads_out", lambda c: ["convert", pytorch_index(c, "../x.bin"), c.root / "conv3"], None,
     1, r"pytorch_model\.bin\.index\.json names the shard '\.\./x\.bin'"),
    ("compare_negative_rtol", lambda c: ["compare", c.base, c.base, "--rtol", "-1"], None, 2,
     r"--rtol -1\.0 --atol 1e-06: tolerances must be >= 0"),
    ("compare_corrupt", lambda c: ["compare", c.variant(model__safetensors=b"xx") / "model.safetensors",
                                   c.base / "model.safetensors"], None,
     1, r"model\.safetensors: not a readable safetensors file"),
    ("golden_input_corrupt", lambda c: ["golden", "--tiny", "--input", garbage_golden_input(c), "--out",
                                        c.root / "gold"], None, 1,
     r"inputs\.safetensors: not a readable safetensors file"),
    ("golden_negative_seed", lambda c: ["golden", "--tiny", "--case", "no_global", "--seed", "-1", "--out",
                                        c.root / "gold"], None, 2, r"--seed -1"),
    ("conformance_missing_kernel", lambda c: ["conformance", "no_such_module_here:fn"], None, 1,
     r"cannot import no_such_module_here"),
    ("unknown_command", lambda c: ["frobnicate"], None, 2, r"invalid choice: 'frobnicate'"),
    ("internal_error", lambda c: ["info", c.base], ("code", CRASH), 3,
     r"^ledref: internal error: ZeroDivisionError: division by zero; rerun with --debug"),
]


@pytest.mark.parametrize("make_args, stdin, status, pattern", [row[1:] for row in CLI], ids=[row[0] for row in CLI])
def test_command_line_error(make_args, stdin, status, pattern, c):
    args = make_args(c)
    if isinstance(stdin, tuple):
        run = ledref_command(*args, code=stdin[1])
    else:
        run = ledref_command(*args, stdin=stdin)
    one_line(run, status, pattern)
    assert b"weights_only" not in run.stderr  # torch's advice to load unsafely is never passed on
    assert not (c.root / "pwned_cli").exists()


def test_texts_are_read_up_to_a_size(c, tmp_path):
    from ledref.checks import MAX_TEXT_BYTES, read_text
    from ledref.errors import TokenizerError
    exact, over = tmp_path / "exact.txt", tmp_path / "over.txt"
    for path, size in ((exact, MAX_TEXT_BYTES), (over, MAX_TEXT_BYTES + 1)):
        with open(path, "wb") as f:
            f.truncate(size)  # sparse: zeros, which are UTF-8
    assert read_text(exact, TokenizerError) == "\0" * MAX_TEXT_BYTES
    with pytest.raises(TokenizerError, match=r"over\.txt holds more than 67108864 bytes"):
        read_text(over, TokenizerError)
    with open("/dev/zero", "rb") as endless:  # standard input that never ends
        run = subprocess.run([sys.executable, "-m", "ledref", "summarize", "--model", str(c.base), "-"],
                             stdin=endless, capture_output=True, timeout=300)
    one_line(run, 1, r"standard input holds more than 67108864 bytes")


def test_debug_shows_the_traceback(c):
    bad = c.config_variant(decoder_layers=10_000_000)
    for run in (ledref_command("info", bad, "--debug"), ledref_command("--debug", "info", bad),
                ledref_command("info", bad, env={"LEDREF_DEBUG": "1"})):
        stderr = run.stderr.decode()
        assert run.returncode == 1 and "Traceback (most recent call last)" in stderr and "ConfigError" in stderr
        assert stderr.strip().splitlines()[-1].startswith("ledref: error: ")
    crash = ledref_command("info", c.base, "--debug", code=CRASH)
    assert crash.returncode == 3 and "ZeroDivisionError" in crash.stderr.decode() and "Traceback" in \
        crash.stderr.decode()


# ------------------------------------------------------------------------------------------------ whole classes

class OpenedFiles:
    """Every file ledref asks to open while active: Python's open (an audit hook) and the safetensors reader
    (wrapped where the checkpoint module calls it)."""

    def __init__(self, monkeypatch):
        import ledref.checkpoint
        self.paths = []
        self.active = False
        original = ledref.checkpoint.safe_open

        def traced(path, *args, **kwargs):
            if self.active:
                self.paths.append(os.fspath(path))
            return original(path, *args, **kwargs)

        monkeypatch.setattr(ledref.checkpoint, "safe_open", traced)
        if not OpenedFiles.hooks:  # an audit hook cannot be removed: one for the session, pointed at the tracer
            sys.addaudithook(lambda event, args: OpenedFiles.hooks[0](event, args))
            OpenedFiles.hooks.append(None)
        OpenedFiles.hooks[0] = self.audit

    hooks = []

    def audit(self, event, args):
        if self.active and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            self.paths.append(os.fsdecode(args[0]))

    def __enter__(self):
        self.active = True
        return self

    def __exit__(self, *exc):
        self.active = False

    def outside(self, directory):
        """The opened paths that are not inside `directory` by name (normalised, symlinks not followed)."""
        root = os.path.normpath(os.fspath(directory)) + os.sep
        return [p for p in self.paths if not os.path.normpath(os.path.abspath(p)).startswith(root)]


def outside_sentinel(c, checkpoint):
    """A valid shard beside the checkpoint directory (at ../elsewhere/x.safetensors) holding exactly the tensor
    the index sends there: if the loader followed the name, the load would succeed."""
    from safetensors.numpy import save_file
    elsewhere = checkpoint.parent / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    save_file({"led.shared.weight": c.state["led.shared.weight"]}, elsewhere / "x.safetensors")
    return elsewhere / "x.safetensors"


@pytest.mark.parametrize("name", ["../elsewhere/x.safetensors", "{outside}", "../../../../etc/passwd",
                                  "./../elsewhere/x.safetensors", "sub/../../elsewhere/x.safetensors"])
def test_no_file_outside_the_checkpoint_is_opened(name, c, monkeypatch, tmp_path):
    checkpoint = tmp_path / "ckpt"
    source = c.sharded()
    shutil.copytree(source, checkpoint)
    sentinel = outside_sentinel(c, checkpoint)
    weight_map = json.loads((checkpoint / "model.safetensors.index.json").read_text())
    # the shard that held shared.weight now holds everything else; shared.weight is only to be found outside
    from safetensors.numpy import load_file, save_file
    keep = {k: v for k, v in c.state.items() if k != "led.shared.weight"}
    for file in set(weight_map["weight_map"].values()):
        (checkpoint / file).unlink()
    save_file(keep, checkpoint / "model-00001-of-00001.safetensors")
    weight_map["weight_map"] = {k: "model-00001-of-00001.safetensors" for k in keep}
    weight_map["weight_map"]["led.shared.weight"] = name.format(outside=sentinel)
    (checkpoint / "model.safetensors.index.json").write_text(json.dumps(weight_map))
    assert load_file(sentinel)  # the sentinel is a readable shard
    with OpenedFiles(monkeypatch) as opened:
        with pytest.raises(ledref.CheckpointError, match=r"model\.safetensors\.index\.json names the shard"):
            ledref.LEDForConditionalGeneration.from_pretrained(checkpoint)
        with pytest.raises(ledref.CheckpointError, match=r"names the shard"):
            ledref.checkpoint.read_state_dict(checkpoint)
    assert opened.paths, "the tracer saw the index being read"
    assert not opened.outside(checkpoint), opened.outside(checkpoint)


def test_convert_opens_nothing_outside(c, monkeypatch, tmp_path):
    require("torch")
    import safetensors.torch  # noqa: F401  imported now, so that the trace holds only what convert opens
    src = pytorch_index(c, "../../outside.bin")
    (src.parent / "outside.bin").write_bytes(b"never read")
    from ledref.convert import convert
    with OpenedFiles(monkeypatch) as opened:
        with pytest.raises(ledref.CheckpointError, match=r"pytorch_model\.bin\.index\.json names the shard"):
            convert(src, tmp_path / "out")
    assert not opened.outside(src), opened.outside(src)
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_hub_cache_symlinks_into_the_blob_store_load(c, monkeypatch, tmp_path):
    """The Hugging Face cache keeps files in blobs/ and links them from snapshots/<commit>/: shard names are
    plain, the files behind them are outside the snapshot. This must load, and equal the tensors written."""
    source = c.sharded()
    folder = tmp_path / "models--own--tiny"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = folder / "snapshots" / commit
    (folder / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for item in source.iterdir():
        blob = folder / "blobs" / hashlib.sha256(item.read_bytes()).hexdigest()
        shutil.copy(item, blob)
        (snapshot / item.name).symlink_to(os.path.relpath(blob, snapshot))
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    assert (snapshot / "model.safetensors.index.json").is_symlink()
    with OpenedFiles(monkeypatch) as opened:
        for path in (snapshot, folder):
            model = ledref.LEDForConditionalGeneration.from_pretrained(path)
            params = flat_params(model._host_params)
            for key, value in c.state.items():
                np.testing.assert_array_equal(params[key.removeprefix("led.")], value)
    assert not opened.outside(folder), opened.outside(folder)


def test_convert_never_runs_a_pickle(c, tmp_path):
    """A pickle whose loading would create a file: plain pickle creates it (the payload is live), convert
    refuses the file in one line that does not mention the unsafe option, and creates nothing."""
    require("torch")
    from ledref.convert import convert
    for zipped in (False, True):
        marker = tmp_path / f"pwned_{zipped}"
        src = malicious_pickle(c, marker, zipped)
        if not zipped:
            pickle.loads((src / "pytorch_model.bin").read_bytes()).get("led.shared.weight").close()
            assert marker.exists(), "the payload runs under plain pickle"
            marker.unlink()
        with pytest.raises(ledref.CheckpointError) as raised:
            convert(src, tmp_path / f"out_{zipped}")
        message = str(raised.value)
        assert "pytorch_model.bin" in message and ".open, which is not a tensor" in message and "\n" not in message
        assert "weights_only" not in message
        assert not marker.exists()
        assert not (tmp_path / f"out_{zipped}" / "model.safetensors").exists()


ABSURD = {"decoder_layers": 10_000_000, "encoder_layers": 2 ** 40, "vocab_size": 10 ** 12, "d_model": 2 ** 31,
          "encoder_ffn_dim": 10 ** 15, "max_encoder_position_embeddings": 10 ** 13, "num_labels": 10 ** 11}
HELD = {"decoder_layers": 4000, "vocab_size": 2 ** 24, "max_decoder_position_embeddings": 2 ** 24,
        "decoder_ffn_dim": 2 ** 20}


def test_an_absurd_config_fails_fast_without_growing_memory(c, tmp_path):
    """In a fresh process: each absurd config (beyond plausibility, or plausible but not what the weights hold)
    fails with a ConfigError naming the field in well under a second, and the peak resident memory of the
    process does not grow."""
    cases = {}
    for field, value in {**ABSURD, **{f"{k} (weights)": v for k, v in HELD.items()}}.items():
        cases[field] = str(c.config_variant(**{field.split()[0]: value}))
    script = textwrap.dedent("""
        import json, resource, sys, time
        import ledref
        cases = json.loads(sys.argv[1])
        ledref.LEDForConditionalGeneration.from_pretrained(cases.pop("good"))  # everything imported and warm
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = {}
        for field, path in cases.items():
            start = time.perf_counter()
            try:
                ledref.LEDForConditionalGeneration.from_pretrained(path)
                error = None
            except Exception as e:
                error = f"{type(e).__name__}: {e}"
            seconds = time.perf_counter() - start
            grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
            out[field] = dict(error=error, seconds=seconds, grown_kb=grown)
        print(json.dumps(out))
    """)
    run = subprocess.run([sys.executable, "-c", script, json.dumps({**cases, "good": str(c.base)})],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    for field, result in results.items():
        name = field.split()[0]
        assert result["error"] and result["error"].startswith("ConfigError: "), (field, result)
        assert f"{name}=" in result["error"], (field, result)
        assert result["seconds"] < 0.25, (field, result)
        assert result["grown_kb"] < 20_000, (field, result)  # ru_maxrss is in KiB on Linux


def test_fuzzed_files_load_correctly_or_raise_a_ledref_error(c, tmp_path):
    """Hypothesis corrupts model.safetensors byte by byte, mutates config.json and the index, under an address
    space limit in a fresh process (tests/fuzz_loader.py): the only outcomes allowed are a load equal to the
    file's own tensors, or a ledref error."""
    examples = os.environ.get("LEDREF_FUZZ_EXAMPLES", "500")
    run = subprocess.run([sys.executable, str(TESTS / "fuzz_loader.py"), str(tmp_path), examples],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    for kind in ("safetensors", "config", "index"):
        assert report[kind]["examples"] >= int(examples) // 2, report
        assert report[kind]["loaded"] + report[kind]["ledref_errors"] == report[kind]["examples"], report
    assert report["safetensors"]["ledref_errors"] > 0 and report["safetensors"]["loaded"] > 0, report
    assert report["config"]["ledref_errors"] > 0 and report["index"]["ledref_errors"] > 0, report
