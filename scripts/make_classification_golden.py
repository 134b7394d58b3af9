"""Golden outputs of LEDForSequenceClassification, which transformers 5 removed.

Run once with transformers 4.57.6 (and torch, numpy, safetensors):
    python -m venv /tmp/hf4 && /tmp/hf4/bin/pip install torch==2.13.0 transformers==4.57.6 safetensors numpy
    /tmp/hf4/bin/python scripts/make_classification_golden.py
It writes tests/data/classification/: two random checkpoints (3 labels; 1 label for regression) in the
Hub layout and golden.safetensors with the inputs and every output, in float32 and float64.
"""

import json
import os
import sys

import numpy as np
import torch
import transformers
from safetensors.numpy import save_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from hf_oracle import Float64Softmax, randomise  # noqa: E402

assert transformers.__version__ == "4.57.6", transformers.__version__
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "classification")
CONFIG = dict(vocab_size=97, d_model=24, encoder_layers=2, decoder_layers=2, encoder_attention_heads=3,
              decoder_attention_heads=3, encoder_ffn_dim=40, decoder_ffn_dim=40,
              max_encoder_position_embeddings=160, max_decoder_position_embeddings=40, attention_window=[4, 8],
              dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, classifier_dropout=0.0)

# three rows, right padded, each with two eos tokens (id 2), the last at the end of the real text
rng = np.random.default_rng(7)
lengths = [21, 17, 12]
input_ids = rng.integers(3, 97, (3, 21))
attention_mask = (np.arange(21)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
input_ids = np.where(attention_mask == 1, input_ids, 1)
input_ids[:, 0] = 0
for row, n in enumerate(lengths):
    input_ids[row, n // 2] = 2
    input_ids[row, n - 1] = 2
global_attention_mask = np.zeros_like(input_ids)
global_attention_mask[:, 0] = 1
global_attention_mask[0, 10] = 1
golden = {"input_ids": input_ids, "attention_mask": attention_mask, "global_attention_mask": global_attention_mask,
          "labels_single": np.array([0, 2, 1]), "labels_multi": rng.integers(0, 2, (3, 3)).astype(np.float32),
          "labels_regression": rng.normal(size=(3,)).astype(np.float32)}


def run(model, dtype, **labels):
    args = {k: torch.from_numpy(v) for k, v in golden.items() if k in ("input_ids", "attention_mask",
                                                                         "global_attention_mask")}
    args.update({k: torch.from_numpy(v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in labels.items()})
    # 4.57.6 builds its float64 causal mask with torch.full(..., finfo(float64).min) in the default dtype,
    # which overflows unless the default is float64 too
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        with torch.no_grad(), Float64Softmax(torch):
            return model(**args, output_attentions=True, output_hidden_states=True)
    finally:
        torch.set_default_dtype(torch.float32)


def add(prefix, out, fields):
    for name in fields:
        value = getattr(out, name)
        if isinstance(value, tuple):
            for i, v in enumerate(value):
                golden[f"{prefix}/{name}.{i}"] = v.numpy()
        elif value is not None:
            golden[f"{prefix}/{name}"] = value.numpy()


ALL = ["logits", "encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions",
       "encoder_global_attentions", "decoder_hidden_states", "decoder_attentions", "cross_attentions"]
for name, num_labels, seed in (("num_labels_3", 3, 11), ("num_labels_1", 1, 12)):
    torch.manual_seed(seed)
    model = transformers.LEDForSequenceClassification(transformers.LEDConfig(num_labels=num_labels, **CONFIG)).eval()
    randomise(model, torch, seed)
    model.save_pretrained(os.path.join(OUT, name), safe_serialization=True)
    for dtype in ("float32", "float64"):
        m = model if dtype == "float32" else model.double()
        prefix = f"{name}/{dtype}"
        if num_labels == 3:
            add(prefix, run(m, dtype, labels=golden["labels_single"]), ALL + ["loss"])
            m.config.problem_type = None  # transformers keeps the problem type of its first call
            golden[f"{prefix}/loss_multi"] = run(m, dtype, labels=golden["labels_multi"]).loss.numpy()
            m.config.problem_type = None
        else:
            add(prefix, run(m, dtype, labels=golden["labels_regression"]), ["logits", "loss"])
golden = {k: np.array(v, order="C") for k, v in golden.items()}
save_file(golden, os.path.join(OUT, "golden.safetensors"),
          metadata={"transformers": transformers.__version__, "torch": torch.__version__,
                    "script": "scripts/make_classification_golden.py"})
print(json.dumps({k: list(v.shape) for k, v in golden.items()})[:400], "...", len(golden), "tensors")
