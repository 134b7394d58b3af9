"""Longformer self-attention of the LED encoder, two ways, and the decoder's multi-head attention.

Notation: B batch, H heads, L (padded) length, d head dim, w one-sided window, x global slots.
`mask` is transformers' merged encoder mask: 0 pad, 1 local, 2 global.

The rule both encoder implementations compute (Beltagy et al. 2020, as transformers runs it):
- a local token i attends, with the local q/k/v, to {j : |i-j| <= w, mask_j = 1} and to every global j;
- a global token attends to every non-pad j with the separate query_global/key_global/value_global;
- a pad token's attention output is 0.
`dense_self_attention` writes that rule as one masked L x L softmax. `band_self_attention` (the default)
holds local scores as a (L, 2w+1) band and global keys as x extra columns, never an L x L array.
Both return the attention output and the probabilities in transformers' layout:
`local_probs` [B, H, L, x + 2w + 1] (global key columns first, then the band, zero where the window
meets a global or pad key; rows of global and pad queries zero), `global_probs` [B, H, L, x]
(attention from global slot g to every token; unused slots uniform 1/L), or None without globals.
"""

import math

from array_api_compat import array_namespace, device

from .band import band_from_dense, band_matmul, band_of_keys, band_scores
from .functional import finfo_min, linear, softmax


def split_heads(x, n_heads):
    """[B, L, D] -> [B, H, L, d]"""
    xp = array_namespace(x)
    b, length, dim = x.shape
    return xp.permute_dims(xp.reshape(x, (b, length, n_heads, dim // n_heads)), (0, 2, 1, 3))


def merge_heads(x):
    """[B, H, L, d] -> [B, L, D]"""
    xp = array_namespace(x)
    b, h, length, d = x.shape
    return xp.reshape(xp.permute_dims(x, (0, 2, 1, 3)), (b, length, h * d))


def global_slots(mask):
    """Where the global tokens are: positions [B, x] in ascending order (unused slots 0), which slots are
    used [B, x], and x = the largest global count of a row. x is 0 when no token is global."""
    xp = array_namespace(mask)
    is_global = mask == 2
    counts = xp.sum(xp.astype(is_global, xp.int64), axis=1)  # [B]
    x = int(xp.max(counts))
    positions = []
    for b in range(mask.shape[0]):
        pos = xp.nonzero(is_global[b, ...])[0]
        fill = xp.zeros((x - pos.shape[0],), dtype=pos.dtype, device=device(mask))
        positions.append(xp.concat([pos, fill]))
    positions = xp.astype(xp.stack(positions), xp.int64)  # [B, x]
    used = xp.arange(x, device=device(mask))[None, :] < counts[:, None]
    return positions, used, x


def take_positions(a, positions, axis):
    """Per batch row b, a[b] at positions[b] along `axis` (counted without the batch axis)."""
    xp = array_namespace(a)
    return xp.stack([xp.take(a[b, ...], positions[b, ...], axis=axis) for b in range(a.shape[0])])


def slot_of_position(mask):
    """For every position, the global slot it occupies (meaningful where mask == 2).   [B, L] -> [B, L]"""
    xp = array_namespace(mask)
    count = xp.cumulative_sum(xp.astype(mask == 2, xp.int64), axis=1)
    return xp.clip(count - 1, 0, None)


def _projections(h, n_heads, query, key, value):
    d = h.shape[-1] // n_heads
    q = split_heads(linear(h, **query), n_heads) / math.sqrt(d)  # [B, H, L, d]
    k = split_heads(linear(h, **key), n_heads)
    v = split_heads(linear(h, **value), n_heads)
    return q, k, v


def _global_rows(h, mask, slots, n_heads, query_global, key_global, value_global):
    """Attention of the global tokens over every non-pad token, with the global projections.
    Returns the output of each global slot [B, H, x, d] and its probabilities [B, H, x, L]."""
    xp = array_namespace(h)
    positions, used, x = slots
    d = h.shape[-1] // n_heads
    qg = split_heads(linear(take_positions(h, positions, 0), **query_global), n_heads) / math.sqrt(d)
    kg = split_heads(linear(h, **key_global), n_heads)  # [B, H, L, d]
    vg = split_heads(linear(h, **value_global), n_heads)
    scores = qg @ xp.matrix_transpose(kg)  # [B, H, x, L]
    allowed = used[:, None, :, None] & (mask != 0)[:, None, None, :]
    probs = softmax(xp.where(allowed, scores, finfo_min(scores)))  # unused slots: uniform 1/L
    return probs @ vg, probs


def band_self_attention(h, mask, slots, w, n_heads, query, key, value, query_global, key_global,
                        value_global, output_attentions=False):
    """Band implementation: memory O(L * (w + x)). Returns (output [B, L, D], local_probs, global_probs)."""
    xp = array_namespace(h)
    positions, used, x = slots
    q, k, v = _projections(h, n_heads, query, key, value)
    scores = band_scores(q, k, w)  # [B, H, L, 2w+1]
    local_key = band_of_keys(mask == 1, w)[:, None, :, :]  # [B, 1, L, 2w+1]: in range, not pad, not global
    scores = xp.where(local_key, scores, finfo_min(scores))
    if x:
        global_scores = q @ xp.matrix_transpose(take_positions(k, positions, 1))  # [B, H, L, x]
        global_scores = xp.where(used[:, None, None, :], global_scores, finfo_min(scores))
        scores = xp.concat([global_scores, scores], axis=-1)  # [B, H, L, x + 2w + 1]
    probs = softmax(scores)
    probs = xp.where((mask == 0)[:, None, :, None], xp.zeros_like(probs), probs)
    out = band_matmul(probs[..., x:], v, w)  # [B, H, L, d]
    global_probs = None
    if x:
        out = out + probs[..., :x] @ take_positions(v, positions, 1)
        out_global, global_probs = _global_rows(h, mask, slots, n_heads, query_global, key_global,
                                                value_global)
        out = _overwrite_global_rows(out, out_global, mask)
        probs = xp.where((mask == 2)[:, None, :, None], xp.zeros_like(probs), probs)
        global_probs = xp.matrix_transpose(global_probs)  # [B, H, L, x]
    return merge_heads(out), (probs if output_attentions else None), global_probs


def _dense_rule(h, mask, w, n_heads, query, key, value, query_global, key_global, value_global):
    """The rule as two L x L softmaxes: every row by the local rule (pad rows zero) with its values, and,
    when any token is global, every row by the global rule with the global values (None otherwise)."""
    xp = array_namespace(h)
    length = h.shape[1]
    q, k, v = _projections(h, n_heads, query, key, value)
    i = xp.arange(length, device=device(h))
    near = xp.abs(i[:, None] - i[None, :]) <= w  # [L, L]
    allowed = (near[None, :, :] & (mask == 1)[:, None, :]) | (mask == 2)[:, None, :]  # [B, L, L]
    scores = q @ xp.matrix_transpose(k)  # [B, H, L, L]
    probs = softmax(xp.where(allowed[:, None, :, :], scores, finfo_min(scores)))
    probs = xp.where((mask == 0)[:, None, :, None], xp.zeros_like(probs), probs)
    if not bool(xp.any(mask == 2)):
        return probs, v, None, None
    # every query row through the global projections; only the global ones are used
    qg, kg, vg = _projections(h, n_heads, query_global, key_global, value_global)
    gscores = qg @ xp.matrix_transpose(kg)  # [B, H, L, L]
    gprobs = softmax(xp.where((mask != 0)[:, None, None, :], gscores, finfo_min(gscores)))
    return probs, v, gprobs, vg


def dense_attention_matrix(h, mask, w, n_heads, **weights):
    """P[b, h, i, j]: the weight of token j's value in token i's attention output, as the layer uses it
    (local rule for local tokens, global rule for global ones, 0 for pad rows).   -> [B, H, L, L]"""
    xp = array_namespace(h)
    probs, _, gprobs, _ = _dense_rule(h, mask, w, n_heads, **weights)
    return probs if gprobs is None else xp.where((mask == 2)[:, None, :, None], gprobs, probs)


def dense_self_attention(h, mask, slots, w, n_heads, query, key, value, query_global, key_global,
                         value_global, output_attentions=False):
    """Dense reference: the rule above as L x L masked softmaxes. Memory O(L^2); for teaching and tests."""
    xp = array_namespace(h)
    positions, used, x = slots
    length = h.shape[1]
    probs, v, gprobs, vg = _dense_rule(h, mask, w, n_heads, query, key, value, query_global, key_global,
                                       value_global)
    out = probs @ v  # [B, H, L, d]
    local_probs = global_probs = None
    if x:
        out = xp.where((mask == 2)[:, None, :, None], gprobs @ vg, out)
        global_probs = take_positions(gprobs, positions, 1)  # [B, H, x, L]
        global_probs = xp.where(used[:, None, :, None], global_probs, xp.full_like(global_probs, 1 / length))
        global_probs = xp.matrix_transpose(global_probs)  # [B, H, L, x]
    if output_attentions:
        # transformers' layout: global key columns, then the band of local keys only
        band = band_from_dense(xp.where((mask == 1)[:, None, None, :], probs, xp.zeros_like(probs)), w)
        columns = [band]
        if x:
            at_globals = take_positions(probs, positions, 2)  # [B, H, L, x]
            columns.insert(0, xp.where(used[:, None, None, :], at_globals, xp.zeros_like(at_globals)))
        local_probs = xp.concat(columns, axis=-1)
        local_probs = xp.where((mask == 2)[:, None, :, None], xp.zeros_like(local_probs), local_probs)
    return merge_heads(out), local_probs, global_probs


def _overwrite_global_rows(out, out_global, mask):
    """Rows of global tokens take their slot's output.   [B, H, L, d], [B, H, x, d] -> [B, H, L, d]"""
    xp = array_namespace(out)
    spread = take_positions(out_global, slot_of_position(mask), 1)  # [B, H, L, d]
    return xp.where((mask == 2)[:, None, :, None], spread, out)


SELF_ATTENTION = {"band": band_self_attention, "dense": dense_self_attention}


def decoder_attention(h, kv, n_heads, q_proj, k_proj, v_proj, out_proj, additive_mask=None, past=None):
    """Multi-head attention of the decoder (self when kv is h, cross when kv is the encoder output).

    h [B, T, D]; kv [B, S, D] or None when `past` already holds this layer's keys and values (cross
    attention after the first step); past: (k, v) [B, H, S0, d] to prepend (self attention) or to use
    as they are (cross attention, kv None); additive_mask broadcastable to [B, 1, T, S] (0 or finfo.min).
    Returns (output [B, T, D], probs [B, H, T, S], (k, v)).
    """
    xp = array_namespace(h)
    d = h.shape[-1] // n_heads
    q = split_heads(linear(h, **q_proj) * d ** -0.5, n_heads)  # [B, H, T, d]
    if kv is None:
        k, v = past
    else:
        k = split_heads(linear(kv, **k_proj), n_heads)
        v = split_heads(linear(kv, **v_proj), n_heads)
        if past is not None:
            k, v = xp.concat([past[0], k], axis=2), xp.concat([past[1], v], axis=2)
    scores = q @ xp.matrix_transpose(k)  # [B, H, T, S]
    if additive_mask is not None:
        scores = scores + additive_mask
    probs = softmax(scores)
    return linear(merge_heads(probs @ v), **out_proj), probs, (k, v)
