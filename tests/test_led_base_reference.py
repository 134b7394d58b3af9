"""The published led-base-16384 reference slices (transformers' own integration test, tolerance 1e-4).

Runs only where a local copy of allenai/led-base-16384 in safetensors is at hand:
    LEDREF_LED_BASE=/path/to/led-base-16384 python -m pytest tests/test_led_base_reference.py
"""

import os

import numpy as np
import pytest

import ledref

PATH = os.environ.get("LEDREF_LED_BASE")
pytestmark = pytest.mark.skipif(not PATH, reason="set LEDREF_LED_BASE to a local led-base-16384 checkpoint")

PATTERN = [0, 31414, 232, 328, 740, 1140, 12695, 69]
INPUTS = dict(input_ids=np.array([PATTERN * 512]), decoder_input_ids=np.array([PATTERN * 128]))
INPUTS["attention_mask"] = (INPUTS["input_ids"] != 1).astype(np.int64)
INPUTS["decoder_attention_mask"] = (INPUTS["decoder_input_ids"] != 1).astype(np.int64)


def test_led_model_slice():
    out = ledref.LEDModel.from_pretrained(PATH)(**INPUTS)
    expected = np.array([[2.3050, 2.8279, 0.6531], [-1.8457, -0.1455, -3.5661], [-1.0186, 0.4586, -2.2043]])
    assert out.last_hidden_state.shape == (1, 1024, 768)
    np.testing.assert_allclose(ledref.to_numpy(out.last_hidden_state)[0, :3, :3], expected, atol=1e-4)


def test_conditional_generation_slice():
    out = ledref.LEDForConditionalGeneration.from_pretrained(PATH)(**INPUTS)
    expected = np.array([[33.6507, 6.4572, 16.8089], [5.8739, -2.4238, 11.2902], [-3.2139, -4.3149, 4.2783]])
    assert out.logits.shape == (1, 1024, 50265)
    np.testing.assert_allclose(ledref.to_numpy(out.logits)[0, :3, :3], expected, atol=1e-4)
