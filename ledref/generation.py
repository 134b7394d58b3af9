"""Greedy search, beam search and sampling for LEDForConditionalGeneration, step for step as transformers'
`generate` (5.x): the same logits processors in the same order, the same beam bookkeeping in float32,
the same stopping rules. The encoder runs once; the decoder runs one token at a time on its KV cache.
Sampling (`do_sample=True`, with or without beams) draws from the same distributions as transformers,
with a NumPy Generator (`seed=` or `generator=`) instead of torch's random numbers (see ledref.sampling).

Search bookkeeping (token lists, n-gram bans, top-k) runs in NumPy on the host: one (batch, vocab) row
of logits comes back per step. The model itself runs on whatever backend it was given.
"""

import json
import math
import os
from dataclasses import dataclass, fields, replace

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj

from . import inputs, sampling
from .backend import to_numpy
from .checks import (
    check_bool,
    check_callable,
    check_int,
    check_path,
    check_real,
    is_bool,
    is_int,
    make_directory,
    read_json,
    short,
)
from .errors import GenerationError, InputError
from .outputs import GenerateBeamEncoderDecoderOutput, GenerateEncoderDecoderOutput, as_encoder_output

NEG = np.float32(-1.0e9)  # transformers' "never pick this" score in beam search
MAX_BEAMS = 2 ** 16  # far more beams than a search is run with; more would only exhaust memory


@dataclass(frozen=True)
class GenerationConfig:
    """The settings `generate` understands, with transformers' defaults. `None` means "not set":
    max_length then defaults to 20 new tokens, as in transformers."""

    max_length: int | None = None
    max_new_tokens: int | None = None
    min_length: int | None = None
    min_new_tokens: int | None = None
    num_beams: int = 1
    num_return_sequences: int = 1
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    no_repeat_ngram_size: int = 0
    forced_bos_token_id: int | None = None
    forced_eos_token_id: int | list | None = None
    decoder_start_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list | None = None
    pad_token_id: int | None = None
    use_cache: bool = True
    # sampling and penalties (ledref.sampling)
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    bad_words_ids: list | None = None
    # what generate returns
    return_dict_in_generate: bool = False
    output_scores: bool = False
    output_logits: bool = False
    output_attentions: bool = False
    output_hidden_states: bool = False

    # settings of transformers' GenerationConfig that ledref does not implement: accepted only at the
    # value that turns them off
    UNSUPPORTED = {"num_beam_groups": 1, "diversity_penalty": 0.0, "typical_p": 1.0,
                   "encoder_no_repeat_ngram_size": 0, "encoder_repetition_penalty": 1.0, "suppress_tokens": None,
                   "begin_suppress_tokens": None, "constraints": None, "force_words_ids": None,
                   "exponential_decay_length_penalty": None, "sequence_bias": None, "guidance_scale": None,
                   "penalty_alpha": None, "low_memory": None, "min_p": None, "epsilon_cutoff": 0.0,
                   "eta_cutoff": 0.0, "renormalize_logits": False, "remove_invalid_values": False}

    @classmethod
    def settings(cls, d, strict=False):
        """The fields of this class found in d. Unsupported transformers settings must be at their "off"
        value; other names are ignored (config.json holds many), or an error when strict."""
        if not isinstance(d, dict):
            raise GenerationError(f"generation settings are a {type(d).__name__}; expected a dict of settings")
        known = {f.name for f in fields(cls)}
        for key, value in d.items():
            if key in known:
                continue
            if key in cls.UNSUPPORTED:
                if value is not None and not _equal(value, cls.UNSUPPORTED[key]):
                    raise GenerationError(f"generation setting {key}={value!r} is not supported by ledref; "
                                          f"expected {cls.UNSUPPORTED[key]!r}")
            elif strict:
                raise GenerationError(f"unknown generation setting {key}={value!r}; expected one of "
                                      f"{sorted(known)}")
        return {k: v for k, v in d.items() if k in known}

    @classmethod
    def from_dict(cls, d):
        """Build from a dict as in generation_config.json (see `settings` for what is kept or refused)."""
        return cls(**cls.settings(d))

    @classmethod
    def from_model_config(cls, config):
        """As transformers: the special tokens and any generation settings stored in config.json."""
        d = dict(config.extra)
        d.update(decoder_start_token_id=config.decoder_start_token_id, bos_token_id=config.bos_token_id,
                 eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id)
        return cls.from_dict(d)

    @classmethod
    def from_pretrained(cls, path, config):
        """generation_config.json of a checkpoint directory if there is one, else from config.json."""
        file = os.path.join(check_path("path", path, GenerationError), "generation_config.json")
        if not os.path.isfile(file):
            return cls.from_model_config(config)
        data = read_json(file, GenerationError, "generation config")
        try:
            settings = cls.from_dict(data)
            settings.check_fields(config)
        except GenerationError as e:
            raise GenerationError(f"{file}: {e}") from None
        return settings

    def update(self, **kwargs):
        """A copy with the given settings changed (unknown names are an error)."""
        return replace(self, **self.settings(kwargs, strict=True))

    def merged(self, generation_config):
        """These settings under those of generate's `generation_config=`: a ledref GenerationConfig, a dict
        (unknown names are an error) or a transformers GenerationConfig (its settings ledref does not know
        are ignored, those it does not implement must be off). Its settings left at None keep these values,
        as transformers fills a given config's unset fields from the model's."""
        if isinstance(generation_config, GenerationConfig):
            given = {f.name: getattr(generation_config, f.name) for f in fields(GenerationConfig)}
        elif isinstance(generation_config, dict):
            given = self.settings(generation_config, strict=True)
        elif callable(getattr(generation_config, "to_dict", None)):
            given = self.settings(generation_config.to_dict())
        else:
            raise GenerationError(f"generation_config is a {type(generation_config).__name__}; expected a "
                                  f"GenerationConfig (ledref's or transformers') or a dict")
        return replace(self, **{k: v for k, v in given.items() if v is not None})

    def to_dict(self):
        """Every setting, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_json_string(self):
        """generation_config.json's text: the settings that differ from the defaults (the special tokens
        whenever set), as JSON with sorted keys, which transformers' GenerationConfig reads."""
        defaults = GenerationConfig()
        d = {k: v for k, v in self.to_dict().items() if v is not None and v != getattr(defaults, k)}
        return json.dumps(d, indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, save_directory):
        """Write generation_config.json into a directory (made if needed)."""
        save_directory = make_directory("save_directory", save_directory, GenerationError)
        with open(os.path.join(save_directory, "generation_config.json"), "w", encoding="utf-8") as f:
            f.write(self.to_json_string())

    def eos_ids(self):
        """`eos_token_id` as a list: empty when None, one id, or the list the config gives."""
        eos = self.eos_token_id
        return [] if eos is None else [int(eos)] if is_int(eos) else [int(i) for i in eos]

    def lengths(self, prompt_length=1):
        """(max_length, min_length) counted in decoder tokens including the start token, as transformers."""
        if self.max_new_tokens is not None:
            max_length = self.max_new_tokens + prompt_length
        elif self.max_length is not None:
            max_length = self.max_length
        else:
            max_length = 20 + prompt_length
        if self.min_new_tokens is not None:
            min_length = self.min_new_tokens + prompt_length
        else:
            min_length = self.min_length or 0
        return max_length, min_length

    def check_fields(self, config):
        """Each setting on its own: its type and range (token ids inside the vocabulary of `config`)."""
        for name in ("max_length", "max_new_tokens", "min_length", "min_new_tokens"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), GenerationError, minimum=1 if name == "max_new_tokens" else 0)
        check_int("num_beams", self.num_beams, GenerationError, minimum=1, maximum=MAX_BEAMS)
        check_int("num_return_sequences", self.num_return_sequences, GenerationError, minimum=1)
        check_real("length_penalty", self.length_penalty, GenerationError)
        if not (is_bool(self.early_stopping) or (isinstance(self.early_stopping, str)
                                                 and self.early_stopping == "never")):
            raise GenerationError(f"early_stopping={short(self.early_stopping)}; expected True, False or 'never'")
        check_int("no_repeat_ngram_size", self.no_repeat_ngram_size, GenerationError, minimum=0)
        for name in ("use_cache", "return_dict_in_generate", "output_scores", "output_logits", "output_attentions",
                     "output_hidden_states"):
            check_bool(name, getattr(self, name), GenerationError)
        for name in ("forced_bos_token_id", "decoder_start_token_id", "pad_token_id", "bos_token_id",
                     "eos_token_id", "forced_eos_token_id"):
            value = getattr(self, name)
            ids = value if isinstance(value, (list, tuple)) and name.endswith("eos_token_id") else [value]
            for i in ids:
                if i is not None and not (is_int(i) and 0 <= i < config.vocab_size):
                    raise GenerationError(f"{name}={short(value)}; expected token ids in the vocabulary "
                                          f"[0, {config.vocab_size})" + (" (an int or a list of them)"
                                                                         if name.endswith("eos_token_id") else ""))

    def validate(self, config):
        """Raise a GenerationError, naming the setting as it was given, for settings of the wrong type or
        range, or that cannot run with the model's config (lengths, beams, return sequences, token ids)."""
        self.check_fields(config)
        max_length, _ = self.lengths()
        given = ("max_new_tokens", self.max_new_tokens) if self.max_new_tokens is not None else (
            ("max_length", self.max_length) if self.max_length is not None else None)
        source = f"{given[0]}={given[1]}" if given else "the default of 20 new tokens"
        if max_length < 2:
            raise GenerationError(f"{source} leaves no room to generate (the decoder start token counts); "
                                  f"expected max_length >= 2")
        if max_length > config.max_decoder_position_embeddings:
            derived = f" (max_length {max_length}, the start token included)"
            if given and given[0] == "max_length":
                derived = ""
            raise GenerationError(f"{source}{derived} exceeds max_decoder_position_embeddings="
                                  f"{config.max_decoder_position_embeddings}")
        if self.do_sample is True and self.num_beams == 1:  # every returned sequence is sampled on its own
            pass
        elif self.num_return_sequences > self.num_beams:
            raise GenerationError(f"num_return_sequences={self.num_return_sequences} must be between 1 and "
                                  f"num_beams={self.num_beams} (greedy search returns one sequence)")
        if self.decoder_start_token_id is None:
            raise GenerationError("decoder_start_token_id is not set in the config or generation config")
        self.validate_sampling(config)

    def validate_sampling(self, config):
        """Raise a GenerationError for a sampling or penalty setting out of its range (transformers' ranges)."""
        def number(value):
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        if not isinstance(self.do_sample, bool):
            raise GenerationError(f"do_sample={self.do_sample!r}; expected True or False")
        if not (number(self.temperature) and self.temperature > 0):
            raise GenerationError(f"temperature={self.temperature!r}; expected a number > 0 (do_sample=False "
                                  f"for greedy search)")
        if self.top_k is not None and not (isinstance(self.top_k, int) and not isinstance(self.top_k, bool)
                                           and self.top_k >= 0):
            raise GenerationError(f"top_k={self.top_k!r}; expected an int >= 0 (0 keeps every token)")
        if self.top_p is not None and not (number(self.top_p) and 0 <= self.top_p <= 1):
            raise GenerationError(f"top_p={self.top_p!r}; expected a number between 0 and 1")
        if not (number(self.repetition_penalty) and self.repetition_penalty > 0):
            raise GenerationError(f"repetition_penalty={self.repetition_penalty!r}; expected a number > 0 "
                                  f"(1.0 for none)")
        words = self.bad_words_ids
        if words is not None and not (
                isinstance(words, (list, tuple)) and words
                and all(isinstance(w, (list, tuple)) and w and all(
                    isinstance(i, (int, np.integer)) and not isinstance(i, bool) and 0 <= i < config.vocab_size
                    for i in w) for w in words)):
            raise GenerationError(f"bad_words_ids={words!r}; expected a non-empty list of non-empty lists of token "
                                  f"ids in [0, {config.vocab_size})")


def _equal(value, off):
    """value == off for the plain values a generation config holds, never raising (arrays, odd types)."""
    try:
        return bool(value == off)
    except Exception:
        return False


def process_scores(scores, sequences, settings, eos_ids, max_length, min_length):
    """transformers' logits processors, in its order, on scores [N, V] given the sequences so far [N, t]:
    repetition penalty, n-gram ban, bad words, minimum length, forced bos and eos, then with do_sample the
    warpers (temperature, top-k, top-p). Banned tokens get -inf; forced tokens leave every other at -inf."""
    n, cur_len = sequences.shape
    if settings.repetition_penalty != 1.0:
        scores = sampling.repetition_penalty(scores, sequences, settings.repetition_penalty)
    ngram = settings.no_repeat_ngram_size
    if ngram and cur_len >= ngram:
        for row in range(n):
            tokens = sequences[row].tolist()
            prefix = tuple(tokens[cur_len - ngram + 1:])
            banned = [ids[-1] for ids in zip(*[tokens[i:] for i in range(ngram)], strict=False) if ids[:-1] == prefix]
            scores[row, banned] = -np.inf
    if settings.bad_words_ids is not None:
        scores = sampling.ban_bad_words(scores, sequences, settings.bad_words_ids, eos_ids)
    if eos_ids and cur_len < min_length:
        scores[:, eos_ids] = -np.inf
    if settings.forced_bos_token_id is not None and cur_len == 1:
        scores[:] = -np.inf
        scores[:, settings.forced_bos_token_id] = 0
    if settings.forced_eos_token_id is not None and cur_len == max_length - 1:
        scores[:] = -np.inf
        scores[:, settings.forced_eos_token_id] = 0
    if settings.do_sample:
        # beams keep one token more than there are eos ids, so that a beam can go on (transformers' rule)
        keep = 1 if settings.num_beams == 1 else (len(eos_ids) + 1 if eos_ids else 2)
        scores = sampling.warp(scores, settings, keep)
    return scores


def log_softmax(x):
    """log(softmax(x)) over the last axis of a NumPy array (generation runs its search in NumPy)."""
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def top_k(x, k):
    """Indices of the k largest entries of each row, largest first (ties: lower index first)."""
    return np.argsort(-x, axis=-1, kind="stable")[:, :k]


def greedy_search(step, batch, settings, rng=None):
    """Pick the best token each step, or with do_sample draw it from softmax(processed scores) with the
    NumPy Generator `rng`; finished rows are filled with the pad id until all are done."""
    max_length, min_length = settings.lengths()
    eos_ids = settings.eos_ids()
    pad = settings.pad_token_id if settings.pad_token_id is not None else (eos_ids[0] if eos_ids else 0)
    sequences = np.full((batch, 1), settings.decoder_start_token_id, dtype=np.int64)
    unfinished = np.ones(batch, dtype=bool)
    all_scores = []
    while True:
        scores = step(sequences, None).astype(np.float32)  # [B, V]
        scores = process_scores(scores, sequences, settings, eos_ids, max_length, min_length)
        if settings.output_scores:
            all_scores.append(scores)
        if settings.do_sample:
            tokens = sampling.draw(sampling.softmax(scores), rng)[:, 0]
        else:
            tokens = np.argmax(scores, axis=-1)
        if eos_ids:
            tokens = np.where(unfinished, tokens, pad)
        sequences = np.concatenate([sequences, tokens[:, None]], axis=1)
        unfinished &= ~np.isin(tokens, eos_ids)
        if not unfinished.any() or sequences.shape[1] >= max_length:
            return GenerateEncoderDecoderOutput(sequences=sequences,
                                                scores=tuple(all_scores) if settings.output_scores else None)


def beam_search(step, batch, settings, rng=None):
    """transformers' vectorised beam search: keep 2 * num_beams candidates per row (more with several eos
    ids) so that num_beams of them can continue; candidates ending in eos or at max_length become
    hypotheses scored by sum of log-probs / (generated length ** length_penalty). With do_sample (beam
    sample) the candidates are drawn, without replacement, from softmax of their summed log-probs with
    the NumPy Generator `rng`, then ordered best first."""
    max_length, min_length = settings.lengths()
    eos_ids = settings.eos_ids()
    k, b = settings.num_beams, batch
    keep = max(2, 1 + len(eos_ids)) * k
    fill = (settings.pad_token_id or eos_ids[0]) if eos_ids else -1  # transformers' filler of unused slots
    penalty, early = settings.length_penalty, settings.early_stopping
    top_mask = np.arange(keep) < k

    running = np.full((b, k, max_length), fill, dtype=np.int64)
    running[:, :, 0] = settings.decoder_start_token_id
    finished_seqs = running.copy()
    running_scores = np.zeros((b, k), dtype=np.float32)
    running_scores[:, 1:] = NEG
    finished_scores = np.full((b, k), NEG, dtype=np.float32)
    is_finished = np.zeros((b, k), dtype=bool)
    improvable = np.ones((b, 1), dtype=bool)
    running_origin = np.full((b, k, max_length - 1), -1, dtype=np.int64)  # source beam of every step
    finished_origin = running_origin.copy()
    cur_len = 1
    all_scores = []
    while True:
        flat = running[:, :, :cur_len].reshape(b * k, cur_len)
        logits = step(flat, None if cur_len == 1 else running_origin[:, :, cur_len - 2].reshape(-1))
        log_probs = log_softmax(logits.astype(np.float32))
        log_probs = process_scores(log_probs, flat, settings, eos_ids, max_length, min_length)
        if settings.output_scores:
            all_scores.append(log_probs)
        vocab = log_probs.shape[-1]
        log_probs = (log_probs.reshape(b, k, vocab) + running_scores[:, :, None]).reshape(b, k * vocab)

        # the `keep` best continuations over all beams of a row (or `keep` drawn ones, best first)
        if settings.do_sample:
            drawn = sampling.draw(sampling.softmax(log_probs), rng, keep)
            order = np.argsort(-np.take_along_axis(log_probs, drawn, axis=1), axis=1, kind="stable")
            choice = np.take_along_axis(drawn, order, axis=1)
        else:
            choice = top_k(log_probs, keep)
        cand_scores = np.take_along_axis(log_probs, choice, axis=1)
        source, tokens = choice // vocab, choice % vocab
        cand_seqs = np.take_along_axis(running, source[:, :, None], axis=1)
        cand_seqs[:, :, cur_len] = tokens
        cand_origin = np.take_along_axis(running_origin, source[:, :, None], axis=1)
        cand_origin[:, :, cur_len - 1] = source + np.arange(b)[:, None] * k
        done = np.isin(tokens, eos_ids) | (cur_len + 1 >= max_length)

        # the best num_beams that are not done continue
        alive = cand_scores + done.astype(np.float32) * NEG
        pick = top_k(alive, k)
        running = np.take_along_axis(cand_seqs, pick[:, :, None], axis=1)
        running_scores = np.take_along_axis(alive, pick, axis=1)
        running_origin = np.take_along_axis(cand_origin, pick[:, :, None], axis=1)

        # done candidates among the top num_beams join the finished hypotheses if they beat them
        just_done = done & top_mask[None, :]
        hyp_scores = cand_scores / np.float32(cur_len ** penalty)  # generated length: cur_len + 1 - start token
        full = np.all(is_finished, axis=-1, keepdims=True) & (early is True)
        hyp_scores = hyp_scores + full.astype(np.float32) * NEG
        hyp_scores = hyp_scores + (~improvable).astype(np.float32) * NEG
        hyp_scores = hyp_scores + (~just_done).astype(np.float32) * NEG
        merged_scores = np.concatenate([finished_scores, hyp_scores], axis=1)
        best = top_k(merged_scores, k)
        finished_seqs = np.take_along_axis(np.concatenate([finished_seqs, cand_seqs], axis=1), best[:, :, None], axis=1)
        finished_scores = np.take_along_axis(merged_scores, best, axis=1)
        finished_origin = np.take_along_axis(np.concatenate([finished_origin, cand_origin], axis=1),
                                             best[:, :, None], axis=1)
        is_finished = np.take_along_axis(np.concatenate([is_finished, just_done], axis=1), best, axis=1)

        cur_len += 1
        # can a running beam still beat the worst finished hypothesis? (transformers' heuristic)
        if early == "never" and penalty > 0.0:
            best_length = max_length - 1
        else:
            best_length = cur_len - 1
        best_running = running_scores[:, :1] / np.float32(best_length ** penalty)
        worst_finished = np.where(is_finished, np.min(finished_scores, axis=1, keepdims=True), NEG)
        improvable = improvable & np.any(best_running > worst_finished, axis=-1, keepdims=True)
        if not (improvable.any() and not (is_finished.all() and early is True) and not done.all()):
            break

    n = settings.num_return_sequences
    sequences = finished_seqs[:, :n].reshape(b * n, max_length)
    scores = finished_scores[:, :n].reshape(b * n)
    origin = finished_origin[:, :n].reshape(b * n, max_length - 1)
    generated = int(np.max(np.sum(origin != -1, axis=1)))
    return GenerateBeamEncoderDecoderOutput(
        sequences=sequences[:, :1 + generated], sequences_scores=scores if settings.output_scores else None,
        scores=tuple(all_scores) if settings.output_scores else None, beam_indices=origin[:, :generated])


def generate(model, input_ids, attention_mask=None, global_attention_mask=None, encoder_progress=None,
             step_progress=None, encoder_outputs=None, generation_config=None, generator=None, seed=None,
             **kwargs):
    """Run the encoder once (unless `encoder_outputs`, the encoder's output for these inputs, is given, as
    transformers' generate takes it), then greedy search, beam search or sampling with the decoder's KV
    cache.

    The settings are model.generation_config, under `generation_config` if given (see
    GenerationConfig.merged), under the keyword arguments (max_length, max_new_tokens, min_length,
    min_new_tokens, num_beams, num_return_sequences, length_penalty, early_stopping, no_repeat_ngram_size,
    forced_bos_token_id, forced_eos_token_id, repetition_penalty, bad_words_ids, do_sample, temperature,
    top_k, top_p, use_cache, ...).

    return_dict_in_generate=True returns transformers' record (ledref.outputs.GenerateEncoderDecoderOutput,
    or GenerateBeamEncoderDecoderOutput for beam search) with what the flags ask for: output_scores (the
    processed scores of every step, and for beams sequences_scores), output_logits (the raw logits of
    every step), output_attentions (the encoder's attentions once, the decoder's self- and
    cross-attentions per step), output_hidden_states (the same for hidden states).
    With do_sample=True, tokens are drawn with `generator` (a numpy.random.Generator) or a Generator
    seeded with `seed`: the same seed gives the same tokens; neither gives fresh randomness.
    `encoder_progress` and `step_progress`, if given, are called after each encoder layer and each
    decoding step.
    """
    check_callable("encoder_progress", encoder_progress, GenerationError)
    check_callable("step_progress", step_progress, GenerationError)
    settings = model.generation_config
    if generation_config is not None:
        settings = settings.merged(generation_config)
    settings = settings.update(**kwargs)
    settings.validate(model.config)
    rng = random_generator(generator, seed) if settings.do_sample else None
    record = settings.return_dict_in_generate
    attentions, hidden_states = record and settings.output_attentions, record and settings.output_hidden_states
    if encoder_outputs is None:
        encoder_outputs = model.encoder(input_ids, attention_mask=attention_mask,
                                        global_attention_mask=global_attention_mask, progress=encoder_progress,
                                        output_attentions=attentions, output_hidden_states=hidden_states,
                                        return_dict=True)
    else:
        encoder_outputs = as_encoder_output(encoder_outputs)
        state = encoder_outputs.last_hidden_state
        if (not is_array_api_obj(state) or state.ndim != 3 or state.shape[0] == 0
                or state.shape[-1] != model.config.d_model or "float" not in str(state.dtype)):
            raise InputError(f"encoder_outputs.last_hidden_state is {_describe(state)}; expected a float array "
                             f"of shape (batch >= 1, length, {model.config.d_model})")
    xp = array_namespace(encoder_outputs.last_hidden_state)
    batch = encoder_outputs.last_hidden_state.shape[0]
    beams = settings.num_beams
    state = encoder_outputs.last_hidden_state
    mask = None
    if attention_mask is not None:
        mask = inputs.binary_mask(attention_mask, xp, "attention_mask", tuple(state.shape[:2]))
    # every beam of a row, or every sequence sampled for it, sees that row's encoder output
    copies = beams if beams > 1 else (settings.num_return_sequences if settings.do_sample else 1)
    if copies > 1:
        rows = xp.asarray(np.repeat(np.arange(batch), copies))
        state = xp.take(state, rows, axis=0)
        mask = None if mask is None else xp.take(mask, rows, axis=0)
    cache = {"past": None}
    steps = {"logits": [], "decoder_attentions": [], "cross_attentions": [], "decoder_hidden_states": []}

    def step(sequences, reorder):
        """Logits of the next token for every row of sequences [N, t] (as a NumPy array [N, V]); what the
        output flags ask for is kept in `steps`."""
        past = cache["past"]
        if past is not None and reorder is not None:
            order = xp.asarray(reorder)
            past = tuple((xp.take(k, order, axis=0), xp.take(v, order, axis=0), ck, cv) for k, v, ck, cv in past)
        if settings.use_cache and past is not None:
            ids = sequences[:, -1:]
        else:
            ids, past = sequences, None
        logits, cache["past"], (hidden, self_attns, cross_attns) = model._next_token_logits(
            xp.asarray(ids), state, mask, past, output_attentions=attentions, output_hidden_states=hidden_states)
        if not settings.use_cache:
            cache["past"] = None
        if step_progress is not None:
            step_progress()
        logits = to_numpy(logits)
        _check_finite(logits, sequences.shape[1], beams)
        if record and settings.output_logits:
            steps["logits"].append(logits.astype(np.float32))  # transformers keeps them in float32
        if attentions:
            steps["decoder_attentions"].append(tuple(self_attns))
            steps["cross_attentions"].append(tuple(cross_attns))
        if hidden_states:
            steps["decoder_hidden_states"].append(tuple(hidden))
        return logits

    if beams > 1:
        out = beam_search(step, batch, settings, rng)
    else:
        out = greedy_search(step, batch * copies, settings, rng)
    if not record:
        return out.sequences
    out.logits = tuple(steps["logits"]) if settings.output_logits else None
    if attentions:  # the encoder's once, for the B rows of the batch (not repeated per beam), as transformers
        out.encoder_attentions = encoder_outputs.attentions
        out.encoder_global_attentions = encoder_outputs.global_attentions
        out.decoder_attentions = tuple(steps["decoder_attentions"])
        out.cross_attentions = tuple(steps["cross_attentions"])
    if hidden_states:
        out.encoder_hidden_states = encoder_outputs.hidden_states
        out.decoder_hidden_states = tuple(steps["decoder_hidden_states"])
    return out


def random_generator(generator=None, seed=None):
    """The NumPy Generator sampling draws with: `generator` itself, or one seeded with `seed`, or (neither
    given) a fresh one."""
    if generator is not None and seed is not None:
        raise GenerationError("generator and seed are both given; expected one of them")
    if generator is not None:
        if not isinstance(generator, np.random.Generator):
            raise GenerationError(f"generator is a {type(generator).__name__}; expected a numpy.random.Generator "
                                  f"(numpy.random.default_rng(seed))")
        return generator
    if seed is not None:
        check_int("seed", seed, GenerationError, minimum=0)
    return np.random.default_rng(seed)


def _check_finite(logits, step, beams):
    """A GenerationError naming the step and the batch row when the decoder's scores [N, V] are not all
    finite (an inf or nan in the weights or the encoder's output): the search would pick from noise."""
    bad = ~np.isfinite(logits)
    if bad.any():
        row = int(np.argmax(bad.any(axis=-1)))
        where = f"batch row {row // beams}" + (f" (beam {row % beams})" if beams > 1 else "")
        kinds = " and ".join(k for k, hit in (("nan", np.isnan(logits[row]).any()),
                                              ("inf", np.isinf(logits[row]).any())) if hit)
        raise GenerationError(f"the decoder's scores stopped being finite at decoding step {step}, {where}: they hold "
                              f"{kinds}; expected finite scores (are the model's weights and inputs finite?)")


def _describe(value):
    shape = getattr(value, "shape", None)
    return f"a {type(value).__name__}" + (f" of shape {tuple(shape)} and dtype {value.dtype}" if shape is not None
                                          else "")
