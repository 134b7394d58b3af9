"""The four model classes: argument checks, the heads, losses, transformers' habits, and which forward pass
runs (`attn_implementation`: "band" runs ledref.fast; "band_matrix" and "dense" run ledref.reference, which
also runs the layers a recorder wants something of). Shapes: B batch, L input length, T decoder length,
D model dim, V vocabulary.
"""

import math
import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
from array_api_compat import array_namespace, device, is_array_api_obj

from . import fast, inputs, lowp, reference
from .backend import ArrayLike, input_device, input_namespace, namespace, namespace_name, to_namespace
from .checkpoint import check_params, flatten, load_params, save_params, tensor_shapes
from .checks import check_bool, check_callable, check_choice, check_int, make_directory, short
from .config import LEDConfig
from .errors import InputError, LedrefError
from .generation import GenerationConfig, generate
from .hub import resolve
from .outputs import (
    SEQ2SEQ_FIELDS,
    BaseModelOutputWithPastAndCrossAttentions,
    LEDSeq2SeqLMOutput,
    LEDSeq2SeqModelOutput,
    LEDSeq2SeqQuestionAnsweringModelOutput,
    LEDSeq2SeqSequenceClassifierOutput,
    as_encoder_output,
)
from .recorder import Recorder
from .reference.attention import global_slots, select_heads
from .reference.functional import linear
from .reference.model import lm_head

DTYPES = ("float32", "float64", "bfloat16", "float16")  # the last two emulated by ledref.lowp
Cache = Sequence[Sequence[Any]]  # per decoder layer (self k, self v, cross k, cross v), as use_cache=True returns
M = TypeVar("M", bound="LEDPreTrainedModel")
IMPLEMENTATIONS = ("band", "band_matrix", "dense")  # "band": ledref.fast; the others: ledref.reference


def _check_options(dtype, attn_implementation, backend=None):
    check_choice("dtype", dtype, DTYPES, InputError)
    check_choice("attn_implementation", attn_implementation, sorted(IMPLEMENTATIONS), InputError)
    if backend is not None and not isinstance(backend, str):
        raise InputError(f"backend={short(backend)} is not supported; expected None or a backend name (str)")
    if dtype in lowp.LOW_DTYPES and backend not in (None, "numpy"):
        raise InputError(f"dtype={dtype!r} is emulated over NumPy (ledref.lowp); backend={backend!r} cannot run "
                         f"it, expected None or 'numpy'")


def _check_call(output_hidden_states=False, progress=None, recorder=None, use_cache=False):
    """The flags and callbacks of a forward call: booleans, callables, a Recorder (output_attentions and
    attention_heads are checked by inputs.attention_selection)."""
    for name, value in (("output_hidden_states", output_hidden_states), ("use_cache", use_cache)):
        check_bool(name, value, InputError)
    check_callable("progress", progress, InputError)
    if recorder is not None and not (callable(recorder) and callable(getattr(recorder, "scope", None))):
        raise InputError(f"recorder={short(recorder)}; expected a ledref.Recorder or None")


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

def dtype_name(dtype):
    """A dtype as ledref names it ("float32", "float64", or "auto"), given a string, a NumPy dtype or a
    torch dtype (torch is not imported for it); anything else is returned as it is, for the check to name."""
    if isinstance(dtype, str):
        return dtype
    if type(dtype).__module__.split(".")[0] == "torch":
        return str(dtype).removeprefix("torch.")
    try:
        return np.dtype(dtype).name
    except TypeError:
        return dtype


def _requested_dtype(dtype, torch_dtype):
    """from_pretrained's dtype: `dtype`, or `torch_dtype` (transformers' older name for it), float32 when
    neither is given."""
    names = [dtype_name(d) for d in (dtype, torch_dtype) if d is not None]
    if len(set(names)) > 1:
        raise LedrefError(f"dtype={dtype!r} and torch_dtype={torch_dtype!r} disagree; torch_dtype is another name "
                          f"for dtype: give one of them")
    return names[0] if names else "float32"


def checkpoint_dtype(path, config):
    """What dtype="auto" loads: config.json's dtype (torch_dtype in older files), else float64 when every
    floating tensor of the checkpoint is float64; float32 for anything else (fp16 and bf16 weights are
    widened to float32, ledref computing in float32 or float64 only)."""
    stored = config.extra.get("dtype") or config.extra.get("torch_dtype")
    if stored is None:
        kinds = {kind for _, kind in tensor_shapes(path).values() if kind.startswith(("F", "BF"))}
        stored = "float64" if kinds == {"F64"} else "float32"
    return stored if stored in DTYPES else "float32"


class LEDEmbedding:
    """`model.get_input_embeddings()`: the shared token embedding, called on token ids as transformers'
    nn.Embedding is: [B, T] ids -> [B, T, D], what `inputs_embeds` and `decoder_inputs_embeds` stand for."""

    def __init__(self, model):
        self.model = model

    @property
    def weight(self):
        """shared.weight [V, D] on the model's default backend."""
        return self.model._params_for(self.model.default_xp)["shared"]["weight"]

    def __call__(self, input_ids):
        model = self.model
        xp = input_namespace({"input_ids": input_ids}, model.default_xp)
        ids = inputs.token_ids(input_ids, xp, "input_ids", model.config.vocab_size)
        shared = model._params_for(xp, input_device({"input_ids": input_ids}))["shared"]["weight"]
        return xp.reshape(xp.take(shared, xp.reshape(ids, (-1,)), axis=0), (*ids.shape, shared.shape[1]))


class LEDPreTrainedModel:
    """Weights, config and the backend they live on. Subclasses add a head and its outputs.

    `from_pretrained(path, dtype="float32" | "float64" | "bfloat16" | "float16" | "auto", attn_implementation=
    "band" | "band_matrix" | "dense", backend=None | "numpy" | "array_api_strict" | "torch" | "cupy")`. With
    backend=None the weights stay in NumPy and follow the inputs: a call with arrays of another backend
    gets the weights converted to it once. Inputs given as nested lists or NumPy arrays go to the model's
    backend; outputs are arrays of the inputs' backend. "bfloat16" and "float16" are emulated on NumPy
    (ledref.lowp): the reference runs ("band" means "band_matrix" there), and the outputs are ledref.lowp
    arrays (ledref.to_numpy gives NumPy arrays of the type).

    As in transformers, forward arguments left at None take their value from the config (`use_cache`,
    `output_attentions`, `output_hidden_states`, `return_dict`); `return_dict=False` returns
    `output.to_tuple()`. Every forward call takes transformers' arguments; `output_attentions` also takes
    a sequence of encoder layer indices (those layers' encoder attentions, None for the others, no decoder
    or cross-attentions), and `attention_heads` a sequence of heads (the maps returned hold those heads,
    in that order). Only the maps asked for are computed.
    """

    head: str | None = None

    def __init__(self, config, params, dtype="float32", attn_implementation="band", backend=None):
        dtype = dtype_name(dtype)
        _check_options(dtype, attn_implementation, backend)
        check_params(params, config, self.head)  # the config first (checkpoint._check_config), then the weights
        self.config, self.dtype, self.attn_implementation = config, dtype, attn_implementation
        self.default_xp = lowp.namespace(dtype) if dtype in lowp.LOW_DTYPES else namespace(backend or "numpy")
        self._params = {}
        self._host_params = params
        self._params_for(self.default_xp)

    @classmethod
    def from_pretrained(cls: type[M], name_or_path: str | os.PathLike, dtype: Any = None,
                        attn_implementation: str = "band", backend: str | None = None, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                        torch_dtype: Any = None) -> M:
        """Load config.json and safetensors weights from a checkpoint directory, a Hugging Face cache
        folder, or a Hub repo id (owner/name; needs huggingface_hub), see ledref.hub.resolve.

        `dtype` (or `torch_dtype`, transformers' older name for it): "float32" (the default), "float64", or
        "bfloat16" / "float16" (emulated, see ledref.lowp), as a string, a NumPy dtype or a torch dtype;
        "auto" is the checkpoint's own dtype (see checkpoint_dtype)."""
        dtype = _requested_dtype(dtype, torch_dtype)
        _check_options("float32" if dtype == "auto" else dtype, attn_implementation, backend)  # before reading
        path = resolve(name_or_path, revision, cache_dir, local_files_only)
        config = LEDConfig.from_pretrained(path)
        if dtype == "auto":
            dtype = checkpoint_dtype(path, config)
        params = load_params(path, config, head=cls.head, dtype="float32" if dtype in lowp.LOW_DTYPES else dtype)
        model = cls(config, params, dtype=dtype, attn_implementation=attn_implementation, backend=backend)
        model._read_extras(path)
        return model

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write the model in the Hub layout, as transformers' save_pretrained does: config.json (with
        `architectures` and `dtype`), model.safetensors (the `led.` prefix when there is a head, the tied
        embedding once, in the model's dtype) and, for LEDForConditionalGeneration, generation_config.json.
        transformers' and ledref's from_pretrained load the directory."""
        save_directory = make_directory("save_directory", save_directory, InputError)
        extra = {k: v for k, v in self.config.extra.items() if k != "torch_dtype"}
        extra.update(architectures=[type(self).__name__], dtype=self.dtype)
        replace(self.config, extra=extra).save_pretrained(save_directory)
        save_params(save_directory, self._host_params, self.head)
        self._save_extras(save_directory)

    def _read_extras(self, path):
        """Files besides config and weights that a subclass reads from the checkpoint directory."""

    def _save_extras(self, path):
        """Files besides config and weights that a subclass writes into a checkpoint directory."""

    def _params_for(self, xp, dev=None):
        """The weights as arrays of xp on device `dev` (None: xp's default device), converted once per
        backend and device: the weights follow the inputs, onto a torch CUDA device for instance."""
        dev = device(xp.empty(0)) if dev is None else dev
        key = (namespace_name(xp), str(dev))
        if key not in self._params:
            self._params[key] = to_namespace(self._host_params, xp, dev)
        return self._params[key]

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __repr__(self):
        c = self.config
        windows = c.attention_window
        window = (f"attention window {windows[0]}" if len(set(windows)) == 1
                  else f"attention windows {windows}")
        head = {None: "none (the decoder's last hidden state)",
                "lm": f"lm (tied to the {c.vocab_size}-token embedding)", "qa": "qa_outputs (start and end logits)",
                "classification": f"classification_head ({c.num_labels} labels)"}[self.head]
        return (f"{type(self).__name__}(\n"
                f"  encoder: {c.encoder_layers} layers, d_model {c.d_model}, {c.encoder_attention_heads} heads, "
                f"ffn {c.encoder_ffn_dim}, {window}, {c.max_encoder_position_embeddings} positions\n"
                f"  decoder: {c.decoder_layers} layers, d_model {c.d_model}, {c.decoder_attention_heads} heads, "
                f"ffn {c.decoder_ffn_dim}, {c.max_decoder_position_embeddings} positions\n"
                f"  head: {head}\n"
                f"  {self.num_parameters():,} parameters, {self.dtype}, attention {self.attn_implementation}, "
                f"backend {namespace_name(self.default_xp)}\n)")
    def _namespace(self, args):
        """The namespace a call runs in: the inputs' backend, or the emulated dtype's (inputs converted)."""
        if self.dtype in lowp.LOW_DTYPES:
            return self.default_xp
        return input_namespace(args, self.default_xp)

    @property
    def encoder(self):
        """The encoder alone: `model.encoder(input_ids, attention_mask, global_attention_mask, ...)`."""
        return LEDEncoder(self)

    # -- which forward pass runs: ledref.fast for "band", the reference for "dense" and "band_matrix". With
    #    "band" and a recorder, the encoder layers and the decoder of which the recorder wants something run
    #    the reference (which names every intermediate), the others the fast path

    def _fast(self):
        """Whether the fast path runs: attn_implementation "band", except in the emulated low precisions."""
        return self.attn_implementation == "band" and self.dtype not in lowp.LOW_DTYPES

    def _run_encoder(self, params, input_ids, mask, slots, output_attentions, output_hidden_states, progress=None,
                     recorder=None, attention_heads=None, inputs_embeds=None):
        if self._fast():
            return fast.encoder(params, self.config, input_ids, mask, output_attentions, output_hidden_states, slots,
                                progress, attention_heads, recorder, inputs_embeds)
        implementation = "band_matrix" if self.attn_implementation == "band" else self.attn_implementation
        return reference.encoder(params, self.config, input_ids, mask, implementation, output_attentions,
                                 output_hidden_states, slots, progress, recorder, attention_heads, inputs_embeds)

    def _run_decoder(self, params, *args, recorder=None, inputs_embeds=None):
        if self._fast() and not (recorder and recorder.wants_decoder(self.config.decoder_layers)):
            return fast.decoder(params, self.config, *args, inputs_embeds=inputs_embeds)
        return reference.decoder(params, self.config, *args, recorder=recorder, inputs_embeds=inputs_embeds)

    @property
    def decoder(self):
        """The decoder alone: `model.decoder(input_ids, encoder_hidden_states=..., ...)` (see LEDDecoder)."""
        return LEDDecoder(self)

    def get_encoder(self) -> "LEDEncoder":
        """`model.encoder`, under transformers' accessor name."""
        return self.encoder

    def get_decoder(self) -> "LEDDecoder":
        """`model.decoder`, under transformers' accessor name."""
        return self.decoder

    def get_input_embeddings(self):
        """The shared token embedding (LEDEmbedding): `model.get_input_embeddings()(input_ids)`."""
        return LEDEmbedding(self)

    def eval(self: M) -> M:
        """Returns the model: ledref only runs inference (no dropout to switch off), as after transformers'
        eval()."""
        return self

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """The number of parameters as transformers' num_parameters counts them: the tied embedding once,
        final_logits_bias not (transformers holds it as a buffer); exclude_embeddings leaves out the token
        and both position embeddings. Every parameter counts as trainable, as in a loaded transformers
        model, so only_trainable changes nothing."""
        skip = {"final_logits_bias"}
        if exclude_embeddings:
            skip |= {"shared.weight", "encoder.embed_positions.weight", "decoder.embed_positions.weight"}
        return sum(math.prod(a.shape) for key, a in flatten(self._host_params).items() if key not in skip)

    # -- argument handling shared by every head

    def _flag(self, name, value):
        """A forward argument left at None takes the config's value, as in transformers."""
        return getattr(self.config, name) if value is None else value

    def _result(self, out, return_dict):
        """The output record, or with return_dict=False (or config.return_dict false) its to_tuple()."""
        return out if self._flag("return_dict", return_dict) else out.to_tuple()

    def _embeddings(self, value, xp, name, batch=None):
        """inputs_embeds or decoder_inputs_embeds: a [B, T, D] floating array, in the model's dtype."""
        a = inputs.to_array(value, xp, name)
        d = self.config.d_model
        if a.ndim != 3 or a.shape[2] != d or a.shape[1] == 0 or (batch is not None and a.shape[0] != batch):
            expected = f"({'batch' if batch is None else batch}, length >= 1, {d})"
            raise InputError(f"{name} has shape {tuple(a.shape)}; expected {expected}")
        if not xp.isdtype(a.dtype, "real floating"):
            raise InputError(f"{name} has dtype {a.dtype}; expected floating-point embeddings")
        return xp.astype(a, getattr(xp, self.dtype))

    def _encode(self, xp, params, input_ids, attention_mask, global_attention_mask, encoder_outputs,
                output_attentions, output_hidden_states, progress=None, recorder=None, inputs_embeds=None,
                attention_heads=None):
        """Checked inputs -> (input_ids or None, user attention mask or None, encoder outputs).
        output_attentions and attention_heads as inputs.attention_selection returns them."""
        config = self.config
        _check_call(output_hidden_states, progress, recorder)
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
        if input_ids is not None and inputs_embeds is not None:
            raise InputError("input_ids and inputs_embeds are both given; expected one of them")
        if inputs_embeds is not None:
            inputs_embeds = self._embeddings(inputs_embeds, xp, "inputs_embeds")
            shape = tuple(inputs_embeds.shape[:2])
            # ids only for the length and the padding: the embeddings replace the lookup of the first L
            ids = xp.full(shape, config.pad_token_id, dtype=xp.int64, device=device(inputs_embeds))
        elif input_ids is None:
            raise InputError("input_ids is None; expected token ids of shape (batch, length) "
                             "(or inputs_embeds, or encoder_outputs)")
        else:
            ids = input_ids = inputs.token_ids(input_ids, xp, "input_ids", config.vocab_size)
            shape = tuple(input_ids.shape)
        padded = math.ceil(shape[1] / config.max_attention_window) * config.max_attention_window
        if padded > config.max_encoder_position_embeddings:
            name = "input_ids" if inputs_embeds is None else "inputs_embeds"
            raise InputError(f"{name} has length {shape[1]}, padded to {padded} (a multiple of the window "
                             f"{config.max_attention_window}); expected at most "
                             f"max_encoder_position_embeddings={config.max_encoder_position_embeddings}")
        mask = xp.ones(shape, dtype=xp.int64, device=device(ids))
        if attention_mask is not None:
            attention_mask = inputs.binary_mask(attention_mask, xp, "attention_mask", shape)
            mask = attention_mask
        if global_attention_mask is not None:
            mask = mask * (inputs.binary_mask(global_attention_mask, xp, "global_attention_mask", shape) + 1)
        out = self._run_encoder(params, ids, mask, global_slots(mask), output_attentions, output_hidden_states,
                                progress, recorder, attention_heads, inputs_embeds)
        return input_ids, attention_mask, out

    def _decode(self, xp, params, batch, decoder_input_ids, decoder_inputs_embeds, encoder_hidden_states,
                encoder_attention_mask, decoder_attention_mask, past_key_values, output_attentions,
                output_hidden_states, recorder=None):
        """Checked decoder inputs -> decoder(...)'s (h [B, T, D], hidden states, self probs, cross probs,
        cache). encoder_attention_mask is already checked."""
        config = self.config
        past_len = self._check_past(past_key_values, batch)
        extra = {}
        if decoder_input_ids is not None and decoder_inputs_embeds is not None:
            raise InputError("decoder_input_ids and decoder_inputs_embeds are both given; expected one of them")
        if decoder_inputs_embeds is not None:
            embeds = self._embeddings(decoder_inputs_embeds, xp, "decoder_inputs_embeds", batch)
            # ids only for the length: the embeddings replace their lookup
            decoder_input_ids = xp.full(tuple(embeds.shape[:2]), config.pad_token_id, dtype=xp.int64,
                                        device=device(embeds))
            extra["inputs_embeds"] = embeds
        decoder_input_ids = inputs.token_ids(decoder_input_ids, xp, "decoder_input_ids", config.vocab_size, batch)
        t = decoder_input_ids.shape[1]
        if past_len + t > config.max_decoder_position_embeddings:
            raise InputError(f"decoder positions reach {past_len + t} (past {past_len} + decoder_input_ids {t}); "
                             f"expected at most max_decoder_position_embeddings="
                             f"{config.max_decoder_position_embeddings}")
        if decoder_attention_mask is not None:
            decoder_attention_mask = inputs.binary_mask(decoder_attention_mask, xp, "decoder_attention_mask",
                                                        (batch, past_len + t))
        return self._run_decoder(params, decoder_input_ids, encoder_hidden_states, encoder_attention_mask,
                                 decoder_attention_mask, past_key_values, output_attentions, output_hidden_states,
                                 recorder=recorder, **extra)

    def _seq2seq(self, input_ids=None, attention_mask=None, global_attention_mask=None, decoder_input_ids=None,
                 decoder_attention_mask=None, past_key_values=None, use_cache=None, output_attentions=None,
                 output_hidden_states=None, encoder_outputs=None, recorder=None, inputs_embeds=None,
                 decoder_inputs_embeds=None, labels=None, extra=None, targets=False, attention_heads=None):
        """Encoder + decoder. Returns (xp, params, decoder h [B, T, D], seq2seq output, checked extras).
        `targets`: labels (or positions) were given, which turns use_cache off unless asked for.

        output_attentions=True returns every attention, as transformers; a sequence of encoder layer
        indices returns those layers' encoder attentions (None for the others) and no decoder or
        cross-attentions. attention_heads keeps those heads of every attention returned."""
        config = self.config
        use_cache = (config.use_cache and not targets) if use_cache is None else use_cache
        check_bool("use_cache", use_cache, InputError)
        output_attentions = self._flag("output_attentions", output_attentions)
        output_hidden_states = self._flag("output_hidden_states", output_hidden_states)
        output_attentions, attention_heads = inputs.attention_selection(
            output_attentions, attention_heads, config.encoder_layers, config.encoder_attention_heads)
        if output_attentions is True and attention_heads is not None:  # the decoder's heads are taken too
            inputs.indices(attention_heads, "attention_heads", config.decoder_attention_heads, "decoder head")
        args = dict(input_ids=input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask,
                    decoder_input_ids=decoder_input_ids, decoder_attention_mask=decoder_attention_mask,
                    inputs_embeds=inputs_embeds, decoder_inputs_embeds=decoder_inputs_embeds,
                    labels=labels, **(extra or {}))
        if encoder_outputs is not None:
            encoder_outputs = as_encoder_output(encoder_outputs)
            args["encoder_outputs"] = encoder_outputs.last_hidden_state
        if past_key_values is not None:
            self._check_past_structure(past_key_values)
            args["past_key_values"] = past_key_values[0][0]
        xp = self._namespace(args)
        params = self._params_for(xp, input_device(args))
        input_ids, attention_mask, enc = self._encode(xp, params, input_ids, attention_mask, global_attention_mask,
                                                      encoder_outputs, output_attentions, output_hidden_states,
                                                      recorder=recorder, inputs_embeds=inputs_embeds,
                                                      attention_heads=attention_heads)
        batch = enc.last_hidden_state.shape[0]
        if labels is not None:
            labels = inputs.token_ids(labels, xp, "labels", config.vocab_size, batch, ignore_index=-100)
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            source = labels if labels is not None else input_ids
            if source is None:
                raise InputError("decoder_input_ids is None and there are no labels or input_ids to derive them "
                                 "from (give decoder_input_ids or decoder_inputs_embeds)")
            decoder_input_ids = shift_tokens_right(source, config.pad_token_id, config.decoder_start_token_id)
        h, hidden, self_attns, cross_attns, cache = self._decode(
            xp, params, batch, decoder_input_ids, decoder_inputs_embeds, enc.last_hidden_state, attention_mask,
            decoder_attention_mask, past_key_values, output_attentions is True, output_hidden_states, recorder)
        if attention_heads is not None and output_attentions is True:
            self_attns = tuple(select_heads(a, attention_heads) for a in self_attns)
            cross_attns = tuple(select_heads(a, attention_heads) for a in cross_attns)
        out = LEDSeq2SeqModelOutput(
            last_hidden_state=h, past_key_values=cache if use_cache else None, decoder_hidden_states=hidden,
            decoder_attentions=self_attns, cross_attentions=cross_attns,
            encoder_last_hidden_state=enc.last_hidden_state, encoder_hidden_states=enc.hidden_states,
            encoder_attentions=enc.attentions, encoder_global_attentions=enc.global_attentions)
        return xp, params, h, out, dict(input_ids=input_ids, labels=labels)

    def _check_past_structure(self, past_key_values):
        """past_key_values: per decoder layer a tuple of 4 arrays, as returned with use_cache=True."""
        config = self.config
        if (not isinstance(past_key_values, (tuple, list)) or len(past_key_values) != config.decoder_layers
                or any(not isinstance(entry, (tuple, list)) or len(entry) != 4
                       or not all(is_array_api_obj(a) for a in entry) for entry in past_key_values)):
            raise InputError(f"past_key_values must hold {config.decoder_layers} entries (one per decoder layer) "
                             f"of 4 arrays (self k, self v, cross k, cross v), as returned with use_cache=True")

    def _check_past(self, past_key_values, batch):
        """The shapes of past_key_values (its structure checked by _check_past_structure) -> past length."""
        if past_key_values is None:
            return 0
        config = self.config
        d = config.d_model // config.decoder_attention_heads
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
                    "output_hidden_states", "encoder_outputs", "recorder", "inputs_embeds", "decoder_inputs_embeds",
                    "attention_heads")

    @classmethod
    def _args(cls, local_vars):
        """The encoder-decoder arguments of a forward call, by name."""
        return {name: local_vars[name] for name in cls.SEQ2SEQ_ARGS}

    @staticmethod
    def _fields(out):
        return {k: getattr(out, k) for k in SEQ2SEQ_FIELDS}


class LEDEncoder:
    """`model.encoder` (or `model.get_encoder()`): the encoder of a loaded model, called on its own, with
    transformers' LEDEncoder arguments -> LEDEncoderBaseModelOutput (a tuple with return_dict=False).
    `progress`, if given, is called after each layer; `recorder` collects the intermediates."""

    def __init__(self, model):
        self.model = model

    def __call__(self, input_ids=None, attention_mask=None, global_attention_mask=None, inputs_embeds=None,
                 output_attentions=None, output_hidden_states=None, return_dict=None, progress=None, recorder=None,
                 attention_heads=None):
        """-> LEDEncoderBaseModelOutput. output_attentions: True (every layer, transformers' layout) or a
        sequence of layer indices (those layers' attentions, None for the others; only they are computed);
        attention_heads: the heads kept, in that order (only theirs are computed)."""
        model = self.model
        config = model.config
        output_attentions, attention_heads = inputs.attention_selection(
            model._flag("output_attentions", output_attentions), attention_heads, config.encoder_layers,
            config.encoder_attention_heads)
        args = dict(input_ids=input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask,
                    inputs_embeds=inputs_embeds)
        xp = model._namespace(args)
        params = model._params_for(xp, input_device(args))
        out = model._encode(xp, params, input_ids, attention_mask, global_attention_mask, None, output_attentions,
                            model._flag("output_hidden_states", output_hidden_states), progress, recorder,
                            inputs_embeds=inputs_embeds, attention_heads=attention_heads)[2]
        return model._result(out, return_dict)


class LEDDecoder:
    """`model.decoder` (or `model.get_decoder()`): the decoder of a loaded model, called on its own with
    transformers' LEDDecoder arguments -> BaseModelOutputWithPastAndCrossAttentions (a tuple with
    return_dict=False).

    `input_ids` (or `inputs_embeds`) [B, T] are the decoder's tokens; `attention_mask` [B, past + T] masks
    them; `encoder_hidden_states` [B, L, D] is what the cross-attention reads (not needed with
    `past_key_values`, which hold its keys and values), `encoder_attention_mask` [B, L] its padding.
    `global_attention_mask` is accepted and unused, as in transformers (the decoder has no global
    attention)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, input_ids=None, attention_mask=None, global_attention_mask=None, encoder_hidden_states=None,
                 encoder_attention_mask=None, past_key_values=None, inputs_embeds=None, use_cache=None,
                 output_attentions=None, output_hidden_states=None, return_dict=None, recorder=None):
        model = self.model
        args = dict(input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=encoder_hidden_states,
                    encoder_attention_mask=encoder_attention_mask, inputs_embeds=inputs_embeds)
        if past_key_values is not None:
            model._check_past_structure(past_key_values)
            args["past_key_values"] = past_key_values[0][0]
        xp = model._namespace(args)
        if input_ids is None and inputs_embeds is None:
            raise InputError("input_ids and inputs_embeds are both None; expected the decoder's token ids "
                             "(batch, length) or their embeddings")
        if encoder_hidden_states is not None:
            encoder_hidden_states = model._embeddings(encoder_hidden_states, xp, "encoder_hidden_states")
            batch = encoder_hidden_states.shape[0]
            if encoder_attention_mask is not None:
                encoder_attention_mask = inputs.binary_mask(encoder_attention_mask, xp, "encoder_attention_mask",
                                                            tuple(encoder_hidden_states.shape[:2]))
        elif past_key_values is None:
            raise InputError("encoder_hidden_states is None; LED's decoder reads the encoder's output: expected "
                             "(batch, length, d_model) (or past_key_values, which hold it)")
        else:
            batch = past_key_values[0][0].shape[0]
            if encoder_attention_mask is not None:
                encoder_attention_mask = inputs.binary_mask(encoder_attention_mask, xp, "encoder_attention_mask",
                                                            (batch, past_key_values[0][2].shape[2]))
        h, hidden, self_attns, cross_attns, cache = model._decode(
            xp, model._params_for(xp, input_device(args)), batch, input_ids, inputs_embeds, encoder_hidden_states,
            encoder_attention_mask, attention_mask, past_key_values,
            model._flag("output_attentions", output_attentions),
            model._flag("output_hidden_states", output_hidden_states), recorder)
        out = BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=h, past_key_values=cache if model._flag("use_cache", use_cache) else None,
            hidden_states=hidden, attentions=self_attns, cross_attentions=cross_attns)
        return model._result(out, return_dict)


class LEDModel(LEDPreTrainedModel):
    """The bare encoder-decoder: `last_hidden_state` is the decoder's output."""

    def forward(self, input_ids: ArrayLike | None = None, attention_mask: ArrayLike | None = None,
                global_attention_mask: ArrayLike | None = None, decoder_input_ids: ArrayLike | None = None,
                decoder_attention_mask: ArrayLike | None = None, past_key_values: Cache | None = None,
                use_cache: bool | None = None, output_attentions: bool | Sequence[int] | None = None,
                output_hidden_states: bool | None = None, encoder_outputs: Any = None,
                recorder: Recorder | None = None, inputs_embeds: ArrayLike | None = None,
                decoder_inputs_embeds: ArrayLike | None = None, return_dict: bool | None = None,
                attention_heads: Sequence[int] | None = None) -> LEDSeq2SeqModelOutput | tuple:
        """The encoder-decoder pass with transformers' arguments -> LEDSeq2SeqModelOutput. Without
        decoder_input_ids they are shift_tokens_right(input_ids); `recorder` collects the intermediates."""
        return self._result(self._seq2seq(**self._args(locals()))[3], return_dict)


class LEDForConditionalGeneration(LEDPreTrainedModel):
    """LED with the language-modelling head: logits = h @ shared.T + final_logits_bias.
    `generate` runs greedy search, beam search and sampling as transformers does (see ledref.generation)."""

    head = "lm"

    def __init__(self, config, params, dtype="float32", attn_implementation="band", backend=None,
                 generation_config=None):
        super().__init__(config, params, dtype=dtype, attn_implementation=attn_implementation, backend=backend)
        self.generation_config = generation_config or GenerationConfig.from_model_config(config)

    def _read_extras(self, path):
        self.generation_config = GenerationConfig.from_pretrained(path, self.config)

    def _save_extras(self, path):
        self.generation_config.save_pretrained(path)

    def generate(self, input_ids: ArrayLike | None = None, attention_mask: ArrayLike | None = None,
                 global_attention_mask: ArrayLike | None = None, **kwargs: Any) -> Any:
        """Token ids [B * num_return_sequences, T] starting with the decoder start token, as transformers'
        generate. kwargs override generation_config (see ledref.generation.generate)."""
        return generate(self, input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask,
                        **kwargs)

    def _next_token_logits(self, decoder_input_ids, encoder_hidden_states, attention_mask, past_key_values,
                           output_attentions=False, output_hidden_states=False):
        """One decoding step on checked arrays of the model's backend, without the argument checks of
        forward: (logits of the last position [B, V], cache, (hidden states, self-attentions,
        cross-attentions) as the decoder returns them, None where not asked for)."""
        params = self._params_for(array_namespace(encoder_hidden_states), device(encoder_hidden_states))
        h, hidden, self_attns, cross_attns, cache = self._run_decoder(
            params, decoder_input_ids, encoder_hidden_states, attention_mask, None, past_key_values,
            output_attentions, output_hidden_states)
        return lm_head(h[:, -1:, :], params)[:, 0, :], cache, (hidden, self_attns, cross_attns)

    def forward(self, input_ids: ArrayLike | None = None, attention_mask: ArrayLike | None = None,
                global_attention_mask: ArrayLike | None = None, decoder_input_ids: ArrayLike | None = None,
                decoder_attention_mask: ArrayLike | None = None, past_key_values: Cache | None = None,
                use_cache: bool | None = None, output_attentions: bool | Sequence[int] | None = None,
                output_hidden_states: bool | None = None, encoder_outputs: Any = None,
                recorder: Recorder | None = None, labels: ArrayLike | None = None,
                inputs_embeds: ArrayLike | None = None, decoder_inputs_embeds: ArrayLike | None = None,
                return_dict: bool | None = None, attention_heads: Sequence[int] | None = None,
                ) -> LEDSeq2SeqLMOutput | tuple:
        """LEDModel's pass and the head -> LEDSeq2SeqLMOutput (logits [B, T, V]). `labels` [B, T] give the
        mean cross-entropy as `loss` (-100 ignored) and, without decoder_input_ids, the decoder inputs."""
        xp, params, h, out, checked = self._seq2seq(**self._args(locals()), labels=labels,
                                                    targets=labels is not None)
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
        return self._result(LEDSeq2SeqLMOutput(loss=loss, logits=logits, **self._fields(out)), return_dict)


class LEDForQuestionAnswering(LEDPreTrainedModel):
    """Span extraction on the decoder output: qa_outputs -> start_logits, end_logits [B, T]."""

    head = "qa"

    def forward(self, input_ids: ArrayLike | None = None, attention_mask: ArrayLike | None = None,
                global_attention_mask: ArrayLike | None = None, decoder_input_ids: ArrayLike | None = None,
                decoder_attention_mask: ArrayLike | None = None, past_key_values: Cache | None = None,
                use_cache: bool | None = None, output_attentions: bool | Sequence[int] | None = None,
                output_hidden_states: bool | None = None, encoder_outputs: Any = None,
                recorder: Recorder | None = None, start_positions: ArrayLike | None = None,
                end_positions: ArrayLike | None = None, inputs_embeds: ArrayLike | None = None,
                decoder_inputs_embeds: ArrayLike | None = None, return_dict: bool | None = None,
                attention_heads: Sequence[int] | None = None) -> LEDSeq2SeqQuestionAnsweringModelOutput | tuple:
        """LEDModel's pass and qa_outputs -> LEDSeq2SeqQuestionAnsweringModelOutput. With start_positions
        and end_positions [B], `loss` is the mean of the two cross-entropies, as transformers computes it."""
        extra = dict(start_positions=start_positions, end_positions=end_positions)
        targets = start_positions is not None and end_positions is not None
        xp, params, h, out, _ = self._seq2seq(**self._args(locals()), extra=extra, targets=targets)
        logits = linear(h, **params["qa_outputs"])  # [B, T, 2]
        start_logits, end_logits = logits[..., 0], logits[..., 1]
        loss = None
        if targets:
            batch, t = start_logits.shape
            # as transformers: positions outside the sequence are clamped to T and then ignored
            start = xp.clip(inputs.positions(start_positions, xp, "start_positions", batch), 0, t)
            end = xp.clip(inputs.positions(end_positions, xp, "end_positions", batch), 0, t)
            loss = (cross_entropy(start_logits, start, ignore_index=t)
                    + cross_entropy(end_logits, end, ignore_index=t)) / 2
        return self._result(LEDSeq2SeqQuestionAnsweringModelOutput(
            loss=loss, start_logits=start_logits, end_logits=end_logits, **self._fields(out)), return_dict)


class LEDForSequenceClassification(LEDPreTrainedModel):
    """transformers 4.x semantics: the decoder state at the last eos of input_ids -> dense -> tanh -> out_proj.
    Every row must hold the same number of eos tokens, and the decoder runs over the input length."""

    head = "classification"

    def forward(self, input_ids: ArrayLike | None = None, attention_mask: ArrayLike | None = None,
                global_attention_mask: ArrayLike | None = None, decoder_input_ids: ArrayLike | None = None,
                decoder_attention_mask: ArrayLike | None = None, past_key_values: Cache | None = None,
                use_cache: bool | None = None, output_attentions: bool | Sequence[int] | None = None,
                output_hidden_states: bool | None = None, encoder_outputs: Any = None,
                recorder: Recorder | None = None, labels: ArrayLike | None = None,
                inputs_embeds: ArrayLike | None = None, decoder_inputs_embeds: ArrayLike | None = None,
                return_dict: bool | None = None, attention_heads: Sequence[int] | None = None,
                ) -> LEDSeq2SeqSequenceClassifierOutput | tuple:
        """LEDModel's pass and the classification head -> LEDSeq2SeqSequenceClassifierOutput (logits
        [B, num_labels]); `labels` give the loss transformers would choose (see the class docstring)."""
        config = self.config
        if input_ids is None:
            raise InputError("input_ids is None; sequence classification needs them to find the eos tokens")
        xp, params, h, out, checked = self._seq2seq(**self._args(locals()), extra=dict(classification_labels=labels),
                                                    targets=labels is not None)
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
        return self._result(LEDSeq2SeqSequenceClassifierOutput(loss=loss, logits=logits, **self._fields(out)),
                            return_dict)

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
