"""generate's outputs against transformers' generate output, field by field: scores and logits of every
step within 1e-4, the encoder's attentions and hidden states once, the decoder's self- and cross-attentions
and hidden states per step within the parity tolerance, beam_indices and sequences identical, for greedy
search, beam search and (with transformers replaying ledref's draws) sampling."""

import numpy as np
import pytest
from array_api_compat import array_namespace
from support import batch, sample_both

import ledref
from conftest import assert_tree_close, hf_call, hf_model, numpy_tree, to_backend
from ledref.backend import namespace_name

pytestmark = pytest.mark.parity


@pytest.fixture
def checkpoint(generation_checkpoint):
    """(HF model, path) of the random LED made for generation (conftest.generation_checkpoint)."""
    return generation_checkpoint
EVERYTHING = dict(return_dict_in_generate=True, output_scores=True, output_logits=True, output_attentions=True,
                  output_hidden_states=True)
PER_STEP = ("decoder_attentions", "cross_attentions", "decoder_hidden_states")


def hf_generate_as_given(hf, dtype="float32", **settings):
    """transformers' generate on the test batch, with these settings only (support.hf_generate adds
    return_dict_in_generate and output_scores)."""
    return hf_call(hf_model(hf, dtype).generate, dtype, **batch(), **settings)


def assert_scores_close(ours, theirs, name):
    """One [N, V] array per step: the same steps, -inf at the same places, the rest within 1e-4."""
    theirs = numpy_tree(theirs)
    assert ours is not None and len(ours) == len(theirs), f"{name}: {len(ours or ())} steps, expected {len(theirs)}"
    for step, (mine, reference) in enumerate(zip(ours, theirs, strict=True)):
        assert isinstance(mine, np.ndarray) and mine.dtype == np.float32 and mine.shape == reference.shape, \
            f"{name}[{step}]: {type(mine).__name__} {getattr(mine, 'dtype', '')} {getattr(mine, 'shape', '')}"
        assert np.array_equal(np.isneginf(mine), np.isneginf(reference)), f"{name}[{step}]: -inf differ"
        finite = np.isfinite(reference)
        err = float(np.max(np.abs(mine[finite] - reference[finite]), initial=0.0))
        assert err <= 1e-4, f"{name}[{step}]: max |ours - transformers| = {err:.3g}"


def assert_outputs_equal(ours, theirs, dtype="float32", sampled=False):
    """Every field transformers returns, ledref returns alike (the cache aside); sampled scores are compared
    by test_sampling through their probabilities."""
    assert type(ours).__name__ == type(theirs).__name__, (type(ours).__name__, type(theirs).__name__)
    np.testing.assert_array_equal(ours.sequences, numpy_tree(theirs.sequences))
    expected = {name for name in theirs.keys() if name != "cache"}
    assert set(ours.keys()) - {"encoder_global_attentions"} == expected, (sorted(ours.keys()), sorted(expected))
    for name in ("scores", "logits"):
        if name in expected and not (sampled and name == "scores"):
            assert_scores_close(getattr(ours, name), getattr(theirs, name), name)
    if "sequences_scores" in expected:
        np.testing.assert_allclose(ours.sequences_scores, numpy_tree(theirs.sequences_scores), rtol=0, atol=1e-4)
    if "beam_indices" in expected:
        np.testing.assert_array_equal(ours.beam_indices, numpy_tree(theirs.beam_indices))
    for name in ("encoder_attentions", "encoder_hidden_states") + PER_STEP:
        if name in expected:
            assert_tree_close(getattr(ours, name), getattr(theirs, name), dtype, name)


GREEDY = [dict(max_length=12), dict(max_new_tokens=9, min_new_tokens=6, no_repeat_ngram_size=2),
          dict(max_length=10, use_cache=False)]
BEAMS = [dict(num_beams=4, length_penalty=2.0, no_repeat_ngram_size=3, min_length=8, max_length=25,
              early_stopping=True, num_return_sequences=3),
         dict(num_beams=3, length_penalty=0.5, early_stopping="never", max_new_tokens=14, num_return_sequences=2),
         dict(num_beams=2, max_length=9, use_cache=False)]


def label(settings):
    return ",".join(f"{k}={v}" for k, v in settings.items())


@pytest.mark.parametrize("settings", GREEDY + BEAMS, ids=label)
def test_every_output_equals_transformers(settings, checkpoint):
    hf, path = checkpoint
    model = ledref.LEDForConditionalGeneration.from_pretrained(path)
    theirs = hf_generate_as_given(hf, **EVERYTHING, **settings)
    ours = model.generate(**batch(), **EVERYTHING, **settings)
    assert_outputs_equal(ours, theirs)
    # the decoder's attentions are over the running rows: B * num_beams for beams; with the cache, one query
    # per step over the keys so far; the encoder's over the B rows of the batch
    rows = 2 * settings.get("num_beams", 1)
    cached = settings.get("use_cache", True)
    for t, (self_attns, cross_attns) in enumerate(zip(ours.decoder_attentions, ours.cross_attentions, strict=True),
                                                           start=1):
        assert self_attns[0].shape == (rows, 3, 1 if cached else t, t)
        assert cross_attns[0].shape == (rows, 3, 1 if cached else t, 23)
    assert ours.encoder_attentions[0].shape[:3] == (2, 3, 23)


@pytest.mark.parametrize("settings", [GREEDY[0], BEAMS[0]], ids=["greedy", "beams"])
def test_on_every_backend_and_implementation(settings, checkpoint, backend, implementation):
    """Attentions and hidden states come in the model's backend (scores, sequences and beam indices in NumPy,
    where the search runs), equal to transformers' on each."""
    hf, path = checkpoint
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, backend=backend,
                                                               attn_implementation=implementation)
    ours = model.generate(**{k: to_backend(v, backend) for k, v in batch().items()}, **EVERYTHING, **settings)
    assert_outputs_equal(ours, hf_generate_as_given(hf, **EVERYTHING, **settings))
    assert namespace_name(array_namespace(ours.cross_attentions[0][0])) == backend
    assert namespace_name(array_namespace(ours.encoder_attentions[0])) == backend


def test_global_attentions_are_the_encoders(checkpoint):
    """encoder_global_attentions, which transformers' generate drops, are those of the encoder's own output."""
    hf, path = checkpoint
    model = ledref.LEDForConditionalGeneration.from_pretrained(path)
    ours = model.generate(**batch(), max_length=6, return_dict_in_generate=True, output_attentions=True)
    encoded = hf_call(hf.led.encoder, "float32", **batch(), output_attentions=True)
    assert_tree_close(ours.encoder_global_attentions, encoded.global_attentions, "float32", "global_attentions")


def test_float64_model(checkpoint):
    """A float64 model: attentions in float64 equal to transformers' float64 run within 1e-9, scores and
    logits in float32 as transformers keeps them."""
    hf, path = checkpoint
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype="float64")
    for settings in (GREEDY[0], BEAMS[0]):
        theirs = hf_generate_as_given(hf, "float64", **EVERYTHING, **settings)
        assert_outputs_equal(model.generate(**batch(), **EVERYTHING, **settings), theirs, dtype="float64")


@pytest.mark.parametrize("settings", [dict(temperature=0.8, top_k=20, num_return_sequences=2),
                                      dict(num_beams=3, temperature=0.9, top_k=20)], ids=label)
def test_sampled_outputs_equal_transformers(settings, checkpoint, monkeypatch):
    """Sampling, transformers replaying ledref's draws: the same sequences, beam indices, logits and
    attentions at every step (scores: see test_sampling)."""
    ours, theirs = sample_both(monkeypatch, checkpoint, max_new_tokens=10, output_logits=True,
                               output_attentions=True, output_hidden_states=True, **settings)
    assert_outputs_equal(ours, theirs, "float64", sampled=True)


def test_only_what_is_asked_for(checkpoint):
    """Each flag adds its fields and no other, as in transformers; without return_dict_in_generate the flags
    change nothing and the sequences come alone."""
    hf, path = checkpoint
    model = ledref.LEDForConditionalGeneration.from_pretrained(path)
    for search in (dict(max_length=8), dict(max_length=8, num_beams=2)):
        for flag in ("output_scores", "output_logits", "output_attentions", "output_hidden_states", None):
            flags = {flag: True} if flag else {}
            ours = model.generate(**batch(), return_dict_in_generate=True, **flags, **search)
            theirs = hf_generate_as_given(hf, return_dict_in_generate=True, **flags, **search)
            assert set(ours.keys()) - {"encoder_global_attentions"} == set(theirs.keys()) - {"cache"}, flag
            assert_outputs_equal(ours, theirs)
        plain = model.generate(**batch(), output_scores=True, output_attentions=True, **search)
        assert isinstance(plain, np.ndarray)
        np.testing.assert_array_equal(plain, ours.sequences)


def test_encoder_outputs_given(checkpoint):
    """With encoder_outputs given, the encoder's attentions are those it holds (none when it holds none),
    as transformers takes them from the given outputs."""
    hf, path = checkpoint
    model = ledref.LEDForConditionalGeneration.from_pretrained(path)
    inputs = batch()
    encoded = model.encoder(**inputs, output_attentions=True)
    ours = model.generate(None, attention_mask=inputs["attention_mask"], encoder_outputs=encoded, max_length=7,
                          return_dict_in_generate=True, output_attentions=True)
    assert ours.encoder_attentions is encoded.attentions
    bare = model.generate(None, attention_mask=inputs["attention_mask"], encoder_outputs=encoded.last_hidden_state,
                          max_length=7, return_dict_in_generate=True, output_attentions=True)
    assert bare.encoder_attentions is None and len(bare.cross_attentions) == len(ours.cross_attentions)
    assert_tree_close(bare.cross_attentions, hf_generate_as_given(hf, max_length=7, return_dict_in_generate=True,
                                                  output_attentions=True).cross_attentions,
                      "float32", "cross_attentions")
