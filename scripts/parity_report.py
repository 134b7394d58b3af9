"""The largest error of ledref against transformers over the parity cases of tests/test_parity.py, per
output field and implementation, float32 and float64 (transformers' encoder softmax kept in float64):

    python scripts/parity_report.py      (needs torch and transformers; about a minute)

An error is max |ours - HF| / max(1, max |HF|) for one tensor; the table gives the largest over cases
and layers. The tests allow 1e-4 (float32) and 1e-9 (float64).
"""

import os
import sys
import tempfile

import numpy as np
import torch
import transformers

import ledref

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from support import CASES, SEQ2SEQ_FIELDS, make_inputs  # noqa: E402

from conftest import SMALL, hf_cache, hf_call, hf_model, numpy_tree  # noqa: E402
from hf_oracle import randomise  # noqa: E402


def leaves(x):
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return [a for v in x for a in leaves(v)]
    return [x]


def main():
    worst = {}
    for spec in CASES.values():
        settings = {**SMALL, **spec["config"], "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0}
        torch.manual_seed(0)
        hf = randomise(transformers.LEDForConditionalGeneration(transformers.LEDConfig(**settings)).eval(), torch, 0)
        path = tempfile.mkdtemp()
        hf.save_pretrained(path)
        inputs = make_inputs(spec)
        for dtype in ("float32", "float64"):
            theirs = hf_call(hf_model(hf, dtype), dtype, **inputs, use_cache=True, output_attentions=True,
                             output_hidden_states=True)
            for implementation in ("band", "band_matrix", "dense"):
                model = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype=dtype,
                                                                           attn_implementation=implementation)
                ours = model(**inputs, use_cache=True, output_attentions=True, output_hidden_states=True)
                for field in ["logits"] + SEQ2SEQ_FIELDS + ["past_key_values"]:
                    reference = hf_cache(theirs.cache) if field == "past_key_values" else getattr(theirs, field)
                    pairs = zip(leaves(numpy_tree(getattr(ours, field))), leaves(numpy_tree(reference)), strict=True)
                    for a, b in pairs:
                        error = np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b)))
                        key = (dtype, implementation, field)
                        worst[key] = max(worst.get(key, 0.0), float(error))
    columns = [f"{d} {i}" for d in ("float32", "float64") for i in ("band", "band_matrix", "dense")]
    print("| field | " + " | ".join(columns) + " |")
    print("|---" * 7 + "|")
    for field in ["logits"] + SEQ2SEQ_FIELDS + ["past_key_values"]:
        print(f"| {field} | " + " | ".join(f"{worst[(d, i, field)]:.1e}" for d in ("float32", "float64")
                                           for i in ("band", "band_matrix", "dense")) + " |")


if __name__ == "__main__":
    main()
