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

`to_dense` turns this into the [B, H, L, L] matrix the layer applied to its values, or into the window of
it between two token positions (built from the window's rows alone, never L x L); `to_band` goes back;
`attention_weight` answers one (query, key) question without building L x L; `to_bertviz` hands a window
to bertviz. `compact_columns` names what every entry of `attentions` holds (its key, and whether it is a
weight or one of the layout's zeros), `band_column` gives the column of a relative offset and `padded_length`
the token axis of `global_attentions`; `attention_pattern` is the [L, L] rule itself (who attends to whom,
with dilation and global tokens: the paper's Figure 2). NumPy in, NumPy out (arrays of other backends are
brought to NumPy, only the rows needed). Layers whose attentions were not asked for (None, see
`output_attentions`) are skipped where a function takes every layer.
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .backend import ArrayLike, to_numpy
from .checks import check_bool, check_int, is_int, short
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


def merged_mask(global_attention_mask: ArrayLike | None, attention_mask: ArrayLike | None,
                shape: tuple[int, int]) -> np.ndarray:
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


def global_positions(mask: ArrayLike) -> list[np.ndarray]:
    """Per batch row, the positions of its global tokens (ascending: slot order)."""
    return [np.flatnonzero(row == 2) for row in mask]


def shape_of(a, name):
    """The shape of an array of any backend (or of nested lists), else an InputError naming it."""
    if isinstance(a, (list, tuple)):
        return tuple(as_numpy(a, name).shape)
    if not hasattr(a, "shape"):
        raise InputError(f"{name} is a {type(a).__name__}; expected an array")
    return tuple(a.shape)


def token_range(start, stop, length):
    """(start, stop) with None meaning the whole sequence, checked: 0 <= start < stop <= length."""
    for name, value in (("start", start), ("stop", stop)):
        if value is not None and not is_int(value):
            raise InputError(f"{name}={short(value)}; expected a token position (an int) or None")
    start = 0 if start is None else start
    stop = length if stop is None else stop
    if not 0 <= start < stop <= length:
        raise InputError(f"token range {start}..{stop} is not inside 0..{length}; expected 0 <= from < to <= {length}")
    return start, stop


def _rows(a, start, stop, head=None):
    """a[:, :, start:stop] of a [B, H, L, ...] array of any backend (or nested lists), as NumPy: only
    those rows (of head `head` alone, when given: [B, 1, ...]) are brought over."""
    if isinstance(a, (list, tuple)):
        a = np.asarray(a)
    if len(a.shape) != 4:
        return np.asarray(to_numpy(a))  # refused by the caller, with its shape
    heads = slice(None) if head is None else slice(head, head + 1)
    return np.asarray(to_numpy(a[:, heads, start:stop, ...]))


def _layout(attentions, global_attentions, global_attention_mask, attention_mask, start=None, stop=None, head=None):
    """Checked arrays and the layout's numbers: (attentions, global_attentions, mask, positions, x, w).
    With start and stop, attentions holds the query rows start..stop and global_attentions the keys
    start..stop (the rest is not read); the whole sequence otherwise. With `head` (an index, checked), the
    arrays hold that head alone, [B, 1, ...] (the others are not read)."""
    if attentions is None:
        raise InputError("attentions is None: this layer's attentions were not asked for; pass "
                         "output_attentions=True or a sequence of layers that includes it")
    shape = shape_of(attentions, "attentions")
    if len(shape) != 4:
        raise InputError(f"attentions has shape {shape}; expected (batch, heads, tokens, x + window + 1) "
                         f"for one layer")
    b, h, length, columns = shape
    start, stop = token_range(start, stop, length)
    if head is not None:
        head = index("head", head, h, "heads")
    a = _rows(attentions, start, stop, head)
    g = None if global_attentions is None else _rows(global_attentions, start, stop, head)
    g_shape = None if global_attentions is None else shape_of(global_attentions, "global_attentions")
    x = 0 if g is None else g_shape[-1]
    if g is not None and (len(g_shape) != 4 or g_shape[:2] != (b, h) or g_shape[2] < length):
        raise InputError(f"global_attentions has shape {g_shape}; expected ({b}, {h}, padded tokens >= {length}, x)")
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


def to_dense(attentions: ArrayLike, global_attentions: ArrayLike | None = None,
             global_attention_mask: ArrayLike | None = None, attention_mask: ArrayLike | None = None,
             start: int | None = None, stop: int | None = None) -> np.ndarray:
    """The [B, H, L, L] attention matrix of one layer from its compact outputs: row i holds the weights with
    which token i mixed the values of every token j (every real token's row sums to 1; pad rows are 0).

    With `start` and `stop`, the window [B, H, n, n] of queries and keys start..stop (n = stop - start),
    built from those n rows of the layout alone: no L x L array is made. A window's rows sum to the weight
    their token gives to keys inside the window."""
    a, g, mask, positions, x, w = _layout(attentions, global_attentions, global_attention_mask, attention_mask,
                                          start, stop)
    return _dense(a, g, positions, x, w, 0 if start is None else start)


def _dense(a, g, positions, x, w, start):
    """to_dense of checked rows start..start+n of the layout (`_layout`'s results).   [B, H, n, ...] -> [B, H, n, n]"""
    b, h, n, _ = a.shape
    dense = np.zeros((b, h, n, n), dtype=a.dtype)
    rows = np.arange(n)
    for offset in range(max(-w, 1 - n), min(w, n - 1) + 1):  # relative column x + w + offset: key i + offset
        inside = rows[(rows + offset >= 0) & (rows + offset < n)]
        dense[:, :, inside, inside + offset] = a[:, :, inside, x + w + offset]
    for row, pos in enumerate(positions):
        for slot, p in enumerate(pos):
            if start <= p < start + n:
                dense[row, :, :, p - start] += a[row, :, :, slot]  # the band is 0 at a global key: this sets it
                dense[row, :, p - start, :] = g[row, :, :n, slot]  # the global token's own row
    return dense


def to_band(dense: ArrayLike, global_attention_mask: ArrayLike | None = None, attention_mask: ArrayLike | None = None,
            window: int | None = None, padded_length: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The inverse of `to_dense`: (attentions [B, H, L, x + window + 1], global_attentions [B, H, Lp, x] or
    None), exactly as the model returns them. `padded_length` is the Lp of global_attentions (default L)."""
    d = as_numpy(dense, "dense")
    if d.ndim != 4 or d.shape[-1] != d.shape[-2]:
        raise InputError(f"dense has shape {d.shape}; expected (batch, heads, tokens, tokens)")
    window = _window(window)
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
    g = np.zeros((b, h, padded, x), dtype=d.dtype)
    for row, pos in enumerate(positions):
        g[row, :, :, len(pos):] = 1 / padded  # unused slots: uniform, as transformers
        for slot, p in enumerate(pos):
            a[row, :, :, slot] = d[row, :, :, p]
            g[row, :, :length, slot] = d[row, :, p, :]
    a[np.broadcast_to((mask != 1)[:, None, :], a.shape[:3])] = 0  # rows of global and pad queries
    return a, (g if x else None)


def attention_weight(attentions: ArrayLike, global_attentions: ArrayLike | None, query: int, key: int,
                     global_attention_mask: ArrayLike | None = None,
                     attention_mask: ArrayLike | None = None) -> np.ndarray:
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


def _window(window):
    if not is_int(window) or window < 2 or window % 2 or window > MAX_WINDOW:
        raise InputError(f"window={short(window)}; expected the layer's even attention window from 2 to "
                         f"{MAX_WINDOW} (an int)")
    return int(window)


def padded_length(length, window):
    """The length the encoder pads its input to: the next multiple of `window` (the largest attention window
    of the layers). It is the token axis of `global_attentions`, which transformers does not unpad."""
    length = check_int("length", length, InputError, minimum=1)
    window = _window(window)
    return -(-length // window) * window


def band_column(offset, window, x=0):
    """The column of `attentions` that holds the key at `offset` (-window/2 .. +window/2) from its query:
    the x global columns come first, then the band, the token itself at x + window/2."""
    window = _window(window)
    x = check_int("x", x, InputError, minimum=0)
    w = window // 2
    if not is_int(offset) or abs(offset) > w:
        raise InputError(f"offset={short(offset)}; expected an int from -{w} to +{w} (window {window})")
    return x + w + int(offset)


KINDS = ("global", "filler", "local", "global key", "pad key", "edge", "global query", "pad query")
"""What a column of `attentions` holds for its query (see `compact_columns`)."""


class CompactColumns(NamedTuple):
    """What each entry of `attentions` [B, H, L, x + W + 1] refers to, per batch row, query and column."""

    keys: np.ndarray
    """[B, L, x + W + 1] int: the key token of each column; -1 for filler slots. Band columns count
    i + c - w, also where that lies outside 0..L-1."""
    kinds: np.ndarray
    """[B, L, x + W + 1] str, one of KINDS: 'global' (the weight on a global token), 'filler' (a slot the
    row does not use: 0), 'local' (the weight on a key of the window), 'global key' (0: that key's weight
    is in its global column), 'pad key' (0), 'edge' (0: the key lies outside the sequence); every column of
    a 'global query' row (0: its weights are in global_attentions) and of a 'pad query' row (0)."""


def compact_columns(global_attention_mask, attention_mask=None, *, window):
    """Names every entry of the compact layout: which key each column of `attentions` holds for each query,
    and what kind of entry it is, so that the layout's zeros are read by name rather than by index
    arithmetic. Masks [B, L] as given to the model; window: the layer's attention window. Returns a
    CompactColumns (keys, kinds), both [B, L, x + window + 1]."""
    window = _window(window)
    gm = as_numpy(global_attention_mask, "global_attention_mask")
    if gm.ndim != 2:
        raise InputError(f"global_attention_mask has shape {gm.shape}; expected (batch, tokens)")
    mask = merged_mask(gm, attention_mask, gm.shape)
    b, length = mask.shape
    positions = global_positions(mask)
    x, w = max((len(p) for p in positions), default=0), window // 2
    keys = np.full((b, length, x + window + 1), -1, dtype=np.int64)
    kinds = np.full(keys.shape, "local", dtype="<U12")
    band = np.arange(length)[:, None] + np.arange(-w, w + 1)[None, :]  # [L, W + 1]: key i + c - w
    inside = (band >= 0) & (band < length)
    for row, pos in enumerate(positions):
        keys[row, :, :len(pos)] = pos
        kinds[row, :, :x] = np.where(np.arange(x) < len(pos), "global", "filler")
        keys[row, :, x:] = band
        kind = mask[row, np.clip(band, 0, length - 1)]  # [L, W + 1]: 0 pad, 1 local, 2 global
        kinds[row, :, x:] = np.where(~inside, "edge", np.where(kind == 2, "global key",
                                                                np.where(kind == 0, "pad key", "local")))
        kinds[row, mask[row] == 2, :] = "global query"
        kinds[row, mask[row] == 0, :] = "pad query"
    return CompactColumns(keys, kinds)


def attention_pattern(length, window, dilation=1, global_positions=(), autoregressive=False):
    """Which token attends to which, by the reference's own rule: [L, L] bool, entry [i, j] True when token i
    attends to token j (the patterns of the Longformer paper's Figure 2). A local token reads the keys
    i + dilation * (c - window/2), c = 0..window, inside the sequence and not global (only those up to
    itself when `autoregressive`), marked by `reference.band.band_of_keys`, and every global token; a global
    token reads every token."""
    from .reference.band import band_of_keys
    length = check_int("length", length, InputError, minimum=1, maximum=2 ** 15)  # it returns L x L
    window = _window(window)
    dilation = check_int("dilation", dilation, InputError, minimum=1)
    check_bool("autoregressive", autoregressive, InputError)
    if isinstance(global_positions, (str, bytes)) or not hasattr(global_positions, "__iter__"):
        raise InputError(f"global_positions={short(global_positions)}; expected a list of token positions")
    g = [index("global position", p, length, "tokens") for p in np.asarray(list(global_positions)).ravel()]
    w = window // 2
    local = np.ones(length, dtype=bool)
    local[g] = False  # global keys leave the band: they are read through their own columns
    band = np.asarray(band_of_keys(local, w, dilation))  # [L, W + 1]: column c is key i + dilation (c - w)
    if autoregressive:
        band &= np.arange(window + 1) <= w
    rows, columns = np.nonzero(band)
    allowed = np.zeros((length, length), dtype=bool)
    allowed[rows, rows + dilation * (columns - w)] = True
    allowed[:, g] = True
    allowed[g, :] = True
    return allowed


class BertvizInput(NamedTuple):
    """What bertviz's head_view and model_view take: `head_view(*to_bertviz(...))`."""

    attention: tuple
    """Per layer, [1, H, n, n] (torch tensors when torch is installed, else NumPy arrays)."""
    tokens: list
    """The n tokens, as text."""


def to_bertviz(attentions: Sequence[ArrayLike | None], global_attentions: Sequence[ArrayLike | None] | None = None,
               global_attention_mask: ArrayLike | None = None, attention_mask: ArrayLike | None = None, row: int = 0,
               start: int | None = None, stop: int | None = None, tokens: Sequence[str] | None = None,
               tokenizer: Any = None, input_ids: ArrayLike | None = None, max_tokens: int = 512) -> "BertvizInput":
    """The window start..stop of one batch row as bertviz takes it: `head_view(*to_bertviz(...))`.

    attentions / global_attentions: the per-layer tuples of a model output (layers given as None, not
    asked for, are left out: bertviz then numbers the others from 0). Only the window's real tokens
    (attention_mask 1) are shown, at most `max_tokens` of them, checked before anything is built; each layer
    is built from the window's rows alone (`to_dense(..., start, stop)`), so a window of a 16k-token
    document costs what the window costs. Tokens, as text: `tokens` (one string per position of the whole
    sequence), or `tokenizer` and `input_ids` (each token decoded on its own: " word", not "Ġword"), or
    else the positions. Returns a BertvizInput (attention, tokens)."""
    if not isinstance(attentions, (tuple, list)) or not attentions:
        raise InputError(f"attentions is {short(attentions)}; expected the per-layer tuple of a model output")
    layers = [i for i, a in enumerate(attentions) if a is not None]
    if not layers:
        raise InputError("every layer's attentions is None; pass the attentions of at least one layer")
    if global_attentions is None:
        global_attentions = (None,) * len(attentions)
    if not isinstance(global_attentions, (tuple, list)) or len(global_attentions) != len(attentions):
        raise InputError(f"global_attentions is {short(global_attentions)}; expected None or one entry per layer "
                         f"({len(attentions)})")
    check_int("max_tokens", max_tokens, InputError, minimum=1)
    shape = shape_of(attentions[layers[0]], f"attentions[{layers[0]}]")
    if len(shape) != 4:
        raise InputError(f"attentions[{layers[0]}] has shape {shape}; expected (batch, heads, tokens, x + window + 1)")
    batch, length = shape[0], shape[2]
    row = index("row", row, batch, "rows of the batch")
    start, stop = token_range(start, stop, length)
    am = merged_mask(None, attention_mask, (batch, length))[row]  # 1 real, 0 pad
    real = np.flatnonzero(am[start:stop] == 1) + start
    if len(real) > max_tokens:
        raise InputError(f"{len(real)} tokens in {start}..{stop} is more than bertviz draws usefully "
                         f"(max_tokens={max_tokens}); pass start and stop to choose a window, or use the band view")
    names = _token_texts(tokens, tokenizer, input_ids, row, length, real)
    kept = real - start
    out = []
    for i in layers:  # the window of every batch row ([B, H, n, n], small), then the row's real tokens
        dense = to_dense(attentions[i], global_attentions[i], global_attention_mask, attention_mask, start, stop)
        out.append(_as_torch(np.ascontiguousarray(dense[row:row + 1, :, kept][:, :, :, kept])))
    return BertvizInput(tuple(out), names)


def _token_texts(tokens, tokenizer, input_ids, row, length, positions):
    """The tokens at `positions` as text (see to_bertviz)."""
    if tokens is not None:
        if len(tokens) != length:
            raise InputError(f"tokens has {len(tokens)} entries; expected one per position ({length})")
        return [str(tokens[p]) for p in positions]
    if tokenizer is not None:
        if input_ids is None:
            raise InputError("tokenizer is given without input_ids; pass the input_ids the model read")
        ids = as_numpy(input_ids)
        ids = ids[row] if ids.ndim == 2 else ids
        if len(ids) != length:
            raise InputError(f"input_ids has {len(ids)} tokens in row {row}; expected {length}")
        return [tokenizer.decode([int(ids[p])]) for p in positions]
    return [str(p) for p in positions]


def _as_torch(a):
    """A NumPy array as a torch tensor (sharing its memory) when torch is installed."""
    try:
        import torch
    except ImportError:
        return a
    return torch.from_numpy(a)
