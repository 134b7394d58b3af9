"""Measure how far float32, bfloat16 and float16 implementations land from ledref's float64 reference, and
write docs/tolerances.md and benchmarks/results/tolerances.json:

    python scripts/measure_tolerances.py                  (needs torch and transformers; ~8 minutes on 2 cores)
    python scripts/measure_tolerances.py --tokens 1024    (a shorter input for the led-base-shaped model)

Three measurements, each against ledref's float64 run of the same model (or kernel) on the same inputs:

1. float32 whole models: ledref float32 and transformers float32, on 4 small random LEDs (transformers'
   init, and every weight drawn at std 0.3 as in the tests) and the golden cases global_first and
   globals_mixed.
2. bfloat16 and float16 whole models: ledref's compute modes (ledref.lowp) and transformers' own run in
   that dtype (`model.to(torch.bfloat16)`), on a led-base-shaped random LED (transformers' init, --tokens
   tokens, the first global) and on the embedded trained model tiny-needle (a held-out needle document).
3. attention kernels, for the conformance suite: per dtype, ledref's reference attention (float32 NumPy, or
   ledref.lowp) and docs/kernels/torch_kernel.py (torch in that dtype), on the suite's catalogues and
   --cases fixed random cases. The suite's default tolerances (ledref.testing.TOLERANCES) are 4 times the
   larger of the two errors, rounded up to 1, 2 or 5 times a power of ten.

Errors: for whole models, max |a - b| / max(1, max |b|) per tensor, the largest over models, cases and
layers for each kind of tensor; for kernels, max |a - b| / (|b| + floor) with floor 1 for `output` and
1e-3 for the probabilities, so that rtol = measured and atol = rtol * floor bound every element.
"""

import argparse
import copy
import json
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict

import numpy as np
import torch
import transformers

import ledref
from ledref import lowp, needle, testing
from ledref.golden import TINY, case_inputs, record

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
sys.path.insert(0, os.path.join(ROOT, "tests"))
from hf_oracle import randomise  # noqa: E402

DOC = os.path.join(ROOT, "docs", "tolerances.md")
RESULTS = os.path.join(ROOT, "benchmarks", "results", "tolerances.json")
LOW = ("bfloat16", "float16")
LED_BASE = dict(vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
                decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072, attention_window=1024,
                max_encoder_position_embeddings=16384, max_decoder_position_embeddings=1024)
FLOORS = {"output": 1.0, "local_probs": 1e-3, "global_probs": 1e-3}
MARGIN = 4
# the tensors both libraries return, by kind (recorded by ledref under these names)
COMPARED = ["logits", "encoder.embeddings", "decoder.embeddings", "encoder.layers.*.output",
            "encoder.layers.*.local_probs", "encoder.layers.*.global_probs", "decoder.layers.*.output",
            "decoder.layers.*.self_attn_probs", "decoder.layers.*.cross_attn_probs"]


def hf_tensors(model, inputs):
    """transformers' outputs under ledref's golden names, as NumPy (bfloat16 and float16 as float32, which
    holds them exactly) (test-only adapter)."""
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, output_attentions=True,
                    output_hidden_states=True)
    names = {"logits": out.logits, "encoder.embeddings": out.encoder_hidden_states[0],
             "decoder.embeddings": out.decoder_hidden_states[0]}
    for i in range(len(out.encoder_attentions)):
        names[f"encoder.layers.{i}.output"] = out.encoder_hidden_states[i + 1]
        names[f"encoder.layers.{i}.local_probs"] = out.encoder_attentions[i]
        if out.encoder_global_attentions is not None:
            names[f"encoder.layers.{i}.global_probs"] = out.encoder_global_attentions[i]
    for i in range(len(out.decoder_attentions)):
        names[f"decoder.layers.{i}.output"] = out.decoder_hidden_states[i + 1]
        names[f"decoder.layers.{i}.self_attn_probs"] = out.decoder_attentions[i]
        names[f"decoder.layers.{i}.cross_attn_probs"] = out.cross_attentions[i]
    return {k: (v.float() if v.dtype in (torch.bfloat16, torch.float16) else v).numpy() for k, v in names.items()}


def kind(name):
    return re.sub(r"\.\d+\.", ".<i>.", name)


def model_error(value, ref):
    """max |a - b| / max(1, max |b|) (equal entries, -inf masks included, count 0; the scale is the finite
    entries'), ref cut to value's shape (transformers unpads what ledref records padded)."""
    ref = ref[tuple(slice(0, n) for n in value.shape)].astype(np.float64)
    value = value.astype(np.float64)
    with np.errstate(invalid="ignore"):
        error = np.where(value == ref, 0.0, np.abs(value - ref))
    scale = max(1.0, float(np.max(np.abs(ref[np.isfinite(ref)]), initial=0.0)))
    return float(np.max(error, initial=0.0)) / scale


def float32_models():
    """Measurement 1: {kind: {"ledref": e, "transformers": e}}."""
    worst = defaultdict(lambda: defaultdict(float))
    for seed, randomised in ((0, False), (1, False), (2, True), (3, True)):
        torch.manual_seed(seed)
        hf = transformers.LEDForConditionalGeneration(transformers.LEDConfig(**TINY)).eval()
        if randomised:
            randomise(hf, torch, seed)
        with tempfile.TemporaryDirectory() as path:
            hf.save_pretrained(path)
            ours = {dtype: ledref.LEDForConditionalGeneration.from_pretrained(path, dtype=dtype)
                    for dtype in ("float32", "float64")}
        for case in ("global_first", "globals_mixed"):
            inputs = case_inputs(case, TINY["vocab_size"], seed)
            reference = record(ours["float64"], inputs)
            for label, tensors in (("ledref", record(ours["float32"], inputs)),
                                   ("transformers", hf_tensors(hf, inputs))):
                for name, value in tensors.items():
                    worst[kind(name)][label] = max(worst[kind(name)][label], model_error(value, reference[name]))
    return {k: dict(v) for k, v in sorted(worst.items())}


def low_precision_model(path, inputs, label):
    """Measurement 2 on one checkpoint: {dtype: {kind: {"ledref": e, "transformers": e}}}."""
    start = time.time()
    reference = record(ledref.LEDForConditionalGeneration.from_pretrained(path, dtype="float64"), inputs, COMPARED)
    reference = {k: v.astype(np.float32) for k, v in reference.items()}  # float32 is far finer than the errors
    print(f"  {label}: float64 reference in {time.time() - start:.0f} s", flush=True)
    hf = transformers.LEDForConditionalGeneration.from_pretrained(path).eval()
    result = {}
    for dtype in LOW:
        worst = defaultdict(lambda: defaultdict(float))
        start = time.time()
        ours = record(ledref.LEDForConditionalGeneration.from_pretrained(path, dtype=dtype), inputs, COMPARED)
        seconds = {"ledref": time.time() - start}
        for name, value in ours.items():
            worst[kind(name)]["ledref"] = max(worst[kind(name)]["ledref"], model_error(value, reference[name]))
        del ours
        start = time.time()
        theirs = hf_tensors(copy.deepcopy(hf).to(getattr(torch, dtype)), inputs)
        seconds["transformers"] = time.time() - start
        for name, value in theirs.items():
            worst[kind(name)]["transformers"] = max(worst[kind(name)]["transformers"],
                                                    model_error(value, reference[name]))
        del theirs
        print(f"  {label} {dtype}: ledref {seconds['ledref']:.0f} s, transformers {seconds['transformers']:.0f} s",
              flush=True)
        result[dtype] = {k: dict(v) for k, v in sorted(worst.items())}
    return result


def led_base(tokens, seed=0):
    """A led-base-shaped random LED (transformers' init) and inputs of `tokens` tokens, the first global."""
    torch.manual_seed(seed)
    hf = transformers.LEDForConditionalGeneration(transformers.LEDConfig(**LED_BASE)).eval()
    path = tempfile.mkdtemp(prefix="ledref-led-base-")
    hf.save_pretrained(path)
    del hf
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(3, LED_BASE["vocab_size"], (1, tokens))
    input_ids[0, 0] = 0
    global_attention_mask = np.zeros_like(input_ids)
    global_attention_mask[0, 0] = 1
    inputs = dict(input_ids=input_ids, attention_mask=np.ones_like(input_ids),
                  global_attention_mask=global_attention_mask,
                  decoder_input_ids=rng.integers(3, LED_BASE["vocab_size"], (1, 32)))
    return path, inputs


def tiny_needle(seed=0):
    """The embedded model and a held-out document padded to a multiple of its window, <s> global, the answer's
    first tokens as decoder inputs."""
    path = os.path.join(ROOT, "ledref", "assets", "tiny-needle")
    tokenizer = ledref.LEDTokenizer.from_pretrained(path)
    doc = needle.make_document(needle.held_out_seeds(seed + 1)[seed])
    ids = tokenizer(doc.text)["input_ids"]
    window = max(ledref.LEDConfig.from_pretrained(path).attention_window)
    ids = ids[:len(ids) // window * window]  # a multiple of the window: transformers returns what ledref records
    input_ids = np.asarray([ids], np.int64)
    global_attention_mask = np.zeros_like(input_ids)
    global_attention_mask[0, 0] = 1
    answer = tokenizer(doc.answer)["input_ids"][:-1]
    decoder_input_ids = np.asarray([[2] + answer], np.int64)
    return path, dict(input_ids=input_ids, attention_mask=np.ones_like(input_ids),
                      global_attention_mask=global_attention_mask, decoder_input_ids=decoder_input_ids)


def ledref_kernel(dtype):
    """ledref's reference attention computed in float32 (NumPy) or emulated bfloat16 / float16 (ledref.lowp)."""
    from ledref.reference.attention import global_slots, longformer_attention, take_positions

    def kernel(q, k, v, q_global, k_global, v_global, attention_mask, one_sided_window, dilation, autoregressive):
        xp = np if dtype == "float32" else lowp.namespace(dtype)
        q, k, v, qg, kg, vg = (xp.asarray(a) for a in (q, k, v, q_global, k_global, v_global))
        mask = xp.asarray(attention_mask)
        slots = global_slots(mask)
        out = longformer_attention(q, k, v, take_positions(qg, slots[0], 1), kg, vg, mask, slots, one_sided_window,
                                   dilation=dilation, autoregressive=autoregressive)
        return tuple(None if a is None else ledref.to_numpy(a) for a in out)

    return kernel


def torch_kernel():
    return testing.load_kernel(os.path.join(ROOT, "docs", "kernels", "torch_kernel.py") + ":longformer_attention")


def kernels(n_cases, seed=1):
    """Measurement 3: {dtype: {output: {"ledref": e, "torch_kernel": e}}}."""
    cases = (testing.CATALOGUE + testing.VARIANT_CATALOGUE
             + testing.generated_cases(n_cases, seed, testing.VARIANT_ARGUMENTS))
    result = {}
    for dtype in ("float32", *LOW):
        worst = defaultdict(lambda: defaultdict(float))
        for label, fn, framework in (("ledref", ledref_kernel(dtype), "numpy"), ("torch_kernel", torch_kernel(),
                                                                                 "torch")):
            for case in cases:
                args = testing.to_framework(case.inputs(dtype), framework)
                got = fn(*(args[n] for n in (*testing.TENSORS, "attention_mask")), case.one_sided_window,
                         dilation=case.dilations(), autoregressive=case.autoregressive)
                for name, ours, ref in zip(testing.OUTPUTS, got, testing.reference(case, dtype), strict=True):
                    if ref is None:
                        continue
                    error = np.abs(testing.as_numpy(ours).astype(np.float64) - ref) / (np.abs(ref) + FLOORS[name])
                    worst[name][label] = max(worst[name][label], float(np.max(error, initial=0.0)))
        result[dtype] = {k: dict(v) for k, v in worst.items()}
    return result


def round_up(x):
    """The smallest 1, 2 or 5 times a power of ten that is >= x."""
    power = 10.0 ** math.floor(math.log10(x))
    return next(float(f"{m * power:.0e}") for m in (1, 2, 5, 10) if m * power >= x * (1 - 1e-12))


def defaults(kernel_errors):
    """{dtype: {output: [rtol, atol]}}: MARGIN times the larger measured error, rounded up; atol = rtol * floor."""
    out = {}
    for dtype, outputs in kernel_errors.items():
        out[dtype] = {}
        for name in testing.OUTPUTS:
            rtol = round_up(MARGIN * max(outputs[name].values()))
            out[dtype][name] = [rtol, float(f"{rtol * FLOORS[name]:.0e}")]
    return out


def fmt(x):
    return "" if x is None else f"{x:.1e}"


def render(results):
    lines32 = ["| tensor | ledref float32 | transformers float32 |", "|---|---|---|"]
    for k, v in results["float32_models"].items():
        lines32.append(f"| `{k}` | {fmt(v.get('ledref'))} | {fmt(v.get('transformers'))} |")
    low_tables = []
    for model, by_dtype in results["low_precision_models"].items():
        rows = ["| tensor | ledref bfloat16 | transformers bfloat16 | ledref float16 | transformers float16 |",
                "|---|---|---|---|---|"]
        for k in by_dtype["bfloat16"]:
            cells = [fmt(by_dtype[d][k].get(lib)) for d in LOW for lib in ("ledref", "transformers")]
            rows.append(f"| `{k}` | " + " | ".join(cells) + " |")
        low_tables.append(f"**{model}**\n\n" + "\n".join(rows))
    kernel_rows = ["| dtype | tensor | ledref | torch_kernel | default rtol | default atol |",
                   "|---|---|---|---|---|---|"]
    for dtype, outputs in results["kernels"].items():
        for name in testing.OUTPUTS:
            rtol, atol = results["kernel_defaults"][dtype][name]
            kernel_rows.append(f"| {dtype} | `{name}` | {fmt(outputs[name]['ledref'])} | "
                               f"{fmt(outputs[name]['torch_kernel'])} | {rtol:g} | {atol:g} |")
    return TEMPLATE.format(float32="\n".join(lines32), low="\n\n".join(low_tables), kernels="\n".join(kernel_rows),
                           tokens=results["settings"]["tokens"], cases=results["settings"]["kernel_cases"],
                           needle_tokens=results["settings"]["tiny_needle_tokens"],
                           minutes=results["seconds"] / 60, machine=results["machine"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=2048, help="input length of the led-base-shaped model")
    parser.add_argument("--cases", type=int, default=200, help="fixed random kernel cases besides the catalogues")
    args = parser.parse_args()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    start = time.time()
    print("1. float32 whole models", flush=True)
    float32 = float32_models()
    print("2. bfloat16 and float16 whole models", flush=True)
    needle_path, needle_inputs = tiny_needle()
    low = {"tiny-needle (trained)": low_precision_model(needle_path, needle_inputs, "tiny-needle")}
    base_path, base_inputs = led_base(args.tokens)
    try:
        low[f"led-base shape, random, {args.tokens} tokens"] = low_precision_model(base_path, base_inputs,
                                                                                   "led-base")
    finally:
        shutil.rmtree(base_path)
    print("3. attention kernels", flush=True)
    kernel_errors = kernels(args.cases)
    results = {
        "command": "python scripts/measure_tolerances.py" + (f" --tokens {args.tokens}" if args.tokens != 2048 else ""),
        "settings": {"tokens": args.tokens, "kernel_cases": args.cases, "margin": MARGIN, "floors": FLOORS,
                     "tiny_needle_tokens": int(needle_inputs["input_ids"].shape[1])},
        "float32_models": float32, "low_precision_models": low, "kernels": kernel_errors,
        "kernel_defaults": defaults(kernel_errors), "seconds": round(time.time() - start, 1),
        "versions": {"ledref": ledref.__version__, "transformers": transformers.__version__,
                     "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    with open(DOC, "w", encoding="utf-8") as f:
        f.write(render(results))
    print(render(results))
    print(f"wrote {RESULTS} and {DOC} in {results['seconds']:.0f} s")


TEMPLATE = """# How close a float32, bfloat16 or float16 implementation gets to the float64 reference

Measured by `python scripts/measure_tolerances.py` ({minutes:.0f} minutes on {machine}; every number below is in
`benchmarks/results/tolerances.json`). Each entry is the largest error seen for that kind of tensor,
against ledref's float64 run of the same model on the same inputs. Blank: that implementation does not
return the tensor.

## Whole models, float32

ledref's float32 run and transformers' float32 run, on small random LEDs (transformers' own init, and every
weight drawn at std 0.3, which makes attention sharp) and the golden cases `global_first` and
`globals_mixed`; error `max |a - b| / max(1, max |b|)`.

{float32}

What to expect of a correct float32 implementation: errors of the order above, below 1e-6 relative to the
tensor's scale on these small models (deeper and wider models accumulate more). `ledref compare` checks
`|a - b| <= atol + rtol * |b|` element by element; for float32 against a float64 golden file,
`--rtol 1e-4 --atol 1e-4` leaves a margin of about ten over these figures, while the planted bugs of the
conformance suite move probabilities by 1e-2 or more. Masked band scores are stored as -inf in every
dtype, so `band_scores_masked` compares equal across dtypes too.

## Whole models, bfloat16 and float16

ledref's compute modes (`from_pretrained(path, dtype="bfloat16" | "float16")`, {{mod}}`ledref.lowp`: weights
and activations rounded to the type, products accumulated in float32, layer norm, softmax and the
activations in float32) beside transformers' own run in that dtype (`model.to(torch.bfloat16)`, on the
CPU), on the embedded trained model `tiny-needle` (a held-out document of {needle_tokens} tokens, the first
global, the answer's tokens as decoder inputs) and on a led-base-shaped random LED (d_model 768, 6 + 6
layers, 12 heads, window 1024, transformers' init) reading {tokens} random tokens, the first global; error
`max |a - b| / max(1, max |b|)`.

{low}

ledref's errors are of the order of transformers' in both types: its emulation rounds where a correct
low-precision implementation rounds, so use these columns as the budget of your own bfloat16 or float16
model against a float64 golden file. bfloat16 keeps 8 bits of mantissa (unit roundoff 3.9e-3), float16
11 (4.9e-4).

## Attention kernels: the conformance suite's defaults

The kernel of `ledref conformance` against the float64 reference on the same (rounded) inputs: ledref's
reference attention in that dtype (float32 NumPy, or {{mod}}`ledref.lowp`) and `docs/kernels/torch_kernel.py`
(torch in that dtype: products in the type, softmax in float32, probabilities rounded before they meet the
values, as transformers computes), on the suite's catalogues and {cases} fixed random cases, dilated and
autoregressive ones included. Error `max |a - b| / (|b| + floor)`, floor 1 for `output` (the values are of
unit scale) and 1e-3 for the probabilities (their errors are relative). The defaults of
`ledref conformance --dtype D` (`ledref.testing.TOLERANCES`) are 4 times the larger error, rounded
up to 1, 2 or 5 times a power of ten, with atol = rtol * floor; float64's defaults are fixed (rtol 1e-7,
atol 1e-9), far above a float64 kernel's error.

{kernels}

A kernel that keeps its scores in float32 (as flash attention does) lands below these figures. The
planted bugs of `docs/kernels/buggy_kernels.py` fail at every dtype: they move a probability by 1e-2 or
more, many times these budgets.
"""

if __name__ == "__main__":
    main()
