"""The band kernel and the encoder layer's attention, tuned; proven equal to `reference.attention`.

Each trick replaces a named part of the reference (tests/test_fast.py holds the tests of the parts,
tests/test_fast_equals_reference.py the equality of the whole):

- `projections`: q, k and v from one product with the three weights stacked; q's 1/sqrt(d) folded into
  query's weight when sqrt(d) is a power of two (exact). Replaces the three `linear` calls of
  `reference.attention.self_attention`.
- `band_attention`: replaces `reference.attention.band_local`. Queries go a chunk of rows at a time
  against the keys of their windows, so no [L, 2w+1] score array exists unless the probabilities are
  asked for; each head's keys, and its values with a column of ones after them, are copied into
  contiguous buffers, so that one product gives the weighted values and the row sums at once; scores are
  held keys down, queries across (faster products on the CPU); chunks whose keys are all local mask only
  the two triangles outside the windows (`band_masks`); on NumPy, where `|q| |k|` bounds a chunk's scores
  by UNSHIFTED_BOUND, the softmax skips the row maximum (`chunks_to_shift`); pad rows take an infinite
  row sum instead of a pass that zeroes them; rows are shared among threads (`runtime.parallel_map`).
  Probabilities are made only for the heads asked for, cut from each chunk's weights while they are in
  cache (`cut_band`, replacing `reference.band.diagonals`) straight into the returned array.
- `factored_global_attention`: replaces `reference.attention.global_attention` with few global slots,
  moving key_global and value_global onto the queries instead of projecting every token.
- `with_global_rows`: replaces `reference.attention.place_rows` and its `where`: on NumPy the global
  rows are assigned; elsewhere a one-hot product a chunk of rows at a time.
"""

import math

from array_api_compat import array_namespace, device

from ..reference.attention import global_attention, global_slots, merge_heads, select_heads, split_heads, take_positions
from ..reference.band import diagonals
from ..reference.functional import finfo_min, softmax
from .functional import exp_inplace, linear, matmul_into, multiply_into
from .runtime import Workspace, attention_chunk, on_numpy, parallel_map, row_chunk


def projections(h, n_heads, query, key, value, workspace=None):
    """q (divided by sqrt(d)), k, v [B, H, L, d]: one product for the three, whose heads are views into
    its [B, L, 3D] result (a `workspace` buffer when one is given). When sqrt(d) is a power of two
    (d = 64: 8), the division is folded into query's weight and bias: scaling by a power of two is exact."""
    xp = array_namespace(h)
    dim = h.shape[-1]
    root = math.sqrt(dim // n_heads)
    folded = math.frexp(root)[0] == 0.5
    scale = 1.0 / root if folded else 1.0
    weight = xp.concat([query["weight"] * scale, key["weight"], value["weight"]], axis=0)  # [3D, D]
    bias = xp.concat([query["bias"] * scale, key["bias"], value["bias"]], axis=0)
    into = workspace.array("qkv", xp, (*h.shape[:-1], 3 * dim), h.dtype, device(h)) if workspace else None
    qkv = linear(h, weight, bias, out=into)  # [B, L, 3D]
    q, k, v = (split_heads(qkv[..., i * dim:(i + 1) * dim], n_heads) for i in range(3))
    return (q if folded else q / root), k, v


def at_positions(a, positions):
    """take_positions(a, positions, 1) for [B, H, L, d] views into a larger array (the projections'
    [B, L, 3D]). On NumPy, integer indexing reads the x rows alone. Elsewhere, a product with the one-hot
    [x, L] matrix of the positions, which reads `a` where it lies (a gather would copy it whole first).
    Both exact."""
    xp = array_namespace(a)
    if on_numpy(xp):
        return xp.stack([a[b, ...][:, positions[b, ...], :] for b in range(a.shape[0])])
    onehot = positions[:, :, None] == xp.arange(a.shape[2], device=device(a))[None, None, :]  # [B, x, L]
    return xp.astype(onehot, a.dtype)[:, None, :, :] @ a


def band_masks(xp, mask, rows, w, dtype):
    """The additive masks of band_attention's chunks, per batch row and chunk of `rows` queries s..e whose
    scores [h, hi-lo, e-s] hold keys lo..hi (keys down, queries across): lists of (a, c, m), m to be added
    to key rows a..c; finfo.min outside each query's window and on pad and global keys (global keys come
    as scores of their own), 0 elsewhere. Where every key of a chunk is local and the two triangles outside
    the windows do not meet, only those triangles are masked, and every such chunk adds views of the same
    array, which stay in cache; other chunks get their whole mask. Which chunks are local is read back from
    the mask: on NumPy only (it is free there), so that elsewhere the pass reads nothing back."""
    dev = device(mask)
    b, length = mask.shape
    neg = xp.finfo(dtype).min
    offsets = xp.arange(rows + 2 * w, device=dev)[:, None] - xp.arange(rows, device=dev)[None, :]
    outside = (offsets < 0) | (offsets > 2 * w)  # [rows + 2w, rows]: key s - w + j for query s + i
    pattern = xp.astype(outside, dtype) * neg  # a product, not `where`: several times faster
    triangles = rows - 1 < 2 * w + 1 and on_numpy(xp)
    local = mask == 1
    masks = []
    for row in range(b):
        chunks = []
        for s in range(0, length, rows):
            e, lo, hi = min(s + rows, length), max(s - w, 0), min(s + rows + w, length)
            c0 = lo - (s - w)  # the pattern's row of key lo
            if triangles and bool(xp.all(local[row, lo:hi])):  # key rows 0..rows-1 and 2w+1..: outside
                spans = ((max(a, c0), min(c, c0 + hi - lo)) for a, c in ((0, rows - 1), (2 * w + 1, rows + 2 * w)))
                chunks.append([(a - c0, c - c0, pattern[None, a:c, :e - s]) for a, c in spans if a < c])
            else:
                blocked = outside[c0:c0 + hi - lo, :e - s] | ~local[row, lo:hi, None]
                chunks.append([(0, hi - lo, (xp.astype(blocked, dtype) * neg)[None, ...])])
        masks.append(chunks)
    return masks


# Scores bounded by this in absolute value may go to exp without the row maximum subtracted: exp(+-30) and
# a row's sum of a few thousand such terms lie far inside float32's range, where exp's relative rounding
# does not depend on the magnitude. Such a softmax is the same function, one pass cheaper twice over.
UNSHIFTED_BOUND = 30.0


def norms_for_bounds(q, k, k_at_globals):
    """On NumPy, where reading a number back is free: the lengths of the queries and keys [..., L] (and of
    the global keys [..., x]), from which `|q.k| <= |q| |k|` bounds a chunk's scores. None elsewhere: on a
    GPU the kernel reads nothing back, and the usual shifted softmax is used throughout."""
    xp = array_namespace(q)
    if not on_numpy(xp):
        return None
    lengths = [xp.sqrt(xp.vecdot(a, a)) for a in (q, k)]
    return (*lengths, xp.sqrt(xp.vecdot(k_at_globals, k_at_globals)) if k_at_globals is not None else None)


def chunks_to_shift(norms, rows, w, length):
    """Per chunk of `rows` queries (queries s..s+rows against keys s-w..s+rows+w and the global keys),
    whether its scores might lie beyond UNSHIFTED_BOUND: the product of the longest query and the longest
    key over the heads of `norms` ([h, L] and [h, x], from norms_for_bounds), the keys counted by blocks
    of `rows` (a few more than the window when w is not a multiple of it). All True without norms."""
    blocks = -(-length // rows)
    if norms is None:
        return [True] * blocks
    q_len, k_len, global_len = norms
    xp = array_namespace(q_len)

    def block_maxima(a):  # the longest over the heads in each block of `rows` positions (norms are >= 0)
        a = xp.concat([xp.max(a, axis=0), xp.zeros(blocks * rows - length, dtype=a.dtype)])
        return xp.max(xp.reshape(a, (blocks, rows)), axis=1).tolist()  # NumPy only: norms exist there alone

    q_top, k_top = block_maxima(q_len), block_maxima(k_len)
    g_top = float(xp.max(global_len)) if global_len is not None else 0.0
    # the blocks that hold a chunk's keys: all of them when w is a multiple of `rows`, else a few more
    return [q_top[c] * max(max(k_top[max(c * rows - w, 0) // rows:(min((c + 1) * rows + w, length) - 1) // rows + 1]),
                           g_top) > UNSHIFTED_BOUND for c in range(blocks)]


def cut_band(weights, scale, lead, trail, w, flat=None):
    """reference.band.diagonals for one chunk of band_attention, scaled: the band [rows, 2w+1] of
    weights [rows, hi-lo] * scale [rows, 1], for `rows` queries s.. against keys lo..hi, whose windows
    span keys s-w..s+rows+w (the first `lead` = lo - (s-w) and the last `trail` of them outside the
    sequence: zero). On NumPy, with `flat` (a buffer of at least rows * (rows + 2w + 1) elements), the
    reshape trick of `diagonals` without a new array: the scaled weights are written into `flat` as rows of
    rows + 2w, and read back, as a view, as rows one element longer, each starting one column later.
    Elsewhere, `diagonals` itself."""
    xp = array_namespace(weights)
    n, keys = weights.shape
    if flat is None or not on_numpy(xp):
        parts = [xp.zeros((n, lead), dtype=weights.dtype, device=device(weights)), weights * scale,
                 xp.zeros((n, trail), dtype=weights.dtype, device=device(weights))]
        return diagonals(xp.concat(parts, axis=-1), 2 * w + 1)
    span = lead + keys + trail  # = rows + 2w
    rows = xp.reshape(flat[:n * span], (n, span))
    rows[:, :lead] = 0
    multiply_into(weights, scale, rows[:, lead:lead + keys])
    rows[:, lead + keys:] = 0
    return xp.reshape(flat[:n * (span + 1)], (n, span + 1))[:, :2 * w + 1]  # row r starts r elements later


def band_attention(q, k, v, mask, slots, w, output_attentions=False, workspace=None, out=None, attention_heads=None):
    """reference.attention.band_local, chunk by chunk.   q, k, v [B, H, L, d] ->
    (out [B, H, L, d], zero for pad rows, meaningless for global rows; local_probs or None).
    With a `workspace` (runtime.Workspace), the output, the buffers and the masks are the ones the
    previous layer used; without one, the call has buffers of its own. `out`, if given, is the
    token-major [B, L, H, d] array the output is written into (its permuted view is returned).
    With output_attentions, local_probs [B, H', L, x + 2w + 1] holds the heads `attention_heads` (all
    when None), in that order; no other head's probabilities are made.

    Chunk by chunk, the band scores (keys down, queries across) are masked, exponentiated and multiplied
    by the values and a column of ones (which gives the row sums); the global keys' weights are
    exponentiated and added to the sums (chunk by chunk for heads whose probabilities are kept, else for all
    rows at once); the global keys' part of the output and the division by the sums are then done once per
    head for all rows. A kept head's probabilities are cut from the chunk's weights
    while they are in cache, scaled by 1 / sum (0 for rows of pad and global queries) on the way, and
    written into the returned array: no other array of their size is made."""
    xp = array_namespace(q)
    positions, used, x = slots
    b, heads, length, d = q.shape
    dev = device(q)
    neg = finfo_min(q)
    rows, step = attention_chunk(xp, w, heads)
    starts = range(0, length, rows)

    workspace = Workspace() if workspace is None else workspace  # a call of its own shares within the call

    def buffer(name, shape):  # this thread's buffer, reused
        return workspace.thread_array(name, xp, shape, q.dtype, dev)

    masks = workspace.value(("band masks", w, rows), lambda: band_masks(xp, mask, rows, w, q.dtype))
    k_at_globals = at_positions(k, positions) if x else None  # [B, H, x, d]
    v_at_globals = at_positions(v, positions) if x else None
    # token-major [B, L, H, d] underneath, as merge_heads reads it (which then needs no copy); every
    # element is written below
    if out is None:
        out = workspace.array("attention output", xp, (b, length, heads, d), q.dtype, dev)
    out = xp.permute_dims(out, (0, 2, 1, 3))
    kept = list(range(heads)) if attention_heads is None else list(attention_heads)
    probs = xp.empty((b, len(kept), length, x + 2 * w + 1), dtype=q.dtype, device=dev) if output_attentions else None
    local_rows = xp.astype(mask == 1, q.dtype)  # [B, L]: the rows whose probabilities are not zero

    def heads_of_row(task):
        """Heads h0..h1 of batch row `row`, chunk by chunk; writes `out` and the kept heads' probabilities."""
        row, h0, h1 = task
        n = h1 - h0
        mine = [(i, kept.index(h0 + i)) for i in range(n) if h0 + i in kept] if output_attentions else []
        scratch = buffer("scores", (n * rows * (rows + 2 * w),))
        flat = buffer("band", (rows * (rows + 2 * w + 1),)) if mine and on_numpy(xp) else None
        keys, values = buffer("keys", (n, length, d)), buffer("values", (n, length, d + 1))
        keys[...] = k[row, h0:h1, ...]
        norms = norms_for_bounds(q[row, h0:h1, ...], keys, k_at_globals[row, h0:h1, ...] if x else None)
        shifts = chunks_to_shift(norms, rows, w, length)
        values[..., :d] = v[row, h0:h1, ...]
        values[..., d] = 1.0
        mixed = buffer("mixed", (n, length, d + 1))  # [h, L, d + 1]: the weighted values, then the row sums
        if x:  # [h, L, x], unused slots at finfo.min
            global_weights = q[row, h0:h1, ...] @ xp.matrix_transpose(k_at_globals[row, h0:h1, ...])
            global_weights += xp.where(used[row, None, None, :], xp.zeros((), dtype=q.dtype, device=dev), neg)
        for s, parts, shift in zip(starts, masks[row], shifts, strict=True):
            e = min(s + rows, length)
            lo, hi = max(s - w, 0), min(e + w, length)  # the keys of the chunk's windows
            scores = xp.reshape(scratch[:n * (hi - lo) * (e - s)], (n, hi - lo, e - s))
            scores = matmul_into(keys[:, lo:hi, :], xp.matrix_transpose(q[row, h0:h1, s:e, :]), scores)
            for a, c, additive in parts:
                scores[:, a:c, :] += additive
            if shift:  # the softmax's usual guard: the maximum subtracted first, here and from the global scores
                top = xp.max(scores, axis=1, keepdims=True)  # [h, 1, e-s]
                if x:
                    top_global = xp.max(global_weights[:, s:e, :], axis=-1, keepdims=True)  # [h, e-s, 1]
                    top = xp.maximum(top, xp.matrix_transpose(top_global))
                    global_weights[:, s:e, :] -= xp.matrix_transpose(top)
                scores -= top
            weights = xp.matrix_transpose(exp_inplace(scores))  # [h, e-s, hi-lo]
            mixed[:, s:e, :] = matmul_into(weights, values[:, lo:hi, :], mixed[:, s:e, :])
            if x and mine:  # the kept heads' rows need their sums now: the global keys' weights and part of them
                global_weights[:, s:e, :] = exp_inplace(global_weights[:, s:e, :])
                mixed[:, s:e, d:] += xp.sum(global_weights[:, s:e, :], axis=-1, keepdims=True)
            if mine:  # 1 / sum for the rows of local queries, 0 for the others (pad rows may sum to 0)
                local = local_rows[row, None, s:e, None]  # [1, e-s, 1]
                scale = local / xp.where(local != 0, mixed[:, s:e, d:], xp.ones_like(local))  # [h, e-s, 1]
                for i, j in mine:
                    if x:
                        probs[row, j, s:e, :x] = global_weights[i, s:e, :] * scale[i, ...]
                    probs[row, j, s:e, x:] = cut_band(weights[i, ...], scale[i, ...], lo - (s - w), (e + w) - hi, w,
                                                      flat)
        if x and not mine:  # the global keys' weights and part of the sums, for all rows at once
            global_weights = exp_inplace(global_weights)
            mixed[..., d:] += xp.sum(global_weights, axis=-1, keepdims=True)
        totals = mixed[..., d:]
        if x:
            into = buffer("global part", (n, length, d))
            mixed[..., :d] += matmul_into(global_weights, v_at_globals[row, h0:h1, ...], into)
        # a pad row's output is 0: its sum is taken as infinite (without the shift, a pad row whose keys
        # are all pad sums to 0). Any other row sees its own key, in the band or as a global slot: its sum
        # is at least exp(-UNSHIFTED_BOUND) without the shift, at least 1 with it
        totals = xp.where(mask[row, None, :, None] != 0, totals, xp.full_like(totals, xp.inf))
        mixed[..., :d] /= totals
        out[row, h0:h1, ...] = mixed[..., :d]

    tasks = [(row, h0, min(h0 + step, heads)) for row in range(b) for h0 in range(0, heads, step)]
    parallel_map(xp, heads_of_row, tasks)
    return out, probs


def factored_global_attention(h, q_global, key_global, value_global, mask, slots):
    """reference.attention.global_attention without projecting every token's key_global and value_global.
    With few global slots the projections move to the other side of the products,
    q . (h Wk^T + bk) = (q Wk) . h + q . bk   and   P (h Wv^T + bv) = (P h) Wv^T + bv   (P's rows sum to 1),
    which costs 4 x H L D multiply-adds instead of 4 L D^2: the same rule, summed in another order.
    h [B, L, D], q_global [B, H, x, d], key_global / value_global the layer's {weight, bias}
    -> (out [B, H, x, d], probs [B, H, x, L])."""
    xp = array_namespace(h)
    positions, used, x = slots
    b, heads, _, d = q_global.shape
    dim = h.shape[-1]
    wk = xp.reshape(key_global["weight"], (1, heads, d, dim))
    folded = xp.reshape(q_global @ wk, (b, heads * x, dim))  # [B, H x, D]: each slot's query moved onto h
    offset = q_global @ xp.reshape(key_global["bias"], (1, heads, d, 1))  # [B, H, x, 1]
    scores = xp.reshape(folded @ xp.matrix_transpose(h), (b, heads, x, -1)) + offset  # [B, H, x, L]
    allowed = used[:, None, :, None] & (mask != 0)[:, None, None, :]
    probs = softmax(xp.where(allowed, scores, finfo_min(scores)))
    mixed = xp.reshape(xp.reshape(probs, (b, heads * x, -1)) @ h, (b, heads, x, dim))  # [B, H, x, D]
    wv = xp.reshape(value_global["weight"], (1, heads, d, dim))
    return mixed @ xp.matrix_transpose(wv) + xp.reshape(value_global["bias"], (1, heads, 1, d)), probs


def with_global_rows(out, out_global, global_probs, mask, slots, workspace=None):
    """Rows of global tokens take their slot's output, written over `out` [B, H, L, d] (the caller's own
    array); global_probs to transformers' [B, H, L, x]. On NumPy, where reading the positions back is free,
    the rows are assigned. Elsewhere, without a scatter and without reading back: the global rows are
    zeroed, then each slot's output is added at its position as a product with the one-hot [L, x] matrix
    of the positions, a chunk of rows at a time (no array as large as `out`). Both exact."""
    xp = array_namespace(out)
    positions, used, x = slots
    b, heads, length, d = out.shape
    if on_numpy(xp):
        for row, slot in zip(*(a.tolist() for a in xp.nonzero(used)), strict=True):
            out[row, :, int(positions[row, slot]), :] = out_global[row, :, slot, :]
        return out, xp.matrix_transpose(global_probs)
    rows = row_chunk(xp) or length
    at = xp.arange(length, device=device(out))[None, :, None] == positions[:, None, :]  # [B, L, x]
    onehot = xp.astype(at & used[:, None, :], out.dtype)
    out *= xp.astype(mask != 2, out.dtype)[:, None, :, None]
    slot_rows = xp.reshape(xp.permute_dims(out_global, (0, 2, 1, 3)), (b, x, heads * d))  # [B, x, D]
    for s in range(0, length, rows):
        e = min(s + rows, length)
        into = workspace.array("global rows", xp, (b, e - s, heads * d), out.dtype, device(out)) if workspace else None
        part = matmul_into(onehot[:, s:e, :], slot_rows, into)  # [B, e-s, D]
        out[:, :, s:e, :] += xp.permute_dims(xp.reshape(part, (b, e - s, heads, d)), (0, 2, 1, 3))
    return out, xp.matrix_transpose(global_probs)


def self_attention(h, mask, slots, w, n_heads, query, key, value, query_global, key_global, value_global,
                   output_attentions=False, workspace=None, out=None, attention_heads=None):
    """reference.attention.self_attention with the tricks above.   h [B, L, D] ->
    (out [B, L, D], local_probs or None, global_probs or None). `workspace` lends the buffers of the
    projections and of band_attention (the output is then overwritten by the next layer that uses the
    same workspace); `out` [B, L, D], if given, is the array the output is written into. The
    probabilities hold the heads `attention_heads` (all when None); only theirs are made."""
    xp = array_namespace(h)
    positions, used, x = slots
    q, k, v = projections(h, n_heads, query, key, value, workspace)
    into = None if out is None else xp.reshape(out, (*out.shape[:2], n_heads, -1))  # token-major [B, L, H, d]
    out, local_probs = band_attention(q, k, v, mask, slots, w, output_attentions, workspace, into, attention_heads)
    global_probs = None
    if x:
        d = h.shape[-1] // n_heads  # query_global only at the global positions, as transformers
        q_global = split_heads(linear(take_positions(h, positions, 0), **query_global), n_heads) / math.sqrt(d)
        if x * n_heads < h.shape[-1]:  # few global slots: cheaper without k_global and v_global
            out_global, global_probs = factored_global_attention(h, q_global, key_global, value_global, mask, slots)
        else:
            k_global = split_heads(linear(h, **key_global), n_heads)
            v_global = split_heads(linear(h, **value_global), n_heads)
            out_global, global_probs = global_attention(q_global, k_global, v_global, mask, slots)
        out, global_probs = with_global_rows(out, out_global, global_probs, mask, slots, workspace)
    return merge_heads(out), local_probs, select_heads(global_probs, attention_heads)


def longformer_attention(q, k, v, q_global, k_global, v_global, mask, one_sided_window):
    """The fast kernel in the conformance suite's signature (ledref.testing): projected [B, H, L, d]
    tensors (q and q_global divided by sqrt(d), q_global at every position), mask [B, L] ->
    (out [B, H, L, d], local_probs [B, H, L, x + 2w + 1], global_probs [B, H, L, x] or None)."""
    slots = global_slots(mask)
    out, local_probs = band_attention(q, k, v, mask, slots, one_sided_window, output_attentions=True)
    if not slots[2]:
        return out, local_probs, None
    out_global, global_probs = global_attention(take_positions(q_global, slots[0], 1), k_global, v_global, mask,
                                                slots)
    out, global_probs = with_global_rows(out, out_global, global_probs, mask, slots)
    return out, local_probs, global_probs
