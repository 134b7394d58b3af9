"""The encoder of `reference.model`, tuned; the decoder with its cross-attention cache laid out for
decoding. Proven equal to the reference by tests/test_fast_equals_reference.py.

- `encoder`: the layers share their large buffers (runtime.Workspace) when no layer's arrays are
  returned; the hidden states alternate between two arrays, a layer writing over the one its
  predecessor read; embeddings, layer norms and the feed-forward work in place, a chunk of rows at a
  time, in parallel on NumPy (functional.by_rows), with the exact GELU in cache-sized blocks
  (functional.in_blocks); the attention is fast.attention.self_attention. NumPy's hugepage advice is
  off meanwhile (runtime.small_pages).
- `decoder`: reference.model.decoder, with each layer's cross-attention keys and values computed once
  with every head contiguous, as the cache that every decoding step reads whole.
"""

import math

from array_api_compat import array_namespace, device

from ..outputs import LEDEncoderBaseModelOutput
from ..recorder import ENCODER_LAYER_NAMES
from ..reference import model as reference
from ..reference.attention import global_slots, select_heads
from ..reference.functional import ACTIVATIONS
from .attention import self_attention
from .functional import by_rows, in_blocks, layer_norm, linear
from .runtime import Workspace, elementwise_chunk, row_chunk, small_pages


def encoder_layer(h, mask, slots, window, n_heads, act, output_attentions, self_attn, self_attn_layer_norm,
                  fc1, fc2, final_layer_norm, workspace=None, out=None, attention_heads=None):
    """reference.model.encoder_layer.   h [B, Lp, D] -> (h [B, Lp, D], local_probs, global_probs).
    With a `workspace`, the attention's output is written into `out` (which must not be h), and the
    position-wise work then writes the layer's output over it, a chunk of rows after reading it. With
    output_attentions, the probabilities of the heads `attention_heads` (all when None) are made."""
    xp = array_namespace(h)
    a, probs, global_probs = self_attention(h, mask, slots, window // 2, n_heads,
                                            **self_attn["longformer_self_attn"],
                                            output_attentions=output_attentions, workspace=workspace,
                                            out=out if workspace is not None else None,
                                            attention_heads=attention_heads)

    def buffer(name, width):  # with a workspace: this thread's buffer, reused chunk after chunk
        if workspace is None:
            return None
        size = (h.shape[0], row_chunk(xp) or h.shape[1], width)
        return workspace.thread_array(name, xp, size, h.dtype, device(h))

    def position_wise(h, a):  # everything after the attention works token by token
        dim, ffn = fc2["weight"].shape
        rows = h.shape[1]
        into = [None if b is None else b[:, :rows, :] for b in (buffer("attention", dim), buffer("ffn", ffn),
                                                                buffer("output", dim))]
        attended = linear(a, **self_attn["output"], out=into[0])
        attended += h
        attended = layer_norm(attended, **self_attn_layer_norm)
        inner = in_blocks(act, linear(attended, **fc1, out=into[1]), rows=elementwise_chunk(xp))
        y = linear(inner, **fc2, out=into[2])
        y += attended
        return layer_norm(y, **final_layer_norm)

    return by_rows(position_wise, h, a, rows=row_chunk(xp), out=out), probs, global_probs


def encoder(params, config, input_ids, mask, output_attentions=False, output_hidden_states=False, slots=None,
            progress=None, attention_heads=None, recorder=None, inputs_embeds=None):
    """reference.model.encoder, fast: the same arguments and the same result. output_attentions: True
    (every layer) or the indices of the layers whose attentions are kept; only those layers make
    probabilities, and only for the heads `attention_heads` (all when None). With a `recorder`
    (ledref.recorder.Recorder), a layer of which it wants anything runs the reference's
    (`reference.model.encoder_layer`, which names every intermediate), the others run here."""
    xp = array_namespace(input_ids)
    with small_pages(xp):
        enc = params["encoder"]
        b, length = input_ids.shape
        padded = math.ceil(length / config.max_attention_window) * config.max_attention_window
        fill = padded - length
        if fill:
            input_ids = xp.concat([input_ids, xp.full((b, fill), config.pad_token_id, dtype=input_ids.dtype,
                                                      device=device(input_ids))], axis=1)
            mask = xp.concat([mask, xp.zeros((b, fill), dtype=mask.dtype, device=device(mask))], axis=1)
        if recorder and recorder.wants("encoder.embeddings"):  # the reference's, kept; a copy goes on
            embedded = reference.embed(params["shared"]["weight"], enc["embed_positions"], enc["layernorm_embedding"],
                                       input_ids, inputs_embeds=inputs_embeds)
            recorder("encoder.embeddings", embedded)
            h = xp.asarray(embedded, copy=True)
        else:
            h = xp.reshape(xp.take(params["shared"]["weight"], xp.reshape(input_ids, (-1,)), axis=0), (b, padded, -1))
            if inputs_embeds is not None:
                h[:, :inputs_embeds.shape[1], :] = inputs_embeds
            h += enc["embed_positions"]["weight"][:padded, :]  # h is new: worked on in place, in row chunks
            h = by_rows(lambda x: layer_norm(x, **enc["layernorm_embedding"]), h, rows=row_chunk(xp), out=h)
        slots = global_slots(mask) if slots is None else slots
        act = ACTIVATIONS[config.activation_function]
        hidden, attentions, global_attentions = [h[:, :length, :]], [], []
        kept = range(len(enc["layers"])) if output_attentions is True else output_attentions or ()
        # buffers shared by the layers when no layer's hidden state is kept; the hidden states then go to
        # two arrays in turn, the embeddings' and one more: a layer writes over the array its predecessor read
        workspace = None if output_hidden_states else Workspace()
        spare = workspace.array("hidden", xp, h.shape, h.dtype, device(h)) if workspace else None
        for i, (layer, window) in enumerate(zip(enc["layers"], config.attention_window, strict=True)):
            previous = h
            scope = recorder.scope(f"encoder.layers.{i}") if recorder else None
            if scope and recorder.wants_layer(f"encoder.layers.{i}", ENCODER_LAYER_NAMES):
                h, probs, global_probs = reference.encoder_layer(h, mask, slots, window, config.encoder_attention_heads,
                                                                 act, "band_matrix", **layer, record=scope)
                probs, global_probs = select_heads(probs, attention_heads), select_heads(global_probs, attention_heads)
                if workspace:  # the recorded output stays as it is; the pass goes on in the shared buffer
                    spare[...] = h
                    h = spare
            else:
                h, probs, global_probs = encoder_layer(h, mask, slots, window, config.encoder_attention_heads, act,
                                                       i in kept, **layer, workspace=workspace, out=spare,
                                                       attention_heads=attention_heads)
            spare = previous if workspace else None
            if output_hidden_states:
                hidden.append(h[:, :length, :])
            if output_attentions:
                attentions.append(probs[:, :, :length, :] if i in kept else None)
                global_attentions.append(global_probs if i in kept else None)
            if progress:
                progress()
        return LEDEncoderBaseModelOutput(
            last_hidden_state=h[:, :length, :], hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
            global_attentions=tuple(global_attentions) if output_attentions and slots[2] else None)


def head_projection(x, n_heads, weight, bias):
    """linear(x) split into heads, each head's [S, d] block contiguous.   [B, S, D] -> [B, H, S, d]"""
    xp = array_namespace(x)
    y = linear(x, weight, bias)  # [B, S, D]
    d = weight.shape[0] // n_heads
    return xp.stack([y[..., i * d:(i + 1) * d] for i in range(n_heads)], axis=1)


def decoder(params, config, decoder_input_ids, encoder_hidden_states, encoder_attention_mask=None,
            decoder_attention_mask=None, past_key_values=None, output_attentions=False,
            output_hidden_states=False, inputs_embeds=None):
    """reference.model.decoder; on the first step (no cache yet) the cross-attention keys and values are
    made here, heads contiguous, and handed to the reference as a cache with empty self-attention
    entries."""
    xp = array_namespace(decoder_input_ids)
    with small_pages(xp):
        if past_key_values is None:
            heads, b = config.decoder_attention_heads, decoder_input_ids.shape[0]
            empty = xp.zeros((b, heads, 0, config.d_model // heads), dtype=encoder_hidden_states.dtype,
                             device=device(encoder_hidden_states))
            past_key_values = [(empty, empty,
                                head_projection(encoder_hidden_states, heads, **layer["encoder_attn"]["k_proj"]),
                                head_projection(encoder_hidden_states, heads, **layer["encoder_attn"]["v_proj"]))
                               for layer in params["decoder"]["layers"]]
        return reference.decoder(params, config, decoder_input_ids, encoder_hidden_states, encoder_attention_mask,
                                 decoder_attention_mask, past_key_values, output_attentions, output_hidden_states,
                                 inputs_embeds=inputs_embeds)
