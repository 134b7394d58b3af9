"""Sampling, repetition penalty and bad words against transformers.

Sampled ids cannot match torch's random numbers, so the distributions are compared instead: ledref samples
with a seed, then transformers' own generate runs with torch.multinomial replaying ledref's draws, so that
both walk the same prefixes, and at every step the probabilities transformers' logits processors give
(softmax of its `scores`) must equal ledref's within 1e-6. The processors are also compared one by one
with transformers' classes, the draw is checked against the probabilities it draws from, and greedy and
beam search with bad_words_ids and repetition_penalty must give transformers' ids exactly.
"""

import numpy as np
import pytest
from support import batch, hf_generate, probabilities, sample_both

import ledref
import ledref.sampling
from conftest import hf_call, hf_model, numpy_tree, require

pytestmark = pytest.mark.parity


@pytest.fixture
def checkpoint(generation_checkpoint):
    """(HF model, path) of the random LED made for generation (conftest.generation_checkpoint)."""
    return generation_checkpoint

SAMPLING = [
    dict(temperature=0.7),
    dict(top_k=10),
    dict(top_p=0.8),
    dict(repetition_penalty=1.3),
    dict(temperature=1.5, top_k=20),
    dict(temperature=0.8, top_p=0.9, repetition_penalty=1.2),
    dict(temperature=1.3, top_k=30, top_p=0.85, repetition_penalty=0.8),
    dict(top_k=0, top_p=0.95, temperature=2.0),
]


def label(settings):
    return ",".join(f"{k}={v}" for k, v in settings.items())


@pytest.mark.parametrize("settings", SAMPLING, ids=label)
def test_sampling_distributions_match_transformers(settings, checkpoint, monkeypatch):
    """20 steps: the processed next-token probabilities equal transformers' on the same prefix."""
    ours, theirs = sample_both(monkeypatch, checkpoint, max_new_tokens=20, min_new_tokens=20, **settings)
    np.testing.assert_array_equal(ours.sequences, numpy_tree(theirs.sequences))
    assert len(ours.scores) == len(theirs.scores) == 20
    worst = 0.0
    for step, (mine, reference) in enumerate(zip(ours.scores, theirs.scores, strict=True)):
        mine, reference = probabilities(mine), probabilities(numpy_tree(reference))
        assert np.array_equal(mine > 0, reference > 0), f"step {step}: the tokens kept differ"
        worst = max(worst, float(np.max(np.abs(mine - reference))))
    assert worst <= 1e-6, worst
    # the settings shape the distribution: not every step is a certainty, and filters do cut tokens
    kept = [int(np.sum(probabilities(s) > 0, axis=-1).max()) for s in ours.scores]
    assert min(float(np.min(np.max(probabilities(s), axis=-1))) for s in ours.scores) < 0.99
    if settings.get("top_k") or settings.get("top_p", 1.0) < 1.0:
        assert min(kept) < 97


@pytest.mark.parametrize("settings", [dict(num_beams=3, temperature=0.9, top_k=20),
                                      dict(num_beams=2, top_p=0.9, repetition_penalty=1.2, num_return_sequences=2)],
                         ids=label)
def test_beam_sample_matches_transformers(settings, checkpoint, monkeypatch):
    """Beam search with do_sample: candidates drawn from the summed log-probabilities; transformers, fed
    the same draws, keeps the same beams, scores and sequences."""
    ours, theirs = sample_both(monkeypatch, checkpoint, max_new_tokens=12, **settings)
    np.testing.assert_array_equal(ours.sequences, numpy_tree(theirs.sequences))
    np.testing.assert_allclose(ours.sequences_scores, numpy_tree(theirs.sequences_scores), rtol=0, atol=1e-4)
    worst = max(float(np.max(np.abs(probabilities(a) - probabilities(numpy_tree(b)))))
                for a, b in zip(ours.scores, theirs.scores, strict=True))
    assert worst <= 1e-6, worst


def test_same_seed_same_tokens_consistency(checkpoint):
    """A consistency check (ledref against itself): a seed fixes the draws."""
    _, path = checkpoint
    model = ledref.LEDForConditionalGeneration.from_pretrained(path)
    settings = dict(do_sample=True, temperature=1.5, max_new_tokens=15, min_new_tokens=15)
    first = model.generate(**batch(), seed=3, **settings)
    np.testing.assert_array_equal(model.generate(**batch(), seed=3, **settings), first)
    np.testing.assert_array_equal(model.generate(**batch(), generator=np.random.default_rng(3), **settings), first)
    assert not np.array_equal(model.generate(**batch(), seed=4, **settings), first)
    several = model.generate(**batch(), seed=3, num_return_sequences=3, **settings)
    assert several.shape == (6, 16) and not np.array_equal(several[0], several[1])


def test_draw_follows_the_probabilities():
    """Frequencies of 200,000 draws within 5 standard errors of the probabilities; without replacement,
    the second draw of a pair follows p_j / (1 - p_i), as torch.multinomial's."""
    p = np.array([0.5, 0.0, 0.25, 0.15, 0.1])
    rng = np.random.default_rng(0)
    n = 200_000
    drawn = ledref.sampling.draw(np.tile(p, (n, 1)), rng)[:, 0]
    frequency = np.bincount(drawn, minlength=len(p)) / n
    assert np.all(np.abs(frequency - p) <= 5 * np.sqrt(p * (1 - p) / n)) and frequency[1] == 0
    pairs = ledref.sampling.draw(np.tile(p, (n, 1)), rng, num_samples=2)
    assert np.all(pairs[:, 0] != pairs[:, 1])
    expected = np.array([[p[i] * p[j] / (1 - p[i]) if i != j else 0.0 for j in range(5)] for i in range(5)])
    observed = np.zeros((5, 5))
    np.add.at(observed, (pairs[:, 0], pairs[:, 1]), 1 / n)
    assert np.all(np.abs(observed - expected) <= 5 * np.sqrt(expected * (1 - expected) / n) + 1e-12)
    with pytest.raises(ledref.GenerationError, match=r"cannot draw 3 distinct tokens"):
        ledref.sampling.draw(np.array([[0.5, 0.5, 0.0]]), rng, num_samples=3)


def test_processors_match_transformers_one_by_one():
    """Each processor on random float32 scores (with ties and -inf) equals transformers' class."""
    torch = require("torch")
    from transformers.generation import logits_process as lp
    rng = np.random.default_rng(7)
    scores = rng.normal(0, 3, (6, 50)).astype(np.float32)
    scores[0, :5] = scores[0, 5]  # ties
    scores[1, 10:20] = -np.inf
    sequences = rng.integers(0, 50, (6, 9))
    sequences[2, -2:] = [4, 7]
    sequences[3, -3:] = [1, 4, 7]

    def theirs(processor):
        return processor(torch.from_numpy(sequences), torch.from_numpy(scores.copy())).numpy()

    for penalty in (1.3, 0.7):
        np.testing.assert_array_equal(ledref.sampling.repetition_penalty(scores, sequences, penalty),
                                      theirs(lp.RepetitionPenaltyLogitsProcessor(penalty)))
    bad = [[3], [2], [4, 7], [1, 4, 7], [9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]]
    np.testing.assert_array_equal(ledref.sampling.ban_bad_words(scores, sequences, bad, [2]),
                                  theirs(lp.NoBadWordsLogitsProcessor(bad, eos_token_id=2)))
    np.testing.assert_allclose(ledref.sampling.temperature(scores, 0.7),
                               theirs(lp.TemperatureLogitsWarper(0.7)), rtol=1e-6)
    for k, keep in ((1, 1), (5, 1), (1, 3), (60, 1)):
        np.testing.assert_array_equal(ledref.sampling.top_k(scores, k, keep),
                                      theirs(lp.TopKLogitsWarper(k, min_tokens_to_keep=keep)))
    for p, keep in ((0.9, 1), (0.5, 1), (0.1, 3), (0.0, 1), (1.0, 1)):
        np.testing.assert_array_equal(ledref.sampling.top_p(scores, p, keep),
                                      theirs(lp.TopPLogitsWarper(p, min_tokens_to_keep=keep)))


def hf_greedy_tokens(hf, **settings):
    return numpy_tree(hf_generate(hf, **settings).sequences)


def test_bad_words_and_repetition_penalty_give_transformers_ids(checkpoint, backend):
    """Greedy and beam search with bad_words_ids (a token and a pair transformers' own output holds) and
    with repetition_penalty (discouraging and encouraging): identical ids, and different from the run
    without them (the settings matter here)."""
    from conftest import to_backend
    hf, path = checkpoint
    model = ledref.LEDForConditionalGeneration.from_pretrained(path, backend=backend)
    for search in (dict(max_length=30), dict(num_beams=3, max_length=20)):
        plain = hf_greedy_tokens(hf, **search)
        row = [t for t in plain[0, 1:].tolist() if t not in (1, 2)]
        cases = [dict(bad_words_ids=[[row[0]], row[2:4]]), dict(bad_words_ids=[[2], row[1:3]]),
                 dict(repetition_penalty=1.5), dict(repetition_penalty=0.8),
                 dict(repetition_penalty=1.3, bad_words_ids=[[row[1]]], no_repeat_ngram_size=2)]
        for settings in cases:
            expected = hf_greedy_tokens(hf, **search, **settings)
            assert expected.shape != plain.shape or not np.array_equal(expected, plain), settings
            ours = model.generate(**{k: to_backend(v, backend) for k, v in batch().items()}, **search, **settings)
            np.testing.assert_array_equal(ours, expected, err_msg=str(settings))


def test_generation_config_argument(checkpoint):
    """generation_config= as a transformers GenerationConfig, a dict or a ledref GenerationConfig: the same
    ids as transformers given that config; keyword arguments still override it."""
    transformers = require("transformers")
    hf, path = checkpoint
    model = ledref.LEDForConditionalGeneration.from_pretrained(path)
    settings = dict(num_beams=3, max_length=18, no_repeat_ngram_size=2, repetition_penalty=1.2)
    config = transformers.GenerationConfig(**settings)
    expected = numpy_tree(hf_call(hf_model(hf, "float32").generate, "float32", **batch(), generation_config=config))
    np.testing.assert_array_equal(model.generate(**batch(), generation_config=config), expected)
    np.testing.assert_array_equal(model.generate(**batch(), generation_config=dict(settings)), expected)
    ours = model.generation_config.update(**settings)
    np.testing.assert_array_equal(model.generate(**batch(), generation_config=ours), expected)
    shorter = numpy_tree(hf_call(hf_model(hf, "float32").generate, "float32", **batch(), generation_config=config,
                                 max_length=9))
    np.testing.assert_array_equal(model.generate(**batch(), generation_config=config, max_length=9), shorter)
