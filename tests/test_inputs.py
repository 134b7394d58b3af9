"""Arguments: nested lists work like arrays; bad ones get an error that names them."""

import numpy as np
import pytest
from support import CASES, make_inputs

import ledref
from conftest import BACKENDS, SMALL, require, to_backend
from ledref.backend import namespace_name
from ledref.checkpoint import random_state_dict, save_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random checkpoint written by ledref itself: these tests need no transformers."""
    path = tmp_path_factory.mktemp("inputs")
    config = ledref.LEDConfig(**SMALL)
    save_checkpoint(path, config, random_state_dict(config))
    return path


@pytest.fixture(scope="module", params=BACKENDS)
def model(request, checkpoint):
    """The model with its weights placed on each backend at load; lists go to that backend."""
    return ledref.LEDForConditionalGeneration.from_pretrained(checkpoint, backend=request.param)


def test_lists_are_arrays_of_the_model_backend(model):
    inputs = make_inputs(CASES["globals_mixed"])
    from_arrays = model(**{k: to_backend(v, namespace_name(model.default_xp)) for k, v in inputs.items()})
    from_lists = model(**{k: v.tolist() for k, v in inputs.items()})
    assert type(from_lists.logits) is type(model.default_xp.asarray(0.0))
    np.testing.assert_array_equal(ledref.to_numpy(from_lists.logits), ledref.to_numpy(from_arrays.logits))


def test_outputs_follow_the_inputs_backend(checkpoint, same_operations_everywhere):
    """Weights loaded for NumPy follow inputs of another backend; the outputs are of that backend."""
    xp = require("array_api_strict")
    model = ledref.LEDForConditionalGeneration.from_pretrained(checkpoint)
    inputs = make_inputs(CASES["globals_mixed"])
    out = model(**{k: to_backend(v, "array_api_strict") for k, v in inputs.items()})
    assert isinstance(out.logits, type(xp.asarray(0.0)))
    np.testing.assert_array_equal(ledref.to_numpy(out.logits), model(**inputs).logits)


GOOD = dict(input_ids=[[5, 6, 7, 8]], decoder_input_ids=[[2, 5]])


@pytest.mark.parametrize("changes, message", [
    (dict(input_ids=[[5, 6, 97]]), r"input_ids holds ids outside \[0, 97\), e\.g\. 97 at index \(0, 2\)"),
    (dict(input_ids=[[5, -1]]), r"input_ids holds ids outside \[0, 97\)"),
    (dict(input_ids=[5, 6, 7]), r"input_ids has shape \(3,\); expected \(batch, length\)"),
    (dict(input_ids=[[5.0, 6.0]]),
     r"input_ids has dtype (array_api_strict\.|torch\.)?float64; expected integer token ids"),
    (dict(input_ids=[[5, 6], [7]]), r"input_ids is not a rectangular array"),
    (dict(input_ids=np.zeros((1, 0), dtype=np.int64)), r"input_ids has length 0"),
    (dict(input_ids=[[5] * 161]), r"input_ids has length 161, padded to 168 .* max_encoder_position_embeddings=160"),
    (dict(input_ids=None), r"input_ids is None"),
    (dict(attention_mask=[[1, 1, 1]]), r"attention_mask has shape \(1, 3\); expected \(1, 4\)"),
    (dict(attention_mask=[[1, 1, 2, 1]]), r"attention_mask holds values other than 0 and 1"),
    (dict(global_attention_mask=[[0, 3, 0, 0]]), r"global_attention_mask holds values other than 0 and 1"),
    (dict(decoder_input_ids=[[2, 5], [2, 6]]), r"decoder_input_ids has batch size 2; expected 1"),
    (dict(decoder_input_ids=[[2] * 41]), r"decoder positions reach 41 .* max_decoder_position_embeddings=40"),
    (dict(decoder_attention_mask=[[1]]), r"decoder_attention_mask has shape \(1, 1\); expected \(1, 2\)"),
    (dict(labels=[[5, 200]]), r"labels holds ids outside \[0, 97\) or -100"),
    (dict(past_key_values=((np.zeros((1, 3, 1, 8)),) * 4,)), r"past_key_values must hold 2 entries"),
    (dict(output_attentions=[2]), r"output_attentions holds encoder layer 2; there are 2 encoder layers, 0\.\.1 "
                                  r"\(or -2\.\.-1 from the end\)"),
    (dict(output_attentions=[0, -2]), r"output_attentions=\[0, -2\] names an encoder layer twice"),
    (dict(output_attentions=[]), r"output_attentions is empty; expected at least one encoder layer index"),
    (dict(output_attentions="0"),
     r"output_attentions='0'; expected True or False, or a sequence of encoder layer indices"),
    (dict(output_attentions=1), r"output_attentions=1; expected True or False, or a sequence of encoder layer indices"),
    (dict(output_attentions=[0.0]), r"output_attentions holds 0\.0; expected integer encoder layer indices"),
    (dict(output_attentions=True, attention_heads=[3]), r"attention_heads holds head 3; there are 3 heads"),
    (dict(output_attentions=[1], attention_heads=[True]), r"attention_heads holds True; expected integer head"),
    (dict(attention_heads=[0]), r"attention_heads=\[0\] but output_attentions is False"),
])
def test_bad_argument(changes, message, model):
    with pytest.raises(ledref.InputError, match=message):
        model(**{**GOOD, **changes})


def test_mixed_backends(checkpoint):
    require("array_api_strict")
    model = ledref.LEDForConditionalGeneration.from_pretrained(checkpoint)
    with pytest.raises(ledref.InputError, match=r"different array backends \(input_ids: numpy, "
                                                r"decoder_input_ids: array_api_strict\)"):
        model(input_ids=np.array(GOOD["input_ids"]),
              decoder_input_ids=to_backend(np.array(GOOD["decoder_input_ids"]), "array_api_strict"))


def test_bad_model_options(checkpoint):
    path = checkpoint
    with pytest.raises(ledref.LedrefError, match=r"dtype='float8' is not supported"):
        ledref.LEDModel.from_pretrained(path, dtype="float8")
    with pytest.raises(ledref.LedrefError, match=r"attn_implementation='flash'"):
        ledref.LEDModel.from_pretrained(path, attn_implementation="flash")
    with pytest.raises(ledref.LedrefError, match=r"backend='jax' is not supported"):
        ledref.LEDModel.from_pretrained(path, backend="jax")


def test_selection_errors_on_the_encoder_and_the_decoder_heads(tmp_path):
    """model.encoder checks the selection too; with output_attentions=True the heads must exist in the
    decoder as well (its attentions are returned at those heads)."""
    from conftest import random_led
    model = random_led(tmp_path, encoder_attention_heads=4, decoder_attention_heads=2)
    with pytest.raises(ledref.InputError, match=r"attention_heads holds head 4; there are 4 heads"):
        model.encoder([[5, 6, 7]], output_attentions=[0], attention_heads=[4])
    with pytest.raises(ledref.InputError, match=r"output_attentions=\(1, 1\) names an encoder layer twice"):
        model.encoder([[5, 6, 7]], output_attentions=(1, 1))
    with pytest.raises(ledref.InputError, match=r"attention_heads holds decoder head 3; there are 2 decoder heads"):
        model([[5, 6, 7]], decoder_input_ids=[[2]], output_attentions=True, attention_heads=[3])
    out = model([[5, 6, 7]], decoder_input_ids=[[2]], output_attentions=[1], attention_heads=[3])  # encoder only
    assert out.encoder_attentions[0] is None and out.encoder_attentions[1].shape[1] == 1
    assert out.decoder_attentions is None and out.cross_attentions is None
