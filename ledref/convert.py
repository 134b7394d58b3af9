"""`ledref convert`: a pytorch_model.bin checkpoint directory -> a safetensors one (torch needed here only)."""

import os
import re
import shutil
import warnings

from .checkpoint import TIED_COPIES, shard_names, strip_prefix
from .checks import check_path, reason
from .errors import CheckpointError, CheckpointNotFoundError, InputError, LedrefError

COPIED = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
          "special_tokens_map.json", "vocab.json", "merges.txt"]


def pytorch_files(src):
    """The PyTorch weight files of a checkpoint directory: pytorch_model.bin, or the shards its index names
    (names that stay inside the directory, as checkpoint.shard_names checks)."""
    single, index = os.path.join(src, "pytorch_model.bin"), os.path.join(src, "pytorch_model.bin.index.json")
    if os.path.isfile(single):
        return [single]
    if os.path.isfile(index):
        return [os.path.join(src, name) for name in shard_names(index)]
    raise CheckpointNotFoundError(f"{src} has neither pytorch_model.bin nor pytorch_model.bin.index.json")


def load_tensors(torch, file):
    """{name: tensor} of one PyTorch weight file, read with torch.load(weights_only=True): the pickle may
    only rebuild tensors and plain containers, never run code. A file that is not that is a CheckpointError
    naming it (torch's own message is not passed on: it suggests the unsafe way round)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{file} is not a PyTorch checkpoint of plain tensors ({_refusal(e)}); ledref loads "
                              f"only tensors and never runs code from a pickle") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise CheckpointError(f"{file} holds a {type(state).__name__}, not a dict of tensor name -> tensor")
    return state


def _refusal(e):
    """Why torch.load refused a file, in a few words of ours."""
    text = str(e)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return f"its pickle calls {found.group(1)}, which is not a tensor"
    if "zip archive" in text or "central directory" in text:
        return "a damaged or truncated zip archive"
    if "weights" in text.lower() or "pickle" in text.lower() or "unpickl" in text.lower():
        return "its pickle holds something other than tensors, or is damaged"
    return reason(e)[:160]


def convert(src, dst):
    """Write dst/model.safetensors with every tensor of src's PyTorch weights (tied copies of shared.weight
    that equal it are left out, as transformers 5 saves), check that what was written reads back equal,
    and copy the config and tokenizer files. Returns the number of tensors written."""
    try:
        import torch
        from safetensors.torch import load_file, save_file
    except ImportError:
        raise LedrefError("ledref convert needs torch to read pytorch_model.bin: pip install torch") from None
    src, dst = check_path("src", src, InputError), check_path("dst", dst, InputError)
    if not os.path.isdir(src):
        raise CheckpointNotFoundError(f"{src} is not a directory")
    target = os.path.join(dst, "model.safetensors")
    if os.path.exists(target):
        raise LedrefError(f"{target} already exists; choose an empty destination")
    if os.path.exists(dst) and not os.path.isdir(dst):
        raise LedrefError(f"{dst} exists and is not a directory; expected a directory to write into")
    state, origin = {}, {}
    for file in pytorch_files(src):
        for key, value in load_tensors(torch, file).items():
            if key in origin:
                raise CheckpointError(f"tensor {key} is in both {origin[key]} and {file}; expected it in one file")
            state[key], origin[key] = value, file
    shared = next((state[k] for k in ("led.shared.weight", "shared.weight") if k in state), None)
    tensors = {}
    for key, value in state.items():
        bare = strip_prefix(key)
        if (bare in TIED_COPIES and shared is not None and value.shape == shared.shape
                and value.dtype == shared.dtype and torch.equal(value, shared)):
            continue
        if value.layout != torch.strided:
            raise CheckpointError(f"tensor {key} of {origin[key]} is a {value.layout} tensor; expected a dense one")
        tensors[key] = value.detach().contiguous().clone()  # no shared storage: safetensors refuses it
    os.makedirs(dst, exist_ok=True)
    try:
        save_file(tensors, target, metadata={"format": "pt"})
    except OSError:
        raise
    except Exception as e:  # a dtype safetensors cannot store
        raise CheckpointError(f"cannot write the tensors of {src} as safetensors ({reason(e)})") from None
    written = load_file(target)
    bad = [k for k, v in tensors.items() if k not in written or written[k].dtype != v.dtype
           or not torch.equal(written[k], v)]
    if bad or len(written) != len(tensors):
        raise CheckpointError(f"{target} does not read back equal to {src}: {bad[:5]}")
    for name in COPIED:
        if os.path.isfile(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), os.path.join(dst, name))
    return len(tensors)
