"""The LED forward pass: encoder, decoder, heads, and the four model classes.

Functions take the checkpoint's weights as nested dicts (`**layer` hands `fc1`, `fc2`, ... to a layer),
so a parameter's name here is its name in the file. Shapes: B batch, L input length, Lp padded length,
T decoder length, D model dim, H heads, d head dim, V vocabulary.
"""

import math

from array_api_compat import array_namespace, device

from . import fast, inputs, lowp, reference
from .backend import input_namespace, namespace, namespace_name, to_namespace
from .checkpoint import load_params
from .config import LEDConfig
from .errors import InputError, LedrefError
from .reference.attention import global_slots
from .reference.functional import linear
from .reference.model import lm_head
from .generation import GenerationConfig, generate
from .hub import resolve
from .outputs import (SEQ2SEQ_FIELDS, LEDEncoderBaseModelOutput, LEDSeq2SeqLMOutput, LEDSeq2SeqModelOutput,
                      LEDSeq2SeqQuestionAnsweringModelOutput, LEDSeq2SeqSequenceClassifierOutput, as_encoder_output)

DTYPES = ("float32", "float64", "bfloat16", "float16")  # the last two emulated by ledref.lowp
IMPLEMENTATIONS = ("band", "band_matrix", "dense")  # "band": ledref.fast; the others: ledref.reference


def _check_options(dtype, attn_implementation, backend=None):
    if dtype not in DTYPES:
        raise LedrefError(f"dtype={dtype!r} is not supported; expected one of {DTYPES}")
    if attn_implementation not in IMPLEMENTATIONS:
        raise LedrefError(f"attn_implementation={attn_implementation!r}; expected one of {sorted(IMPLEMENTATIONS)}")
    if dtype in lowp.LOW_DTYPES and backend not in (None, "numpy"):
        raise LedrefError(f"dtype={dtype!r} is emulated over NumPy (ledref.lowp); backend={backend!r} cannot run "
                          f"it, expected None or 'numpy'")


def shift_tokens_right(ids, pad_token_id, decoder_start_token_id):
    """[start, ids[:, :-1]] with -100 replaced by the pad id: decoder inputs from labels or input_ids."""
    xp = array_namespace(ids)
    start = xp.full((ids.shape[0], 1), decoder_start_token_id, dtype=ids.dtype, device=device(ids))
    shifted = xp.concat([start, ids[:, :-1]], axis=1)
    return xp.where(shifted == -100, xp.full_like(shifted, pad_token_id), shifted)


# ---------------------------------------------------------------------------------------------- losses

def log_softmax(x, axis=-1):
    """log(softmax(x)) along `axis`, computed as x - max - log(sum exp(x - max)) to stay finite."""
    xp = array_namespace(x)
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def cross_entropy(logits, labels, ignore_index=-100):
    """Mean cross-entropy over the labels that are not ignore_index (NaN when all are), as torch.
    logits [N, C], labels [N]."""
    xp = array_namespace(logits)
    valid = labels != ignore_index
    safe = xp.where(valid, labels, xp.zeros_like(labels))
    picked = xp.take_along_axis(log_softmax(logits), safe[:, None], axis=-1)[:, 0]
    total = -xp.sum(xp.where(valid, picked, xp.zeros_like(picked)))
    return total / xp.astype(xp.sum(xp.astype(valid, xp.int64)), logits.dtype)


# ---------------------------------------------------------------------------------------------- classes

class LEDPreTrainedModel:
    """Weights, config and the backend they live on. Subclasses add a head and its outputs.

    `from_pretrained(path, dtype="float32" | "float64" | "bfloat16" | "float16", attn_implementation="band" |
    "dense", backend=None | "numpy" | "array_api_strict" | "cupy")`. With backend=None the weights stay in NumPy
    and follow the inputs: a call with arrays of another backend gets the weights converted to it once.
    Inputs given as nested lists or NumPy arrays go to the model's backend; outputs are arrays of the
    inputs' backend. "bfloat16" and "float16" are emulated on NumPy (ledref.lowp): the reference runs
    ("band" means "band_matrix" there), and the outputs are ledref.lowp arrays (ledref.to_numpy gives NumPy
    arrays of the type).
    """

    head = None

    def __init__(self, config, params, dtype="float32", attn_implementation="band", backend=None):
        _check_options(dtype, attn_implementation, backend)
        self.config, self.dtype, self.attn_implementation = config, dtype, attn_implementation
        self.default_xp = lowp.namespace(dtype) if dtype in lowp.LOW_DTYPES else namespace(backend or "numpy")
        self._params = {}
        self._host_params = params
        self._params_for(self.default_xp)

    @classmethod
    def from_pretrained(cls, name_or_path, dtype="float32", attn_implementation="band", backend=None,
                        revision=None, cache_dir=None, local_files_only=False):
        """Load config.json and safetensors weights from a checkpoint directory, a Hugging Face cache
        folder, or a Hub repo id (owner/name; needs huggingface_hub), see ledref.hub.resolve."""
        _check_options(dtype, attn_implementation, backend)  # before reading any weights
        path = resolve(name_or_path, revision, cache_dir, local_files_only)
        config = LEDConfig.from_pretrained(path)
        params = load_params(path, config, head=cls.head, dtype="float32" if dtype in lowp.LOW_DTYPES else dtype)
        model = cls(config, params, dtype=dtype, attn_implementation=attn_implementation, backend=backend)
        model._read_extras(path)
        return model

    def _read_extras(self, path):
        """Files besides config and weights that a subclass reads from the checkpoint directory."""

    def _params_for(self, xp):
        name = namespace_name(xp)
        if name not in self._params:
            self._params[name] = to_namespace(self._host_params, xp)
        return self._params[name]

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def _namespace(self, args):
        """The namespace a call runs in: the inputs' backend, or the emulated dtype's (inputs converted)."""
        if self.dtype in lowp.LOW_DTYPES:
            return self.default_xp
        return input_namespace(args, self.default_xp)

    @property
    def encoder(self):
        """The encoder alone: `model.encoder(input_ids, attention_mask, global_attention_mask, ...)`."""
        return LEDEncoder(self)

    # -- which forward pass runs: ledref.fast for "band", the reference for "dense" and "band_matrix" and
    #    whenever a recorder is given (the reference names every intermediate)

    def _fast(self, recorder):
        return self.attn_implementation == "band" and recorder is None and self.dtype not in lowp.LOW_DTYPES

    def _run_encoder(self, params, input_ids, mask, slots, output_attentions, output_hidden_states, progress=None,
                     recorder=None):
        if self._fast(recorder):
            return fast.encoder(params, self.config, input_ids, mask, output_attentions, output_hidden_states, slots,
                                progress)
        implementation = "band_matrix" if self.attn_implementation == "band" else self.attn_implementation
        return reference.encoder(params, self.config, input_ids, mask, implementation, output_attentions,
                                 output_hidden_states, slots, progress, recorder)

    def _run_decoder(self, params, *args, recorder=None):
        if self._fast(recorder):
            return fast.decoder(params, self.config, *args)
        return reference.decoder(params, self.config, *args, recorder=recorder)

    # -- argument handling shared by every head

    def _encode(self, xp, params, input_ids, attention_mask, global_attention_mask, encoder_outputs,
                output_attentions, output_hidden_states, progress=None, recorder=None):
        """Checked inputs -> (input_ids or None, user attention mask or None, encoder outputs)."""
        config = self.config
        if encoder_outputs is not None:
            encoder_outputs = as_encoder_output(encoder_outputs)
            state = encoder_outputs.last_hidden_state
            if state.ndim != 3 or state.shape[-1] != config.d_model:
                raise InputError(f"encoder_outputs.last_hidden_state has shape {tuple(state.shape)}; "
                                 f"expected (batch, length, {config.d_model})")
            shape = tuple(state.shape[:2])
            if input_ids is not None:
                input_ids = inputs.token_ids(input_ids, xp, "input_ids", config.vocab_size)
            if attention_mask is not None:
                attention_mask = inputs.binary_mask(attention_mask, xp, "attention_mask", shape)
            return input_ids, attention_mask, encoder_outputs
        if input_ids is None:
            raise InputError("input_ids is None; expected token ids of shape (batch, length) "
                             "(or encoder_outputs)")
        input_ids = inputs.token_ids(input_ids, xp, "input_ids", config.vocab_size)
        shape = tuple(input_ids.shape)
        padded = math.ceil(shape[1] / config.max_attention_window) * config.max_attention_window
        if padded > config.max_encoder_position_embeddings:
            raise InputError(f"input_ids has length {shape[1]}, padded to {padded} (a multiple of the window "
                             f"{config.max_attention_window}); expected at most "
                             f"max_encoder_position_embeddings={config.max_encoder_position_embeddings}")
        mask = xp.ones(shape, dtype=xp.int64, device=device(input_ids))
        if attention_mask is not None:
            attention_mask = inputs.binary_mask(attention_mask, xp, "attention_mask", shape)
            mask = attention_mask
        if global_attention_mask is not None:
            mask = mask * (inputs.binary_mask(global_attention_mask, xp, "global_attention_mask", shape) + 1)
        out = self._run_encoder(params, input_ids, mask, global_slots(mask), output_attentions, output_hidden_states,
                                progress, recorder)
        return input_ids, attention_mask, out

    def _seq2seq(self, input_ids=None, attention_mask=None, global_attention_mask=None, decoder_input_ids=None,
                 decoder_attention_mask=None, past_key_values=None, use_cache=False, output_attentions=False,
                 output_hidden_states=False, encoder_outputs=None, recorder=None, labels=None, extra=None):
        """Encoder + decoder. Returns (xp, params, decoder h [B, T, D], seq2seq output, checked extras)."""
        config = self.config
        args = dict(input_ids=input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask,
                    decoder_input_ids=decoder_input_ids, decoder_attention_mask=decoder_attention_mask,
                    labels=labels, **(extra or {}))
        if encoder_outputs is not None:
            encoder_outputs = as_encoder_output(encoder_outputs)
            args["encoder_outputs"] = encoder_outputs.last_hidden_state
        if past_key_values:
            args["past_key_values"] = past_key_values[0][0]
        xp = self._namespace(args)
        params = self._params_for(xp)
        input_ids, attention_mask, enc = self._encode(xp, params, input_ids, attention_mask, global_attention_mask,
                                                      encoder_outputs, output_attentions, output_hidden_states,
                                                      recorder=recorder)
        batch = enc.last_hidden_state.shape[0]
        if labels is not None:
            labels = inputs.token_ids(labels, xp, "labels", config.vocab_size, batch, ignore_index=-100)
        past_len = self._check_past(past_key_values, batch)
        if decoder_input_ids is None:
            source = labels if labels is not None else input_ids
            if source is None:
                raise InputError("decoder_input_ids is None and there are no labels or input_ids to derive them from")
            decoder_input_ids = shift_tokens_right(source, config.pad_token_id, config.decoder_start_token_id)
        decoder_input_ids = inputs.token_ids(decoder_input_ids, xp, "decoder_input_ids", config.vocab_size, batch)
        t = decoder_input_ids.shape[1]
        if past_len + t > config.max_decoder_position_embeddings:
            raise InputError(f"decoder positions reach {past_len + t} (past {past_len} + decoder_input_ids {t}); "
                             f"expected at most max_decoder_position_embeddings="
                             f"{config.max_decoder_position_embeddings}")
        if decoder_attention_mask is not None:
            decoder_attention_mask = inputs.binary_mask(decoder_attention_mask, xp, "decoder_attention_mask",
                                                        (batch, past_len + t))
        h, hidden, self_attns, cross_attns, cache = self._run_decoder(
            params, decoder_input_ids, enc.last_hidden_state, attention_mask, decoder_attention_mask,
            past_key_values, output_attentions, output_hidden_states, recorder=recorder)
        out = LEDSeq2SeqModelOutput(
            last_hidden_state=h, past_key_values=cache if use_cache else None, decoder_hidden_states=hidden,
            decoder_attentions=self_attns, cross_attentions=cross_attns,
            encoder_last_hidden_state=enc.last_hidden_state, encoder_hidden_states=enc.hidden_states,
            encoder_attentions=enc.attentions, encoder_global_attentions=enc.global_attentions)
        return xp, params, h, out, dict(input_ids=input_ids, labels=labels, decoder_input_ids=decoder_input_ids)

    def _check_past(self, past_key_values, batch):
        if past_key_values is None:
            return 0
        config = self.config
        d = config.d_model // config.decoder_attention_heads
        if len(past_key_values) != config.decoder_layers or any(len(entry) != 4 for entry in past_key_values):
            raise InputError(f"past_key_values must hold {config.decoder_layers} entries (one per decoder layer) "
                             f"of 4 arrays (self k, self v, cross k, cross v), as returned with use_cache=True")
        past_len = past_key_values[0][0].shape[2]
        for i, entry in enumerate(past_key_values):
            for j, a in enumerate(entry):
                if (a.ndim != 4 or a.shape[0] != batch or a.shape[1] != config.decoder_attention_heads
                        or a.shape[3] != d or (j < 2 and a.shape[2] != past_len)):
                    raise InputError(f"past_key_values[{i}][{j}] has shape {tuple(a.shape)}; expected "
                                     f"({batch}, {config.decoder_attention_heads}, length, {d})")
        return past_len

    SEQ2SEQ_ARGS = ("input_ids", "attention_mask", "global_attention_mask", "decoder_input_ids",
                    "decoder_attention_mask", "past_key_values", "use_cache", "output_attentions",
                    "output_hidden_states", "encoder_outputs", "recorder")

    @classmethod
    def _args(cls, local_vars):
        """The encoder-decoder arguments of a forward call, by name."""
        return {name: local_vars[name] for name in cls.SEQ2SEQ_ARGS}

    @staticmethod
    def _fields(out):
        return {k: getattr(out, k) for k in SEQ2SEQ_FIELDS}


class LEDEncoder:
    """`model.encoder`: the encoder of a loaded model, called on its own."""

    def __init__(self, model):
        self.model = model

    def __call__(self, input_ids, attention_mask=None, global_attention_mask=None, output_attentions=False,
                 output_hidden_states=False, progress=None, recorder=None):
        model = self.model
        args = dict(input_ids=input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask)
        xp = model._namespace(args)
        return model._encode(xp, model._params_for(xp), input_ids, attention_mask, global_attention_mask, None,
                             output_attentions, output_hidden_states, progress, recorder)[2]


class LEDModel(LEDPreTrainedModel):
    """The bare encoder-decoder: `last_hidden_state` is the decoder's output."""

    def forward(self, input_ids=None, attention_mask=None, global_attention_mask=None, decoder_input_ids=None,
                decoder_attention_mask=None, past_key_values=None, use_cache=False, output_attentions=False,
                output_hidden_states=False, encoder_outputs=None, recorder=None):
        """The encoder-decoder pass with transformers' arguments -> LEDSeq2SeqModelOutput. Without
        decoder_input_ids they are shift_tokens_right(input_ids); `recorder` collects the intermediates."""
        return self._seq2seq(**self._args(locals()))[3]


class LEDForConditionalGeneration(LEDPreTrainedModel):
    """LED with the language-modelling head: logits = h @ shared.T + final_logits_bias.
    `generate` runs greedy or beam search as transformers does (see ledref.generation)."""

    head = "lm"

    def __init__(self, config, params, dtype="float32", attn_implementation="band", backend=None,
                 generation_config=None):
        super().__init__(config, params, dtype=dtype, attn_implementation=attn_implementation, backend=backend)
        self.generation_config = generation_config or GenerationConfig.from_model_config(config)

    def _read_extras(self, path):
        self.generation_config = GenerationConfig.from_pretrained(path, self.config)

    def generate(self, input_ids, attention_mask=None, global_attention_mask=None, **kwargs):
        """Token ids [B * num_return_sequences, T] starting with the decoder start token, as transformers'
        generate. kwargs override generation_config (see ledref.generation.generate)."""
        return generate(self, input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask,
                        **kwargs)

    def _next_token_logits(self, decoder_input_ids, encoder_hidden_states, attention_mask, past_key_values):
        """One decoding step on checked arrays of the model's backend, without the argument checks of
        forward: (logits of the last position [B, V], cache)."""
        params = self._params_for(array_namespace(encoder_hidden_states))
        h, _, _, _, cache = self._run_decoder(params, decoder_input_ids, encoder_hidden_states, attention_mask, None,
                                              past_key_values)
        return lm_head(h[:, -1:, :], params)[:, 0, :], cache

    def forward(self, input_ids=None, attention_mask=None, global_attention_mask=None, decoder_input_ids=None,
                decoder_attention_mask=None, past_key_values=None, use_cache=False, output_attentions=False,
                output_hidden_states=False, encoder_outputs=None, recorder=None, labels=None):
        """LEDModel's pass and the head -> LEDSeq2SeqLMOutput (logits [B, T, V]). `labels` [B, T] give the
        mean cross-entropy as `loss` (-100 ignored) and, without decoder_input_ids, the decoder inputs."""
        xp, params, h, out, checked = self._seq2seq(**self._args(locals()), labels=labels)
        logits = lm_head(h, params)  # [B, T, V]
        if recorder:
            recorder("logits", logits)
        loss = None
        if checked["labels"] is not None:
            labels = checked["labels"]
            if tuple(labels.shape) != tuple(logits.shape[:2]):
                raise InputError(f"labels has shape {tuple(labels.shape)}; expected {tuple(logits.shape[:2])} "
                                 f"(batch, decoder length)")
            loss = cross_entropy(xp.reshape(logits, (-1, logits.shape[-1])), xp.reshape(labels, (-1,)))
        return LEDSeq2SeqLMOutput(loss=loss, logits=logits, **self._fields(out))


class LEDForQuestionAnswering(LEDPreTrainedModel):
    """Span extraction on the decoder output: qa_outputs -> start_logits, end_logits [B, T]."""

    head = "qa"

    def forward(self, input_ids=None, attention_mask=None, global_attention_mask=None, decoder_input_ids=None,
                decoder_attention_mask=None, past_key_values=None, use_cache=False, output_attentions=False,
                output_hidden_states=False, encoder_outputs=None, recorder=None, start_positions=None,
                end_positions=None):
        """LEDModel's pass and qa_outputs -> LEDSeq2SeqQuestionAnsweringModelOutput. With start_positions
        and end_positions [B], `loss` is the mean of the two cross-entropies, as transformers computes it."""
        extra = dict(start_positions=start_positions, end_positions=end_positions)
        xp, params, h, out, _ = self._seq2seq(**self._args(locals()), extra=extra)
        logits = linear(h, **params["qa_outputs"])  # [B, T, 2]
        start_logits, end_logits = logits[..., 0], logits[..., 1]
        loss = None
        if start_positions is not None and end_positions is not None:
            batch, t = start_logits.shape
            # as transformers: positions outside the sequence are clamped to T and then ignored
            start = xp.clip(inputs.positions(start_positions, xp, "start_positions", batch), 0, t)
            end = xp.clip(inputs.positions(end_positions, xp, "end_positions", batch), 0, t)
            loss = (cross_entropy(start_logits, start, ignore_index=t)
                    + cross_entropy(end_logits, end, ignore_index=t)) / 2
        return LEDSeq2SeqQuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                                                      **self._fields(out))


class LEDForSequenceClassification(LEDPreTrainedModel):
    """transformers 4.x semantics: the decoder state at the last eos of input_ids -> dense -> tanh -> out_proj.
    Every row must hold the same number of eos tokens, and the decoder runs over the input length."""

    head = "classification"

    def forward(self, input_ids=None, attention_mask=None, global_attention_mask=None, decoder_input_ids=None,
                decoder_attention_mask=None, past_key_values=None, use_cache=False, output_attentions=False,
                output_hidden_states=False, encoder_outputs=None, recorder=None, labels=None):
        """LEDModel's pass and the classification head -> LEDSeq2SeqSequenceClassifierOutput (logits
        [B, num_labels]); `labels` give the loss transformers would choose (see the class docstring)."""
        config = self.config
        if input_ids is None:
            raise InputError("input_ids is None; sequence classification needs them to find the eos tokens")
        xp, params, h, out, checked = self._seq2seq(**self._args(locals()), extra=dict(classification_labels=labels))
        input_ids = checked["input_ids"]
        if tuple(h.shape[:2]) != tuple(input_ids.shape):
            raise InputError(f"decoder length {h.shape[1]} differs from input length {input_ids.shape[1]}; the "
                             f"eos positions of input_ids index the decoder output")
        is_eos = input_ids == config.eos_token_id
        counts = xp.sum(xp.astype(is_eos, xp.int64), axis=1)
        if bool(xp.any(counts != counts[0])) or int(counts[0]) == 0:
            raise InputError(f"input_ids rows hold {[int(c) for c in counts]} eos tokens (id {config.eos_token_id}); "
                             f"expected the same number, at least one, in every row")
        positions = xp.arange(input_ids.shape[1], device=device(input_ids))
        last = xp.max(xp.where(is_eos, positions[None, :], xp.full_like(input_ids, -1)), axis=1)  # [B]
        sentence = xp.stack([h[i, int(last[i]), :] for i in range(h.shape[0])])  # [B, D]
        head = params["classification_head"]
        logits = linear(xp.tanh(linear(sentence, **head["dense"])), **head["out_proj"])  # [B, num_labels]
        loss = None if labels is None else self._loss(xp, logits, labels)
        return LEDSeq2SeqSequenceClassifierOutput(loss=loss, logits=logits, **self._fields(out))

    def _loss(self, xp, logits, labels):
        """transformers' choice of loss: problem_type, else regression for one label, single-label
        cross-entropy for integer labels, multi-label BCE-with-logits for float labels."""
        labels = inputs.to_array(labels, xp, "labels")
        n = self.config.num_labels
        problem = self.config.problem_type
        if problem is None:
            problem = ("regression" if n == 1 else "single_label_classification"
                       if xp.isdtype(labels.dtype, "integral") else "multi_label_classification")
        if problem == "single_label_classification":
            labels = xp.reshape(xp.astype(labels, xp.int64), (-1,))
            if bool(xp.any((labels < 0) | (labels >= n))):
                raise InputError(f"labels must be class indices in [0, {n})")
            return cross_entropy(xp.reshape(logits, (-1, n)), labels)
        labels = xp.astype(labels, logits.dtype)
        if problem == "regression":
            if n == 1:
                logits, labels = xp.reshape(logits, (-1,)), xp.reshape(labels, (-1,))
            return xp.mean((logits - labels) ** 2)
        # multi-label: mean of max(x, 0) - x*y + log(1 + exp(-|x|))
        return xp.mean(xp.maximum(logits, xp.zeros_like(logits)) - logits * labels
                       + xp.log1p(xp.exp(-xp.abs(logits))))
