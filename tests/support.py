"""Helpers that several test files share (no test file imports another): the parity cases and their inputs,
running the `ledref` command, a pytorch_model.bin checkpoint, the generation test batch, and replaying
ledref's sampling draws inside transformers' generate."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import ledref
from conftest import hf_call, hf_model, require

# ------------------------------------------------------------------ parity cases

# Each case: config overrides, input length, real lengths per row (right padding), global positions per
# row (None: no global_attention_mask), decoder length and real decoder lengths.
CASES = {
    # first token, middle, last real token; a row with one global; a global on a padded position;
    # rows with 3, 1 and 2 global flags (the pad one drops out); 21 is not a multiple of the window 8
    "globals_mixed": dict(config={}, length=21, lengths=[21, 17, 12], globals=[[0, 10, 20], [16], [5, 14]],
                          dec_lengths=[6, 4, 6]),
    "no_global_mask": dict(config={}, length=19, lengths=[19, 11, 16], globals=None),
    "global_mask_all_zero": dict(config={}, length=16, lengths=[16, 9, 13], globals=[[], [], []]),
    "global_only_on_padding": dict(config={}, length=13, lengths=[13, 8], globals=[[], [10]]),
    "all_tokens_global": dict(config={}, length=6, lengths=[6, 6], globals=[list(range(6)), [0]]),
    "window_larger_than_input": dict(config={"attention_window": 32}, length=7, lengths=[7, 5], globals=[[0], [3]]),
    "per_layer_windows": dict(config={"attention_window": [4, 8]}, length=19, lengths=[19, 14, 3],
                              globals=[[0], [], [2]]),
    "three_layers_windows_8_4_16": dict(config={"attention_window": [8, 4, 16], "encoder_layers": 3}, length=17,
                                       lengths=[17, 10], globals=[[0, 9], [4]]),
    "relu": dict(config={"activation_function": "relu"}, length=12, lengths=[12, 7], globals=[[0], [6]]),
    "gelu_new": dict(config={"activation_function": "gelu_new"}, length=12, lengths=[12, 7], globals=[[1], []]),
    "single_row_long": dict(config={}, length=150, lengths=[150], globals=[[0, 75, 149]]),
}


SEQ2SEQ_FIELDS = ["encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions",
                  "encoder_global_attentions", "decoder_hidden_states", "decoder_attentions", "cross_attentions"]


def make_inputs(case, seed=0, vocab=97):
    rng = np.random.default_rng(seed)
    b, length = len(case["lengths"]), case["length"]
    input_ids = rng.integers(3, vocab, (b, length))
    attention_mask = (np.arange(length)[None, :] < np.array(case["lengths"])[:, None]).astype(np.int64)
    input_ids = np.where(attention_mask == 1, input_ids, 1)  # pad id where masked, as a tokenizer would
    global_attention_mask = None
    if case["globals"] is not None:
        global_attention_mask = np.zeros((b, length), dtype=np.int64)
        for row, positions in enumerate(case["globals"]):
            global_attention_mask[row, positions] = 1
    dec_lengths = case.get("dec_lengths", [5] * b)
    t = max(dec_lengths)
    decoder_input_ids = rng.integers(3, vocab, (b, t))
    decoder_attention_mask = (np.arange(t)[None, :] < np.array(dec_lengths)[:, None]).astype(np.int64)
    return dict(input_ids=input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask,
                decoder_input_ids=decoder_input_ids, decoder_attention_mask=decoder_attention_mask)


# ------------------------------------------------------------------ the ledref command

TEXT = ("The committee met on Tuesday to review the budget. Costs rose by 4% while income stayed flat, so "
        "the board asked for a new plan before the next meeting.")


def ledref_command(*args, stdin=None):
    exe = Path(sys.executable).parent / "ledref"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "ledref"]
    return subprocess.run(command + [str(a) for a in args], input=stdin, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def one_error_line(run, status, pattern):
    assert run.returncode == status, (run.returncode, run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ledref: error: "), run.stderr
    assert "Traceback" not in run.stderr
    import re
    assert re.search(pattern, lines[0]), lines[0]


def terminal_stderr(*args):
    """Run ledref with stderr on a pseudo-terminal; returns what was written there."""
    import pty
    exe = Path(sys.executable).parent / "ledref"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "ledref"]
    import fcntl
    import struct
    import termios
    import threading
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    chunks = []

    def read():  # while the process runs: a pty drops unread output once its last writer closes
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    run = subprocess.run(command + [str(a) for a in args], stdout=subprocess.PIPE, stderr=slave, timeout=300)
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    assert run.returncode == 0
    return b"".join(chunks).decode(errors="replace")


# ------------------------------------------------------------------ checkpoints

def write_pytorch_checkpoint(hf, torch, directory, shards=1):
    """pytorch_model.bin as transformers 4.x wrote it: tied copies included (state_dict has them all)."""
    directory.mkdir()
    hf.config.save_pretrained(directory)
    state = hf.state_dict()
    assert "lm_head.weight" in state and "led.encoder.embed_tokens.weight" in state
    if shards == 1:
        torch.save(state, directory / "pytorch_model.bin")
        return
    keys = sorted(state)
    weight_map = {}
    for i in range(shards):
        name = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
        part = {k: state[k] for k in keys[i::shards]}
        torch.save(part, directory / name)
        weight_map.update({k: name for k in part})
    (directory / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))


# ------------------------------------------------------------------ generation

def batch():
    """Two rows, the second right-padded; the first token global in both, one more in the first."""
    rng = np.random.default_rng(1)
    input_ids = rng.integers(3, 97, (2, 23))
    attention_mask = np.ones_like(input_ids)
    attention_mask[1, 15:] = 0
    input_ids[1, 15:] = 1
    global_attention_mask = np.zeros_like(input_ids)
    global_attention_mask[:, 0] = 1
    global_attention_mask[0, 11] = 1
    return dict(input_ids=input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask)


def hf_generate(model, **settings):
    return hf_call(hf_model(model, "float32").generate, "float32", **batch(), return_dict_in_generate=True,
                   output_scores=True, **settings)


def probabilities(scores):
    """softmax of processed scores [N, V] in float64 (-inf -> 0)."""
    scores = np.asarray(scores, dtype=np.float64)
    e = np.exp(scores - np.max(scores, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def replay(monkeypatch, torch, draws):
    """Make torch.multinomial return ledref's draws, in order, after checking that each drawn token is one
    transformers' probabilities allow."""
    queue = list(draws)

    def multinomial(probs, num_samples, replacement=False, generator=None):
        drawn = torch.from_numpy(queue.pop(0)).to(probs.device)
        assert drawn.shape == (probs.shape[0], num_samples)
        assert bool((torch.gather(probs, 1, drawn) > 0).all()), "ledref drew a token transformers excludes"
        return drawn

    monkeypatch.setattr(torch, "multinomial", multinomial)
    return queue


def recorded_draws(monkeypatch):
    """Record what ledref.sampling.draw returns."""
    draws, original = [], ledref.sampling.draw

    def draw(probs, rng, num_samples=1):
        out = original(probs, rng, num_samples)
        draws.append(out.copy())
        return out

    monkeypatch.setattr(ledref.sampling, "draw", draw)
    return draws


def sample_both(monkeypatch, checkpoint, **settings):
    """(ledref's GenerateOutput, transformers' generate output on the prefixes ledref sampled). Both models
    run in float64, so that the logits agree to float64 precision and what is compared is the processing
    (which both do in float32, as transformers' generate does), not the model's float32 rounding."""
    torch = require("torch")
    hf, path = checkpoint
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype="float64")
    with monkeypatch.context() as m:
        draws = recorded_draws(m)
        ours = model.generate(**batch(), do_sample=True, seed=0, return_dict_in_generate=True, output_scores=True,
                              **settings)
    with monkeypatch.context() as m:
        left = replay(m, torch, draws)
        theirs = hf_call(hf_model(hf, "float64").generate, "float64", **batch(), return_dict_in_generate=True,
                         output_scores=True, do_sample=True, **settings)
    assert not left, f"transformers drew {len(draws) - len(left)} times, ledref {len(draws)}"
    return ours, theirs


# ------------------------------------------------------------------ comparisons

def close(a, b, name, tol=1e-10):
    """Two arrays (or nested tuples of them, or None) of any backends equal within tol, entry by entry."""
    if a is None or b is None:
        assert a is None and b is None, name
        return
    if isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b), name
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            close(x, y, f"{name}[{i}]", tol)
        return
    a, b = ledref.to_numpy(a), ledref.to_numpy(b)
    assert a.shape == b.shape, (name, a.shape, b.shape)
    assert np.max(np.abs(a - b), initial=0.0) <= tol, (name, np.max(np.abs(a - b)))
