"""Longformer self-attention of the LED encoder, two ways, and the decoder's multi-head attention.

Notation: B batch, H heads, L (padded) length, d head dim, w one-sided window, x global slots.
`mask` is transformers' merged encoder mask: 0 pad, 1 local, 2 global.

The rule both encoder implementations compute (Beltagy et al. 2020, as transformers runs it):

- a local token i attends, with the local q/k/v, to `{j : |i-j| <= w, mask_j = 1}` and to every global j;
- a global token attends to every non-pad j with the separate query_global/key_global/value_global;
- a pad token's attention output is 0.

`dense_attention` writes that rule as L x L masked softmaxes. `band_matrix_attention` holds the scores as
the band matrix itself, [L, 2w+1] per head. `band_attention` (the default, and the fast one) never builds
an L x L array either: it takes the queries a chunk of rows at a time, each against the keys of its
window (rows s..e see keys s-w..e+w), softmaxes those scores with the global key columns, and keeps the
band (2w+1 columns per query) only when the probabilities are asked for.
Both return the attention output and the probabilities in transformers' layout:
`local_probs` [B, H, L, x + 2w + 1] (global key columns first, then the band, zero where the window
meets a global or pad key; rows of global and pad queries zero), `global_probs` [B, H, L, x]
(attention from global slot g to every token; unused slots uniform 1/L), or None without globals.

The kernel-level functions take projected tensors q, k, v [B, H, L, d] (q already divided by sqrt(d));
`*_self_attention` are the layer-level ones that project the hidden states first.
"""

import math

from array_api_compat import array_namespace, device

from .backend import Workspace, attention_chunk, namespace_name, parallel_map, row_chunk
from .band import band_from_dense, band_matmul, band_of_keys, band_scores, diagonals
from .functional import exp_inplace, finfo_min, linear, matmul_into, softmax


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


def head_projection(x, n_heads, weight, bias):
    """linear(x) split into heads, each head's [S, d] block contiguous (the cached keys and values are
    read at every decoding step): one matrix product, then the heads stacked.   [B, S, D] -> [B, H, S, d]"""
    xp = array_namespace(x)
    y = linear(x, weight, bias)  # [B, S, D]
    d = weight.shape[0] // n_heads
    return xp.stack([y[..., i * d:(i + 1) * d] for i in range(n_heads)], axis=1)


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


def _at_positions(a, positions):
    """take_positions(a, positions, 1) for [B, H, L, d] arrays that are views into a larger array (the
    projections' [B, L, 3D]). On NumPy, integer-array indexing reads the x rows alone. Elsewhere, a product
    with the one-hot [x, L] matrix of the positions: it reads `a` where it lies, while a gather copies a
    strided array whole first. Both are exact: the rows themselves (one term 1 * a, the rest 0)."""
    xp = array_namespace(a)
    if namespace_name(xp) == "numpy":
        return xp.stack([a[b, ...][:, positions[b, ...], :] for b in range(a.shape[0])])
    length = a.shape[2]
    onehot = positions[:, :, None] == xp.arange(length, device=device(a))[None, None, :]  # [B, x, L]
    return xp.astype(onehot, a.dtype)[:, None, :, :] @ a


def _projections(h, n_heads, query, key, value, workspace=None):
    """q (divided by sqrt(d)), k, v [B, H, L, d]: one matrix product for the three, whose heads are views
    into its [B, L, 3D] result (a `workspace` buffer when one is given). When sqrt(d) is a power of two
    (d = 64: 8) the division is folded into query's weight and bias beforehand: scaling by a power of two
    is exact, so the numbers are the same."""
    xp = array_namespace(h)
    dim = h.shape[-1]
    root = math.sqrt(dim // n_heads)
    folded = math.frexp(root)[0] == 0.5
    scale = 1.0 / root if folded else 1.0
    weight = xp.concat([query["weight"] * scale, key["weight"], value["weight"]], axis=0)  # [3D, D]
    into = workspace.array("qkv", xp, (*h.shape[:-1], 3 * dim), h.dtype, device(h)) if workspace else None
    qkv = linear(h, weight, xp.concat([query["bias"] * scale, key["bias"], value["bias"]], axis=0), out=into)
    q, k, v = (split_heads(qkv[..., i * dim:(i + 1) * dim], n_heads) for i in range(3))
    return (q if folded else q / root), k, v


# ------------------------------------------------------------------------------------------ kernels

def _band_masks(xp, mask, rows, w, dtype):
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
    triangles = rows - 1 < 2 * w + 1 and namespace_name(xp) == "numpy"
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


def band_attention(q, k, v, mask, slots, w, output_attentions=False, workspace=None, out=None):
    """Local queries over their window and the global keys.   q, k, v [B, H, L, d] ->
    (out [B, H, L, d], zero for pad rows, meaningless for global rows; local_probs or None).
    With a `workspace` (backend.Workspace), the output, the buffers and the masks are the ones the
    previous layer used; without one, the call has buffers of its own. `out`, if given, is the
    token-major [B, L, H, d] array the output is written into (its permuted view is returned).

    Chunk by chunk, the band scores (keys down, queries across) are masked, exponentiated and multiplied
    by the values and a column of ones (which gives the row sums); the global keys' part and the division
    by the sums are then done once per head for all rows."""
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

    masks = workspace.value(("band masks", w, rows), lambda: _band_masks(xp, mask, rows, w, q.dtype))
    k_at_globals = _at_positions(k, positions) if x else None  # [B, H, x, d]
    v_at_globals = _at_positions(v, positions) if x else None
    # token-major [B, L, H, d] underneath, as merge_heads reads it (which then needs no copy); every
    # element is written below
    if out is None:
        out = workspace.array("attention output", xp, (b, length, heads, d), q.dtype, dev)
    out = xp.permute_dims(out, (0, 2, 1, 3))

    def heads_of_row(task):
        """Heads h0..h1 of batch row `row`, chunk by chunk; writes `out`, returns the band probabilities.
        The keys, and the values with a column of ones after them, are first copied into contiguous
        buffers: each key and value is read by several chunks, whose products run faster on contiguous
        rows, and the product of a chunk's weights with the column of ones is their row sums."""
        row, h0, h1 = task
        n = h1 - h0
        scratch = buffer("scores", (n * rows * (rows + 2 * w),))
        keys, values = buffer("keys", (n, length, d)), buffer("values", (n, length, d + 1))
        keys[...] = k[row, h0:h1, ...]
        norms = _norms_for_bounds(q[row, h0:h1, ...], keys, k_at_globals[row, h0:h1, ...] if x else None)
        shifts = _chunks_to_shift(norms, rows, w, length)
        values[..., :d] = v[row, h0:h1, ...]
        values[..., d] = 1.0
        mixed = buffer("mixed", (n, length, d + 1))  # [h, L, d + 1]: the weighted values, then the row sums
        if x:  # [h, L, x], unused slots at finfo.min
            global_scores = q[row, h0:h1, ...] @ xp.matrix_transpose(k_at_globals[row, h0:h1, ...])
            global_scores += xp.where(used[row, None, None, :], xp.zeros((), dtype=q.dtype, device=dev), neg)
        chunks = []
        for s, parts, shift in zip(starts, masks[row], shifts):
            e = min(s + rows, length)
            lo, hi = max(s - w, 0), min(e + w, length)  # the keys of the chunk's windows
            # keys down, queries across: the products are faster this way round on the CPU
            scores = xp.reshape(scratch[:n * (hi - lo) * (e - s)], (n, hi - lo, e - s))
            scores = matmul_into(keys[:, lo:hi, :], xp.matrix_transpose(q[row, h0:h1, s:e, :]), scores)
            for a, c, additive in parts:
                scores[:, a:c, :] += additive
            if shift:  # the softmax's usual guard: the maximum subtracted first, here and from the global scores
                top = xp.max(scores, axis=1, keepdims=True)  # [h, 1, e-s]
                if x:
                    top = xp.maximum(top, xp.matrix_transpose(xp.max(global_scores[:, s:e, :], axis=-1, keepdims=True)))
                    global_scores[:, s:e, :] -= xp.matrix_transpose(top)
                scores -= top
            weights = xp.matrix_transpose(exp_inplace(scores))  # [h, e-s, hi-lo]
            mixed[:, s:e, :] = matmul_into(weights, values[:, lo:hi, :], mixed[:, s:e, :])
            if output_attentions:  # pad the chunk's key axis to s-w..e+w, then cut the diagonals
                left = xp.zeros((n, e - s, lo - (s - w)), dtype=q.dtype, device=dev)
                right = xp.zeros((n, e - s, (e + w) - hi), dtype=q.dtype, device=dev)
                chunks.append(diagonals(xp.concat([left, weights, right], axis=-1), 2 * w + 1))
        totals = mixed[..., d:]
        if x:
            global_weights = exp_inplace(global_scores)
            totals += xp.sum(global_weights, axis=-1, keepdims=True)
            into = buffer("global part", (n, length, d))
            mixed[..., :d] += matmul_into(global_weights, v_at_globals[row, h0:h1, ...], into)
        # a pad row's output is 0: its sum is taken as infinite (without the shift, a pad row whose keys
        # are all pad sums to 0). Any other row sees its own key, in the band or as a global slot: its sum
        # is at least exp(-UNSHIFTED_BOUND) without the shift, at least 1 with it
        totals = xp.where(mask[row, None, :, None] != 0, totals, xp.full_like(totals, xp.inf))
        mixed[..., :d] /= totals
        out[row, h0:h1, ...] = mixed[..., :d]
        if not output_attentions:
            return None
        band = xp.concat(chunks, axis=1) / totals
        return xp.concat([global_weights / totals, band], axis=-1) if x else band

    tasks = [(row, h0, min(h0 + step, heads)) for row in range(b) for h0 in range(0, heads, step)]
    bands = parallel_map(xp, heads_of_row, tasks)
    if not output_attentions:
        return out, None
    groups = len(tasks) // b
    probs = xp.stack([xp.concat(bands[row * groups:(row + 1) * groups], axis=0) for row in range(b)])
    return out, xp.where(((mask == 0) | (mask == 2))[:, None, :, None], xp.zeros_like(probs), probs)


# Scores bounded by this in absolute value may go to exp without the row maximum subtracted: exp(+-30) and
# a row's sum of a few thousand such terms lie far inside float32's range, where exp's relative rounding
# does not depend on the magnitude. Such a softmax is the same function, one pass cheaper twice over.
UNSHIFTED_BOUND = 30.0


def _norms_for_bounds(q, k, k_at_globals):
    """On NumPy, where reading a number back is free: the lengths of the queries and keys [..., L] (and of
    the global keys [..., x]), from which |q.k| <= |q| |k| bounds a chunk's scores. None elsewhere: on a
    GPU the kernel reads nothing back, and the usual shifted softmax is used throughout."""
    xp = array_namespace(q)
    if namespace_name(xp) != "numpy":
        return None
    lengths = [xp.sqrt(xp.vecdot(a, a)) for a in (q, k)]
    return (*lengths, xp.sqrt(xp.vecdot(k_at_globals, k_at_globals)) if k_at_globals is not None else None)


def _chunks_to_shift(norms, rows, w, length):
    """Per chunk of `rows` queries (queries s..s+rows against keys s-w..s+rows+w and the global keys),
    whether its scores might lie beyond UNSHIFTED_BOUND: the product of the longest query and the longest
    key over the heads of `norms` ([h, L] and [h, x], from _norms_for_bounds), the keys counted by blocks
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


def band_matrix_attention(q, k, v, mask, slots, w, output_attentions=False):
    """The same as `band_attention`, written as the band matrix itself: every query's 2w+1 scores held at
    once as [B, H, L, 2w+1] (ledref.band computes them block by block and cuts the band out), the global
    key columns in front, one softmax, the band times the values. Clearer, and O(L * w) too, but with
    large temporaries: for teaching and as a second check of `band_attention`."""
    xp = array_namespace(q)
    positions, used, x = slots
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
    if x:
        out = out + probs[..., :x] @ take_positions(v, positions, 1)
    if not output_attentions:
        return out, None
    return out, xp.where((mask == 2)[:, None, :, None], xp.zeros_like(probs), probs)


def global_attention(q_global, k_global, v_global, mask, slots):
    """Global queries over every non-pad key.   q_global [B, H, x, d] (one row per global slot),
    k_global, v_global [B, H, L, d] -> (out [B, H, x, d], probs [B, H, x, L]; unused slots uniform 1/L)."""
    xp = array_namespace(q_global)
    positions, used, x = slots
    scores = q_global @ xp.matrix_transpose(k_global)  # [B, H, x, L]
    allowed = used[:, None, :, None] & (mask != 0)[:, None, None, :]
    probs = softmax(xp.where(allowed, scores, finfo_min(scores)))
    return probs @ v_global, probs


def factored_global_attention(h, q_global, key_global, value_global, mask, slots):
    """`global_attention` without projecting every token's key_global and value_global. With few global
    slots the projections move to the other side of the products,
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


def _with_global_rows(out, out_global, global_probs, mask, slots, workspace=None):
    """Rows of global tokens take their slot's output, written over `out` [B, H, L, d] (the caller's own
    array); global_probs to transformers' [B, H, L, x]. On NumPy, where reading the positions back is free,
    the rows are assigned. Elsewhere, without a scatter (the standard has none) and without reading back:
    the global rows are zeroed, then each slot's output is added at its position as a product with the
    one-hot [L, x] matrix of the positions, a chunk of rows at a time (row_chunk: no array as large as
    `out`). Both are exact: other rows gain 0, global rows 0 + out."""
    xp = array_namespace(out)
    positions, used, x = slots
    b, heads, length, d = out.shape
    if namespace_name(xp) == "numpy":  # where reading the positions back is free: the rows written directly
        for row, slot in zip(*(a.tolist() for a in xp.nonzero(used))):
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


def _dense_rule(q, k, qg, kg, mask, w, any_global):
    """The rule as two L x L softmaxes: every row by the local rule (pad rows zero), and, when any token is
    global, every row by the global rule (None otherwise)."""
    xp = array_namespace(q)
    length = q.shape[2]
    i = xp.arange(length, device=device(q))
    near = xp.abs(i[:, None] - i[None, :]) <= w  # [L, L]
    allowed = (near[None, :, :] & (mask == 1)[:, None, :]) | (mask == 2)[:, None, :]  # [B, L, L]
    scores = q @ xp.matrix_transpose(k)  # [B, H, L, L]
    probs = softmax(xp.where(allowed[:, None, :, :], scores, finfo_min(scores)))
    probs = xp.where((mask == 0)[:, None, :, None], xp.zeros_like(probs), probs)
    if not any_global:
        return probs, None
    gscores = qg @ xp.matrix_transpose(kg)  # [B, H, L, L]
    return probs, softmax(xp.where((mask != 0)[:, None, None, :], gscores, finfo_min(gscores)))


def dense_attention(q, k, v, q_global, k_global, v_global, mask, slots, w, output_attentions=False):
    """Dense reference kernel: the rule above as L x L masked softmaxes, q_global over all L positions.
    Returns (out [B, H, L, d], local_probs or None, global_probs [B, H, L, x] or None)."""
    xp = array_namespace(q)
    positions, used, x = slots
    length = q.shape[2]
    probs, gprobs = _dense_rule(q, k, q_global, k_global, mask, w, x > 0)
    out = probs @ v  # [B, H, L, d]
    local_probs = global_probs = None
    if x:
        out = xp.where((mask == 2)[:, None, :, None], gprobs @ v_global, out)
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
    return out, local_probs, global_probs


def longformer_attention(q, k, v, q_global, k_global, v_global, mask, one_sided_window, implementation="band",
                         output_attentions=True):
    """Longformer attention on projected tensors [B, H, L, d] (q and q_global divided by sqrt(d); q_global
    given for every position, only global rows are used), mask [B, L] 0 pad / 1 local / 2 global.
    Returns (out [B, H, L, d], local_probs [B, H, L, x + 2w + 1], global_probs [B, H, L, x] or None)."""
    slots = global_slots(mask)
    if implementation == "dense":
        return dense_attention(q, k, v, q_global, k_global, v_global, mask, slots, one_sided_window,
                               output_attentions)
    out, local_probs = band_attention(q, k, v, mask, slots, one_sided_window, output_attentions)
    if not slots[2]:
        return out, local_probs, None
    out_global, global_probs = global_attention(take_positions(q_global, slots[0], 1), k_global, v_global, mask,
                                                slots)
    out, global_probs = _with_global_rows(out, out_global, global_probs, mask, slots)
    return out, local_probs, global_probs


# ------------------------------------------------------------------------------------------ layers

def _record_scores(record, q, k, v, mask, w):
    """The intermediates a recorder gets from every implementation: q, k, v and the band scores before
    and after masking ([B, H, L, 2w+1], pad, global and out-of-range keys at finfo.min)."""
    xp = array_namespace(q)
    record("q", q)
    record("k", k)
    record("v", v)
    scores = band_scores(q, k, w)
    record("band_scores", scores)
    record("band_scores_masked", xp.where(band_of_keys(mask == 1, w)[:, None, :, :], scores, finfo_min(scores)))


def band_self_attention(h, mask, slots, w, n_heads, query, key, value, query_global, key_global,
                        value_global, output_attentions=False, kernel=band_attention, record=None, workspace=None,
                        out=None):
    """Band implementation: memory O(L * (w + x)). Returns (output [B, L, D], local_probs, global_probs).
    `record(name, array)`, if given, receives the intermediates (see ledref.recorder). `workspace`
    (backend.Workspace), if given, lends the buffers of the projections and of `band_attention`: the
    output is then overwritten by the next layer that uses the same workspace. `out` [B, L, D], if given
    (with `band_attention` as the kernel), is the array the output is written into and returned as."""
    xp = array_namespace(h)
    positions, used, x = slots
    q, k, v = _projections(h, n_heads, query, key, value, workspace)
    if record:
        _record_scores(record, q, k, v, mask, w)
    given = {"workspace": workspace} if workspace else {}
    if out is not None:  # [B, L, D] -> the kernel's token-major [B, L, H, d]
        given["out"] = xp.reshape(out, (*out.shape[:2], n_heads, -1))
    out, local_probs = kernel(q, k, v, mask, slots, w, output_attentions, **given)
    global_probs = None
    if x:
        d = h.shape[-1] // n_heads  # query_global only at the global positions, as transformers
        q_global = split_heads(linear(take_positions(h, positions, 0), **query_global), n_heads) / math.sqrt(d)
        if record:
            record("q_global", q_global)  # [B, H, x, d]: the global slots' rows only
        if x * n_heads < h.shape[-1] and not record:  # few global slots: cheaper without k_global, v_global
            out_global, global_probs = factored_global_attention(h, q_global, key_global, value_global, mask, slots)
        else:
            k_global = split_heads(linear(h, **key_global), n_heads)
            v_global = split_heads(linear(h, **value_global), n_heads)
            if record:
                record("k_global", k_global)
                record("v_global", v_global)
            out_global, global_probs = global_attention(q_global, k_global, v_global, mask, slots)
        out, global_probs = _with_global_rows(out, out_global, global_probs, mask, slots, workspace)
    return merge_heads(out), local_probs, global_probs


def dense_attention_matrix(h, mask, w, n_heads, query, key, value, query_global, key_global, value_global):
    """P[b, h, i, j]: the weight of token j's value in token i's attention output, as the layer uses it
    (local rule for local tokens, global rule for global ones, 0 for pad rows).   -> [B, H, L, L]"""
    xp = array_namespace(h)
    q, k, _ = _projections(h, n_heads, query, key, value)
    qg, kg, _ = _projections(h, n_heads, query_global, key_global, value_global)
    probs, gprobs = _dense_rule(q, k, qg, kg, mask, w, bool(xp.any(mask == 2)))
    return probs if gprobs is None else xp.where((mask == 2)[:, None, :, None], gprobs, probs)


def dense_self_attention(h, mask, slots, w, n_heads, query, key, value, query_global, key_global,
                         value_global, output_attentions=False, record=None):
    """Dense reference: the rule above as L x L masked softmaxes. Memory O(L^2); for teaching and tests."""
    q, k, v = _projections(h, n_heads, query, key, value)
    qg, kg, vg = _projections(h, n_heads, query_global, key_global, value_global)
    if record:
        _record_scores(record, q, k, v, mask, w)
        if slots[2]:
            record("q_global", take_positions(qg, slots[0], 1))
            record("k_global", kg)
            record("v_global", vg)
    out, local_probs, global_probs = dense_attention(q, k, v, qg, kg, vg, mask, slots, w, output_attentions)
    return merge_heads(out), local_probs, global_probs


def band_matrix_self_attention(*args, **kwargs):
    """The layer with `band_matrix_attention` as its kernel."""
    return band_self_attention(*args, kernel=band_matrix_attention, **kwargs)


SELF_ATTENTION = {"band": band_self_attention, "band_matrix": band_matrix_self_attention,
                  "dense": dense_self_attention}


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
        if past is None:  # a new cache: heads contiguous
            k = head_projection(kv, n_heads, **k_proj)  # [B, H, S, d]
            v = head_projection(kv, n_heads, **v_proj)
        else:  # appended to the cache, which the concatenation copies anyway
            k = xp.concat([past[0], split_heads(linear(kv, **k_proj), n_heads)], axis=2)
            v = xp.concat([past[1], split_heads(linear(kv, **v_proj), n_heads)], axis=2)
    scores = q @ xp.matrix_transpose(k)  # [B, H, T, S]
    if additive_mask is not None:
        scores = scores + additive_mask
    probs = softmax(scores)
    return linear(merge_heads(probs @ v), **out_proj), probs, (k, v)
