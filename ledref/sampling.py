"""The logits processors behind generate's penalties and sampling, and the draw itself.

Each processor takes scores [N, V] (float32, NumPy, one row per sequence being generated) and the
sequences so far [N, t], and returns new scores, as transformers' processor of the same name does:

- `repetition_penalty`: RepetitionPenaltyLogitsProcessor;
- `ban_bad_words`: NoBadWordsLogitsProcessor;
- `warp` (only when sampling): TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, in that order.

ledref.generation.process_scores runs them in transformers' order among the other processors. `draw` picks
tokens from the resulting distribution with a NumPy Generator: the ids cannot match torch's random numbers,
but the distribution they are drawn from is the same, step for step.
"""

import numpy as np

from .errors import GenerationError


def softmax(scores):
    """softmax over the last axis, in the scores' dtype; -inf scores get probability 0."""
    shifted = np.exp(scores - np.max(scores, axis=-1, keepdims=True))
    return shifted / np.sum(shifted, axis=-1, keepdims=True)


def repetition_penalty(scores, sequences, penalty):
    """Make every token already in a row's sequence less likely: its score times `penalty` where the
    score is negative, divided by it otherwise (penalty > 1 discourages repeats, < 1 encourages them)."""
    seen = np.zeros(scores.shape, dtype=bool)  # [N, V]: token v occurs in row n's sequence
    seen[np.arange(scores.shape[0])[:, None], sequences] = True
    penalised = np.where(scores < 0, scores * penalty, scores / penalty)
    return np.where(seen, penalised, scores)


def ban_bad_words(scores, sequences, bad_words_ids, eos_ids=()):
    """-inf for every token that would complete a banned sequence: a one-token sequence everywhere, a
    longer one in the rows that end with all its tokens but the last. A banned sequence made of a single
    eos token is ignored, as in transformers (generation must be able to stop)."""
    scores = scores.copy()
    length = sequences.shape[1]
    for words in bad_words_ids:
        if len(words) == 1 and words[0] in eos_ids:
            continue
        prefix = np.asarray(words[:-1], dtype=sequences.dtype)
        if len(prefix) > length:
            continue  # the sequence is longer than the context: it cannot be completed yet
        rows = np.all(sequences[:, length - len(prefix):] == prefix, axis=1) if len(prefix) else slice(None)
        scores[rows, words[-1]] = -np.inf
    return scores


def temperature(scores, value):
    """scores / temperature: above 1 flattens the distribution, below 1 sharpens it."""
    return scores / value


def top_k(scores, k, min_tokens_to_keep=1):
    """Keep the k highest scores of each row (all tokens tied with the k-th too), -inf for the rest."""
    k = min(max(k, min_tokens_to_keep), scores.shape[-1])
    at = scores.shape[-1] - k
    kth = np.partition(scores, at, axis=-1)[:, at, None]  # [N, 1] the k-th largest
    return np.where(scores < kth, -np.inf, scores)


def top_p(scores, p, min_tokens_to_keep=1):
    """Nucleus filtering: keep the most likely tokens whose probabilities add up to more than p, dropping
    (from the least likely up) every token while the mass dropped stays <= 1 - p; at least
    min_tokens_to_keep tokens stay."""
    order = np.argsort(scores, axis=-1, kind="stable")  # [N, V] least likely first
    ascending = np.take_along_axis(scores, order, axis=-1)
    # the running mass is summed in float64 and rounded to float32, as torch's cumsum does on the CPU
    mass = np.cumsum(softmax(ascending).astype(np.float64), axis=-1).astype(scores.dtype)
    drop_sorted = mass <= 1 - p
    drop_sorted[:, scores.shape[-1] - min_tokens_to_keep:] = False
    drop = np.empty_like(drop_sorted)
    np.put_along_axis(drop, order, drop_sorted, axis=-1)
    return np.where(drop, -np.inf, scores)


def warp(scores, settings, min_tokens_to_keep=1):
    """The sampling processors of the settings that are on: temperature (!= 1), top_k (> 0), top_p (< 1)."""
    if settings.temperature is not None and settings.temperature != 1.0:
        scores = temperature(scores, settings.temperature)
    if settings.top_k:
        scores = top_k(scores, settings.top_k, min_tokens_to_keep)
    if settings.top_p is not None and settings.top_p < 1.0:
        scores = top_p(scores, settings.top_p, min_tokens_to_keep)
    return scores


def draw(probs, rng, num_samples=1):
    """Token indices [N, num_samples] drawn from each row of probs [N, V] (non-negative, not necessarily
    normalised) with the NumPy Generator `rng`; several samples of a row are drawn without replacement, as
    torch.multinomial draws them: each from what the earlier ones left, in the order drawn."""
    weights = np.array(probs, dtype=np.float64)  # a copy: drawn tokens are zeroed in it
    n, vocab = weights.shape
    rows = np.arange(n)
    out = np.empty((n, num_samples), dtype=np.int64)
    for j in range(num_samples):
        positive = weights > 0
        if not positive.any(axis=-1).all():
            raise GenerationError(f"cannot draw {num_samples} distinct tokens: a row has only {j} tokens with "
                                  f"probability above 0 (top_k, top_p or banned tokens leave too few)")
        cumulative = np.cumsum(weights, axis=-1)  # [N, V]
        u = rng.random((n, 1)) * cumulative[:, -1:]  # uniform in [0, total)
        last = vocab - 1 - np.argmax(positive[:, ::-1], axis=-1)  # last token with probability above 0
        out[:, j] = np.minimum(np.sum(cumulative <= u, axis=-1), last)  # first token whose cumulative > u
        weights[rows, out[:, j]] = 0
    return out
