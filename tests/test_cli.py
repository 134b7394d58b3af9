"""`ledref summarize`, `convert` and `info` run as subprocesses on a tiny checkpoint with a trained tokenizer;
summaries are compared with transformers' generate + decode on the same files."""

import re
import shutil
from pathlib import Path

import pytest
from support import TEXT, ledref_command, one_error_line, terminal_stderr, write_pytorch_checkpoint

import ledref
from conftest import SMALL, hf_call, require
from hf_oracle import for_generation, randomise

pytestmark = pytest.mark.parity
TOKENIZER = Path(__file__).parent / "data" / "tokenizer"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random LED whose vocabulary is the test tokenizer's, with vocab.json and merges.txt beside it."""
    torch, transformers = require("torch"), require("transformers")
    path = tmp_path_factory.mktemp("cli")
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(TOKENIZER / name, path / name)
    tokenizer = transformers.LEDTokenizerFast.from_pretrained(path)
    torch.manual_seed(2)
    settings = {**SMALL, "vocab_size": len(tokenizer), "dropout": 0.0, "attention_dropout": 0.0,
                "activation_dropout": 0.0}
    model = transformers.LEDForConditionalGeneration(transformers.LEDConfig(**settings)).eval()
    for_generation(randomise(model, torch, 2), torch)
    model.save_pretrained(path, safe_serialization=True)
    return model, tokenizer, path


@pytest.mark.parametrize("options", [["--num-beams", "3", "--max-length", "14", "--no-repeat-ngram-size", "2"],
                                     ["--max-new-tokens", "10", "--global", "0,5"]])
def test_summarize_matches_transformers(options, checkpoint, tmp_path):
    hf, tokenizer, path = checkpoint
    (tmp_path / "doc.txt").write_text(TEXT)
    run = ledref_command("summarize", "--model", path, "--quiet", *options, tmp_path / "doc.txt")
    assert run.returncode == 0, run.stderr
    import numpy as np
    input_ids = np.array([tokenizer(TEXT)["input_ids"]])
    positions = [int(p) for p in options[options.index("--global") + 1].split(",")] if "--global" in options else [0]
    global_attention_mask = np.zeros_like(input_ids)
    global_attention_mask[0, positions] = 1
    settings = {o.lstrip("-").replace("-", "_"): int(v) for o, v in zip(options[::2], options[1::2], strict=True)
                if o != "--global"}
    ids = hf_call(hf.generate, "float32", input_ids=input_ids, global_attention_mask=global_attention_mask, **settings)
    expected = tokenizer.decode(ids[0], skip_special_tokens=True)
    assert run.stdout == expected + "\n"
    from_stdin = ledref_command("summarize", "--model", path, "--quiet", *options, "-", stdin=TEXT)
    assert from_stdin.returncode == 0 and from_stdin.stdout == run.stdout


def test_info_counts_parameters_as_transformers(checkpoint):
    hf, _, path = checkpoint
    run = ledref_command("info", path)
    assert run.returncode == 0, run.stderr
    expected = sum(p.numel() for p in hf.parameters()) + hf.final_logits_bias.numel()  # a buffer, but stored
    assert f"parameters: {expected:,} in " in run.stdout
    assert '"d_model": 24' in run.stdout and '"attention_window": [\n    8,\n    8\n  ]' in run.stdout


def test_convert_command(checkpoint, tmp_path):
    torch = require("torch")
    hf, _, path = checkpoint
    write_pytorch_checkpoint(hf, torch, tmp_path / "bin")
    shutil.copy(path / "vocab.json", tmp_path / "bin" / "vocab.json")
    run = ledref_command("convert", tmp_path / "bin", tmp_path / "st")
    assert run.returncode == 0, run.stderr
    assert "(read back equal)" in run.stdout and (tmp_path / "st" / "vocab.json").exists()
    info = ledref_command("info", tmp_path / "st")
    expected = sum(p.numel() for p in hf.parameters()) + hf.final_logits_bias.numel()
    assert f"parameters: {expected:,} in " in info.stdout


def test_bad_inputs(checkpoint, tmp_path):
    _, _, path = checkpoint
    doc = tmp_path / "doc.txt"
    doc.write_text(TEXT)
    one_error_line(ledref_command("summarize", "--model", path, tmp_path / "missing.txt"), 1,
                   r"cannot read .*missing\.txt: No such file or directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(path / "config.json", empty / "config.json")
    one_error_line(ledref_command("summarize", "--model", empty, doc), 1, r"has neither model\.safetensors")
    one_error_line(ledref_command("info", empty), 1, r"has neither model\.safetensors")
    (empty / "pytorch_model.bin").write_bytes(b"")
    one_error_line(ledref_command("summarize", "--model", empty, doc), 1, r"only PyTorch weights.*ledref convert")
    one_error_line(ledref_command("summarize", "--model", tmp_path / "nowhere", doc), 1,
                   r"checkpoint directory .*nowhere does not exist")
    one_error_line(ledref_command("summarize", "--model", "not a model", doc), 1,
                   r"neither a checkpoint directory nor a Hugging Face repo id")
    one_error_line(ledref_command("summarize", "--model", path, "--num-beams", "many", doc), 2,
                   r"argument --num-beams: invalid int value: 'many'")
    one_error_line(ledref_command("summarize", "--model", path, "--early-stopping", "maybe", doc), 2,
                   r"expected true, false or never")
    one_error_line(ledref_command("summarize", "--model", path, "--global", "0,x", doc), 2,
                   r"expected comma-separated token positions")
    one_error_line(ledref_command("summarize", "--model", path, "--global", "500", doc), 1,
                   r"--global position 500 is past the end of the input")
    one_error_line(ledref_command("summarize", "--model", path, "--num-beams", "2", "--max-length", "999", doc), 1,
                   r"max_length=999 exceeds max_decoder_position_embeddings=40")
    one_error_line(ledref_command("frobnicate"), 2, r"invalid choice: 'frobnicate'")
    long_doc = tmp_path / "long.txt"
    long_doc.write_text(TEXT * 20)
    one_error_line(ledref_command("summarize", "--model", path, long_doc), 1,
                   r"tokens long; the model reads at most 160 .* Use --truncate")
    truncated = ledref_command("summarize", "--model", path, "--truncate", "--quiet", "--max-length", "5", long_doc)
    assert truncated.returncode == 0, truncated.stderr


def test_progress_bars_only_on_a_terminal(checkpoint, tmp_path):
    _, _, path = checkpoint
    (tmp_path / "doc.txt").write_text(TEXT)
    shown = terminal_stderr("summarize", "--model", path, "--max-length", "6", tmp_path / "doc.txt")
    assert "encoder:" in shown and "/2 [" in shown and "decoding:" in shown  # 2 encoder layers
    assert terminal_stderr("summarize", "--model", path, "--max-length", "6", "--quiet", tmp_path / "doc.txt") == ""
    piped = ledref_command("summarize", "--model", path, "--max-length", "6", tmp_path / "doc.txt")
    assert piped.returncode == 0 and piped.stderr == ""


@pytest.mark.parametrize("options", [[], ["--view", "dense", "--layer", "1", "--head", "2"],
                                     ["--view", "grid", "--log"], ["--from", "5", "--to", "20", "--global", "0,9"]])
def test_plot_writes_the_figure(options, checkpoint, tmp_path):
    import matplotlib.image
    _, _, path = checkpoint
    (tmp_path / "doc.txt").write_text(TEXT)
    out = tmp_path / "attention.png"
    run = ledref_command("plot", "--model", path, *options, "--out", out, tmp_path / "doc.txt")
    assert run.returncode == 0, run.stderr
    pixels = matplotlib.image.imread(out)
    assert pixels.shape[0] > 200 and (pixels[..., :3] < 0.5).any()  # drawn, not blank
    svg = ledref_command("plot", "--model", path, *options, "--out", tmp_path / "a.svg", tmp_path / "doc.txt")
    assert svg.returncode == 0 and (tmp_path / "a.svg").read_text().startswith("<?xml")


def test_plot_bad_arguments(checkpoint, tmp_path):
    _, _, path = checkpoint
    doc = tmp_path / "doc.txt"
    doc.write_text(TEXT)
    out = tmp_path / "x.png"
    one_error_line(ledref_command("plot", "--model", path, "--layer", "2", "--out", out, doc), 2,
                   r"--layer 2 is out of range; the encoder has layers 0..1")
    one_error_line(ledref_command("plot", "--model", path, "--head", "-1", "--out", out, doc), 2,
                   r"--head -1 is out of range; the layers have heads 0..2")
    one_error_line(ledref_command("plot", "--model", path, "--from", "30", "--to", "10", "--out", out, doc), 2,
                   r"--from 30 --to 10 is not a range of the \d+ tokens")
    one_error_line(ledref_command("plot", "--model", path, "--to", "999", "--out", out, doc), 2,
                   r"--from 0 --to 999 is not a range")
    one_error_line(ledref_command("plot", "--model", path, "--view", "3d", "--out", out, doc), 2,
                   r"argument --view: invalid choice: '3d'")
    one_error_line(ledref_command("plot", "--model", path, "--out", tmp_path / "x.jpg", doc), 2,
                   r"expected a \.png or \.svg file name")
    one_error_line(ledref_command("plot", "--model", path, doc), 2, r"the following arguments are required: --out")
    assert not out.exists()


def test_version():
    run = ledref_command("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"ledref {ledref.__version__}", (run.stdout, run.stderr)


@pytest.mark.parametrize("model", ["./missing-dir", "../missing/model", "~/missing-ledref-model", "/missing/model"])
def test_a_path_is_never_sent_to_the_hub(model, tmp_path, monkeypatch):
    """A --model that looks like a path is read from disk only: a missing one is one line saying so, and
    huggingface_hub is never asked (it would fail differently, or try the network)."""
    doc = tmp_path / "doc.txt"
    doc.write_text(TEXT)
    for command in (["summarize", "--model", model, doc], ["info", model], ["plot", "--model", model, "--out",
                                                                            tmp_path / "x.png", doc]):
        one_error_line(ledref_command(*command), 1, rf"checkpoint directory {re.escape(model)} does not exist")
    import ledref.hub
    monkeypatch.setattr(ledref.hub, "download", lambda *a, **k: pytest.fail("sent to the Hub"))
    with pytest.raises(ledref.CheckpointNotFoundError, match=r"does not exist"):
        ledref.LEDForConditionalGeneration.from_pretrained(model)
    (tmp_path / "a-file").write_text("")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ledref.CheckpointNotFoundError, match=r"checkpoint directory a-file is a file"):
        ledref.LEDForConditionalGeneration.from_pretrained("a-file")
