"""generate() against transformers' generate on the same random checkpoint: identical token ids for greedy
and beam search, beam scores within 1e-4."""

import json

import numpy as np
import pytest
from support import batch, hf_generate

import ledref
from conftest import hf_call, numpy_tree, require, to_backend

pytestmark = pytest.mark.parity


@pytest.fixture
def checkpoint(generation_checkpoint):
    """(HF model, path) of the random LED made for generation (conftest.generation_checkpoint)."""
    return generation_checkpoint


GREEDY = [dict(), dict(max_length=30), dict(max_new_tokens=9), dict(min_length=15, max_length=25),
          dict(min_new_tokens=13), dict(forced_bos_token_id=0, forced_eos_token_id=2, max_length=9),
          dict(no_repeat_ngram_size=2, max_length=30)]
BEAMS = [
    dict(num_beams=4, length_penalty=2.0, no_repeat_ngram_size=3, min_length=8, max_length=25, early_stopping=True),
    dict(num_beams=4, length_penalty=2.0, no_repeat_ngram_size=3, min_length=8, max_length=25, early_stopping=True,
         num_return_sequences=3),
    dict(num_beams=4, length_penalty=2.0, no_repeat_ngram_size=3, max_length=30, early_stopping=False),
    dict(num_beams=3, length_penalty=0.5, early_stopping="never", max_new_tokens=14, num_return_sequences=2),
    dict(num_beams=5, length_penalty=-1.0, forced_bos_token_id=0, forced_eos_token_id=2, max_length=12),
    dict(num_beams=2, min_new_tokens=16, max_length=28),
]


def test_the_model_is_not_degenerate(checkpoint):
    """Guard for the tests below: the oracle's outputs vary and end at varied steps."""
    hf, _ = checkpoint
    greedy = numpy_tree(hf_generate(hf, max_length=30).sequences)
    assert all(len(set(row.tolist())) >= 5 for row in greedy)
    assert all((row[1:] == 2).any() for row in greedy)
    beams = numpy_tree(hf_generate(hf, **BEAMS[1]).sequences)
    ends = [int(np.argmax(row[1:] == 2)) for row in beams if (row[1:] == 2).any()]
    assert len(set(ends)) >= 2


@pytest.mark.parametrize("settings", GREEDY, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "default")
def test_greedy_matches_transformers(settings, checkpoint, backend, implementation):
    hf, path = checkpoint
    expected = numpy_tree(hf_generate(hf, **settings).sequences)
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, backend=backend,
                                                               attn_implementation=implementation)
    ours = model.generate(**{k: to_backend(v, backend) for k, v in batch().items()}, **settings)
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("settings", BEAMS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_beam_search_matches_transformers(settings, checkpoint, backend, implementation):
    hf, path = checkpoint
    expected = hf_generate(hf, **settings)
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, backend=backend,
                                                               attn_implementation=implementation)
    ours = model.generate(**{k: to_backend(v, backend) for k, v in batch().items()}, return_dict_in_generate=True,
                          output_scores=True, **settings)
    np.testing.assert_array_equal(ours.sequences, numpy_tree(expected.sequences))
    np.testing.assert_allclose(ours.sequences_scores, numpy_tree(expected.sequences_scores), rtol=0, atol=1e-4)


@pytest.mark.parametrize("settings", [GREEDY[1], BEAMS[0]], ids=["greedy", "beams"])
def test_with_encoder_outputs_given(settings, checkpoint):
    """generate(encoder_outputs=...) skips the encoder, as transformers' does, with the same tokens."""
    hf, path = checkpoint
    expected = numpy_tree(hf_generate(hf, **settings).sequences)
    model = ledref.LEDForConditionalGeneration.from_pretrained(path)
    inputs = batch()
    encoded = model.encoder(**inputs)
    ours = model.generate(None, attention_mask=inputs["attention_mask"], encoder_outputs=encoded, **settings)
    np.testing.assert_array_equal(ours, expected)
    np.testing.assert_array_equal(model.generate(None, attention_mask=inputs["attention_mask"],
                                                 encoder_outputs=(encoded.last_hidden_state,), **settings), expected)


@pytest.mark.parametrize("settings", [GREEDY[1], BEAMS[0]], ids=["greedy", "beams"])
def test_without_cache_and_in_float64(settings, checkpoint):
    """Recomputing the whole prefix each step, and a float64 model, give transformers' tokens too."""
    hf, path = checkpoint
    expected = numpy_tree(hf_generate(hf, **settings).sequences)
    model = ledref.LEDForConditionalGeneration.from_pretrained(path)
    np.testing.assert_array_equal(model.generate(**batch(), use_cache=False, **settings), expected)
    model64 = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype="float64")
    np.testing.assert_array_equal(model64.generate(**batch(), **settings), expected)


def test_settings_from_generation_config_json(checkpoint, tmp_path):
    """generation_config.json of the checkpoint sets the defaults, for transformers and for ledref alike."""
    transformers = require("transformers")
    hf, path = checkpoint
    settings = dict(num_beams=3, length_penalty=1.5, no_repeat_ngram_size=3, max_length=18, early_stopping=True)
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((path / name).read_bytes())
    stored = json.loads((path / "generation_config.json").read_text())
    (tmp_path / "generation_config.json").write_text(json.dumps({**stored, **settings}))
    theirs = transformers.LEDForConditionalGeneration.from_pretrained(tmp_path).eval()
    expected = numpy_tree(hf_call(theirs.generate, "float32", **batch()))
    ours = ledref.LEDForConditionalGeneration.from_pretrained(tmp_path)
    assert ours.generation_config.num_beams == 3
    np.testing.assert_array_equal(ours.generate(**batch()), expected)


@pytest.mark.parametrize("settings, message", [
    (dict(num_beams=2, num_return_sequences=3), r"num_return_sequences=3 must be between 1 and num_beams=2"),
    (dict(num_return_sequences=2), r"num_return_sequences=2 must be between 1 and num_beams=1"),
    (dict(typical_p=0.5), r"typical_p=0.5 is not supported"),
    (dict(do_sample=True, temperature=0.0), r"temperature=0.0; expected a number > 0"),
    (dict(do_sample=True, top_k=-1), r"top_k=-1; expected an int >= 0"),
    (dict(do_sample=True, top_p=1.5), r"top_p=1.5; expected a number between 0 and 1"),
    (dict(repetition_penalty=0.0), r"repetition_penalty=0.0; expected a number > 0"),
    (dict(bad_words_ids=[[5], []]), r"bad_words_ids=\[\[5\], \[\]\]; expected a non-empty list of non-empty lists"),
    (dict(bad_words_ids=[[5, 97]]), r"token ids in \[0, 97\)"),
    (dict(do_sample="yes"), r"do_sample='yes'; expected True or False"),
    (dict(do_sample=True, seed=-1), r"seed=-1; expected an int >= 0"),
    (dict(do_sample=True, seed=1, generator=np.random.default_rng(1)), r"generator and seed are both given"),
    (dict(do_sample=True, generator=1), r"generator is a int; expected a numpy.random.Generator"),
    (dict(generation_config=[1]), r"generation_config is a list; expected a GenerationConfig"),
    (dict(generation_config={"num_beam": 2}), r"unknown generation setting num_beam=2"),
    (dict(num_beam=4), r"unknown generation setting num_beam=4"),
    (dict(max_length=41), r"max_length=41 exceeds max_decoder_position_embeddings=40"),
    (dict(max_length=1), r"max_length=1 leaves no room"),
    (dict(early_stopping="sometimes"), r"early_stopping='sometimes'"),
    (dict(num_beams=0), r"num_beams=0; expected an int >= 1"),
])
def test_bad_settings(settings, message, checkpoint):
    model = ledref.LEDForConditionalGeneration.from_pretrained(checkpoint[1])
    with pytest.raises(ledref.GenerationError, match=message):
        model.generate(**batch(), **settings)
