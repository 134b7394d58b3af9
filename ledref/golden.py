"""Golden files: the inputs, the config and every intermediate of a forward pass, in one safetensors file,
for engineers checking their own LED or Longformer implementation tensor by tensor (with `ledref compare`).

A catalogue of named cases covers the edge cases of Longformer's layout. Cases that change the window
(window_2, per_layer_windows, window_ge_length, long_4096) need a model made for them: `tiny_model(case)`
makes a small random one (float32 weights, loaded in any dtype), which is what `ledref golden --tiny` uses;
`ledref golden --tiny` writes that checkpoint beside each golden file (`<case>/config.json` and
`<case>/model.safetensors`), so that another implementation can load the very weights.
"""

import hashlib
import json
import os
import tempfile

import numpy as np
from safetensors.numpy import save_file

from .checkpoint import random_state_dict, save_checkpoint
from .checks import check_choice, check_int, check_path, inside, short
from .config import LEDConfig
from .errors import InputError
from .recorder import Recorder

TINY = dict(vocab_size=100, d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_encoder_position_embeddings=4096,
            max_decoder_position_embeddings=32, attention_window=8)

# name: (what it covers, config overrides of the tiny model, rows' real lengths, global positions per row)
CASES = {
    "no_global": ("no global tokens, one padded row", {}, [37, 30], None),
    "global_first": ("the first token global, length a multiple of the window", {}, [48, 48], [[0], [0]]),
    "globals_mixed": ("several globals, different counts per row (3, 1, 0)", {}, [40, 33, 21],
                      [[0, 17, 39], [5], []]),
    "global_on_padding": ("a global flag on a padded position (it does not count)", {}, [29, 20], [[0], [0, 25]]),
    "padding_not_multiple": ("length not a multiple of the window, rows padded differently", {}, [45, 38, 12],
                             [[0], [0], [0]]),
    "window_ge_length": ("the window longer than the input", {"attention_window": 32}, [9, 6], [[0], [3]]),
    "window_2": ("window 2: one neighbour each side", {"attention_window": 2}, [20, 15], [[0, 10], [4]]),
    "per_layer_windows": ("a different window per layer, not dividing each other",
                          {"attention_window": [6, 8], "max_encoder_position_embeddings": 4096}, [30, 25],
                          [[0], [12]]),
    "long_4096": ("a long input: 4,096 tokens, the first global", {"attention_window": 256}, [4096], [[0]]),
}


INPUTS = {"input_ids", "attention_mask", "global_attention_mask", "decoder_input_ids", "decoder_attention_mask"}
"""The forward arguments a golden file records."""


def _check_case(name):
    if not isinstance(name, str) or name not in CASES:
        raise InputError(f"unknown golden case {short(name)}; expected one of {sorted(CASES)}")


def case_inputs(name, vocab_size, seed=0):
    """The inputs of a catalogue case: input_ids, attention_mask, global_attention_mask, decoder_input_ids."""
    _check_case(name)
    # ids are drawn from 3 up (after <s>, <pad> and </s>)
    check_int("vocab_size", vocab_size, InputError, minimum=4, maximum=2 ** 24)
    check_int("seed", seed, InputError, minimum=0)
    _, _, lengths, globals_ = CASES[name]
    rng = np.random.default_rng(seed)
    length = max(lengths)
    attention_mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
    input_ids = np.where(attention_mask == 1, rng.integers(3, vocab_size, (len(lengths), length)), 1)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask,
              "decoder_input_ids": rng.integers(3, vocab_size, (len(lengths), 7))}
    if globals_ is not None:
        global_attention_mask = np.zeros_like(input_ids)
        for row, positions in enumerate(globals_):
            global_attention_mask[row, positions] = 1
        inputs["global_attention_mask"] = global_attention_mask
    return inputs


def tiny_model(case=None, dtype="float64", seed=0, path=None):
    """A small random LEDForConditionalGeneration for a case (its config overrides applied), loaded in
    `dtype`. Its weights are float32 (ledref.checkpoint.random_state_dict(seed)), the same for every dtype;
    the checkpoint is written to `path` and kept there, or to a temporary directory that is removed."""
    from .model import DTYPES, LEDForConditionalGeneration
    if case is not None:
        _check_case(case)
    check_choice("dtype", dtype, DTYPES, InputError)
    check_int("seed", seed, InputError, minimum=0)
    overrides = CASES[case][1] if case is not None else {}
    config = LEDConfig(**{**TINY, **overrides})
    if path is not None:
        save_checkpoint(path, config, random_state_dict(config, seed=seed, dtype="float32"))
        return LEDForConditionalGeneration.from_pretrained(path, dtype=dtype)
    with tempfile.TemporaryDirectory(prefix="ledref-tiny-") as path:
        return tiny_model(case, dtype, seed, path)


def config_hash(config):
    """The first 16 hex digits of the SHA-256 of the config as sorted JSON: names a model's shape."""
    if not isinstance(config, LEDConfig):
        raise InputError(f"config is a {type(config).__name__}; expected an LEDConfig")
    return hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def record(model, inputs, only=None):
    """Every intermediate of `model(**inputs)` (those matching the patterns `only`, see ledref.recorder), by
    name, as NumPy arrays."""
    from .backend import to_numpy
    from .model import LEDPreTrainedModel
    if not isinstance(model, LEDPreTrainedModel):
        raise InputError(f"model is a {type(model).__name__}; expected a ledref model (LEDForConditionalGeneration, "
                         f"...)")
    if not isinstance(inputs, dict) or not set(inputs) <= INPUTS:
        raise InputError(f"inputs={short(inputs)}; expected a dict with keys among {sorted(INPUTS)}")
    recorder = Recorder(only=only)
    model(**inputs, recorder=recorder)
    return {name: np.asarray(to_numpy(value)) for name, value in recorder.tensors.items()}


def write_golden(model, inputs, out_dir, case, seed=0, checkpoint=None):
    """Write <out_dir>/<case>.safetensors: inputs.* and every intermediate, with metadata (ledref version,
    dtype, case, config and its hash, seed, and `checkpoint`: where the weights are, when given). Returns
    the file's path."""
    from . import __version__
    from .backend import to_numpy
    if not isinstance(case, str) or not inside(case) or "/" in case:
        raise InputError(f"case={short(case)}; expected a plain name for the file <case>.safetensors")
    out_dir = check_path("out_dir", out_dir, InputError)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError(f"out_dir={short(out_dir)} exists and is not a directory")
    check_int("seed", seed, InputError, minimum=0)
    intermediates = record(model, inputs)
    tensors = {f"inputs.{k}": np.asarray(v if isinstance(v, (list, tuple)) else to_numpy(v)) for k, v in inputs.items()}
    tensors.update(intermediates)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{case}.safetensors")
    metadata = {"ledref_version": __version__, "dtype": model.dtype, "case": case, "seed": str(seed),
                "config_hash": config_hash(model.config), "config": json.dumps(model.config.to_dict())}
    if checkpoint is not None:
        metadata["checkpoint"] = os.fspath(checkpoint)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path, metadata=metadata)
    return path
