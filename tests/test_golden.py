"""Golden files: written from a float64 run, read back and compared with a fresh run; the same cases from
transformers' float32 outputs (a test-only adapter) compare OK within the documented float32 tolerance."""

import json
import os
import sys

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

import ledref
from conftest import require
from ledref.checkpoint import random_state_dict, save_checkpoint
from ledref.compare import compare
from ledref.golden import CASES, TINY, case_inputs, record, tiny_model, write_golden

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))


@pytest.mark.parametrize("case", [c for c in CASES if c != "long_4096"])
def test_golden_round_trip(case, tmp_path):
    model = tiny_model(case)
    inputs = case_inputs(case, model.config.vocab_size, seed=3)
    path = write_golden(model, inputs, tmp_path, case, seed=3)
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata()
    assert meta["case"] == case and meta["dtype"] == "float64" and meta["seed"] == "3"
    assert json.loads(meta["config"])["attention_window"] == model.config.attention_window
    stored = load_file(path)
    fresh = record(model, {k[len("inputs."):]: v for k, v in stored.items() if k.startswith("inputs.")})
    report = compare(stored, {**fresh, **{k: v for k, v in stored.items() if k.startswith("inputs.")}},
                     rtol=0, atol=0)
    assert report.ok, report.format()
    expected = {"encoder.embeddings", "logits", "encoder.layers.0.band_scores_masked", "encoder.layers.0.q",
                "encoder.layers.1.local_probs", "decoder.layers.1.cross_attn_probs", "encoder.layers.0.output"}
    assert expected <= set(fresh)
    assert ("encoder.layers.0.global_probs" in fresh) == (case not in ("no_global",))


@pytest.mark.parity
@pytest.mark.parametrize("case", ["global_first", "globals_mixed"])
def test_transformers_float32_within_documented_tolerance(case, tmp_path):
    """transformers float32 against a float64 golden file: OK at --rtol 1e-4 --atol 1e-4 (docs/tolerances.md)."""
    transformers = require("transformers")
    from measure_tolerances import hf_tensors
    config = ledref.LEDConfig(**TINY)
    save_checkpoint(tmp_path / "model", config, random_state_dict(config, seed=7))
    golden = write_golden(ledref.LEDForConditionalGeneration.from_pretrained(tmp_path / "model", dtype="float64"),
                          case_inputs(case, config.vocab_size), tmp_path / "golden", case)
    hf = transformers.LEDForConditionalGeneration.from_pretrained(tmp_path / "model").eval()
    theirs = hf_tensors(hf, case_inputs(case, config.vocab_size))
    stored = {k: v for k, v in load_file(golden).items() if k in theirs}
    report = compare(stored, theirs, rtol=1e-4, atol=1e-4)
    assert report.ok, report.format()
    assert len(report.rows) == len(theirs) == 3 + 3 * 2 + 3 * 2  # logits, embeddings, per-layer tensors
    # and the check can fail: one probability moved by 1e-2 is caught
    theirs["encoder.layers.1.local_probs"][0, 0, 3, 4] += 1e-2
    assert not compare(stored, theirs, rtol=1e-4, atol=1e-4).ok


def test_catalogue_inputs_cover_the_layout(tmp_path):
    assert len(CASES) >= 9
    mixed = case_inputs("globals_mixed", 100)
    assert mixed["global_attention_mask"].sum(axis=1).tolist() == [3, 1, 0]
    padded = case_inputs("global_on_padding", 100)
    assert padded["global_attention_mask"][1, 25] == 1 and padded["attention_mask"][1, 25] == 0
    assert case_inputs("long_4096", 100)["input_ids"].shape == (1, 4096)
    with pytest.raises(ledref.InputError, match="unknown golden case 'nope'"):
        case_inputs("nope", 100)


def test_golden_command(tmp_path):
    from support import ledref_command, one_error_line
    run = ledref_command("golden", "--tiny", "--case", "globals_mixed", "--seed", "2", "--out", tmp_path / "g")
    assert run.returncode == 0, run.stderr
    written = tmp_path / "g" / "globals_mixed.safetensors"
    assert run.stdout.strip() == str(written)
    stored = load_file(written)
    model = tiny_model("globals_mixed", seed=2)
    fresh = record(model, case_inputs("globals_mixed", model.config.vocab_size, seed=2))
    assert compare({k: v for k, v in stored.items() if k in fresh}, fresh, rtol=0, atol=0).ok
    listing = ledref_command("golden", "--list")
    assert listing.returncode == 0 and all(name in listing.stdout for name in CASES)
    config = ledref.LEDConfig(**TINY)
    save_checkpoint(tmp_path / "model", config, random_state_dict(config, seed=1))
    save_file({"input_ids": np.arange(3, 23).reshape(1, 20)}, tmp_path / "mine.safetensors")
    run = ledref_command("golden", "--model", tmp_path / "model", "--input", tmp_path / "mine.safetensors",
                         "--out", tmp_path / "g")
    assert run.returncode == 0 and (tmp_path / "g" / "mine.safetensors").exists(), run.stderr
    one_error_line(ledref_command("golden", "--model", tmp_path / "model", "--case", "window_2", "--out", tmp_path),
                   2, r"case window_2 changes the attention window; it needs --tiny")
    one_error_line(ledref_command("golden", "--tiny", "--case", "nope", "--out", tmp_path), 2,
                   r"--case 'nope' is not in the catalogue")
    one_error_line(ledref_command("golden", "--tiny", "--case", "no_global"), 2, r"--out DIR is required")


def test_a_float32_golden_compares_ok_with_a_float64_golden(tmp_path):
    """Every case, every tensor (masked band scores included: -inf in both), at 1e-4 and no other option."""
    from support import ledref_command
    for dtype in ("float64", "float32"):
        run = ledref_command("golden", "--tiny", "--case", "all", "--dtype", dtype, "--out", tmp_path / dtype)
        assert run.returncode == 0, run.stderr
    run = ledref_command("compare", tmp_path / "float64", tmp_path / "float32", "--rtol", "1e-4", "--atol", "1e-4")
    assert run.returncode == 0, run.stdout
    assert "NOT OK" not in run.stdout and "band_scores_masked" in run.stdout
    masked = load_file(tmp_path / "float32" / "globals_mixed.safetensors")["encoder.layers.0.band_scores_masked"]
    assert masked.dtype == np.float32 and np.isneginf(masked).any()
    # the check can fail: a float32 golden of other weights is NOT OK
    run = ledref_command("golden", "--tiny", "--case", "globals_mixed", "--dtype", "float32", "--seed", "1",
                         "--out", tmp_path / "other")
    assert run.returncode == 0, run.stderr
    run = ledref_command("compare", tmp_path / "float64" / "globals_mixed.safetensors",
                         tmp_path / "other" / "globals_mixed.safetensors", "--rtol", "1e-4", "--atol", "1e-4")
    assert run.returncode == 1 and "NOT OK" in run.stdout


def test_tiny_goldens_carry_their_checkpoint_consistency(tmp_path):
    """A consistency check (ledref against itself): `golden --tiny` writes the weights it used beside each
    golden file; loading them reproduces the file."""
    from support import ledref_command
    run = ledref_command("golden", "--tiny", "--case", "window_2", "--out", tmp_path)
    assert run.returncode == 0, run.stderr
    with safe_open(tmp_path / "window_2.safetensors", framework="numpy") as f:
        assert f.metadata()["checkpoint"] == "window_2"
    assert sorted(os.listdir(tmp_path / "window_2")) == ["config.json", "model.safetensors"]
    model = ledref.LEDForConditionalGeneration.from_pretrained(tmp_path / "window_2", dtype="float64")
    assert model.config.attention_window == [2, 2]
    stored = load_file(tmp_path / "window_2.safetensors")
    fresh = record(model, {k[len("inputs."):]: v for k, v in stored.items() if k.startswith("inputs.")})
    assert compare({k: stored[k] for k in fresh}, fresh, rtol=0, atol=0).ok


@pytest.mark.parity
def test_transformers_reproduces_a_tiny_golden_from_its_checkpoint(tmp_path):
    require("transformers")
    import transformers
    from support import ledref_command
    assert ledref_command("golden", "--tiny", "--case", "globals_mixed", "--out", tmp_path).returncode == 0
    hf = transformers.LEDForConditionalGeneration.from_pretrained(tmp_path / "globals_mixed").eval()
    stored = load_file(tmp_path / "globals_mixed.safetensors")
    theirs = __import__("measure_tolerances").hf_tensors(hf, {k[len("inputs."):]: v for k, v in stored.items()
                                                              if k.startswith("inputs.")})
    assert compare({k: stored[k] for k in theirs}, theirs, rtol=1e-4, atol=1e-4).ok


def test_skipped_cases_are_reported_and_nothing_is_left_behind(tmp_path, monkeypatch):
    from support import ledref_command
    config = ledref.LEDConfig(**TINY)
    save_checkpoint(tmp_path / "model", config, random_state_dict(config, seed=1))
    run = ledref_command("golden", "--model", tmp_path / "model", "--case", "all", "--out", tmp_path / "g")
    assert run.returncode == 0, run.stderr
    needs_tiny = [name for name, (_, overrides, _, _) in CASES.items() if overrides]
    skipped = [line for line in run.stderr.splitlines() if line.startswith("skipped ")]
    assert [line.split()[1].rstrip(":") for line in skipped] == needs_tiny and len(needs_tiny) == 4
    assert all("needs --tiny" in line for line in skipped)
    assert sorted(os.listdir(tmp_path / "g")) == sorted(f"{c}.safetensors" for c in CASES if c not in needs_tiny)
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temporary"))
    os.makedirs(tmp_path / "temporary")
    tiny_model("window_2")
    assert os.listdir(tmp_path / "temporary") == []
