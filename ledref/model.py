"""The LED forward pass: encoder, decoder, heads, and the four model classes.

Functions take the checkpoint's weights as nested dicts (`**layer` hands `fc1`, `fc2`, ... to a layer),
so a parameter's name here is its name in the file. Shapes: B batch, L input length, Lp padded length,
T decoder length, D model dim, H heads, d head dim, V vocabulary.
"""

import math

from array_api_compat import array_namespace, device, is_array_api_obj

from . import inputs
from .attention import SELF_ATTENTION, decoder_attention, global_slots
from .backend import (Workspace, elementwise_chunk, input_namespace, namespace, namespace_name, row_chunk, small_pages,
                      to_namespace)
from .checkpoint import check_params, load_params
from .config import LEDConfig
from .checks import check_bool, check_callable, check_choice, check_int, short
from .errors import ConfigError, InputError
from .functional import ACTIVATIONS, by_rows, finfo_min, in_blocks, layer_norm, linear, log_softmax
from .generation import GenerationConfig, generate
from .hub import resolve
from .outputs import (SEQ2SEQ_FIELDS, LEDEncoderBaseModelOutput, LEDSeq2SeqLMOutput, LEDSeq2SeqModelOutput,
                      LEDSeq2SeqQuestionAnsweringModelOutput, LEDSeq2SeqSequenceClassifierOutput, as_encoder_output)

DTYPES = ("float32", "float64")


def _check_options(dtype, attn_implementation, backend=None):
    check_choice("dtype", dtype, DTYPES, InputError)
    check_choice("attn_implementation", attn_implementation, sorted(SELF_ATTENTION), InputError)
    if backend is not None and not isinstance(backend, str):
        raise InputError(f"backend={short(backend)} is not supported; expected None or a backend name (str)")


def _check_call(output_attentions=False, output_hidden_states=False, progress=None, recorder=None, use_cache=False):
    """The flags and callbacks of a forward call: booleans, callables, a Recorder."""
    for name, value in (("output_attentions", output_attentions), ("output_hidden_states", output_hidden_states),
                        ("use_cache", use_cache)):
        check_bool(name, value, InputError)
    check_callable("progress", progress, InputError)
    if recorder is not None and not (callable(recorder) and callable(getattr(recorder, "scope", None))):
        raise InputError(f"recorder={short(recorder)}; expected a ledref.Recorder or None")


# ---------------------------------------------------------------------------------------------- encoder

def encoder_layer(h, mask, slots, window, n_heads, act, attention, output_attentions,
                  self_attn, self_attn_layer_norm, fc1, fc2, final_layer_norm, record=None, workspace=None,
                  out=None):
    """One post-LN encoder layer.   [B, Lp, D] -> [B, Lp, D], local probs, global probs
    `workspace` (backend.Workspace; band attention only) lends the attention its buffers; `out`, if
    given, receives the layer's output (it must not be h), and with a workspace the attention's output
    before it."""
    extra = {"record": record} if record else {}
    if workspace is not None:  # the attention's output goes to `out`, which the position-wise work then
        extra.update(workspace=workspace, out=out)  # writes over, a chunk of rows after reading it
    a, probs, global_probs = attention(h, mask, slots, window // 2, n_heads,
                                       output_attentions=output_attentions or bool(record),
                                       **self_attn["longformer_self_attn"], **extra)

    def position_wise(h, a):  # everything after attention works token by token: done in row chunks
        xp = array_namespace(h)

        def buffer(name, width):  # with a workspace: this thread's buffer, reused chunk after chunk
            if workspace is None:
                return None
            size = (h.shape[0], row_chunk(xp) or h.shape[1], width)
            return workspace.thread_array(name, xp, size, h.dtype, device(h))[:, :h.shape[1], :]

        dim, ffn = fc2["weight"].shape
        attended = linear(a, **self_attn["output"], out=buffer("attention", dim))
        attended += h
        attended = layer_norm(attended, **self_attn_layer_norm, overwrite=True)
        inner = in_blocks(act, linear(attended, **fc1, out=buffer("ffn", ffn)), rows=elementwise_chunk(xp))
        out = linear(inner, **fc2, out=buffer("output", dim))
        out += attended
        return layer_norm(out, **final_layer_norm, overwrite=True)

    out = by_rows(position_wise, h, a, rows=row_chunk(array_namespace(h)), out=out)
    if record:
        record("local_probs", probs)
        if global_probs is not None:
            record("global_probs", global_probs)
        record("attention_output", a)
        record("output", out)
    return out, probs, global_probs


def _encoder(params, config, input_ids, mask, attn_implementation="band", output_attentions=False,
            output_hidden_states=False, progress=None, recorder=None, slots=None):
    """input_ids [B, L], mask [B, L] merged (0 pad, 1 local, 2 global) -> LEDEncoderBaseModelOutput.

    Pads to a multiple of the largest window with pad_token_id (mask 0), runs the layers, unpads
    everything but `global_attentions`, which transformers returns at the padded length.
    `progress`, if given, is called after each layer; `recorder` (ledref.recorder.Recorder) receives
    the intermediates, named encoder.embeddings and encoder.layers.<i>.<name>. `slots` is
    attention.global_slots(mask): computed here when not given, which reads the mask's global count (a
    device-to-host transfer on a GPU); the model classes pass it in, so the forward pass itself reads
    nothing back.
    """
    xp = array_namespace(input_ids)
    enc, shared = params["encoder"], params["shared"]["weight"]
    b, length = input_ids.shape
    padded = math.ceil(length / config.max_attention_window) * config.max_attention_window
    fill = padded - length
    if fill:
        input_ids = xp.concat([input_ids, xp.full((b, fill), config.pad_token_id, dtype=input_ids.dtype,
                                                  device=device(input_ids))], axis=1)
        mask = xp.concat([mask, xp.zeros((b, fill), dtype=mask.dtype, device=device(mask))], axis=1)
    h = xp.reshape(xp.take(shared, xp.reshape(input_ids, (-1,)), axis=0), (b, padded, -1))  # [B, Lp, D]
    h += enc["embed_positions"]["weight"][:padded, :]  # h is new: worked on in place, in row chunks
    h = by_rows(lambda x: layer_norm(x, **enc["layernorm_embedding"], overwrite=True), h,
                rows=row_chunk(xp), out=h)
    if recorder:
        recorder("encoder.embeddings", h)
    slots = global_slots(mask) if slots is None else slots
    act, attention = ACTIVATIONS[config.activation_function], SELF_ATTENTION[attn_implementation]
    hidden, attentions, global_attentions = [], [], []
    # buffers shared by the layers, when no layer's arrays are kept; the hidden states go to two arrays in
    # turn, the embeddings' and one more: a layer writes over the array its predecessor read
    workspace = Workspace() if attn_implementation == "band" and not (recorder or output_hidden_states) else None
    spare = workspace.array("hidden", xp, h.shape, h.dtype, device(h)) if workspace else None
    for i, (layer, window) in enumerate(zip(enc["layers"], config.attention_window)):
        if output_hidden_states:
            hidden.append(h)
        record = recorder.scope(f"encoder.layers.{i}") if recorder else None
        previous = h
        h, probs, global_probs = encoder_layer(h, mask, slots, window, config.encoder_attention_heads, act,
                                               attention, output_attentions, **layer, record=record,
                                               workspace=workspace, out=spare)
        spare = previous if workspace else None
        attentions.append(probs)
        global_attentions.append(global_probs)
        if progress is not None:
            progress()
    if output_hidden_states:
        hidden.append(h)
    return LEDEncoderBaseModelOutput(
        last_hidden_state=h[:, :length, :],
        hidden_states=tuple(s[:, :length, :] for s in hidden) if output_hidden_states else None,
        attentions=tuple(p[:, :, :length, :] for p in attentions) if output_attentions else None,
        global_attentions=tuple(global_attentions) if output_attentions and slots[2] else None,
    )


# ---------------------------------------------------------------------------------------------- decoder

def decoder_layer(h, enc_h, self_mask, cross_mask, n_heads, act, past,
                  self_attn, self_attn_layer_norm, encoder_attn, encoder_attn_layer_norm, fc1, fc2,
                  final_layer_norm, record=None):
    """One post-LN decoder layer. past: (self k, self v, cross k, cross v) or None.
    Returns h [B, T, D], self probs, cross probs, the layer's new cache entry."""
    a, self_probs, (k, v) = decoder_attention(h, h, n_heads, additive_mask=self_mask,
                                              past=None if past is None else past[:2], **self_attn)
    h = layer_norm(h + a, **self_attn_layer_norm)
    a, cross_probs, (ck, cv) = decoder_attention(h, None if past is not None else enc_h, n_heads,
                                                 additive_mask=cross_mask,
                                                 past=None if past is None else past[2:], **encoder_attn)
    h = layer_norm(h + a, **encoder_attn_layer_norm)
    h = layer_norm(h + linear(act(linear(h, **fc1)), **fc2), **final_layer_norm)
    if record:
        record("self_attn_probs", self_probs)
        record("cross_attn_probs", cross_probs)
        record("output", h)
    return h, self_probs, cross_probs, (k, v, ck, cv)


def _decoder(params, config, decoder_input_ids, encoder_hidden_states, encoder_attention_mask=None,
            decoder_attention_mask=None, past_key_values=None, output_attentions=False,
            output_hidden_states=False, recorder=None):
    """decoder_input_ids [B, T] attending to encoder_hidden_states [B, L, D].

    decoder_attention_mask covers past and new tokens [B, past + T]; encoder_attention_mask [B, L].
    Masks are additive (0 or the dtype's finfo.min), as transformers' eager attention.
    Returns (h [B, T, D], hidden states, self probs, cross probs, cache).
    """
    xp = array_namespace(decoder_input_ids)
    dec, shared = params["decoder"], params["shared"]["weight"]
    b, t = decoder_input_ids.shape
    past_len = 0 if past_key_values is None else past_key_values[0][0].shape[2]
    h = xp.reshape(xp.take(shared, xp.reshape(decoder_input_ids, (-1,)), axis=0), (b, t, -1))  # [B, T, D]
    h = layer_norm(h + dec["embed_positions"]["weight"][past_len:past_len + t, :], **dec["layernorm_embedding"])
    if recorder:
        recorder("decoder.embeddings", h)
    neg = finfo_min(h)
    zero = xp.zeros((), dtype=h.dtype, device=device(h))
    self_mask = None  # one new token and no padding: it sees every key, nothing to mask
    if t > 1 or decoder_attention_mask is not None:
        query_pos = xp.arange(past_len, past_len + t, device=device(h))
        key_pos = xp.arange(past_len + t, device=device(h))
        allowed = (key_pos[None, :] <= query_pos[:, None])[None, None, :, :]  # [1, 1, T, past + T] causal
        if decoder_attention_mask is not None:
            allowed = allowed & (decoder_attention_mask == 1)[:, None, None, :]
        self_mask = xp.where(allowed, zero, neg)
    cross_mask = None
    if encoder_attention_mask is not None:
        cross_mask = xp.where((encoder_attention_mask == 1)[:, None, None, :], zero, neg)  # [B, 1, 1, L]
    act = ACTIVATIONS[config.activation_function]
    hidden, self_attns, cross_attns, cache = [], [], [], []
    for i, layer in enumerate(dec["layers"]):
        hidden.append(h)
        past = None if past_key_values is None else past_key_values[i]
        record = recorder.scope(f"decoder.layers.{i}") if recorder else None
        h, self_probs, cross_probs, entry = decoder_layer(h, encoder_hidden_states, self_mask, cross_mask,
                                                          config.decoder_attention_heads, act, past, **layer,
                                                          record=record)
        self_attns.append(self_probs)
        cross_attns.append(cross_probs)
        cache.append(entry)
    hidden.append(h)
    return (h, tuple(hidden) if output_hidden_states else None,
            tuple(self_attns) if output_attentions else None,
            tuple(cross_attns) if output_attentions else None, tuple(cache))


def encoder(params, config, input_ids, *args, **kwargs):
    with small_pages(array_namespace(input_ids)):
        return _encoder(params, config, input_ids, *args, **kwargs)


def decoder(params, config, decoder_input_ids, *args, **kwargs):
    with small_pages(array_namespace(decoder_input_ids)):
        return _decoder(params, config, decoder_input_ids, *args, **kwargs)


encoder.__doc__, decoder.__doc__ = _encoder.__doc__, _decoder.__doc__


def lm_head(h, params):
    """Logits of the tied LM head: h @ shared.T + final_logits_bias.   [B, T, D] -> [B, T, V]"""
    xp = array_namespace(h)
    return h @ xp.matrix_transpose(params["shared"]["weight"]) + params["final_logits_bias"]


def shift_tokens_right(ids, pad_token_id, decoder_start_token_id):
    """[start, ids[:, :-1]] with -100 replaced by the pad id: decoder inputs from labels or input_ids.
    ids [B, T] integers (an array, or nested lists: NumPy then)."""
    if not is_array_api_obj(ids):
        import numpy
        ids = inputs.to_array(ids, numpy, "ids")
    if ids.ndim != 2 or not array_namespace(ids).isdtype(ids.dtype, "integral"):
        raise InputError(f"ids has shape {tuple(ids.shape)} and dtype {ids.dtype}; expected integers of shape "
                         f"(batch, length)")
    check_int("pad_token_id", pad_token_id, InputError)
    check_int("decoder_start_token_id", decoder_start_token_id, InputError)
    xp = array_namespace(ids)
    start = xp.full((ids.shape[0], 1), decoder_start_token_id, dtype=ids.dtype, device=device(ids))
    shifted = xp.concat([start, ids[:, :-1]], axis=1)
    return xp.where(shifted == -100, xp.full_like(shifted, pad_token_id), shifted)


# ---------------------------------------------------------------------------------------------- losses

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

    `from_pretrained(path, dtype="float32" | "float64", attn_implementation="band" | "dense",
    backend=None | "numpy" | "array_api_strict" | "cupy")`. With backend=None the weights stay in NumPy
    and follow the inputs: a call with arrays of another backend gets the weights converted to it once.
    Inputs given as nested lists or NumPy arrays go to the model's backend; outputs are arrays of the
    inputs' backend.
    """

    head = None

    def __init__(self, config, params, dtype="float32", attn_implementation="band", backend=None):
        _check_options(dtype, attn_implementation, backend)
        if not isinstance(config, LEDConfig):
            raise ConfigError(f"config is a {type(config).__name__}; expected an LEDConfig (LEDConfig.from_dict makes "
                              f"one from a dict)")
        check_params(params, config, self.head)
        self.config, self.dtype, self.attn_implementation = config, dtype, attn_implementation
        self.default_xp = namespace(backend or "numpy")
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
        params = load_params(path, config, head=cls.head, dtype=dtype)
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

    @property
    def encoder(self):
        """The encoder alone: `model.encoder(input_ids, attention_mask, global_attention_mask, ...)`."""
        return LEDEncoder(self)

    # -- argument handling shared by every head

    def _encode(self, xp, params, input_ids, attention_mask, global_attention_mask, encoder_outputs,
                output_attentions, output_hidden_states, progress=None, recorder=None):
        """Checked inputs -> (input_ids or None, user attention mask or None, encoder outputs)."""
        config = self.config
        _check_call(output_attentions, output_hidden_states, progress, recorder)
        if encoder_outputs is not None:
            encoder_outputs = as_encoder_output(encoder_outputs)
            state = encoder_outputs.last_hidden_state
            if not is_array_api_obj(state):
                raise InputError(f"encoder_outputs.last_hidden_state is a {type(state).__name__}; expected an array "
                                 f"of shape (batch, length, {config.d_model})")
            if state.ndim != 3 or state.shape[-1] != config.d_model or state.shape[0] == 0:
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
        out = encoder(params, config, input_ids, mask, self.attn_implementation,
                      output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                      progress=progress, recorder=recorder, slots=global_slots(mask))
        return input_ids, attention_mask, out

    def _seq2seq(self, input_ids=None, attention_mask=None, global_attention_mask=None, decoder_input_ids=None,
                 decoder_attention_mask=None, past_key_values=None, use_cache=False, output_attentions=False,
                 output_hidden_states=False, encoder_outputs=None, recorder=None, labels=None, extra=None):
        """Encoder + decoder. Returns (xp, params, decoder h [B, T, D], seq2seq output, checked extras)."""
        config = self.config
        args = dict(input_ids=input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask,
                    decoder_input_ids=decoder_input_ids, decoder_attention_mask=decoder_attention_mask,
                    labels=labels, **(extra or {}))
        check_bool("use_cache", use_cache, InputError)
        if encoder_outputs is not None:
            encoder_outputs = as_encoder_output(encoder_outputs)
            args["encoder_outputs"] = encoder_outputs.last_hidden_state
        if past_key_values is not None:
            self._check_past_structure(past_key_values)
            args["past_key_values"] = past_key_values[0][0]
        xp = input_namespace(args, self.default_xp)
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
        h, hidden, self_attns, cross_attns, cache = decoder(
            params, config, decoder_input_ids, enc.last_hidden_state, attention_mask, decoder_attention_mask,
            past_key_values, output_attentions, output_hidden_states, recorder)
        out = LEDSeq2SeqModelOutput(
            last_hidden_state=h, past_key_values=cache if use_cache else None, decoder_hidden_states=hidden,
            decoder_attentions=self_attns, cross_attentions=cross_attns,
            encoder_last_hidden_state=enc.last_hidden_state, encoder_hidden_states=enc.hidden_states,
            encoder_attentions=enc.attentions, encoder_global_attentions=enc.global_attentions)
        return xp, params, h, out, dict(input_ids=input_ids, labels=labels, decoder_input_ids=decoder_input_ids)

    def _check_past_structure(self, past_key_values):
        """past_key_values: per decoder layer a tuple of 4 arrays, as returned with use_cache=True."""
        config = self.config
        if (not isinstance(past_key_values, (tuple, list)) or len(past_key_values) != config.decoder_layers
                or any(not isinstance(entry, (tuple, list)) or len(entry) != 4
                       or not all(is_array_api_obj(a) for a in entry) for entry in past_key_values)):
            raise InputError(f"past_key_values must hold {config.decoder_layers} entries (one per decoder layer) "
                             f"of 4 arrays (self k, self v, cross k, cross v), as returned with use_cache=True")

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
        xp = input_namespace(args, model.default_xp)
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
        h, _, _, _, cache = decoder(params, self.config, decoder_input_ids, encoder_hidden_states, attention_mask,
                                    None, past_key_values)
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
        batch = logits.shape[0]
        one_per_row = problem == "single_label_classification" or (problem == "regression" and n == 1)
        size = math.prod(labels.shape)
        if (one_per_row and size != batch) or (not one_per_row and tuple(labels.shape) != (batch, n)):
            expected = f"{batch} values, one per row" if one_per_row else f"shape ({batch}, {n})"
            raise InputError(f"labels has shape {tuple(labels.shape)}; expected {expected} for {problem}")
        if problem == "single_label_classification":
            if not xp.isdtype(labels.dtype, "integral"):
                raise InputError(f"labels has dtype {labels.dtype}; expected class indices (integers) for "
                                 f"single_label_classification")
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
