"""The embedded model and `ledref demo`: the short name loads from the package, the demo runs offline as a
subprocess and gets held-out answers right, its figures exist and show attention on the copied facts, and
ledref's generate equals transformers' generate on the embedded model."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ledref
import ledref.demo
from conftest import require
from ledref import needle
from ledref.demo import token_spans, tokens_in
from ledref.hub import resolve

MODEL = "ledref/tiny-needle"
FOLDER = Path(ledref.__file__).parent / "assets" / "tiny-needle"


def ledref_command(*args, cwd=None):
    exe = Path(sys.executable).parent / "ledref"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "ledref"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    return subprocess.run(command + [str(a) for a in args], capture_output=True, text=True, timeout=300,
                          env=env, cwd=cwd)


def test_embedded_model_is_in_the_package_in_the_hub_layout():
    assert Path(resolve(MODEL)) == FOLDER
    names = {p.name for p in FOLDER.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "vocab.json", "merges.txt"} <= names
    model = ledref.LEDForConditionalGeneration.from_pretrained(MODEL)
    tokenizer = ledref.LEDTokenizer.from_pretrained(MODEL)
    assert model.config.vocab_size >= len(tokenizer)
    assert sum(p.stat().st_size for p in FOLDER.iterdir()) < 12e6


def test_fact_tokens_are_the_codes():
    tokenizer = ledref.LEDTokenizer.from_pretrained(MODEL)
    doc = needle.make_document(3)
    ids = tokenizer(doc.text)["input_ids"]
    spans = token_spans(tokenizer, doc.text)
    assert len(spans) == len(ids)
    pieces = "".join(tokenizer.decode([ids[i]]) for i in tokens_in(spans, doc.facts))
    assert pieces.replace(" ", "") == doc.answer.replace(" ", "")


def test_demo_runs_offline_and_is_right(tmp_path):
    run = ledref_command("demo", "--out", tmp_path / "figures", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    doc = needle.make_document(0)
    assert f"answer:   {doc.answer}\n" in run.stdout
    assert "(right)" in run.stdout
    for name in ("layout_explainer.png", "band_view.png", "where_it_looks.png"):
        data = (tmp_path / "figures" / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 20_000, name


@pytest.mark.parametrize("seed", [1, 2])
def test_demo_attention_concentrates_on_the_copied_facts(seed, tmp_path):
    result = ledref.demo.run(seed=seed, out=tmp_path, say=lambda line: None)
    assert result.correct
    # the decoder, writing the codes, looks at the few tokens of the facts far more than at the rest
    assert result.fact_attention > 50 * result.fact_share


def test_demo_reads_a_text_file_and_refuses_a_too_long_one(tmp_path):
    doc = needle.make_document(5)
    (tmp_path / "doc.txt").write_text(doc.text)
    run = ledref_command("demo", "--text", tmp_path / "doc.txt", "--out", tmp_path / "f", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"answer:   {doc.answer}\n" in run.stdout and "expected" not in run.stdout
    (tmp_path / "long.txt").write_text(doc.text * 8)
    run = ledref_command("demo", "--text", tmp_path / "long.txt", cwd=tmp_path)
    assert run.returncode == 1 and "reads at most" in run.stderr and "Traceback" not in run.stderr
    run = ledref_command("demo", "--model", tmp_path / "missing", cwd=tmp_path)
    assert run.returncode == 1 and "ledref: error:" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parity
def test_generate_equals_transformers_on_held_out_documents():
    torch, transformers = require("torch"), require("transformers")
    hf = transformers.LEDForConditionalGeneration.from_pretrained(FOLDER).eval()
    model = ledref.LEDForConditionalGeneration.from_pretrained(MODEL)
    tokenizer = ledref.LEDTokenizer.from_pretrained(MODEL)
    right = 0
    for seed in needle.held_out_seeds(4):
        doc = needle.make_document(seed)
        ids = tokenizer(doc.text, return_tensors="np")["input_ids"]
        gm = np.zeros_like(ids)
        gm[:, 0] = 1
        ours = model.generate(ids, global_attention_mask=gm)
        with torch.no_grad():
            theirs = hf.generate(torch.from_numpy(ids), global_attention_mask=torch.from_numpy(gm)).numpy()
        np.testing.assert_array_equal(ours, theirs)
        right += tokenizer.decode(ours[0], skip_special_tokens=True).strip() == doc.answer
    assert right >= 3
