"""Longformer self-attention of the encoder, and the decoder's multi-head attention.

B batch, H heads, L (padded) length, d head dim, D = H d, w one-sided window, x global slots. `mask` [B, L]
is transformers' merged encoder mask: 0 pad, 1 local, 2 global. The rule (Beltagy et al. 2020, section 3,
as transformers runs it):

- a local token i attends, with query, key and value, to `{j : |i - j| <= w, mask_j = 1}` and to every
  global j;
- a global token attends, with query_global, key_global and value_global, to every non-pad j;
- a pad token's output is 0.

The paper's variants change the local window only: with dilation r (an int, or one per head) the window is
{j = i + r o : o = -w..w}, and band column c holds key i + r(c - w); autoregressive windows keep the keys
j <= i (columns c <= w; the columns after the token itself are 0).

The local rows are computed two ways: `dense_local` writes the rule as an L x L masked softmax, `band_local`
holds only the band, [L, 2w+1] per head (see `band`). Both return the probabilities in transformers'
layout: `local_probs` [B, H, L, x + 2w + 1], the global key columns first, then the band; zero where the
window meets a global or pad key; rows of global and pad queries zero. `global_probs` [B, H, L, x] is the
attention from global slot g to every token (unused slots uniform 1/L).
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
    used [B, x], and x, the largest count of global tokens in a row (0 when there are none). Reads the
    mask back to the host: the model computes the slots once, before the layers."""
    xp = array_namespace(mask)
    counts = xp.sum(xp.astype(mask == 2, xp.int64), axis=1)  # [B]
    x = int(xp.max(counts))
    rows = []
    for b in range(mask.shape[0]):
        found = xp.astype(xp.nonzero(mask[b, ...] == 2)[0], xp.int64)
        rows.append(xp.concat([found, xp.zeros(x - found.shape[0], dtype=xp.int64, device=device(mask))]))
    used = xp.arange(x, device=device(mask))[None, :] < counts[:, None]  # [B, x]
    return xp.stack(rows), used, x


def take_positions(a, positions, axis):
    """Per batch row b, a[b] at positions[b] along `axis` (counted without the batch axis)."""
    xp = array_namespace(a)
    return xp.stack([xp.take(a[b, ...], positions[b, ...], axis=axis) for b in range(a.shape[0])])


def place_rows(rows, positions, used, length):
    """The inverse of take_positions on axis 1: row g of `rows` lands at positions[b, g], zero elsewhere.
    A product with the one-hot [L, x] matrix of the positions (the Array API has no scatter); exact, as
    every entry is one term 1 * value plus zeros.   [B, H, x, d] -> [B, H, L, d]"""
    xp = array_namespace(rows)
    at = xp.arange(length, device=device(rows))[None, :, None] == positions[:, None, :]  # [B, L, x]
    return xp.astype(at & used[:, None, :], rows.dtype)[:, None, :, :] @ rows


def per_head(fn, dilation, *arrays):
    """`fn(*arrays, r)` when every head has the same dilation r, else head by head (axis 1), each with its own
    (arrays whose axis 1 has one entry go whole to every head)."""
    xp = array_namespace(*arrays)
    rates = (dilation,) * arrays[0].shape[1] if isinstance(dilation, int) else tuple(dilation)
    if len(set(rates)) == 1:
        return fn(*arrays, rates[0])
    return xp.concat([fn(*(a[:, h:h + 1, ...] if a.shape[1] > 1 else a for a in arrays), r)
                      for h, r in enumerate(rates)], axis=1)


def dense_local(q, k, v, mask, slots, w, dilation=1, autoregressive=False):
    """The local rows by the rule as written: an L x L masked softmax per head.   q, k, v [B, H, L, d] ->
    (out [B, H, L, d], local_probs [B, H, L, x + 2w + 1]); pad rows zero, global rows not yet zeroed."""
    xp = array_namespace(q)
    positions, used, x = slots
    i = xp.arange(q.shape[2], device=device(q))
    offset = i[None, :] - i[:, None]  # [L, L]: key minus query
    r = xp.reshape(xp.asarray(dilation, device=device(q)), (-1, 1, 1))  # [H or 1, 1, 1]
    near = (xp.abs(offset) <= w * r) & (offset % r == 0) & ((offset <= 0) | (not autoregressive))  # [H, L, L]
    allowed = (near[None, ...] & (mask == 1)[:, None, None, :]) | (mask == 2)[:, None, None, :]  # [B, H, L, L]
    scores = q @ xp.matrix_transpose(k)  # [B, H, L, L]
    probs = softmax(xp.where(allowed, scores, finfo_min(scores)))
    probs = xp.where((mask == 0)[:, None, :, None], xp.zeros_like(probs), probs)
    # transformers' layout: the band of local keys, with the global keys' columns in front
    local = xp.where((mask == 1)[:, None, None, :], probs, xp.zeros_like(probs))
    columns = per_head(lambda p, r: band_from_dense(p, w, r), dilation, local)
    if x:
        at_globals = take_positions(probs, positions, 2)  # [B, H, L, x]
        columns = xp.concat([xp.where(used[:, None, None, :], at_globals, xp.zeros_like(at_globals)), columns],
                            axis=-1)
    return probs @ v, columns


def band_local(q, k, v, mask, slots, w, dilation=1, autoregressive=False):
    """The local rows from the band: each query's 2w+1 scores, the global keys' scores in front, one
    softmax, then the band times the values. Memory O(L w). Same arguments and results as dense_local."""
    xp = array_namespace(q)
    positions, used, x = slots
    scores = per_head(lambda q, k, r: band_scores(q, k, w, r), dilation, q, k)  # [B, H, L, 2w+1]
    # [B, 1 or H, L, 2w+1]: in range, not pad, not global (and not after the token, when autoregressive)
    local_key = per_head(lambda f, r: band_of_keys(f, w, r), dilation, (mask == 1)[:, None, :])
    local_key = local_key & ((xp.arange(2 * w + 1, device=device(q)) <= w) | (not autoregressive))
    scores = xp.where(local_key, scores, finfo_min(scores))
    if x:
        global_scores = q @ xp.matrix_transpose(take_positions(k, positions, 1))  # [B, H, L, x]
        global_scores = xp.where(used[:, None, None, :], global_scores, finfo_min(scores))
        scores = xp.concat([global_scores, scores], axis=-1)  # [B, H, L, x + 2w + 1]
    probs = softmax(scores)
    probs = xp.where((mask == 0)[:, None, :, None], xp.zeros_like(probs), probs)
    out = per_head(lambda p, v, r: band_matmul(p, v, w, r), dilation, probs[..., x:], v)  # [B, H, L, d]
    if x:
        out = out + probs[..., :x] @ take_positions(v, positions, 1)
    return out, probs


LOCAL = {"dense": dense_local, "band_matrix": band_local}


def global_attention(q_global, k_global, v_global, mask, slots):
    """Global queries over every non-pad key.   q_global [B, H, x, d] (the slots' rows), k_global, v_global
    [B, H, L, d] -> (out [B, H, x, d], probs [B, H, x, L]). An unused slot masks every key: uniform 1/L."""
    xp = array_namespace(q_global)
    positions, used, x = slots
    scores = q_global @ xp.matrix_transpose(k_global)  # [B, H, x, L]
    allowed = used[:, None, :, None] & (mask != 0)[:, None, None, :]
    probs = softmax(xp.where(allowed, scores, finfo_min(scores)))
    return probs @ v_global, probs


def longformer_attention(q, k, v, q_global, k_global, v_global, mask, slots, w, implementation="band_matrix",
                         dilation=1, autoregressive=False):
    """Longformer attention on projected tensors [B, H, L, d] (q and q_global divided by sqrt(d); q_global
    [B, H, x, d] at the global slots only) -> (out [B, H, L, d], local_probs, global_probs or None).
    dilation: an int, or one per head; autoregressive: only the keys up to the token itself."""
    xp = array_namespace(q)
    positions, used, x = slots
    out, local_probs = LOCAL[implementation](q, k, v, mask, slots, w, dilation, autoregressive)
    if not x:
        return out, local_probs, None
    out_global, global_probs = global_attention(q_global, k_global, v_global, mask, slots)
    is_global = (mask == 2)[:, None, :, None]
    out = xp.where(is_global, place_rows(out_global, positions, used, q.shape[2]), out)
    local_probs = xp.where(is_global, xp.zeros_like(local_probs), local_probs)
    return out, local_probs, xp.matrix_transpose(global_probs)


def self_attention(h, mask, slots, w, n_heads, query, key, value, query_global, key_global, value_global,
                   implementation="band_matrix", record=None):
    """The encoder layer's attention, before its output projection: q, k and v from the hidden states,
    q / sqrt(d); the global projections for the global rows.   h [B, L, D] ->
    (out [B, L, D], local_probs, global_probs or None). `record(name, array)` receives the intermediates;
    those that exist only to be recorded are made when `record.wants(name)`."""
    positions, used, x = slots
    d = h.shape[-1] // n_heads
    q = split_heads(linear(h, **query), n_heads) / math.sqrt(d)  # [B, H, L, d]
    k = split_heads(linear(h, **key), n_heads)
    v = split_heads(linear(h, **value), n_heads)
    q_global = k_global = v_global = None
    if x:  # query_global only at the global positions, as transformers
        q_global = split_heads(linear(take_positions(h, positions, 0), **query_global), n_heads) / math.sqrt(d)
        k_global = split_heads(linear(h, **key_global), n_heads)  # [B, H, L, d]
        v_global = split_heads(linear(h, **value_global), n_heads)
    out, local_probs, global_probs = longformer_attention(q, k, v, q_global, k_global, v_global, mask, slots, w,
                                                          implementation)
    if record:
        for name, array in dict(q=q, k=k, v=v, q_global=q_global, k_global=k_global, v_global=v_global).items():
            if array is not None:
                record(name, array)
        if record.wants("band_scores") or record.wants("band_scores_masked"):  # made for the record alone
            xp = array_namespace(h)
            scores = band_scores(q, k, w)  # [B, H, L, 2w+1]
            record("band_scores", scores)
            local_key = band_of_keys(mask == 1, w)[:, None, :, :]
            record("band_scores_masked", xp.where(local_key, scores, -xp.inf))  # -inf: equal in every dtype
    return merge_heads(out), local_probs, global_probs


def select_heads(probs, heads):
    """probs [B, H, ...] at the listed heads, in their order (all of them when heads is None)."""
    if probs is None or heads is None:
        return probs
    xp = array_namespace(probs)
    return xp.take(probs, xp.asarray(list(heads), device=device(probs)), axis=1)


def decoder_attention(h, kv, n_heads, q_proj, k_proj, v_proj, out_proj, additive_mask=None, past=None):
    """The decoder's multi-head attention: self attention when kv is h, cross attention when kv is the
    encoder's output. h [B, T, D]; kv [B, S, D], or None when `past` holds the keys and values already
    (cross attention after the first step); past (k, v) [B, H, S0, d] is prepended to this step's keys and
    values (self attention); additive_mask broadcasts to [B, 1, T, S] (0 or finfo.min).
    Returns (output [B, T, D], probs [B, H, T, S], (k, v))."""
    xp = array_namespace(h)
    d = h.shape[-1] // n_heads
    q = split_heads(linear(h, **q_proj) * d ** -0.5, n_heads)  # [B, H, T, d]
    if kv is None:
        k, v = past
    else:
        k = split_heads(linear(kv, **k_proj), n_heads)  # [B, H, S, d]
        v = split_heads(linear(kv, **v_proj), n_heads)
        if past is not None:
            k, v = xp.concat([past[0], k], axis=2), xp.concat([past[1], v], axis=2)
    scores = q @ xp.matrix_transpose(k)  # [B, H, T, S]
    if additive_mask is not None:
        scores = scores + additive_mask
    probs = softmax(scores)
    return linear(merge_heads(probs @ v), **out_proj), probs, (k, v)
