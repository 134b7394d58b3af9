"""Longformer's attention outputs, decoded.

transformers (and ledref) return, per encoder layer:

- `attentions` [B, H, L, x + W + 1]: for each query token, x columns for the global keys (slot g is the
  g-th global token of the row, in position order), then W + 1 columns for the keys at relative offsets
  -W/2 .. +W/2 (the token itself at column x + W/2). Zero where the window meets a global key (its weight
  is in the global column), a pad key or the sequence edge; whole rows zero for pad and global queries.
- `global_attentions` [B, H, Lp, x]: entry [b, h, j, g] is the attention *from* global slot g *to* token
  j, over the padded length Lp; unused slots (rows with fewer globals) are uniform 1/Lp. None when no
  token of the batch is global.

The global tokens are those with global_attention_mask = 1 and attention_mask = 1.

`to_dense` turns this into the [B, H, L, L] matrix the layer applied to its values; `to_band` goes back;
`attention_weight` answers one (query, key) question without building L x L. NumPy in, NumPy out
(arrays of other backends are brought to NumPy).
"""

import numpy as np

from .backend import to_numpy
from .checks import check_int, is_int, short
from .errors import InputError


MAX_WINDOW = 2 ** 24  # the largest window a config may give (config.LIMITS)


def as_numpy(a, name="array"):
    """An array of any backend, or nested lists, as a NumPy array of numbers (else an InputError naming it)."""
    try:
        a = np.asarray(a) if isinstance(a, (list, tuple)) else np.asarray(to_numpy(a))
    except InputError:
        raise InputError(f"{name} is a {type(a).__name__}; expected an array") from None
    except (ValueError, TypeError) as e:
        raise InputError(f"{name} is not a rectangular array of numbers ({' '.join(str(e).split())})") from None
    if a.dtype.kind not in "biuf":
        raise InputError(f"{name} has dtype {a.dtype}; expected an array of numbers")
    return a


def index(name, value, size, noun):
    """`value` as an index into `size` things, else an InputError: '{name}=5 is outside the 2 heads'."""
    if not is_int(value):
        raise InputError(f"{name}={short(value)} is not an int; expected an index from 0 to {size - 1} of the "
                         f"{size} {noun}")
    if not 0 <= value < size:
        raise InputError(f"{name}={value} is outside the {size} {noun}")
    return int(value)


def merged_mask(global_attention_mask, attention_mask, shape):
    """transformers' merged mask [B, L]: 0 pad, 1 local, 2 global."""
    am = np.ones(shape, dtype=np.int64) if attention_mask is None else as_numpy(attention_mask, "attention_mask")
    gm = (np.zeros(shape, dtype=np.int64) if global_attention_mask is None
          else as_numpy(global_attention_mask, "global_attention_mask"))
    for name, m in (("attention_mask", am), ("global_attention_mask", gm)):
        if m.shape != tuple(shape):
            raise InputError(f"{name} has shape {m.shape}; expected {tuple(shape)} (batch, tokens)")
        if not np.isin(m, (0, 1)).all():
            raise InputError(f"{name} holds values other than 0 and 1; expected a 0/1 mask")
    return am.astype(np.int64) * (gm.astype(np.int64) + 1)


def global_positions(mask):
    """Per batch row, the positions of its global tokens (ascending: slot order)."""
    return [np.flatnonzero(row == 2) for row in mask]


def _layout(attentions, global_attentions, global_attention_mask, attention_mask):
    """Checked arrays and the layout's numbers: (attentions, global_attentions, mask, positions, x, w)."""
    a = as_numpy(attentions, "attentions")
    if a.ndim != 4:
        raise InputError(f"attentions has shape {a.shape}; expected (batch, heads, tokens, x + window + 1) "
                         f"for one layer")
    b, h, length, columns = a.shape
    g = None if global_attentions is None else as_numpy(global_attentions, "global_attentions")
    x = 0 if g is None else g.shape[-1]
    if g is not None and (g.ndim != 4 or g.shape[:2] != (b, h) or g.shape[2] < length):
        raise InputError(f"global_attentions has shape {g.shape}; expected ({b}, {h}, padded tokens >= {length}, x)")
    window = columns - x - 1
    if window < 2 or window % 2:
        raise InputError(f"attentions has {columns} columns and global_attentions {x} slots, leaving a window of "
                         f"{window}; expected an even window >= 2 (last axis = x + window + 1)")
    mask = merged_mask(global_attention_mask, attention_mask, (b, length))
    positions = global_positions(mask)
    counts = [len(p) for p in positions]
    if max(counts, default=0) != x:
        raise InputError(f"the masks give {max(counts, default=0)} global tokens in the busiest row but the "
                         f"outputs have {x} global slots; pass the global_attention_mask and attention_mask "
                         f"the model was called with")
    return a, g, mask, positions, x, window // 2


def to_dense(attentions, global_attentions=None, global_attention_mask=None, attention_mask=None):
    """The [B, H, L, L] attention matrix of one layer from its compact outputs: row i holds the weights with
    which token i mixed the values of every token j (every real token's row sums to 1; pad rows are 0)."""
    a, g, mask, positions, x, w = _layout(attentions, global_attentions, global_attention_mask, attention_mask)
    b, h, length, _ = a.shape
    dense = np.zeros((b, h, length, length), dtype=a.dtype)
    rows = np.arange(length)
    for c in range(2 * w + 1):  # relative column c holds key i + c - w
        keys = rows + c - w
        inside = (keys >= 0) & (keys < length)
        dense[:, :, rows[inside], keys[inside]] = a[:, :, rows[inside], x + c]
    for row, pos in enumerate(positions):
        for slot, p in enumerate(pos):
            dense[row, :, :, p] += a[row, :, :, slot]  # the band is 0 at a global key, so this sets it
            dense[row, :, p, :] = g[row, :, :length, slot]  # the global token's own row
    return dense


def to_band(dense, global_attention_mask=None, attention_mask=None, window=None, padded_length=None):
    """The inverse of `to_dense`: (attentions [B, H, L, x + window + 1], global_attentions [B, H, Lp, x] or
    None), exactly as the model returns them. `padded_length` is the Lp of global_attentions (default L)."""
    d = as_numpy(dense, "dense")
    if d.ndim != 4 or d.shape[-1] != d.shape[-2]:
        raise InputError(f"dense has shape {d.shape}; expected (batch, heads, tokens, tokens)")
    if not is_int(window) or window < 2 or window % 2 or window > MAX_WINDOW:
        raise InputError(f"window={short(window)}; expected the layer's even attention window from 2 to "
                         f"{MAX_WINDOW} (an int)")
    b, h, length, _ = d.shape
    padded = length if padded_length is None else check_int("padded_length", padded_length, InputError, minimum=0)
    if padded < length:
        raise InputError(f"padded_length={padded} is shorter than the {length} tokens")
    mask = merged_mask(global_attention_mask, attention_mask, (b, length))
    positions = global_positions(mask)
    x, w = max((len(p) for p in positions), default=0), window // 2
    a = np.zeros((b, h, length, x + window + 1), dtype=d.dtype)
    rows = np.arange(length)
    for c in range(window + 1):
        keys = rows + c - w
        inside = (keys >= 0) & (keys < length)
        local_key = (mask[:, keys[inside]] == 1)[:, None, :]  # global and pad keys leave the band
        a[:, :, rows[inside], x + c] = np.where(local_key, d[:, :, rows[inside], keys[inside]], 0)
    g = np.zeros((b, h, padded, x), dtype=d.dtype) if x else None
    for row, pos in enumerate(positions):
        if x:
            g[row, :, :, len(pos):] = 1 / padded  # unused slots: uniform, as transformers
        for slot, p in enumerate(pos):
            a[row, :, :, slot] = d[row, :, :, p]
            g[row, :, :length, slot] = d[row, :, p, :]
    a[np.broadcast_to((mask != 1)[:, None, :], a.shape[:3])] = 0  # rows of global and pad queries
    return a, g


def attention_weight(attentions, global_attentions, query, key, global_attention_mask=None, attention_mask=None):
    """How much token `query` attends to token `key`, per batch row and head [B, H], read from the compact
    layout directly (no L x L matrix)."""
    a, g, mask, positions, x, w = _layout(attentions, global_attentions, global_attention_mask, attention_mask)
    b, h, length, _ = a.shape
    query, key = index("query", query, length, "tokens"), index("key", key, length, "tokens")
    out = np.zeros((b, h), dtype=a.dtype)
    for row, pos in enumerate(positions):
        slot = {int(p): s for s, p in enumerate(pos)}
        if mask[row, query] == 2:
            out[row] = g[row, :, key, slot[query]]
        elif key in slot:
            out[row] = a[row, :, query, slot[key]]
        elif abs(query - key) <= w:
            out[row] = a[row, :, query, x + key - query + w]
    return out


def to_bertviz(attentions, global_attentions, global_attention_mask=None, attention_mask=None, row=0,
               max_tokens=512):
    """Per-layer dense matrices of one batch row over its real tokens, in the shape bertviz's head_view and
    model_view take: a tuple of [1, H, n, n] arrays (wrap each with torch.from_numpy for bertviz).
    attentions / global_attentions: the per-layer tuples of a model output."""
    if not isinstance(attentions, (tuple, list)) or not attentions:
        raise InputError(f"attentions is {short(attentions)}; expected the per-layer tuple of a model output")
    if global_attentions is None:
        global_attentions = (None,) * len(attentions)
    if not isinstance(global_attentions, (tuple, list)) or len(global_attentions) != len(attentions):
        raise InputError(f"global_attentions is {short(global_attentions)}; expected None or one entry per layer "
                         f"({len(attentions)})")
    check_int("max_tokens", max_tokens, InputError, minimum=1)
    layers = []
    for local, glob in zip(attentions, global_attentions):
        dense = to_dense(local, glob, global_attention_mask, attention_mask)
        row = index("row", row, dense.shape[0], "rows of the batch")
        dense = dense[row:row + 1]
        real = _real_tokens(attention_mask, row, dense.shape[-1])
        if len(real) > max_tokens:
            raise InputError(f"{len(real)} tokens is more than bertviz draws usefully (max_tokens={max_tokens}); "
                             f"use the band view for long inputs")
        layers.append(dense[:, :, real][:, :, :, real])
    return tuple(layers)


def _real_tokens(attention_mask, row, length):
    if attention_mask is None:
        return np.arange(length)
    return np.flatnonzero(as_numpy(attention_mask)[row] == 1)
