"""Figures of Longformer attention (matplotlib, drawn on an Agg canvas: no display needed).

- `plot_band`: query position x relative offset, the layout the model computes, with the global slots as
  a block of their own on the left; stays readable at 16k tokens by pooling rows (max or mean) instead of
  building an L x L image.
- `plot_dense`: the [n, n] window start..stop of the dense matrix (`layout.to_dense(..., start, stop)`,
  built from the window's rows alone), with token labels for short windows.
- `plot_grid`: layers x heads of either view, one colour scale and one colorbar for the whole grid.
- `plot_sparsity`: which (query, key) pairs a window and a set of global tokens compute, against full
  attention, with the count.
- `plot_layout_explainer`: a 16-token example that maps every compact column to its place in the dense
  matrix, and says why each zero is there.
- `mark_positions`: marks token positions on an axis so that a single token stays visible at any zoom.
- `plot_where_it_looks`: a generate output's cross-attention while it wrote each token, and what a global
  token reads, over the source (`cross_attention_map` and `global_attention_map` give the numbers).
- `explorer`: the attention explorer, one self-contained HTML page of a long document (ledref.explorer).

Every function returns a matplotlib Figure; `fig.savefig("name.png")` (or .svg) writes it. Global tokens
are highlighted in cyan throughout. Features one token wide (global rows and columns, marked tokens) are
drawn as lines, which keep a visible width, rather than as image pixels, which resampling can drop. Axes
that count tokens have integer ticks. A log colour scale takes its range from the data (the smallest
positive weight, at most six decades below the largest, to the largest).
"""

import math

import numpy as np

from .backend import to_numpy
from .checks import check_bool, check_int, is_int, short
from .errors import InputError
from .layout import (
    MAX_WINDOW,
    _dense,
    _layout,
    as_numpy,
    index,
    shape_of,
    to_dense,
    token_range,
)

GLOBAL = "#00bcd4"  # cyan: global tokens, rows and columns
CMAP = "magma"


def _figure(figsize):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("the visualizer needs matplotlib: pip install 'ledref[viz]'") from None
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _norm(log, *images):
    """The colour scale of some images: linear from 0 to the largest value; logarithmic over the data's
    own spread (the smallest positive value, at most 6 decades below the largest, to the largest), so that
    near-uniform weights span the colours instead of sitting at one end."""
    from matplotlib.colors import LogNorm, Normalize
    values = np.concatenate([np.ravel(np.asarray(i, dtype=np.float64)) for i in images]) if images else np.zeros(0)
    values = values[np.isfinite(values)]
    top = float(values.max()) if values.size else 0.0
    if not log:
        return Normalize(vmin=0, vmax=top if top > 0 else 1.0)
    positive = values[values > 0]
    if not positive.size:
        return LogNorm(vmin=1e-6, vmax=1.0)
    high = float(positive.max())
    low = max(float(positive.min()), high * 1e-6)
    if high <= low * (1 + 1e-9):  # one value throughout: it sits in the middle of the scale
        low, high = low / 2, high * 2
    return LogNorm(vmin=low, vmax=high)


def _integer_ticks(*axes, nbins="auto"):
    from matplotlib.ticker import MaxNLocator
    for axis in axes:
        axis.set_major_locator(MaxNLocator(nbins=nbins, integer=True, steps=[1, 2, 5, 10], min_n_ticks=2))


def offset_ticks(w):
    """Symmetric integer ticks of the band's relative offsets: -w, -w/2, 0, +w/2, +w (every offset when w
    is at most 2, and no halves when w is odd)."""
    if w <= 2:
        return list(range(-w, w + 1))
    half = [w // 2] if w % 2 == 0 else []
    return sorted({-w, 0, w, *half, *(-h for h in half)})


def mark_positions(ax, positions, color, label=None, alpha=0.5, axis="x"):
    """Shade token positions on `ax` (spans one token wide along x, or along y with axis="y"), each with a
    line down its middle, so that a single token stays visible however many tokens share a pixel."""
    span, line = (ax.axvspan, ax.axvline) if axis == "x" else (ax.axhspan, ax.axhline)
    for k, p in enumerate(positions):
        span(p - 0.5, p + 0.5, color=color, alpha=alpha, lw=0, label=label if k == 0 else None)
        line(p, color=color, lw=1.2, alpha=min(1.0, alpha + 0.3))


def pool_rows(a, max_rows, how="max"):
    """Rows grouped in blocks of ceil(n / max_rows) and reduced by max or mean.   [n, C] -> [n', C], block size"""
    a = as_numpy(a, "a")
    if a.ndim != 2:
        raise InputError(f"a has shape {a.shape}; expected (rows, columns)")
    check_int("max_rows", max_rows, InputError, minimum=1)
    if not isinstance(how, str) or how not in ("max", "mean"):
        raise InputError(f"pool={short(how)}; expected 'max' or 'mean'")
    n = a.shape[0]
    block = max(1, math.ceil(n / max_rows))
    if block == 1:
        return a, 1
    fill = np.full((block * math.ceil(n / block) - n, a.shape[1]), np.nan, dtype=a.dtype)
    blocks = np.concatenate([a, fill]).reshape(-1, block, a.shape[1])
    return (np.nanmax(blocks, axis=1) if how == "max" else np.nanmean(blocks, axis=1)), block


def _shape(a, name="attentions"):
    return shape_of(a, name)


def band_image(attentions, global_attentions=None, global_attention_mask=None, attention_mask=None, head=0, row=0,
               start=None, stop=None, max_rows=2048, pool="max"):
    """What `plot_band` draws: (image [rows, x + W + 1], rows per image row, (start, stop), x, w, positions).
    Only the rows start..stop of the layout are read."""
    if attentions is None:
        raise InputError("attentions is None: this layer's attentions were not asked for")
    b, h, length, _ = (_shape(attentions) + (0, 0, 0, 0))[:4]
    start, stop = token_range(start, stop, length)
    a, _, mask, positions, x, w = _layout(attentions, global_attentions, global_attention_mask, attention_mask,
                                          start, stop, head)  # that head's rows alone are read
    row = index("row", row, b, "rows of the batch")
    image, block = pool_rows(a[row, 0].astype(np.float64), max_rows, pool)
    return image, block, (start, stop), x, w, positions[row]


def _draw_band(ax, image, block, start, stop, x, w, positions, norm, log, pool, title, labels=True, few_ticks=False):
    """The band view on `ax`: the band [rows, 2w+1] at offsets -w..+w, and the x global slots as a block left
    of it, wide enough to see (a tenth of the band's width) whatever the window. Returns the band's image.
    few_ticks: only -w, 0 and +w (narrow panels)."""
    shown = (lambda a: np.ma.masked_less_equal(a, 0)) if log else (lambda a: a)
    rows = (stop - 0.5, start - 0.5)
    im = ax.imshow(shown(image[:, x:]), aspect="auto", interpolation="nearest", cmap=CMAP, norm=norm,
                   extent=(-w - 0.5, w + 0.5, *rows))
    left = -w - 0.5
    ticks = [-w, 0, w] if few_ticks else offset_ticks(w)
    labels_x = [("0" if t == 0 else f"{t:+d}") for t in ticks]
    if x:
        gap = max(1.0, 0.03 * (2 * w + 1))
        width = max(float(x), 0.1 * (2 * w + 1))
        right = left - gap
        left = right - width
        ax.imshow(shown(image[:, :x]), aspect="auto", interpolation="nearest", cmap=CMAP, norm=norm,
                  extent=(left, right, *rows))
        ax.axvline(right + gap / 2, color=GLOBAL, lw=1.5)
        if not few_ticks:  # the slots are named in the x label
            ticks, labels_x = [left + width / 2] + ticks, ["g"] + labels_x
    ax.set_xlim(left, w + 0.5)
    ax.set_ylim(*rows)
    ax.set_xticks(ticks, labels_x, fontsize=8)
    _integer_ticks(ax.yaxis, nbins=4 if few_ticks else "auto")
    for p in positions:
        if start <= p < stop:
            ax.axhline(p, color=GLOBAL, lw=0.8, alpha=0.8)
    if labels:
        where = ", ".join(f"g{s} = {p}" for s, p in enumerate(positions[:4])) + (", ..." if len(positions) > 4
                                                                                  else "")
        ax.set_xlabel(f"global slots g (tokens {where}) | relative key offset" if x else "relative key offset",
                      fontsize=9)
        ax.set_ylabel("query position" + (f" (max of {block} rows per pixel row)" if block > 1 and pool == "max"
                                           else f" (mean of {block} rows)" if block > 1 else ""))
    if title:
        ax.set_title(title, fontsize=10)
    return im


def plot_band(attentions, global_attentions=None, global_attention_mask=None, attention_mask=None, *, head=0,
              row=0, start=None, stop=None, log=False, max_rows=2048, pool="max", ax=None, title=None, norm=None,
              colorbar=True):
    """Band view of one layer and head: rows are query positions start..stop, columns the relative offsets
    -w..+w (0 is the token itself), with the global slots as a block on the left. Rows of global tokens are
    empty here (their weights are in global_attentions) and are marked in cyan. `head` indexes the head
    axis of the arrays given. `norm` (a matplotlib Normalize) sets the colour scale; by default it is taken
    from the data."""
    _check_drawing(log, ax, title)
    image, block, (start, stop), x, w, positions = band_image(attentions, global_attentions, global_attention_mask,
                                                              attention_mask, head, row, start, stop, max_rows, pool)
    fig = ax.figure if ax is not None else _figure((7, 6))
    ax = ax if ax is not None else fig.add_subplot()
    im = _draw_band(ax, image, block, start, stop, x, w, positions, norm or _norm(log, image), log, pool,
                    title or f"band view, head {head}" + (" (log scale)" if log else ""))
    if colorbar:
        fig.colorbar(im, ax=ax, shrink=0.8, label="attention weight")
    return fig


def dense_image(attentions, global_attentions=None, global_attention_mask=None, attention_mask=None, head=0, row=0,
                start=None, stop=None, max_tokens=4096):
    """What `plot_dense` draws: (image [n, n] of queries and keys start..stop, (start, stop), global
    positions of the row). The window is built from its rows alone; more than max_tokens is refused."""
    if attentions is None:
        raise InputError("attentions is None: this layer's attentions were not asked for")
    b, h, length = (_shape(attentions) + (0, 0, 0))[:3]
    start, stop = token_range(start, stop, length)
    if stop - start > max_tokens:
        raise InputError(f"a dense view of {stop - start} tokens is a {stop - start} x {stop - start} image; expected "
                         f"at most max_tokens={max_tokens}: choose a window with start and stop, or use the band view")
    row, head = index("row", row, b, "rows of the batch"), index("head", head, h, "heads")
    a, g, _, positions, x, w = _layout(attentions, global_attentions, global_attention_mask, attention_mask, start,
                                       stop, head)  # that head's rows alone are read and made dense
    return _dense(a, g, positions, x, w, start)[row, 0].astype(np.float64), (start, stop), positions[row]


def _draw_dense(ax, image, start, stop, positions, norm, log, tokens, title, labels=True):
    shown = np.ma.masked_less_equal(image, 0) if log else image
    extent = (start - 0.5, stop - 0.5, stop - 0.5, start - 0.5)
    im = ax.imshow(shown, interpolation="nearest", cmap=CMAP, norm=norm, extent=extent)
    for p in positions:
        if start <= p < stop:
            ax.axhline(p, color=GLOBAL, lw=0.6, alpha=0.7)
            ax.axvline(p, color=GLOBAL, lw=0.6, alpha=0.7)
    if tokens is not None and stop - start <= 48:
        names = [str(t) for t in tokens[start:stop]]
        ax.set_xticks(range(start, stop), names, rotation=90, fontsize=7)
        ax.set_yticks(range(start, stop), names, fontsize=7)
    else:
        _integer_ticks(ax.xaxis, ax.yaxis)
    if labels:
        ax.set_xlabel("key")
        ax.set_ylabel("query")
    if title:
        ax.set_title(title, fontsize=10)
    return im


def plot_dense(attentions, global_attentions=None, global_attention_mask=None, attention_mask=None, *, head=0,
               row=0, start=None, stop=None, log=False, tokens=None, ax=None, title=None, norm=None, colorbar=True,
               max_tokens=4096):
    """The dense matrix of one layer and head over queries and keys start..stop (rows: queries, columns:
    keys), built from the window's rows of the layout (never L x L), tokens labelled when there are at most
    48 of them (`tokens`: one string per position of the sequence), global tokens' rows and columns
    marked in cyan. A window of more than max_tokens is refused (the image would be that squared)."""
    _check_drawing(log, ax, title)
    image, (start, stop), positions = dense_image(attentions, global_attentions, global_attention_mask,
                                                  attention_mask, head, row, start, stop, max_tokens)
    length = _shape(attentions)[2]
    if tokens is not None and (isinstance(tokens, (str, bytes)) or not hasattr(tokens, "__len__")
                               or len(tokens) != length):
        got = (f"a {type(tokens).__name__}" if isinstance(tokens, (str, bytes)) or not hasattr(tokens, "__len__")
               else f"{len(tokens)} tokens")
        raise InputError(f"tokens has {got}; expected a list of {length} token strings, one per position")
    fig = ax.figure if ax is not None else _figure((7, 6))
    ax = ax if ax is not None else fig.add_subplot()
    im = _draw_dense(ax, image, start, stop, positions, norm or _norm(log, image), log, tokens,
                     title or f"dense view, head {head}" + (" (log scale)" if log else ""))
    if colorbar:
        fig.colorbar(im, ax=ax, shrink=0.8, label="attention weight")
    return fig


def plot_grid(attentions, global_attentions=None, global_attention_mask=None, attention_mask=None, *, layers=None,
              heads=None, view="band", row=0, start=None, stop=None, log=False, max_rows=512):
    """Layers x heads of band (or dense) views, on one colour scale with one colorbar. attentions /
    global_attentions: the per-layer tuples of an encoder output; `layers` defaults to every layer whose
    attentions are there (not None), `heads` to every head of the arrays given. Panels shrink as heads
    are added, so that 6 x 12 stays on one readable page: heads head the columns, layers label the rows,
    tick labels only on the outer panels (and on every row whose window differs from the bottom row's)."""
    if not isinstance(view, str) or view not in ("band", "dense"):
        raise InputError(f"view={short(view)}; expected 'band' or 'dense'")
    if not isinstance(attentions, (tuple, list)) or not attentions:
        raise InputError(f"attentions is {short(attentions)}; expected the per-layer tuple of an encoder output")
    n_layers = len(attentions)
    if global_attentions is not None and (not isinstance(global_attentions, (tuple, list))
                                          or len(global_attentions) != n_layers):
        raise InputError(f"global_attentions is {short(global_attentions)}; expected None or one entry per layer "
                         f"({n_layers})")
    check_bool("log", log, InputError)
    layers = ([i for i in range(n_layers) if attentions[i] is not None] if layers is None
              else list(_indices("layers", layers, n_layers)))
    for i in layers:
        if not 0 <= i < n_layers:
            raise InputError(f"layer {i} is outside the {n_layers} layers")
        if attentions[i] is None:
            raise InputError(f"layer {i}'s attentions are None: they were not asked for (output_attentions)")
    if not layers:
        raise InputError("no layer's attentions to draw: every layer is None")
    glob = global_attentions if global_attentions is not None else (None,) * n_layers
    heads = list(_indices("heads", heads, _shape(attentions[layers[0]])[1]))
    panels = {}
    for i in layers:
        args = (attentions[i], glob[i], global_attention_mask, attention_mask)
        for hd in heads:
            panels[i, hd] = (band_image(*args, head=hd, row=row, start=start, stop=stop, max_rows=max_rows)
                             if view == "band" else dense_image(*args, head=hd, row=row, start=start, stop=stop))
    norm = _norm(log, *(p[0] for p in panels.values()))
    width = 2.4 if len(heads) <= 4 else max(1.3, 20 / len(heads))
    fig = _figure((width * len(heads) + 1.4, 0.9 * width * len(layers) + 0.9))
    axes = fig.subplots(len(layers), len(heads), squeeze=False)
    windows = {i: panels[i, heads[0]][4] if view == "band" else None for i in layers}
    image = None
    for r, i in enumerate(layers):
        for c, hd in enumerate(heads):
            ax = axes[r][c]
            if view == "band":
                pixels, block, (s, e), x, w, positions = panels[i, hd]
                image = _draw_band(ax, pixels, block, s, e, x, w, positions, norm, log, "max", None, labels=False,
                                   few_ticks=len(heads) > 4)
            else:
                pixels, (s, e), positions = panels[i, hd]
                image = _draw_dense(ax, pixels, s, e, positions, norm, log, None, None, labels=False)
            ax.tick_params(labelsize=7)
            if r == 0:
                ax.set_title(f"head {hd}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"layer {i}\nquery", fontsize=9)
            else:
                ax.tick_params(labelleft=False)
            if r < len(layers) - 1 and windows[i] == windows[layers[-1]]:
                ax.tick_params(labelbottom=False)
            elif r == len(layers) - 1:
                ax.set_xlabel("g | offset" if view == "band" else "key", fontsize=8)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="attention weight" + (" (log scale)" if log
                                                                                         else ""))
    return fig


def _indices(name, values, size):
    """None -> range(size); else a non-empty list of ints (each checked by the caller)."""
    if values is None:
        return range(size)
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise InputError(f"{name}={short(values)}; expected a list of indices or None")
    values = list(values)
    if not values or not all(is_int(v) for v in values):
        raise InputError(f"{name}={short(values)}; expected a non-empty list of int indices or None")
    return values


def _check_title(title):
    if title is not None and not isinstance(title, str):
        raise InputError(f"title={short(title)}; expected a str or None")


def _check_drawing(log, ax, title):
    check_bool("log", log, InputError)
    _check_ax(ax)
    _check_title(title)


def _check_ax(ax):
    if ax is not None and not (hasattr(ax, "imshow") and hasattr(ax, "figure")):
        raise InputError(f"ax={short(ax)}; expected a matplotlib Axes or None")


def _sparsity_args(length, window, global_positions, max_length=None):
    """Checked (length, window, sorted unique global positions) of the sparsity functions."""
    length = check_int("length", length, InputError, minimum=1, maximum=max_length)
    if not is_int(window) or window < 2 or window % 2 or window > MAX_WINDOW:
        raise InputError(f"window={short(window)}; expected an even int from 2 to {MAX_WINDOW} (the two-sided "
                         f"attention window)")
    if isinstance(global_positions, (str, bytes)) or not hasattr(global_positions, "__iter__"):
        raise InputError(f"global_positions={short(global_positions)}; expected a list of token positions")
    positions = list(np.asarray(global_positions).ravel()) if isinstance(global_positions, np.ndarray) \
        else list(global_positions)
    if not all(is_int(p) for p in positions):
        raise InputError(f"global_positions={short(positions)}; expected int token positions")
    g = np.unique(np.asarray(positions, dtype=np.int64))
    if g.size and (g.min() < 0 or g.max() >= length):
        raise InputError(f"global positions must be inside 0..{length - 1}")
    return length, int(window), g


def computed_pairs(length, window, global_positions=()):
    """(pairs computed by Longformer attention, pairs of full attention) for one sequence, counted exactly
    without an L x L array: the band `|i - j| <= w` plus every row and column of a global token."""
    length, window, g = _sparsity_args(length, window, global_positions)
    w = window // 2
    i = np.arange(length)
    band_row = np.minimum(i + w, length - 1) - np.maximum(i - w, 0) + 1  # band pairs in row i
    close = np.abs(g[:, None] - g[None, :]) <= w
    n = int(band_row.sum() + 2 * len(g) * length - len(g) ** 2 - 2 * band_row[g].sum() + close.sum())
    return n, length * length


def plot_sparsity(length, window, global_positions=(), max_pixels=1024):
    """Which (query, key) pairs are computed: the band, global rows and columns, against full attention.
    Long inputs are shown as the computed fraction of each block of pairs."""
    length, window, g = _sparsity_args(length, window, global_positions, max_length=2 ** 18)  # it draws L^2 / 1024
    check_int("max_pixels", max_pixels, InputError, minimum=1)
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
    computed = "#08306b"  # the colour of a pixel whose pairs are all computed
    for p in g:  # a global token's row and column, one token wide: drawn as lines, which keep their width
        ax.axhline(p, color=computed, lw=1.0)
        ax.axvline(p, color=computed, lw=1.0)
    ax.set_xlim(-0.5, length - 0.5)
    ax.set_ylim(length - 0.5, -0.5)
    _integer_ticks(ax.xaxis, ax.yaxis)
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
    from matplotlib.patches import ConnectionPatch, Rectangle

    from .reference.attention import global_slots, self_attention
    length, window, positions = _sparsity_args(length, window, global_positions, max_length=64)  # one cell each
    n_pad = check_int("n_pad", n_pad, InputError, minimum=0, maximum=length - 1)
    check_int("seed", seed, InputError, minimum=0)
    if not positions.size or positions.max() >= length - n_pad:
        raise InputError(f"global_positions={short(global_positions)}; expected at least one, each before the "
                         f"{n_pad} pad positions at the end (0..{length - n_pad - 1})")
    global_positions = [int(p) for p in positions]  # slots are in position order
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

    fig = _figure((9, 7.4))  # at most a page's width: its letters stay legible where the page shows it
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
                left.text(x + c, i, reason, ha="center", va="center", fontsize=10, color="#555555")
        note = "pad query" if mask[0, i] == 0 else "global query" if mask[0, i] == 2 else ""
        if note:  # the row is all zero: the note fits inside it
            left.text((x + window) / 2, i, note, ha="center", va="center", fontsize=9, color="#555555")
    headers = [f"g{s}\n@{p}" for s, p in enumerate(global_positions)] + \
              [("self" if c == w else f"{c - w:+d}") for c in range(window + 1)]
    left.set_xticks(range(x + window + 1), headers, fontsize=9)
    for tick, colour in zip(left.get_xticklabels(), column_colours, strict=True):
        tick.set_color(colour)
    left.set_yticks(range(length))
    left.set_ylabel("query token")
    left.axvline(x - 0.5, color="k", lw=1)
    left.set_title(f"attentions\n{length} x (x + W + 1) = {length} x {x + window + 1}", fontsize=11)
    right.set_xticks(range(length))
    right.set_yticks(range(length))
    right.set_xlabel("key token")
    right.set_title("to_dense: the same weights\nat their absolute keys", fontsize=11)
    for p in global_positions:
        for axis in (right.get_xticklabels()[p], right.get_yticklabels()[p]):
            axis.set_color(GLOBAL)
            axis.set_fontweight("bold")
    # three arrows from one local query's cells to the cells of the dense matrix they land on: its own key,
    # the first global key, and the key w to its left
    rows = [i for i in range(w, length) if mask[0, i] == 1 and mask[0, i - w] == 1]
    i = rows[len(rows) // 2] if rows else next(i for i in range(length) if mask[0, i] == 1)
    arrows = [(x + w, i)] + ([(0, global_positions[0])] if x else []) + ([(x, i - w)] if rows else [])
    for (c, j), bend in zip(arrows, (-0.12, 0.2, -0.28), strict=False):  # bent apart: they share a row
        for ax, cell in ((left, (c, i)), (right, (j, i))):
            ax.add_patch(Rectangle((cell[0] - 0.5, cell[1] - 0.5), 1, 1, fill=False, edgecolor=column_colours[c],
                                   lw=1.5))
        fig.add_artist(ConnectionPatch(xyA=(c, i), coordsA=left.transData, xyB=(j, i), coordsB=right.transData,
                                       arrowstyle="->", color=column_colours[c], lw=1.3, alpha=0.9, shrinkA=4,
                                       shrinkB=4, connectionstyle=f"arc3,rad={bend}"))
    fig.suptitle("Longformer's attention layout: compact columns (left) and where they land (right)\n"
                 "zeros: G global key (its weight is in its g column), P pad key, E past the edge", fontsize=11)
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
    row = _index("row", row, n_rows, f"the {n_rows} generated sequences")
    n_layers = len(steps[0])
    layer = _index("layer", layer, n_layers, f"the decoder's {n_layers} layers", from_the_end=True)
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
    return heads[:, _index("head", head, n_heads, f"the {n_heads} heads")]


def _index(name, value, size, what, from_the_end=False):
    """`value` as an index into `size` things (from the end too when negative and `from_the_end`), else an
    InputError: 'row=5 is outside the 2 generated sequences'."""
    if not is_int(value):
        raise InputError(f"{name}={short(value)} is not an int; expected an index into {what}")
    if not (-size if from_the_end else 0) <= value < size:
        raise InputError(f"{name}={value} is outside {what}")
    return int(value) % size


def global_attention_map(generate_output, row=0, layer=-1, slot=0, head=None):
    """What global token number `slot` (in position order) attends to over the source tokens in encoder layer
    `layer`, for the batch row that sequence `row` of a generate output comes from: NumPy [source length],
    the mean of the heads (or one `head`). Needs a generate output with output_attentions=True of an input
    with global tokens."""
    glob = getattr(generate_output, "encoder_global_attentions", None)
    local = _generate_attentions(generate_output, "encoder_attentions")
    if not glob:
        raise InputError("the generate output holds no encoder_global_attentions: the input had no global token")
    n_rows = to_numpy(generate_output.sequences).shape[0]
    row = _index("row", row, n_rows, f"the {n_rows} generated sequences")
    layer = _index("layer", layer, len(glob), f"the encoder's {len(glob)} layers", from_the_end=True)
    if glob[layer] is None or local[layer] is None:
        kept = [i for i, a in enumerate(glob) if a is not None]
        raise InputError(f"layer={layer}: the generate output holds no attentions of encoder layer {layer} (only of "
                         f"layers {kept}); expected one of those")
    batch, n_heads, length = local[layer].shape[:3]
    x = glob[layer].shape[-1]
    slot = _index("slot", slot, x, f"the {x} global slots")
    if head is not None:
        head = _index("head", head, n_heads, f"the {n_heads} heads")
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
    `max_columns` columns, so that no peak is lost. title: replaces the title of the top panel (of the
    only one, without global tokens)."""
    check_int("max_columns", max_columns, InputError, minimum=1)
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
        bad = [p for p in positions if not (is_int(p) and 0 <= p < n)]
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
    bottom.set_title(title if title and top is None else f"the decoder's cross-attention while writing each token "
                     f"(decoder, {_layer_name(layer)}, mean of heads)", fontsize=10)
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
