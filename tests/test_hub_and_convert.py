"""Finding checkpoints (directory, Hub cache folder, repo id through huggingface_hub's cache) and converting
pytorch_model.bin checkpoints; each checked against transformers' outputs on the same weights."""

import shutil
from pathlib import Path

import pytest
from support import write_pytorch_checkpoint

import ledref
from conftest import assert_close, hf_call, parity_inputs, require
from ledref.convert import convert

pytestmark = pytest.mark.parity
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fake_hub_cache(root, checkpoint, repo="own/tiny", refs=("main",), files=None):
    """A directory laid out like the Hugging Face cache: models--own--tiny/{refs/<ref>, snapshots/<commit>/}."""
    folder = root / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for item in checkpoint.iterdir():
        if files is None or item.name in files:
            shutil.copy(item, snapshot / item.name)
    (folder / "refs").mkdir()
    for ref in refs:
        (folder / "refs" / ref).write_text(COMMIT)
    return folder, snapshot


def logits_match(model, hf):
    inputs = parity_inputs()
    assert_close(model(**inputs).logits, hf_call(hf, "float32", **inputs).logits, "float32", "logits")


def test_cache_snapshot_folder_and_repo_id(make_checkpoint, tmp_path):
    require("huggingface_hub")
    hf, path = make_checkpoint()
    folder, snapshot = fake_hub_cache(tmp_path, path, refs=("main", "v1"))
    cls = ledref.LEDForConditionalGeneration
    logits_match(cls.from_pretrained(snapshot), hf)  # a snapshot directory is a checkpoint directory
    logits_match(cls.from_pretrained(folder), hf)  # the repo folder: refs/main
    logits_match(cls.from_pretrained(folder, revision="v1"), hf)
    logits_match(cls.from_pretrained(folder, revision=COMMIT), hf)
    # owner/name, found offline in the cache by huggingface_hub
    logits_match(cls.from_pretrained("own/tiny", cache_dir=tmp_path, local_files_only=True), hf)
    # the tokenizer is found the same way
    transformers = require("transformers")
    tokenizer_files = Path(__file__).parent / "data" / "tokenizer"
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(tokenizer_files / name, snapshot / name)
    text = "Found in the cache, offline."
    expected = transformers.LEDTokenizerFast.from_pretrained(snapshot)(text)["input_ids"]
    assert ledref.LEDTokenizer.from_pretrained("own/tiny", cache_dir=tmp_path, local_files_only=True)(text)[
        "input_ids"] == expected
    assert ledref.LEDTokenizer.from_pretrained(folder)(text)["input_ids"] == expected
    with pytest.raises(ledref.CheckpointNotFoundError, match=r"revision 'v2' is not in the cache folder"):
        cls.from_pretrained(folder, revision="v2")
    with pytest.raises(ledref.CheckpointNotFoundError, match=r"could not get own/other at revision main"):
        cls.from_pretrained("own/other", cache_dir=tmp_path, local_files_only=True)


def test_repo_without_safetensors_points_to_convert(make_checkpoint, tmp_path):
    require("huggingface_hub")
    _, path = make_checkpoint()
    folder, snapshot = fake_hub_cache(tmp_path, path, repo="own/binonly", files={"config.json"})
    (snapshot / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ledref.CheckpointNotFoundError, match=r"own/binonly at revision main has no safetensors "
                                                             r"weights.*ledref convert"):
        ledref.LEDModel.from_pretrained("own/binonly", cache_dir=tmp_path, local_files_only=True)
    with pytest.raises(ledref.CheckpointNotFoundError, match=r"only PyTorch weights.*Convert"):
        ledref.LEDModel.from_pretrained(snapshot)


@pytest.mark.parametrize("shards", [1, 3])
def test_convert_pytorch_checkpoint(shards, make_checkpoint, tmp_path):
    torch = require("torch")
    hf, _ = make_checkpoint()
    write_pytorch_checkpoint(hf, torch, tmp_path / "bin", shards)
    n = convert(tmp_path / "bin", tmp_path / "st")
    from safetensors import safe_open
    with safe_open(tmp_path / "st" / "model.safetensors", framework="numpy") as f:
        keys = set(f.keys())
    assert n == len(keys) and "lm_head.weight" not in keys and "led.shared.weight" in keys
    assert (tmp_path / "st" / "config.json").exists()
    logits_match(ledref.LEDForConditionalGeneration.from_pretrained(tmp_path / "st"), hf)
    with pytest.raises(ledref.LedrefError, match="already exists"):
        convert(tmp_path / "bin", tmp_path / "st")
