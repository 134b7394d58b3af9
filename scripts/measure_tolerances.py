"""Measure how far float32 implementations land from ledref's float64 reference, per kind of tensor, and
write the table into docs/tolerances.md:

    python scripts/measure_tolerances.py        (needs torch and transformers; about a minute)

For 4 random LEDs (transformers' own init, and every weight randomised at std 0.3 as in the tests) and the
golden cases whose length is a multiple of the window (so transformers' outputs have the same shapes),
it compares ledref float32 and transformers float32 with ledref float64. The error of a tensor is
max |a - b| / max(1, max |b|); the table gives the largest over models, cases and layers.
"""

import os
import re
import sys
import tempfile
from collections import defaultdict

import numpy as np
import torch
import transformers

import ledref
from ledref.golden import TINY, case_inputs, record

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from hf_oracle import randomise  # noqa: E402


def hf_tensors(model, inputs):
    """transformers' outputs under ledref's golden names (test-only adapter)."""
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


def main():
    worst = {"ledref float32": defaultdict(float), "transformers float32": defaultdict(float)}
    for seed, randomised in ((0, False), (1, False), (2, True), (3, True)):
        torch.manual_seed(seed)
        hf = transformers.LEDForConditionalGeneration(transformers.LEDConfig(**TINY)).eval()
        if randomised:
            randomise(hf, torch, seed)
        path = tempfile.mkdtemp()
        hf.save_pretrained(path)
        ours = {dtype: ledref.LEDForConditionalGeneration.from_pretrained(path, dtype=dtype)
                for dtype in ("float32", "float64")}
        for case in ("global_first", "globals_mixed"):
            inputs = case_inputs(case, TINY["vocab_size"], seed)
            reference = record(ours["float64"], inputs)
            for label, tensors in (("ledref float32", record(ours["float32"], inputs)),
                                   ("transformers float32", hf_tensors(hf, inputs))):
                for name, value in tensors.items():
                    ref = reference[name]
                    error = np.max(np.abs(value.astype(np.float64) - ref)) / max(1.0, np.max(np.abs(ref)))
                    worst[label][kind(name)] = max(worst[label][kind(name)], float(error))
    kinds = sorted(worst["ledref float32"])
    lines = ["| tensor | ledref float32 | transformers float32 |", "|---|---|---|"]
    for k in kinds:
        hf_value = worst["transformers float32"].get(k)
        lines.append(f"| `{k}` | {worst['ledref float32'][k]:.1e} | {'' if hf_value is None else f'{hf_value:.1e}'} |")
    table = "\n".join(lines)
    print(table)
    doc = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "tolerances.md")
    with open(doc, "w") as f:
        f.write(TEMPLATE.format(table=table))


TEMPLATE = """# How close a float32 implementation gets to the float64 reference

Measured by `python scripts/measure_tolerances.py`: ledref's float32 run and transformers' float32 run
against ledref's float64 run, on small random LEDs (transformers' own init, and every weight drawn at
std 0.3, which makes attention sharp) and the golden cases `global_first` and `globals_mixed`. Each entry
is the largest `max |a - b| / max(1, max |b|)` seen for that kind of tensor. Blank: transformers does not
return that tensor.

{table}

What to expect of a correct float32 kernel: errors of the order above, below 1e-6 relative to the
tensor's scale on these small models (deeper and wider models accumulate more). `ledref compare` checks
`|a - b| <= atol + rtol * |b|` element by element; for float32 against a float64 golden file,
`--rtol 1e-4 --atol 1e-4` leaves a margin of about ten over these figures, while the planted bugs of
the conformance suite (a global key left in the band, pad rows not zeroed, a shifted self column) move
probabilities by 1e-2 or more. Band scores at masked places hold the dtype's finfo.min, which differs
between float32 and float64: compare `band_scores_masked` only within one dtype.
"""

if __name__ == "__main__":
    main()
