"""Read LED weights from a directory laid out like a Hugging Face repo (model.safetensors or a sharded
model.safetensors.index.json), check every key and shape against the config, and nest them the way
the model code takes them: params["encoder"]["layers"][0]["fc1"]["weight"] is the checkpoint's
`led.encoder.layers.0.fc1.weight`.
"""

import os

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from .checks import check_choice, check_int, check_path, inside, make_directory, read_json, reason, short
from .errors import CheckpointError, CheckpointNotFoundError, ConfigError, InputError

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
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")  # safetensors' names of the dtypes weights may be stored in


def _check_config(config):
    from .config import LEDConfig
    if not isinstance(config, LEDConfig):
        raise ConfigError(f"config is a {type(config).__name__}; expected an LEDConfig (LEDConfig.from_dict makes "
                          f"one from a dict)")


def _check_head(head):
    if head is not None and (not isinstance(head, str) or head not in HEADS):
        raise CheckpointError(f"head={short(head)}; expected None or one of {list(HEADS)}")


def base_shapes(config):
    """Expected shape of every key of the encoder-decoder (no `led.` prefix, no head)."""
    _check_config(config)
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
    """The safetensors files of a checkpoint directory: model.safetensors, or the shards that
    model.safetensors.index.json names. A shard name must stay inside the directory (see
    checks.inside: judged on the name, so the Hugging Face cache's symlinks into its blob store work);
    any other is a CheckpointError naming the index and the shard, and nothing outside is opened."""
    path = check_path("path", path, InputError)
    if not os.path.isdir(path):
        raise CheckpointNotFoundError(f"checkpoint directory {path} does not exist or is not a directory")
    single, index = os.path.join(path, SAFETENSORS), os.path.join(path, SAFETENSORS_INDEX)
    if os.path.isfile(single):
        return [single]
    if os.path.isfile(index):
        return [os.path.join(path, name) for name in shard_names(index)]
    present = sorted(os.listdir(path))
    if any(name.startswith("pytorch_model") and name.endswith((".bin", ".bin.index.json")) for name in present):
        raise CheckpointNotFoundError(
            f"{path} holds only PyTorch weights (pytorch_model.bin); ledref reads safetensors. Convert the "
            f"directory first (safetensors' own converter, or `ledref convert SRC DST` where available)")
    raise CheckpointNotFoundError(f"{path} has neither {SAFETENSORS} nor {SAFETENSORS_INDEX}; "
                                  f"files there: {present}")


def shard_names(index):
    """The distinct shard file names of an index file (model.safetensors.index.json or
    pytorch_model.bin.index.json), sorted, each checked to stay inside the index's directory and to be a
    file there."""
    data = read_json(index, CheckpointError, "checkpoint index")
    weight_map = data.get("weight_map")
    if not isinstance(weight_map, dict):
        raise CheckpointError(f"checkpoint index {index} has no 'weight_map' object (tensor name -> shard file)")
    names = set()
    for key, name in weight_map.items():
        if not inside(name):
            raise CheckpointError(f"checkpoint index {index} names the shard {short(name)} for {short(key)}; "
                                  f"expected a file name inside the checkpoint directory (relative, no '..')")
        names.add(name)
    directory = os.path.dirname(index)
    for name in sorted(names):
        if not os.path.isfile(os.path.join(directory, name)):
            raise CheckpointNotFoundError(f"shard {os.path.join(directory, name)} named in {index} does not exist")
    return sorted(names)


def _open(file):
    """safe_open(file), or a CheckpointError naming the file and what is wrong with it."""
    try:
        return safe_open(file, framework="numpy")
    except Exception as e:  # SafetensorError, OSError: corrupt header, truncated file, unreadable file
        raise CheckpointError(f"{file} is not a readable safetensors file ({_safetensors_reason(e)})") from None


def _safetensors_reason(e):
    return reason(e).replace("SafetensorError: ", "").replace("Error while deserializing header: ", "header: ")


def read_headers(files):
    """{key: (shape, safetensors dtype name, file)} of every tensor of the files, from their headers
    only. A key in two files is an error."""
    headers = {}
    for file in files:
        with _open(file) as f:
            for key in f.keys():
                if key in headers:
                    raise CheckpointError(f"tensor {key} is in both {headers[key][2]} and {file}; expected it in "
                                          f"one file")
                tensor = f.get_slice(key)
                headers[key] = (tuple(tensor.get_shape()), tensor.get_dtype(), file)
    return headers


def read_tensors(headers, keys):
    """The tensors `keys` (names as in the file) as NumPy arrays, dtype as stored; a tensor that cannot be
    read is a CheckpointError naming it and its file."""
    by_file = {}
    for key in keys:
        by_file.setdefault(headers[key][2], []).append(key)
    state = {}
    for file, names in by_file.items():
        with _open(file) as f:
            for key in names:
                try:
                    state[key] = f.get_tensor(key)
                except Exception as e:
                    raise CheckpointError(f"tensor {key} of {file} cannot be read "
                                          f"({_safetensors_reason(e)})") from None
    return state


def read_state_dict(path):
    """Every tensor of the checkpoint as a NumPy array (dtype as stored), keyed by the checkpoint's names."""
    headers = read_headers(weight_files(path))
    return read_tensors(headers, list(headers))


def tensor_shapes(path):
    """{key: (shape, dtype name)} of every tensor of a checkpoint, read from the file headers only."""
    return {key: (shape, dtype) for key, (shape, dtype, _) in read_headers(weight_files(path)).items()}


def check_config(config, headers, path):
    """The config's sizes against what the weight files hold (`headers` keyed without the `led.` prefix),
    before anything proportional to them is built: layer counts no larger than the layers present,
    vocabulary, model and feed-forward sizes and position counts equal to the shapes of the tensors that
    carry them. A ConfigError names the field."""
    for side in ("encoder", "decoder"):
        field = f"{side}_layers"
        prefix = f"{side}.layers."
        numbers = (k[len(prefix):].split(".", 1)[0] for k in headers if k.startswith(prefix))
        present = {int(part) for part in numbers if is_index(part)}
        n = getattr(config, field)
        held = max(present) + 1 if present else 0
        if n > held and (present or any(k.startswith(f"{side}.") for k in headers)):
            what = f"{side} layers up to {held - 1}" if present else f"no {side} layers"
            raise ConfigError(f"config field {field}={n}, but the weights in {path} hold {what}; expected the "
                              f"config of these weights")
    shared = next((k for k in ("shared.weight",) + TIED_COPIES if k in headers), None)
    carriers = [] if shared is None else [("vocab_size", shared, 0), ("d_model", shared, 1)]
    for side in ("encoder", "decoder"):
        carriers += [(f"max_{side}_position_embeddings", f"{side}.embed_positions.weight", 0),
                     (f"{side}_ffn_dim", f"{side}.layers.0.fc1.weight", 0)]
    for field, key, axis in carriers:
        shape = headers[key][0] if key in headers else ()
        if len(shape) == 2 and getattr(config, field) != shape[axis]:
            raise ConfigError(f"config field {field}={getattr(config, field)}, but {key} in {path} has shape "
                              f"{shape}; expected the config of these weights")


def load_params(path, config, head=None, dtype="float32"):
    """Checked, nested parameters for the encoder-decoder plus `head` (None, "lm", "qa", "classification").

    Keys may carry the `led.` prefix or not; tied copies of shared.weight are accepted and must equal it;
    keys of other LED heads are ignored (as when loading LEDModel from a summarisation checkpoint);
    anything else that is missing, unexpected or misshapen is reported, all at once, in a CheckpointError.
    Everything is decided from the files' headers first (the config's sizes too, see `check_config`);
    only then are the tensors the model needs read.
    """
    _check_config(config)
    _check_head(head)
    check_choice("dtype", dtype, ("float32", "float64"), InputError)
    headers = read_headers(weight_files(path))
    names = {}  # key without the `led.` prefix -> name in the file
    for key in headers:
        bare = strip_prefix(key)
        if bare in names:
            raise CheckpointError(f"checkpoint {path} holds both {names[bare]} and {key}; expected one of them")
        names[bare] = key
    shapes = {bare: headers[key][0] for bare, key in names.items()}
    check_config(config, {bare: headers[key] for bare, key in names.items()}, path)
    expected = {**base_shapes(config), **head_shapes(config, head)}
    other_heads = _other_heads(config, head)

    source = dict(names)  # the file's tensor each expected key is read from
    if "shared.weight" not in source:  # a checkpoint may hold only a tied copy
        for copy in TIED_COPIES:
            if copy in source:
                source["shared.weight"], shapes["shared.weight"] = source[copy], shapes[copy]
                break
    zero_bias = head == "lm" and "final_logits_bias" not in source  # as transformers: absent means zeros

    missing = [k for k in expected if k not in source and not (zero_bias and k == "final_logits_bias")]
    unexpected = [k for k in names if k not in expected and k not in TIED_COPIES and k not in other_heads]
    mismatched = [(k, shapes[k], shape) for k, shape in expected.items() if k in source and shapes[k] != shape]
    shared = shapes.get("shared.weight")
    copies = [k for k in TIED_COPIES if k in names and names[k] != source.get("shared.weight")]
    misshapen_copies = [k for k in copies if shapes[k] != shared]
    if missing or unexpected or mismatched or misshapen_copies:
        raise _mismatch(f"checkpoint {path} does", expected, shapes, missing, unexpected, mismatched,
                        misshapen_copies)
    wanted = [source[k] for k in expected if k in source] + [names[k] for k in copies]
    for key in wanted:
        if headers[key][1] not in FLOAT_DTYPES:
            raise CheckpointError(f"tensor {key} of {headers[key][2]} has dtype {headers[key][1]}; expected one of "
                                  f"{', '.join(FLOAT_DTYPES)}")
    state = read_tensors(headers, wanted)
    untied = [k for k in copies if not np.array_equal(state[names[k]], state[source["shared.weight"]])]
    if untied:
        raise _mismatch(f"checkpoint {path} does", expected, shapes, [], [], [], untied)
    np_dtype = np.dtype(dtype)
    params = {k: np.asarray(state[source[k]], dtype=np_dtype) for k in expected if k in source}
    if zero_bias:
        params["final_logits_bias"] = np.zeros(expected["final_logits_bias"], dtype=np_dtype)
    return nest({k: params[k] for k in expected})


def _other_heads(config, head):
    """The keys of the heads other than `head`: a checkpoint (or params) may hold them; they are ignored."""
    return {k for other in HEADS if other != head for k in head_shapes(config, other)}


def _mismatch(what, expected, shapes, missing, unexpected, mismatched, untied):
    lines = [f"{what} not match its config:"]
    lines += [f"  missing key {k} (expected shape {expected[k]})" for k in missing]
    lines += [f"  unexpected key {k} (shape {shapes[k]})" for k in unexpected]
    lines += [f"  key {k} has shape {found}, expected {want}" for k, found, want in mismatched]
    lines += [f"  key {k} differs from shared.weight; LED ties them" for k in untied]
    return CheckpointError("\n".join(lines), missing, unexpected, mismatched)


def check_params(params, config, head=None):
    """Nested parameters as `load_params` returns them (or as a caller built them) against the config: the
    same keys and shapes, floating-point arrays. A CheckpointError lists what differs."""
    _check_config(config)
    if not isinstance(params, dict):
        raise CheckpointError(f"params is a {type(params).__name__}; expected the nested dict of weights that "
                              f"checkpoint.load_params returns")
    expected = {**base_shapes(config), **head_shapes(config, head)}
    other_heads = _other_heads(config, head)
    flat = {k: v for k, v in flatten(params).items() if k not in other_heads}  # as the loader: other heads ignored
    shapes = {k: tuple(getattr(v, "shape", ())) for k, v in flat.items()}
    missing = [k for k in expected if k not in flat]
    unexpected = [k for k in flat if k not in expected]
    mismatched = [(k, shapes[k], shape) for k, shape in expected.items() if k in flat and shapes[k] != shape]
    if missing or unexpected or mismatched:
        raise _mismatch("params do", expected, shapes, missing, unexpected, mismatched, [])
    for k, v in flat.items():
        if "float" not in str(getattr(v, "dtype", "")):
            raise CheckpointError(f"params {k} is a {type(v).__name__} of dtype {getattr(v, 'dtype', None)}; "
                                  f"expected a float32 or float64 array")


def random_state_dict(config, head="lm", seed=0, dtype="float32"):
    """Random weights in transformers' key layout (`led.` prefix when there is a head): matrices
    N(0, 0.3^2), embeddings N(0, 1), LayerNorm weights 1 + N(0, 0.3^2), biases N(0, 0.3^2). For examples
    and tests that need a checkpoint without transformers; nothing is left at a zero init."""
    _check_head(head)
    check_int("seed", seed, InputError, minimum=0)
    try:
        floating = np.dtype(dtype).kind == "f"
    except (TypeError, ValueError):
        floating = False
    if not floating:
        raise InputError(f"dtype={short(dtype)}; expected a NumPy floating-point dtype, e.g. 'float32'")
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
    _check_config(config)
    if not isinstance(state_dict, dict) or not all(isinstance(k, str) and isinstance(v, np.ndarray)
                                                   for k, v in state_dict.items()):
        raise CheckpointError("state_dict must be a dict of tensor name (str) -> NumPy array")
    path = make_directory("path", path, InputError)
    config.save_pretrained(path)
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in state_dict.items()}, os.path.join(path, SAFETENSORS),
                  metadata={"format": "pt"})
    except OSError:
        raise
    except Exception as e:  # a dtype safetensors cannot store
        raise CheckpointError(f"cannot write the state_dict as safetensors ({reason(e)})") from None


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


def strip_prefix(key):
    """A tensor name without the `led.` prefix a model with a head stores its encoder-decoder under."""
    return key[len("led."):] if key.startswith("led.") else key


def nest(flat):
    """{"encoder.layers.0.fc1.weight": a} -> {"encoder": {"layers": [{"fc1": {"weight": a}}]}}"""
    if not isinstance(flat, dict) or not all(isinstance(k, str) for k in flat):
        raise CheckpointError(f"flat={short(flat)}; expected a dict of dotted tensor name (str) -> array")
    root = {}
    for key, value in flat.items():
        node = root
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise CheckpointError(f"key {key} nests under another key's tensor; expected a tree of names")
        if parts[-1] in node:
            raise CheckpointError(f"key {key} is both a tensor and a group of tensors; expected a tree of names")
        node[parts[-1]] = value
    return _lists(root)


def flatten(nested):
    """The inverse of nest: {"encoder": {"layers": [{"fc1": {"weight": a}}]}} -> {"encoder.layers.0.fc1.weight": a}"""
    items = nested.items() if isinstance(nested, dict) else enumerate(nested)
    flat = {}
    for key, value in items:
        if isinstance(value, (dict, list, tuple)):
            flat.update({f"{key}.{inner}": v for inner, v in flatten(value).items()})
        else:
            flat[str(key)] = value
    return flat


def is_index(part):
    """Whether a part of a tensor name is a layer number: ASCII digits only (str.isdigit also takes '²',
    which int() refuses)."""
    return part.isascii() and part.isdigit()


def _lists(node):
    if not isinstance(node, dict):
        return node
    if node and all(is_index(k) for k in node):
        if set(node) != {str(i) for i in range(len(node))}:
            raise CheckpointError(f"numbered keys {sorted(node, key=int)[:5]}... are not 0, 1, 2, ...; expected "
                                  f"consecutive layer numbers")
        return [_lists(node[str(i)]) for i in range(len(node))]
    return {k: _lists(v) for k, v in node.items()}
