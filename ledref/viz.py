"""Figures of Longformer attention (matplotlib, drawn on an Agg canvas: no display needed).

- `plot_band`: query position x relative offset, the layout the model computes; stays readable at 16k
  tokens by pooling rows (max or mean) instead of building an L x L image.
- `plot_dense`: the [L, L] matrix from `layout.to_dense`, with token labels for short inputs.
- `plot_grid`: layers x heads of either view.
- `plot_sparsity`: which (query, key) pairs a window and a set of global tokens compute, against full
  attention, with the count.
- `plot_layout_explainer`: a 16-token example that maps every compact column to its place in the dense
  matrix, and says why each zero is there.
- `plot_where_it_looks`: a generate output's cross-attention while it wrote each token, and what a global
  token reads, over the source (`cross_attention_map` and `global_attention_map` give the numbers).
- `explorer`: the attention explorer, one self-contained HTML page of a long document (ledref.explorer).

Every function returns a matplotlib Figure; `fig.savefig("name.png")` (or .svg) writes it. Global tokens
are highlighted in cyan throughout.
"""

import math

import numpy as np

from .backend import to_numpy
from .errors import InputError
from .layout import _layout, global_positions, merged_mask, to_dense

GLOBAL = "#00bcd4"  # cyan: global tokens, rows and columns


def _figure(figsize):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("the visualizer needs matplotlib: pip install 'ledref[viz]'") from None
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _norm(log, image):
    from matplotlib.colors import LogNorm, Normalize
    positive = image[image > 0]
    if log:
        low = positive.min() if positive.size else 1e-6
        return LogNorm(vmin=max(low, 1e-6), vmax=max(positive.max() if positive.size else 1.0, low * 10))
    return Normalize(vmin=0, vmax=image.max() if image.size and image.max() > 0 else 1.0)


def _range(start, stop, length):
    start = 0 if start is None else start
    stop = length if stop is None else stop
    if not 0 <= start < stop <= length:
        raise InputError(f"token range {start}..{stop} is not inside 0..{length}; expected 0 <= from < to <= {length}")
    return start, stop


def pool_rows(a, max_rows, how="max"):
    """Rows grouped in blocks of ceil(n / max_rows) and reduced by max or mean.   [n, C] -> [n', C], block size"""
    n = a.shape[0]
    block = max(1, math.ceil(n / max_rows))
    if block == 1:
        return a, 1
    if how not in ("max", "mean"):
        raise InputError(f"pool={how!r}; expected 'max' or 'mean'")
    fill = np.full((block * math.ceil(n / block) - n, a.shape[1]), np.nan, dtype=a.dtype)
    blocks = np.concatenate([a, fill]).reshape(-1, block, a.shape[1])
    return (np.nanmax(blocks, axis=1) if how == "max" else np.nanmean(blocks, axis=1)), block


def band_image(attentions, global_attentions=None, global_attention_mask=None, attention_mask=None, head=0, row=0,
               start=None, stop=None, max_rows=2048, pool="max"):
    """What `plot_band` draws: (image [rows, x + W + 1], rows per image row, (start, stop), x, w, positions)."""
    a, _, mask, positions, x, w = _layout(attentions, global_attentions, global_attention_mask, attention_mask)
    b, h, length, _ = a.shape
    if not 0 <= row < b:
        raise InputError(f"row={row} is outside the batch of {b}")
    if not 0 <= head < h:
        raise InputError(f"head={head} is outside the {h} heads")
    start, stop = _range(start, stop, length)
    image, block = pool_rows(a[row, head, start:stop].astype(np.float64), max_rows, pool)
    return image, block, (start, stop), x, w, positions[row]


def plot_band(attentions, global_attentions=None, global_attention_mask=None, attention_mask=None, *, head=0,
              row=0, start=None, stop=None, log=False, max_rows=2048, pool="max", ax=None, title=None):
    """Band view of one layer and head: rows are query positions start..stop, columns the global slots then
    the relative offsets -w..+w. Rows of global tokens are empty here (their weights are in
    global_attentions) and are marked in cyan."""
    image, block, (start, stop), x, w, positions = band_image(attentions, global_attentions, global_attention_mask,
                                                              attention_mask, head, row, start, stop, max_rows, pool)
    fig = ax.figure if ax is not None else _figure((7, 6))
    ax = ax if ax is not None else fig.add_subplot()
    shown = np.ma.masked_less_equal(image, 0) if log else image
    im = ax.imshow(shown, aspect="auto", interpolation="nearest", cmap="magma", norm=_norm(log, image),
                   extent=(-0.5, image.shape[1] - 0.5, stop - 0.5, start - 0.5))
    if x:
        ax.axvline(x - 0.5, color=GLOBAL, lw=1.5)
    ticks = [x + c for c in sorted({w // 2, w, w + w // 2, 2 * w} | ({0} if not x else set()))]  # g sits at -w
    labels = [("self" if c == x + w else f"{c - x - w:+d}") for c in ticks]
    ax.set_xticks(([(x - 1) / 2] if x else []) + ticks, (["g"] if x else []) + labels, fontsize=8)
    for p in positions:
        if start <= p < stop:
            ax.axhline(p, color=GLOBAL, lw=0.8, alpha=0.8)
    where = ", ".join(map(str, positions[:6])) + (", ..." if len(positions) > 6 else "")
    ax.set_xlabel(f"global slots g (tokens {where}) | relative key offset" if x else "relative key offset",
                  fontsize=9)
    ax.set_ylabel("query position" + (f" (max of {block} rows per pixel row)" if block > 1 and pool == "max"
                                       else f" (mean of {block} rows)" if block > 1 else ""))
    ax.set_title(title or f"band view, head {head}" + (" (log scale)" if log else ""), fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="attention weight")
    return fig


def plot_dense(attentions, global_attentions=None, global_attention_mask=None, attention_mask=None, *, head=0,
               row=0, start=None, stop=None, log=False, tokens=None, ax=None, title=None):
    """The [L, L] matrix of one layer and head (rows: queries, columns: keys), tokens labelled when there are
    at most 48 of them, global tokens' rows and columns outlined in cyan."""
    dense = to_dense(attentions, global_attentions, global_attention_mask, attention_mask)
    b, h, length, _ = dense.shape
    if not 0 <= head < h:
        raise InputError(f"head={head} is outside the {h} heads")
    start, stop = _range(start, stop, length)
    image = dense[row, head, start:stop, start:stop].astype(np.float64)
    fig = ax.figure if ax is not None else _figure((7, 6))
    ax = ax if ax is not None else fig.add_subplot()
    shown = np.ma.masked_less_equal(image, 0) if log else image
    extent = (start - 0.5, stop - 0.5, stop - 0.5, start - 0.5)
    im = ax.imshow(shown, interpolation="nearest", cmap="magma", norm=_norm(log, image), extent=extent)
    mask = merged_mask(global_attention_mask, attention_mask, dense.shape[:1] + dense.shape[2:3])
    for p in global_positions(mask)[row]:
        if start <= p < stop:
            ax.axhline(p, color=GLOBAL, lw=0.6, alpha=0.7)
            ax.axvline(p, color=GLOBAL, lw=0.6, alpha=0.7)
    if tokens is not None and stop - start <= 48:
        labels = [str(t) for t in tokens[start:stop]]
        ax.set_xticks(range(start, stop), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(start, stop), labels, fontsize=7)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    ax.set_title(title or f"dense view, head {head}" + (" (log scale)" if log else ""), fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="attention weight")
    return fig


def plot_grid(attentions, global_attentions=None, global_attention_mask=None, attention_mask=None, *, layers=None,
              heads=None, view="band", row=0, start=None, stop=None, log=False, max_rows=512):
    """Layers x heads of band (or dense) views. attentions / global_attentions: the per-layer tuples of an
    encoder output."""
    if view not in ("band", "dense"):
        raise InputError(f"view={view!r}; expected 'band' or 'dense'")
    n_layers, n_heads = len(attentions), to_numpy(attentions[0]).shape[1]
    layers = range(n_layers) if layers is None else layers
    heads = range(n_heads) if heads is None else heads
    for l in layers:
        if not 0 <= l < n_layers:
            raise InputError(f"layer {l} is outside the {n_layers} layers")
    glob = global_attentions if global_attentions is not None else (None,) * n_layers
    fig = _figure((2.6 * len(heads) + 1, 2.4 * len(layers) + 0.5))
    axes = fig.subplots(len(layers), len(heads), squeeze=False)
    for i, l in enumerate(layers):
        for j, hd in enumerate(heads):
            ax = axes[i][j]
            args = (attentions[l], glob[l], global_attention_mask, attention_mask)
            if view == "band":
                plot_band(*args, head=hd, row=row, start=start, stop=stop, log=log, max_rows=max_rows, ax=ax,
                          title=f"layer {l}, head {hd}")
            else:
                plot_dense(*args, head=hd, row=row, start=start, stop=stop, log=log, ax=ax,
                           title=f"layer {l}, head {hd}")
            ax.set_xlabel("g | offset" if view == "band" else "key", fontsize=8)
            ax.xaxis.label.set_visible(i == len(layers) - 1)
            ax.yaxis.label.set_visible(j == 0)
    return fig


def computed_pairs(length, window, global_positions=()):
    """(pairs computed by Longformer attention, pairs of full attention) for one sequence, counted exactly
    without an L x L array: the band `|i - j| <= w` plus every row and column of a global token."""
    w = window // 2
    g = np.unique(np.asarray(global_positions, dtype=np.int64))
    i = np.arange(length)
    band_row = np.minimum(i + w, length - 1) - np.maximum(i - w, 0) + 1  # band pairs in row i
    close = np.abs(g[:, None] - g[None, :]) <= w
    n = int(band_row.sum() + 2 * len(g) * length - len(g) ** 2 - 2 * band_row[g].sum() + close.sum())
    return n, length * length


def plot_sparsity(length, window, global_positions=(), max_pixels=1024):
    """Which (query, key) pairs are computed: the band, global rows and columns, against full attention.
    Long inputs are shown as the computed fraction of each block of pairs."""
    g = np.unique(np.asarray(global_positions, dtype=np.int64))
    if g.size and (g.min() < 0 or g.max() >= length):
        raise InputError(f"global positions must be inside 0..{length - 1}")
    w = window // 2
    block = max(1, math.ceil(length / max_pixels))
    centres = np.arange(0, length, block)  # one pixel per block: the fraction of its pairs computed
    image = np.zeros((len(centres), len(centres)))
    offsets = np.arange(block)
    for r, q0 in enumerate(centres):
        qs = q0 + offsets[q0 + offsets < length]
        ks_all = np.arange(length)
        hit = (np.abs(qs[:, None] - ks_all[None, :]) <= w) | np.isin(qs, g)[:, None] | np.isin(ks_all, g)[None, :]
        counts = np.add.reduceat(hit.sum(axis=0), centres) if block > 1 else hit.sum(axis=0)
        image[r] = counts / (len(qs) * np.minimum(block, length - centres))
    n, full = computed_pairs(length, window, g)
    fig = _figure((6, 5.6))
    ax = fig.add_subplot()
    extent = (-0.5, length - 0.5, length - 0.5, -0.5)
    ax.imshow(image, cmap="Blues", vmin=0, vmax=1, interpolation="nearest", extent=extent)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    ax.set_title(f"window {window}, {len(g)} global: {n:,} of {full:,} pairs computed ({100 * n / full:.2f}%)",
                 fontsize=10)
    return fig


def plot_layout_explainer(length=16, window=4, global_positions=(3, 10), n_pad=2, seed=0):
    """The compact layout beside the dense matrix for a small example (real attention weights of a random
    layer): each relative column has a colour, and every dense cell takes the colour of the compact column
    it came from; zeros are marked G (the key is global: its weight moved to a global column), P (pad key)
    or E (past the sequence edge)."""
    from matplotlib.colors import to_rgba
    from matplotlib.patches import ConnectionPatch

    from .reference.attention import global_slots, self_attention
    global_positions = sorted(global_positions)  # slots are in position order
    rng = np.random.default_rng(seed)
    mask = np.ones((1, length), dtype=np.int64)
    mask[0, length - n_pad:] = 0
    mask[0, list(global_positions)] = 2
    d = 4
    weights = {name: {"weight": rng.normal(size=(d, d)), "bias": rng.normal(size=d)}
               for name in ("query", "key", "value", "query_global", "key_global", "value_global")}
    h = rng.normal(size=(1, length, d))
    _, local, glob = self_attention(h, mask, global_slots(mask), window // 2, 1, **weights)
    am, gm = (mask != 0).astype(np.int64), (mask == 2).astype(np.int64)
    dense = to_dense(local, glob, gm, am)[0, 0]
    local = local[0, 0]
    x, w = len(global_positions), window // 2
    palette = ["#e6550d", "#fd8d3c", "#31a354", "#74c476", "#756bb1", "#9e9ac8", "#3182bd", "#6baed6"]
    slot_colours = ["#00bcd4", "#00838f", "#80deea", "#006064"]
    column_colours = [slot_colours[c % 4] if c < x else palette[(c - x) % len(palette)]
                      for c in range(x + window + 1)]
    column_colours[x + w] = "#d62728"  # self

    def cells(values, colours):
        rgba = np.zeros(values.shape + (4,))
        top = values.max() or 1.0
        for (r, c), v in np.ndenumerate(values):
            if colours[r][c] is not None and v > 0:
                rgba[r, c] = to_rgba(colours[r][c], alpha=0.25 + 0.75 * v / top)
        return rgba

    fig = _figure((12, 6.4))
    left, right = fig.subplots(1, 2, width_ratios=[x + window + 1, length])
    compact_colours = [[column_colours[c] for c in range(x + window + 1)] for _ in range(length)]
    left.imshow(cells(local, compact_colours), interpolation="nearest")
    dense_colours = [[None] * length for _ in range(length)]
    for i in range(length):
        for j in range(length):
            if mask[0, i] == 2:
                dense_colours[i][j] = "#444444"  # a global token's row comes from global_attentions
            elif mask[0, j] == 2:
                dense_colours[i][j] = column_colours[list(global_positions).index(j)]
            elif abs(i - j) <= w:
                dense_colours[i][j] = column_colours[x + j - i + w]
    right.imshow(cells(dense, dense_colours), interpolation="nearest")
    for i in range(length):  # why each zero of the compact layout is there
        for c in range(window + 1):
            j = i + c - w
            if mask[0, i] == 0 or mask[0, i] == 2:
                continue
            reason = "E" if not 0 <= j < length else "G" if mask[0, j] == 2 else "P" if mask[0, j] == 0 else ""
            if reason:
                left.text(x + c, i, reason, ha="center", va="center", fontsize=7, color="#555555")
        note = "pad query: row 0" if mask[0, i] == 0 else "global query: row in global_attentions" \
            if mask[0, i] == 2 else ""
        if note:
            left.text(x + window + 0.8, i, note, va="center", fontsize=7, color="#555555")
    headers = [f"g{s}\n@{p}" for s, p in enumerate(global_positions)] + \
              [("self" if c == w else f"{c - w:+d}") for c in range(window + 1)]
    left.set_xticks(range(x + window + 1), headers, fontsize=8)
    for tick, colour in zip(left.get_xticklabels(), column_colours):
        tick.set_color(colour)
    left.set_yticks(range(length))
    left.set_ylabel("query token")
    left.axvline(x - 0.5, color="k", lw=1)
    left.set_title(f"attentions: {length} x (x + W + 1) = {length} x {x + window + 1}", fontsize=10)
    right.set_xticks(range(length))
    right.set_yticks(range(length))
    right.set_xlabel("key token")
    right.set_title("to_dense: the same weights at their absolute keys", fontsize=10)
    for p in global_positions:
        for axis in (right.get_xticklabels()[p], right.get_yticklabels()[p]):
            axis.set_color(GLOBAL)
            axis.set_fontweight("bold")
    for c, target in ((x + w, (0, 0)), (0, (global_positions[0], 0)), (x, (0, 0))):
        if c == x:  # offset -w: its first real key is on row w
            target = (0, w)
        fig.add_artist(ConnectionPatch(xyA=(c, -0.5), coordsA=left.transData, xyB=target, coordsB=right.transData,
                                       arrowstyle="->", color=column_colours[c], lw=1.2, alpha=0.8))
    fig.suptitle("Longformer's attention layout: compact columns (left) and where they land (right). "
                 "Zeros: G global key (moved to its g column), P pad key, E past the edge", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------- generate's attentions

MARK_COLOURS = ("#2e7d32", "#9e9e9e", "#ef6c00", "#6a1b9a")  # green, grey, orange, purple: marks in order


def _layer_name(layer):
    return "last layer" if layer == -1 else f"layer {layer}"


def _generate_attentions(generate_output, name):
    attentions = getattr(generate_output, name, None)
    if not attentions:
        raise InputError(f"the generate output holds no {name}; expected the output of generate(..., "
                         f"return_dict_in_generate=True, output_attentions=True)")
    return attentions


def cross_attention_heads(generate_output, row=0, layer=-1):
    """The decoder's cross-attention over the source tokens while it chose each token of sequence `row` of a
    generate output (`generate(..., return_dict_in_generate=True, output_attentions=True)`), every head of
    decoder layer `layer`, as NumPy [steps, heads, source length]: step s is the query that chose token s + 1
    of the sequence. With beams, each step is read from the beam the sequence came through (`beam_indices`)
    and the steps end where the sequence does."""
    steps = _generate_attentions(generate_output, "cross_attentions")
    n_rows = to_numpy(generate_output.sequences).shape[0]
    if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not 0 <= row < n_rows:
        raise InputError(f"row={row!r} is outside the {n_rows} generated sequences")
    n_layers = len(steps[0])
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not -n_layers <= layer < n_layers:
        raise InputError(f"layer={layer!r} is outside the decoder's {n_layers} layers")
    beams = getattr(generate_output, "beam_indices", None)
    beams = None if beams is None else to_numpy(beams)
    rows = []
    for s, per_layer in enumerate(steps):
        source = row if beams is None else (int(beams[row, s]) if s < beams.shape[1] else -1)
        if source < 0:
            break  # the sequence ended: its beam index is -1 from here on
        rows.append(to_numpy(per_layer[layer][source, :, -1, :]))  # [H, L]: the newest query (all without cache)
    return np.stack(rows)  # [steps, H, L]


def cross_attention_map(generate_output, row=0, layer=-1, head=None):
    """`cross_attention_heads` reduced to [steps, source length]: the mean of the heads, or one `head`."""
    heads = cross_attention_heads(generate_output, row, layer)
    n_heads = heads.shape[1]
    if head is None:
        return np.mean(heads, axis=1)
    if isinstance(head, bool) or not isinstance(head, (int, np.integer)) or not 0 <= head < n_heads:
        raise InputError(f"head={head!r} is outside the {n_heads} heads")
    return heads[:, head]


def global_attention_map(generate_output, row=0, layer=-1, slot=0, head=None):
    """What global token number `slot` (in position order) attends to over the source tokens in encoder layer
    `layer`, for the batch row that sequence `row` of a generate output comes from: NumPy [source length],
    the mean of the heads (or one `head`). Needs a generate output with output_attentions=True of an input
    with global tokens."""
    glob = getattr(generate_output, "encoder_global_attentions", None)
    local = _generate_attentions(generate_output, "encoder_attentions")
    if not glob:
        raise InputError("the generate output holds no encoder_global_attentions: the input had no global token")
    batch, n_heads, length = local[0].shape[:3]
    n_rows = to_numpy(generate_output.sequences).shape[0]
    if not 0 <= row < n_rows:
        raise InputError(f"row={row!r} is outside the {n_rows} generated sequences")
    if not -len(glob) <= layer < len(glob):
        raise InputError(f"layer={layer!r} is outside the encoder's {len(glob)} layers")
    x = glob[layer].shape[-1]
    if not 0 <= slot < x:
        raise InputError(f"slot={slot!r} is outside the {x} global slots")
    if head is not None and not 0 <= head < n_heads:
        raise InputError(f"head={head!r} is outside the {n_heads} heads")
    weights = to_numpy(glob[layer][row // (n_rows // batch), :, :length, slot])  # [H, L]
    return np.mean(weights, axis=0) if head is None else weights[head]


def plot_where_it_looks(generate_output, tokenizer=None, *, row=0, layer=-1, encoder_layer=-1, slot=0,
                        marks=None, max_columns=1000, title=None):
    """Where a model looked while it generated: the decoder's cross-attention (layer `layer`, mean of heads)
    over the source tokens for every token of sequence `row` it wrote (bottom), and, when the input had
    global tokens, what global token `slot` reads in encoder layer `encoder_layer` (top).

    generate_output: `generate(..., return_dict_in_generate=True, output_attentions=True)`. tokenizer (an
    LEDTokenizer) labels the written tokens and ends the rows at the first eos; without it they are ids.
    marks: {label: source token positions} drawn as coloured lines (green, grey, orange, purple in order), one
    pixel wide at least, so that one token stays visible among thousands. Long sources are max-pooled to
    `max_columns` columns, so that no peak is lost."""
    cross = cross_attention_map(generate_output, row, layer)  # [T, L]
    written = to_numpy(generate_output.sequences)[row, 1:1 + cross.shape[0]].tolist()
    if tokenizer is not None and tokenizer.eos_token_id in written:
        end = written.index(tokenizer.eos_token_id) + 1
        written, cross = written[:end], cross[:end]
    labels = [repr(tokenizer.decode([t]).strip() or tokenizer.decode([t])) if tokenizer is not None else str(t)
              for t in written]
    n = cross.shape[1]
    marks = {} if marks is None else dict(marks)
    for label, positions in marks.items():
        bad = [p for p in positions if not 0 <= p < n]
        if bad:
            raise InputError(f"marks[{label!r}] holds positions {bad[:3]} outside the {n} source tokens")
    with_global = bool(getattr(generate_output, "encoder_global_attentions", None))
    fig = _figure((11, 6.5 if with_global else 4.8))
    if with_global:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1, 2.2))
        top.plot(np.arange(n), global_attention_map(generate_output, row, encoder_layer, slot), lw=0.7,
                 color="black")
        top.set_ylabel("weight")
        which = "the first global token" if slot == 0 else f"global token {slot}"
        top.set_title(title or f"{which} attending to the whole input: encoder, {_layer_name(encoder_layer)} "
                               f"(mean of heads)", fontsize=10)
    else:
        top, bottom = None, fig.add_subplot()
    pooled, block = pool_rows(cross.T, max_columns, "max")  # [columns, T]
    image = bottom.imshow(pooled.T, aspect="auto", interpolation="nearest", cmap="magma",
                          extent=(-0.5, n - 0.5, len(written) - 0.5, -0.5))
    bottom.set_yticks(range(len(written)), labels, fontsize=7 if len(written) <= 40 else 5)
    bottom.set_xlabel("input token position" + (f" (max of {block} per column)" if block > 1 else ""))
    bottom.set_ylabel("token being written")
    bottom.set_title(f"the decoder's cross-attention while writing each token (decoder, {_layer_name(layer)}, "
                     f"mean of heads)", fontsize=10)
    fig.colorbar(image, ax=bottom, shrink=0.8, label="attention weight")
    for (label, positions), colour in zip(marks.items(), MARK_COLOURS * len(marks), strict=False):
        for i, p in enumerate(sorted(positions)):
            if top is not None:  # a line has a width in points, not in tokens: never thinner than a pixel
                top.axvline(p, color=colour, alpha=0.6, lw=1.2, label=label if i == 0 else None, zorder=0)
            bottom.plot([p], [-0.5], marker="v", color=colour, markersize=5, clip_on=False,
                        label=label if i == 0 and top is None else None)
    if marks:
        (top or bottom).legend(loc="upper right", fontsize=8)
    return fig


def explorer(model, text, out, **options):
    """The attention explorer: write one self-contained HTML page of `text` and its attention to `out`
    (ledref.explorer.explore, which documents the options) and return what it wrote (an ExplorerPage)."""
    from .explorer import explore
    return explore(model, text, out, **options)
