"""The LED forward pass: embeddings, encoder layers, decoder layers, the LM head.

Weights come as nested dicts keyed by the checkpoint's own names, handed to the functions with `**layer`:
`fc1` here is `led.encoder.layers.<i>.fc1` in the file. B batch, L input length, Lp padded length,
T decoder length, D model dim, V vocabulary.
"""

from array_api_compat import array_namespace, device

from ..outputs import LEDEncoderBaseModelOutput
from .attention import decoder_attention, global_slots, select_heads, self_attention
from .functional import ACTIVATIONS, finfo_min, layer_norm, linear


def embed(shared, embed_positions, layernorm_embedding, ids, start=0, inputs_embeds=None):
    """Token embeddings plus learned positions start.. (no scaling, no offset), then a layer norm.
    inputs_embeds [B, m, D], if given, stand for the first m tokens' embeddings.   ids [B, T] -> [B, T, D]"""
    xp = array_namespace(ids)
    b, t = ids.shape
    h = xp.reshape(xp.take(shared, xp.reshape(ids, (-1,)), axis=0), (b, t, -1))  # [B, T, D]
    if inputs_embeds is not None:
        h = xp.concat([inputs_embeds, h[:, inputs_embeds.shape[1]:, :]], axis=1)
    return layer_norm(h + embed_positions["weight"][start:start + t, :], **layernorm_embedding)


def encoder_layer(h, mask, slots, window, n_heads, act, implementation, self_attn, self_attn_layer_norm,
                  fc1, fc2, final_layer_norm, record=None):
    """One post-LN encoder layer.   h [B, Lp, D] -> (h [B, Lp, D], local_probs, global_probs)"""
    a, probs, global_probs = self_attention(h, mask, slots, window // 2, n_heads,
                                            **self_attn["longformer_self_attn"],
                                            implementation=implementation, record=record)
    h2 = layer_norm(h + linear(a, **self_attn["output"]), **self_attn_layer_norm)
    out = layer_norm(h2 + linear(act(linear(h2, **fc1)), **fc2), **final_layer_norm)
    for name, array in dict(local_probs=probs, global_probs=global_probs, attention_output=a, output=out).items():
        if record and array is not None:
            record(name, array)
    return out, probs, global_probs


def encoder(params, config, input_ids, mask, implementation="band_matrix", output_attentions=False,
            output_hidden_states=False, slots=None, progress=None, recorder=None, attention_heads=None,
            inputs_embeds=None):
    """input_ids [B, L], mask [B, L] (0 pad, 1 local, 2 global) -> LEDEncoderBaseModelOutput.

    Pads to a multiple of the largest window with pad_token_id (mask 0), runs the layers, and unpads
    everything but `global_attentions`, which transformers returns at the padded length. `slots` is
    global_slots(mask), computed here when not given (which reads the mask back to the host); `progress()`
    is called after each layer; `recorder(name, array)` receives the intermediates. output_attentions:
    True (every layer) or the indices of the layers whose attentions are kept (the others give None);
    attention_heads: the heads kept, in that order (None: all). inputs_embeds [B, L, D] replace the token
    embeddings (see `embed`)."""
    xp = array_namespace(input_ids)
    enc = params["encoder"]
    b, length = input_ids.shape
    window = config.max_attention_window
    fill = -(-length // window) * window - length
    input_ids = xp.concat([input_ids, xp.full((b, fill), config.pad_token_id, dtype=input_ids.dtype,
                                              device=device(input_ids))], axis=1)  # [B, Lp]
    mask = xp.concat([mask, xp.zeros((b, fill), dtype=mask.dtype, device=device(mask))], axis=1)
    h = embed(params["shared"]["weight"], enc["embed_positions"], enc["layernorm_embedding"], input_ids,
              inputs_embeds=inputs_embeds)
    if recorder:
        recorder("encoder.embeddings", h)
    slots = global_slots(mask) if slots is None else slots
    act = ACTIVATIONS[config.activation_function]
    hidden, attentions, global_attentions = [h[:, :length, :]], [], []  # only what is asked for is kept
    kept = range(len(enc["layers"])) if output_attentions is True else output_attentions or ()
    for i, (layer, window) in enumerate(zip(enc["layers"], config.attention_window, strict=True)):
        record = recorder.scope(f"encoder.layers.{i}") if recorder else None
        h, probs, global_probs = encoder_layer(h, mask, slots, window, config.encoder_attention_heads, act,
                                               implementation, **layer, record=record)
        if output_hidden_states:
            hidden.append(h[:, :length, :])
        if output_attentions:  # [B, H, L, x + W + 1] and [B, H, Lp, x] at the kept heads, or None
            attentions.append(select_heads(probs[:, :, :length, :], attention_heads) if i in kept else None)
            global_attentions.append(select_heads(global_probs, attention_heads) if i in kept else None)
        if progress:
            progress()
    return LEDEncoderBaseModelOutput(
        last_hidden_state=h[:, :length, :], hidden_states=tuple(hidden) if output_hidden_states else None,
        attentions=tuple(attentions) if output_attentions else None,
        global_attentions=tuple(global_attentions) if output_attentions and slots[2] else None)


def decoder_layer(h, enc_h, self_mask, cross_mask, n_heads, act, past, self_attn, self_attn_layer_norm,
                  encoder_attn, encoder_attn_layer_norm, fc1, fc2, final_layer_norm, record=None):
    """One post-LN decoder layer; past is (self k, self v, cross k, cross v) or None.
    h [B, T, D] -> (h [B, T, D], self probs, cross probs, the layer's cache entry)"""
    a, self_probs, (k, v) = decoder_attention(h, h, n_heads, **self_attn, additive_mask=self_mask,
                                              past=None if past is None else past[:2])
    h = layer_norm(h + a, **self_attn_layer_norm)
    a, cross_probs, (ck, cv) = decoder_attention(h, enc_h if past is None else None, n_heads, **encoder_attn,
                                                 additive_mask=cross_mask, past=None if past is None else past[2:])
    h = layer_norm(h + a, **encoder_attn_layer_norm)
    h = layer_norm(h + linear(act(linear(h, **fc1)), **fc2), **final_layer_norm)
    for name, array in dict(self_attn_probs=self_probs, cross_attn_probs=cross_probs, output=h).items():
        if record:
            record(name, array)
    return h, self_probs, cross_probs, (k, v, ck, cv)


def decoder(params, config, decoder_input_ids, encoder_hidden_states, encoder_attention_mask=None,
            decoder_attention_mask=None, past_key_values=None, output_attentions=False,
            output_hidden_states=False, recorder=None, inputs_embeds=None):
    """decoder_input_ids [B, T] attending to encoder_hidden_states [B, L, D].

    decoder_attention_mask [B, past + T] covers past and new tokens, encoder_attention_mask [B, L]; both
    become additive masks (0 or finfo.min), as in transformers' eager attention. past_key_values: per
    layer (self k, self v, cross k, cross v) [B, H, S, d]; inputs_embeds [B, T, D] replace the token
    embeddings. Returns (h [B, T, D], hidden states,
    self-attention probs, cross-attention probs, cache)."""
    xp = array_namespace(decoder_input_ids)
    dec = params["decoder"]
    t = decoder_input_ids.shape[1]
    past_len = 0 if past_key_values is None else past_key_values[0][0].shape[2]
    h = embed(params["shared"]["weight"], dec["embed_positions"], dec["layernorm_embedding"], decoder_input_ids,
              past_len, inputs_embeds)  # [B, T, D]
    if recorder:
        recorder("decoder.embeddings", h)
    zero, neg = xp.zeros((), dtype=h.dtype, device=device(h)), finfo_min(h)
    self_mask = None  # one new token and no mask: it sees every key
    if t > 1 or decoder_attention_mask is not None:
        query_pos = xp.arange(past_len, past_len + t, device=device(h))
        allowed = xp.arange(past_len + t, device=device(h))[None, :] <= query_pos[:, None]  # [T, past + T]
        allowed = allowed[None, None, :, :]  # [1, 1, T, past + T]: causal
        if decoder_attention_mask is not None:
            allowed = allowed & (decoder_attention_mask == 1)[:, None, None, :]
        self_mask = xp.where(allowed, zero, neg)
    cross_mask = None
    if encoder_attention_mask is not None:
        cross_mask = xp.where((encoder_attention_mask == 1)[:, None, None, :], zero, neg)  # [B, 1, 1, L]
    act = ACTIVATIONS[config.activation_function]
    hidden, self_attns, cross_attns, cache = [h], [], [], []
    for i, layer in enumerate(dec["layers"]):
        past = None if past_key_values is None else past_key_values[i]
        record = recorder.scope(f"decoder.layers.{i}") if recorder else None
        h, self_probs, cross_probs, entry = decoder_layer(h, encoder_hidden_states, self_mask, cross_mask,
                                                          config.decoder_attention_heads, act, past, **layer,
                                                          record=record)
        hidden.append(h)
        self_attns.append(self_probs)
        cross_attns.append(cross_probs)
        cache.append(entry)
    return (h, tuple(hidden) if output_hidden_states else None, tuple(self_attns) if output_attentions else None,
            tuple(cross_attns) if output_attentions else None, tuple(cache))


def lm_head(h, params):
    """Logits of the tied LM head: h shared^T + final_logits_bias.   [B, T, D] -> [B, T, V]"""
    xp = array_namespace(h)
    return h @ xp.matrix_transpose(params["shared"]["weight"]) + params["final_logits_bias"]
