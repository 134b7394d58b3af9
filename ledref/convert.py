"""`ledref convert`: a pytorch_model.bin checkpoint directory -> a safetensors one (torch needed here only)."""

import json
import os
import shutil

from .checkpoint import TIED_COPIES
from .errors import CheckpointError, CheckpointNotFoundError, LedrefError

COPIED = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
          "special_tokens_map.json", "vocab.json", "merges.txt"]


def pytorch_files(src):
    """The PyTorch weight files of a checkpoint directory: pytorch_model.bin, or the shards its index names."""
    single, index = os.path.join(src, "pytorch_model.bin"), os.path.join(src, "pytorch_model.bin.index.json")
    if os.path.isfile(single):
        return [single]
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            return sorted({os.path.join(src, name) for name in json.load(f)["weight_map"].values()})
    raise CheckpointNotFoundError(f"{src} has neither pytorch_model.bin nor pytorch_model.bin.index.json")


def convert(src, dst):
    """Write dst/model.safetensors with every tensor of src's PyTorch weights (tied copies of shared.weight
    that equal it are left out, as transformers 5 saves), check that what was written reads back equal,
    and copy the config and tokenizer files. Returns the number of tensors written."""
    try:
        import torch
        from safetensors.torch import load_file, save_file
    except ImportError:
        raise LedrefError("ledref convert needs torch to read pytorch_model.bin: pip install torch") from None
    src, dst = os.fspath(src), os.fspath(dst)
    if not os.path.isdir(src):
        raise CheckpointNotFoundError(f"{src} is not a directory")
    target = os.path.join(dst, "model.safetensors")
    if os.path.exists(target):
        raise LedrefError(f"{target} already exists; choose an empty destination")
    state = {}
    for file in pytorch_files(src):
        state.update(torch.load(file, map_location="cpu", weights_only=True))
    shared = next((state[k] for k in ("led.shared.weight", "shared.weight") if k in state), None)
    tensors = {}
    for key, value in state.items():
        bare = key[len("led."):] if key.startswith("led.") else key
        if bare in TIED_COPIES and shared is not None and torch.equal(value, shared):
            continue
        tensors[key] = value.detach().contiguous().clone()  # no shared storage: safetensors refuses it
    os.makedirs(dst, exist_ok=True)
    save_file(tensors, target, metadata={"format": "pt"})
    written = load_file(target)
    bad = [k for k, v in tensors.items() if k not in written or written[k].dtype != v.dtype
           or not torch.equal(written[k], v)]
    if bad or len(written) != len(tensors):
        raise CheckpointError(f"{target} does not read back equal to {src}: {bad[:5]}")
    for name in COPIED:
        if os.path.isfile(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), os.path.join(dst, name))
    return len(tensors)
