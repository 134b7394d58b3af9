"""LEDForSequenceClassification against golden outputs of transformers 4.57.6 (5.x removed the class).
The checkpoints and golden.safetensors were written by scripts/make_classification_golden.py."""

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import ledref
from conftest import assert_close, to_backend

DATA = Path(__file__).parent / "data" / "classification"
GOLDEN = load_file(DATA / "golden.safetensors")
INPUTS = {k: GOLDEN[k] for k in ("input_ids", "attention_mask", "global_attention_mask")}
FIELDS = ["encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions", "encoder_global_attentions",
          "decoder_hidden_states", "decoder_attentions", "cross_attentions"]


def run(name, dtype, backend, labels, implementation="band"):
    model = ledref.LEDForSequenceClassification.from_pretrained(DATA / name, dtype=dtype,
                                                                attn_implementation=implementation)
    args = {k: to_backend(v, backend) for k, v in INPUTS.items()}
    return model(**args, labels=to_backend(labels, backend), output_attentions=True, output_hidden_states=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_single_label_and_every_field(dtype, backend, implementation):
    prefix = f"num_labels_3/{dtype}"
    out = run("num_labels_3", dtype, backend, GOLDEN["labels_single"], implementation)
    assert_close(out.logits, GOLDEN[f"{prefix}/logits"], dtype, "logits")
    assert_close(out.loss, GOLDEN[f"{prefix}/loss"], dtype, "loss")
    assert_close(out.encoder_last_hidden_state, GOLDEN[f"{prefix}/encoder_last_hidden_state"], dtype, "encoder")
    for field in FIELDS[1:]:
        tensors = getattr(out, field)
        expected = sorted((k for k in GOLDEN if k.startswith(f"{prefix}/{field}.")),
                          key=lambda k: int(k.rsplit(".", 1)[1]))
        assert len(tensors) == len(expected) > 0, field
        for i, key in enumerate(expected):
            assert_close(tensors[i], GOLDEN[key], dtype, key)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multi_label_and_regression_losses(dtype, backend):
    out = run("num_labels_3", dtype, backend, GOLDEN["labels_multi"].astype(dtype))
    assert_close(out.loss, GOLDEN[f"num_labels_3/{dtype}/loss_multi"], dtype, "multi-label loss")
    out = run("num_labels_1", dtype, backend, GOLDEN["labels_regression"].astype(dtype))
    assert_close(out.logits, GOLDEN[f"num_labels_1/{dtype}/logits"], dtype, "regression logits")
    assert_close(out.loss, GOLDEN[f"num_labels_1/{dtype}/loss"], dtype, "regression loss")


def test_rows_with_different_eos_counts():
    model = ledref.LEDForSequenceClassification.from_pretrained(DATA / "num_labels_3")
    ids = np.array([[0, 5, 2, 7, 2], [0, 5, 6, 7, 2]])
    with pytest.raises(ledref.InputError, match=r"rows hold \[2, 1\] eos tokens"):
        model(ids)
