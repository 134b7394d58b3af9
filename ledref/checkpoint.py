"""Read LED weights from a directory laid out like a Hugging Face repo (model.safetensors or a sharded
model.safetensors.index.json), check every key and shape against the config, and nest them the way
the model code takes them: params["encoder"]["layers"][0]["fc1"]["weight"] is the checkpoint's
`led.encoder.layers.0.fc1.weight`.
"""

import json
import os

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from .errors import CheckpointError, CheckpointNotFoundError

try:  # lets safetensors' numpy reader return bfloat16 tensors
    import ml_dtypes  # noqa: F401
except ImportError:  # pragma: no cover
    pass

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
# copies of shared.weight that some checkpoints carry (transformers 4.x writes them, 5.x does not)
TIED_COPIES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight")
HEADS = ("lm", "qa", "classification")
BASE_MODULES = ("shared", "encoder", "decoder")  # the encoder-decoder's top-level names; heads add others


def base_shapes(config):
    """Expected shape of every key of the encoder-decoder (no `led.` prefix, no head)."""
    D, V = config.d_model, config.vocab_size
    shapes = {"shared.weight": (V, D)}

    def linear(name, n_out, n_in):
        shapes[f"{name}.weight"] = (n_out, n_in)
        shapes[f"{name}.bias"] = (n_out,)

    def norm(name):
        shapes[f"{name}.weight"] = shapes[f"{name}.bias"] = (D,)

    for side, n_layers, ffn, n_pos in (("encoder", config.encoder_layers, config.encoder_ffn_dim,
                                        config.max_encoder_position_embeddings),
                                       ("decoder", config.decoder_layers, config.decoder_ffn_dim,
                                        config.max_decoder_position_embeddings)):
        shapes[f"{side}.embed_positions.weight"] = (n_pos, D)
        norm(f"{side}.layernorm_embedding")
        for i in range(n_layers):
            layer = f"{side}.layers.{i}"
            if side == "encoder":
                for proj in ("query", "key", "value", "query_global", "key_global", "value_global"):
                    linear(f"{layer}.self_attn.longformer_self_attn.{proj}", D, D)
                linear(f"{layer}.self_attn.output", D, D)
            else:
                for attn in ("self_attn", "encoder_attn"):
                    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                        linear(f"{layer}.{attn}.{proj}", D, D)
                    norm(f"{layer}.{attn}_layer_norm")
            if side == "encoder":
                norm(f"{layer}.self_attn_layer_norm")
            linear(f"{layer}.fc1", ffn, D)
            linear(f"{layer}.fc2", D, ffn)
            norm(f"{layer}.final_layer_norm")
    return shapes


def head_shapes(config, head):
    """Key -> shape of the weights a head adds to the base model: "lm" (final_logits_bias), "qa"
    (qa_outputs), "classification" (classification_head); None adds nothing."""
    D = config.d_model
    if head == "lm":
        return {"final_logits_bias": (1, config.vocab_size)}
    if head == "qa":
        return {"qa_outputs.weight": (2, D), "qa_outputs.bias": (2,)}
    if head == "classification":
        return {"classification_head.dense.weight": (D, D), "classification_head.dense.bias": (D,),
                "classification_head.out_proj.weight": (config.num_labels, D),
                "classification_head.out_proj.bias": (config.num_labels,)}
    return {}


def weight_files(path):
    """The safetensors files of a checkpoint directory and, for a sharded one, which file holds each key."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise CheckpointNotFoundError(f"checkpoint directory {path} does not exist or is not a directory")
    single, index = os.path.join(path, SAFETENSORS), os.path.join(path, SAFETENSORS_INDEX)
    if os.path.isfile(single):
        return [single]
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f).get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{index} has no 'weight_map' object")
        files = sorted({os.path.join(path, name) for name in weight_map.values()})
        for file in files:
            if not os.path.isfile(file):
                raise CheckpointNotFoundError(f"shard {file} named in {index} does not exist")
        return files
    present = sorted(os.listdir(path))
    if any(name.startswith("pytorch_model") and name.endswith((".bin", ".bin.index.json")) for name in present):
        raise CheckpointNotFoundError(
            f"{path} holds only PyTorch weights (pytorch_model.bin); ledref reads safetensors. Convert the "
            f"directory first (safetensors' own converter, or `ledref convert SRC DST` where available)")
    raise CheckpointNotFoundError(f"{path} has neither {SAFETENSORS} nor {SAFETENSORS_INDEX}; "
                                  f"files there: {present}")


def read_state_dict(path):
    """Every tensor of the checkpoint as a NumPy array (dtype as stored), keyed by the checkpoint's names."""
    state = {}
    for file in weight_files(path):
        with safe_open(file, framework="numpy") as f:
            for key in f.keys():
                state[key] = f.get_tensor(key)
    return state


def tensor_shapes(path):
    """{key: (shape, dtype name)} of every tensor of a checkpoint, read from the file headers only."""
    shapes = {}
    for file in weight_files(path):
        with safe_open(file, framework="numpy") as f:
            for key in f.keys():
                tensor = f.get_slice(key)
                shapes[key] = (tuple(tensor.get_shape()), tensor.get_dtype())
    return shapes


def load_params(path, config, head=None, dtype="float32"):
    """Checked, nested parameters for the encoder-decoder plus `head` (None, "lm", "qa", "classification").

    Keys may carry the `led.` prefix or not; tied copies of shared.weight are accepted and must equal it;
    keys of other LED heads are ignored (as when loading LEDModel from a summarisation checkpoint);
    anything else that is missing, unexpected or misshapen is reported, all at once, in a CheckpointError.
    """
    state = {_strip_prefix(k): v for k, v in read_state_dict(path).items()}
    expected = {**base_shapes(config), **head_shapes(config, head)}
    other_heads = set()
    for other in HEADS:
        if other != head:
            other_heads |= set(head_shapes(config, other))

    if "shared.weight" not in state:  # a checkpoint may hold only a tied copy
        for copy in TIED_COPIES:
            if copy in state:
                state["shared.weight"] = state[copy]
                break
    if head == "lm" and "final_logits_bias" not in state:  # as transformers: absent means zeros
        state["final_logits_bias"] = np.zeros(expected["final_logits_bias"], dtype=np.float32)

    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected and k not in TIED_COPIES and k not in other_heads]
    mismatched = [(k, tuple(state[k].shape), shape) for k, shape in expected.items()
                  if k in state and tuple(state[k].shape) != shape]
    shared = state.get("shared.weight")
    untied = [k for k in TIED_COPIES if k in state and shared is not None
              and (state[k].shape != shared.shape or not np.array_equal(state[k], shared))]
    if missing or unexpected or mismatched or untied:
        lines = [f"checkpoint {os.fspath(path)} does not match its config:"]
        lines += [f"  missing key {k} (expected shape {expected[k]})" for k in missing]
        lines += [f"  unexpected key {k} (shape {tuple(state[k].shape)})" for k in unexpected]
        lines += [f"  key {k} has shape {found}, expected {want}" for k, found, want in mismatched]
        lines += [f"  key {k} differs from shared.weight; LED ties them" for k in untied]
        raise CheckpointError("\n".join(lines), missing, unexpected, mismatched)

    np_dtype = np.dtype(dtype)
    return nest({k: np.asarray(state[k], dtype=np_dtype) for k in expected})


def random_state_dict(config, head="lm", seed=0, dtype="float32"):
    """Random weights in transformers' key layout (`led.` prefix when there is a head): matrices
    N(0, 0.3^2), embeddings N(0, 1), LayerNorm weights 1 + N(0, 0.3^2), biases N(0, 0.3^2). For examples
    and tests that need a checkpoint without transformers; nothing is left at a zero init."""
    rng = np.random.default_rng(seed)
    shapes = {**{("led." if head else "") + k: v for k, v in base_shapes(config).items()}, **head_shapes(config, head)}
    state = {}
    for key, shape in shapes.items():
        scale = 1.0 if "embed" in key or "shared" in key else 0.3
        offset = 1.0 if "norm" in key and key.endswith("weight") else 0.0
        state[key] = (offset + scale * rng.standard_normal(shape)).astype(dtype)
    return state


def save_checkpoint(path, config, state_dict):
    """Write config.json and model.safetensors into a directory, as save_pretrained does."""
    config.save_pretrained(path)
    save_file({k: np.ascontiguousarray(v) for k, v in state_dict.items()}, os.path.join(path, SAFETENSORS),
              metadata={"format": "pt"})


def state_dict(params, head=None):
    """Nested parameters (as load_params gives them) as a flat dict in transformers' key layout: the
    encoder-decoder's keys with the `led.` prefix when there is a head, the head's keys as they are, the
    tied embedding once (as transformers 5 writes it)."""
    prefix = "led." if head is not None else ""
    return {(prefix if key.split(".")[0] in BASE_MODULES else "") + key: value
            for key, value in flatten(params).items()}


def save_params(path, params, head=None):
    """Write nested parameters as model.safetensors in a directory (see state_dict for the layout)."""
    os.makedirs(path, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in state_dict(params, head).items()},
              os.path.join(path, SAFETENSORS), metadata={"format": "pt"})


def _strip_prefix(key):
    return key[len("led."):] if key.startswith("led.") else key


def nest(flat):
    """{"encoder.layers.0.fc1.weight": a} -> {"encoder": {"layers": [{"fc1": {"weight": a}}]}}"""
    root = {}
    for key, value in flat.items():
        node = root
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def flatten(nested):
    """The inverse of nest: {"encoder": {"layers": [{"fc1": {"weight": a}}]}} -> {"encoder.layers.0.fc1.weight": a}"""
    items = nested.items() if isinstance(nested, dict) else enumerate(nested)
    flat = {}
    for key, value in items:
        if isinstance(value, (dict, list)):
            flat.update({f"{key}.{inner}": v for inner, v in flatten(value).items()})
        else:
            flat[str(key)] = value
    return flat


def _lists(node):
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_lists(node[str(i)]) for i in range(len(node))]
    return {k: _lists(v) for k, v in node.items()}
