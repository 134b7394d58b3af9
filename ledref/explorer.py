"""The attention explorer: one self-contained HTML page showing a long document as text with its attention.

Pointing at a token shades the document by that token's attention in one encoder layer (its window and the
global tokens), for one head or the mean of the heads; pointing at a token of a generated summary shades it
by the decoder's cross-attention while that token was chosen. Global tokens are marked. Clicking a token
pins it: pointing at other tokens then reads their weight in the pinned row.

The page holds everything it needs (inline CSS and JavaScript, the data as base64 typed arrays): it opens
offline in any browser and asks nothing of the network. It is built from the compact layout (transformers'
`attentions` [B, H, L, x + W + 1] and `global_attentions` [B, H, Lp, x]), never from an L x L matrix. To
keep a 16,384-token document with every head of a layer under `max_bytes` (25 MB), each row keeps its K
largest weights, K chosen from the byte budget (all of them when they fit), stored as 8-bit fractions of
the row's largest weight; the page states K and the share of the attention the kept weights hold.

- `explore(model, text, out, ...)`: tokenize, encode (and generate, with summarize=True), write the page;
- `build_page(...)`: the page's HTML from a layer's attentions and the token offsets, for outputs you have.
"""

import base64
import html
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np

from .backend import to_numpy
from .checks import check_bool, check_callable, check_int, check_path, is_int, short
from .errors import InputError
from .layout import _layout
from .tokenizer import SPECIAL_TOKENS
from .viz import _layer_name, cross_attention_heads

MAX_BYTES = 25_000_000
"""The default size limit of a page, in bytes."""

MAX_TOKENS = 2 ** 16
"""The longest document a page holds: its token indices are 16-bit integers (Uint16Array)."""

SHARES = (0.7, 0.15, 0.15)  # of the data budget: local rows, global rows, cross-attention rows (leftovers move on)


@dataclass
class ExplorerPage:
    """What `explore` wrote: the file, its size in bytes, the number of document tokens, the encoder layer
    shown, the heads, the summary (None without one), the weights kept per row (`kept`: {"local",
    "global", "cross"} -> (K, of how many)), the share of each row's attention they hold (`mass`: group ->
    (mean, minimum)) and the seconds it took."""

    path: str
    bytes: int
    n_tokens: int
    layer: int
    heads: int
    summary: str | None = None
    kept: dict = field(default_factory=dict)
    mass: dict = field(default_factory=dict)
    seconds: float = 0.0


# ------------------------------------------------------------------------------------------------ the data

def top_weights(weights, keys, k):
    """The k largest entries of each row: weights [R, C] (non-negative), keys [R, C] the token each entry is
    about -> (keys [R, k] uint16, codes [R, k] uint8 = round(255 * weight / row max), row max [R] float32,
    kept share of the row's sum [R]). Rows of zeros keep zeros (share 1)."""
    weights = np.asarray(weights, dtype=np.float64)
    r, c = weights.shape
    k = min(k, c)
    if k < c:
        index = np.argpartition(-weights, k - 1, axis=1)[:, :k]  # [R, k], unordered
        kept = np.take_along_axis(weights, index, axis=1)
        kept_keys = np.take_along_axis(keys, index, axis=1)
    else:
        kept, kept_keys = weights, keys
    top = np.max(weights, axis=1) if c else np.zeros(r)
    scale = np.where(top > 0, top, 1.0)
    codes = np.rint(kept / scale[:, None] * 255).astype(np.uint8)
    total = np.sum(weights, axis=1)
    share = np.where(total > 0, np.sum(kept, axis=1) / np.where(total > 0, total, 1.0), 1.0)
    return kept_keys.astype(np.uint16), codes, top.astype(np.float32), share


def allocate(budget, groups):
    """Weights kept per row for each group of rows [(rows, entries per row)] within `budget` raw bytes (3 per
    kept weight, 4 per row for its maximum): every group whole if it fits, else shares of SHARES, what a
    group does not need passing to the others. Returns [K] (0 for an empty group)."""
    need = [rows * columns * 3 for rows, columns in groups]
    budget -= sum(rows * 4 for rows, _ in groups)
    if sum(need) <= budget:
        return [columns if rows else 0 for rows, columns in groups]
    give = [0.0] * len(groups)
    left, open_groups = float(budget), [i for i, n in enumerate(need) if n]
    while open_groups and left > 1:
        weight = sum(SHARES[i] for i in open_groups)
        offer = {i: left * SHARES[i] / weight for i in open_groups}
        left = 0.0
        for i in list(open_groups):
            take = min(offer[i], need[i] - give[i])
            give[i] += take
            left += offer[i] - take
            if give[i] >= need[i]:
                open_groups.remove(i)
    return [min(columns, int(give[i] // (rows * 3))) if rows else 0 for i, (rows, columns) in enumerate(groups)]


def _b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def _group(chunks, make_rows, make_keys, k, progress=None):
    """Top-k storage of a group of rows made chunk by chunk: make_rows(chunk) -> weights [n, C],
    make_keys(chunk) -> their tokens [n, C]. Returns the group's JSON entry and the kept shares [rows]."""
    parts, shares = [], []
    for chunk in chunks:
        parts.append(top_weights(make_rows(chunk), make_keys(chunk), k))
        shares.append(parts[-1][3])
        if progress is not None:
            progress()
    keys = np.concatenate([p[0] for p in parts]).astype("<u2")
    codes = np.concatenate([p[1] for p in parts])
    top = np.concatenate([p[2] for p in parts]).astype("<f4")
    share = np.concatenate(shares) if shares else np.ones(0)
    entry = {"k": int(codes.shape[1]) if codes.ndim == 2 else 0, "keys": _b64(keys), "codes": _b64(codes),
             "max": _b64(top)}
    return entry, share


# ------------------------------------------------------------------------------------------------ the page

def build_page(text, offsets, tokens, attentions, global_attentions=None, global_attention_mask=None, *,
               summary_tokens=None, cross_attentions=None, layer_label="", cross_label="", max_bytes=MAX_BYTES,
               title=None, progress=None):
    """The explorer's HTML for one document: (html, stats).

    text: the document; offsets: each token's (start, end) character span in it ((0, 0) for special
    tokens), as `tokenizer(text, return_offsets_mapping=True)["offset_mapping"]` gives them; tokens: each
    token's string (shown for special tokens and in the status line). attentions [1, H, L, x + W + 1] and
    global_attentions [1, H, Lp, x] (or None) are one encoder layer of one document, global_attention_mask
    [1, L] the mask it was run with. summary_tokens (the generated tokens' text) and cross_attentions
    [T, H', L] (ledref.viz.cross_attention_heads) add the summary. progress(done, total), if given, is called
    as rows are processed. stats: {"kept": {group: (K, entries per row)}, "mass": {group: (mean, min)},
    "bytes": size}.
    """
    check_int("max_bytes", max_bytes, InputError, minimum=1)
    if title is not None and not isinstance(title, str):
        raise InputError(f"title={short(title)}; expected a str or None")
    check_callable("progress", progress, InputError)
    a, g, mask, positions, x, w = _layout(attentions, global_attentions, global_attention_mask, None)
    if a.shape[0] != 1:
        raise InputError(f"attentions has a batch of {a.shape[0]}; the explorer shows one document (batch 1)")
    _, heads, length, columns = a.shape
    if length > MAX_TOKENS:
        raise InputError(f"the document is {length:,} tokens long; an explorer page holds at most {MAX_TOKENS:,} "
                         f"(its token indices are 16-bit)")
    offsets = [tuple(int(v) for v in span) for span in (offsets.tolist() if hasattr(offsets, "tolist")
                                                         else offsets)]
    if len(offsets) != length or len(tokens) != length:
        raise InputError(f"offsets has {len(offsets)} spans and tokens {len(tokens)} strings for {length} tokens; "
                         f"expected one of each per token")
    for i, (start, end) in enumerate(offsets):
        if not 0 <= start <= end <= len(text):
            raise InputError(f"offsets[{i}] = ({start}, {end}) is not a span of the {len(text)}-character text")
    glob = [int(p) for p in positions[0]]
    cross = None if cross_attentions is None else np.asarray(to_numpy(cross_attentions), dtype=np.float64)
    summary_tokens = list(summary_tokens or [])
    if cross is not None and (cross.ndim != 3 or cross.shape[2] != length or cross.shape[0] != len(summary_tokens)):
        raise InputError(f"cross_attentions has shape {cross.shape}; expected ({len(summary_tokens)}, heads, "
                         f"{length}): one row per summary token over the document's tokens")
    cross_heads = 0 if cross is None else cross.shape[1]

    shell = _shell(text, offsets, tokens, glob, summary_tokens, title or "attention explorer")
    budget = (max_bytes - len(shell.encode("utf-8")) - 8192) * 3 // 4  # base64: 4 characters per 3 bytes
    groups = [(length * (heads + 1), columns), (len(glob) * (heads + 1), length),
              (len(summary_tokens) * (cross_heads + 1), length)]
    ks = allocate(budget, groups)
    if groups[0][0] and ks[0] < 1:
        raise InputError(f"max_bytes={max_bytes:,} leaves no room for the weights of {length:,} tokens; expected "
                         f"a larger limit")

    chunk = max(1, 4096 // (heads + 1))
    local_chunks = [(s, min(length, s + chunk)) for s in range(0, length, chunk)]
    total = len(local_chunks) + len(glob) + len(summary_tokens)
    done = [0]

    def tick():
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    def local_rows(span):  # [n * (H + 1), x + W + 1]: token by token, the heads then their mean
        s, e = span
        block = a[0, :, s:e, :].astype(np.float64)  # [H, n, C]
        block = np.concatenate([block, block.mean(axis=0, keepdims=True)])  # [H + 1, n, C]
        return block.transpose(1, 0, 2).reshape(-1, columns)

    slot_keys = np.array(glob + [0] * (x - len(glob)), dtype=np.int64)  # filler slots hold 0 weight

    def local_keys(span):
        s, e = span
        i = np.arange(s, e)[:, None]
        band = np.clip(i + np.arange(2 * w + 1)[None, :] - w, 0, length - 1)  # [n, W + 1]
        keys = np.concatenate([np.broadcast_to(slot_keys, (e - s, x)), band], axis=1)
        return np.repeat(keys, heads + 1, axis=0)

    data = {"length": length, "heads": heads, "w": w, "globals": glob, "cross_heads": cross_heads,
            "layer": layer_label, "cross_layer": cross_label}
    data["local"], local_share = _group(local_chunks, local_rows, local_keys, ks[0], tick)
    kept = {"local": (data["local"]["k"], columns)}
    mass = {"local": (float(local_share.mean()), float(local_share.min()))}
    every_key = np.arange(length)
    if glob:
        def global_rows(slot):
            rows = g[0, :, :length, slot].astype(np.float64)  # [H, L]: what global token `slot` attends to
            return np.concatenate([rows, rows.mean(axis=0, keepdims=True)])

        data["global"], share = _group(range(len(glob)), global_rows,
                                       lambda _: np.broadcast_to(every_key, (heads + 1, length)), ks[1], tick)
        kept["global"], mass["global"] = (data["global"]["k"], length), (float(share.mean()), float(share.min()))
    if summary_tokens:
        def cross_rows(step):
            rows = cross[step]  # [H', L]
            return np.concatenate([rows, rows.mean(axis=0, keepdims=True)])

        data["cross"], share = _group(range(len(summary_tokens)), cross_rows,
                                      lambda _: np.broadcast_to(every_key, (cross_heads + 1, length)), ks[2], tick)
        kept["cross"], mass["cross"] = (data["cross"]["k"], length), (float(share.mean()), float(share.min()))
    data["fidelity"] = _fidelity(kept, mass)
    page = shell.replace("/*DATA*/", json.dumps(data).replace("</", "<\\/"))
    return page, {"kept": kept, "mass": mass, "bytes": len(page.encode("utf-8"))}


def _fidelity(kept, mass):
    """The page's statement of what it keeps and how much of the attention that is."""
    what = {"local": "a token's window and the global tokens", "global": "a global token's row (every token)",
            "cross": "a summary token's cross-attention (every document token)"}
    parts = []
    for group, (k, of) in kept.items():
        exact = "all" if k >= of else f"the {k:,} largest"
        mean, low = mass[group]
        parts.append(f"{what[group]}: {exact} of {of:,} weights, holding {100 * mean:.1f}% of the attention on "
                     f"average (at least {100 * low:.1f}%)")
    return ("Each row keeps " + "; ".join(parts) + ". Kept weights are stored as 8-bit fractions of the row's "
            "largest weight (error at most 1/510 of it).")


def _shell(text, offsets, tokens, glob, summary_tokens, title):
    """The page without its data: the document as token spans, the summary, the controls."""
    out, cursor = [], 0
    globals_ = set(glob)
    for i, (start, end) in enumerate(offsets):
        cls = ' class="g"' if i in globals_ else ""
        if start == end:  # a special token (or an empty piece): shown by its name
            label = tokens[i] if tokens[i] in SPECIAL_TOKENS.values() else ""
            out.append(f'<span id="t{i}"{cls} data-special="1">{html.escape(label)}</span>' if label else
                       f'<span id="t{i}"{cls}></span>')
            continue
        if start > cursor:
            out.append(html.escape(text[cursor:start]))
        piece = text[max(start, cursor):end]  # byte pieces of one character share its span: shown once
        out.append(f'<span id="t{i}"{cls}>{html.escape(piece)}</span>')
        cursor = max(cursor, end)
    out.append(html.escape(text[cursor:]))
    summary = "".join(f'<span id="s{j}">{html.escape(t)}</span>' for j, t in enumerate(summary_tokens))
    chips = "".join(f'<span id="g{p}" class="g">{html.escape(_shown(text, offsets[p], tokens[p]))} (#{p})</span>'
                    for p in glob) or "none"
    return (_TEMPLATE.replace("/*TITLE*/", html.escape(title)).replace("/*DOC*/", "".join(out))
            .replace("/*GLOBALS*/", chips)
            .replace("/*SUMMARY*/", summary).replace("/*HAS_SUMMARY*/", "" if summary_tokens else " hidden"))


def _shown(text, span, token):
    """A token as the page names it: its piece of the text, or its own string for a special token."""
    start, end = span
    return text[start:end] if end > start else token


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>/*TITLE*/</title>
<style>
body { font: 15px/1.6 system-ui, sans-serif; margin: 0; color: #222; }
header { position: sticky; top: 0; background: #fafafa; border-bottom: 1px solid #ddd; padding: 8px 16px;
  z-index: 1; }
header h1 { font-size: 16px; margin: 0 0 4px; }
#status { font-family: ui-monospace, monospace; font-size: 13px; min-height: 1.4em; white-space: pre-wrap; }
#legend { display: inline-block; width: 120px; height: 10px; vertical-align: middle;
  background: linear-gradient(to right, rgba(230, 81, 0, 0), rgba(230, 81, 0, 1)); border: 1px solid #ccc; }
main { padding: 8px 16px; }
#globals, #summary { max-height: 7.5em; overflow-y: auto; margin-top: 4px; }
#globals span { margin-right: 4px; padding: 0 3px; }
#doc { white-space: pre-wrap; word-wrap: break-word; }
#doc span, #summary span { cursor: default; border-radius: 2px; }
#summary span { margin-right: 2px; padding: 0 2px; border: 1px solid #b0c4d4; background: #fff; }
#summary[hidden] { display: none; }
.g { outline: 2px solid #00bcd4; font-weight: bold; }
[data-special] { font-size: 11px; color: #555; background: #eee; padding: 0 2px; }
.win { box-shadow: inset 0 -2px #9e9e9e; }
.me { outline: 2px solid #222; }
.pinned { outline: 2px dashed #222; }
#overview { position: fixed; right: 0; top: 0; width: 16px; height: 100vh; background: #f2f2f2;
  border-left: 1px solid #ccc; cursor: pointer; z-index: 2; }
body { margin-right: 18px; }
footer { font-size: 12px; color: #555; padding: 8px 16px 24px; border-top: 1px solid #ddd; }
</style></head>
<body>
<header><h1>/*TITLE*/</h1>
<label>head <select id="head"></select></label>
&nbsp; weight 0 <span id="legend"></span> row's largest
&nbsp; <span style="outline: 2px solid #00bcd4; font-weight: bold">global</span>
&nbsp; <span class="win">window</span> &nbsp; click a token to pin it; the strip at the right shows where the
weights are in the whole document
<div id="globals"><b>global tokens:</b> /*GLOBALS*/</div>
<div id="summary"/*HAS_SUMMARY*/><b>generated:</b> /*SUMMARY*/</div>
<div id="status">point at a token</div></header>
<main id="doc">/*DOC*/</main>
<canvas id="overview" title="where the weights are in the whole document (click to go there)"></canvas>
<footer id="fidelity"></footer>
<script id="data" type="application/json">/*DATA*/</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
function bytes(s) { const b = atob(s), a = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) a[i] = b.charCodeAt(i); return a; }
function group(g) { return g && { k: g.k, keys: new Uint16Array(bytes(g.keys).buffer),
  codes: bytes(g.codes), max: new Float32Array(bytes(g.max).buffer) }; }
const G = { local: group(D.local), global: group(D.global), cross: group(D.cross) };
const tokens = Array.from({ length: D.length }, (_, i) => document.getElementById("t" + i));
const slotOf = new Map(D.globals.map((p, s) => [p, s]));
const headSelect = document.getElementById("head"), status = document.getElementById("status");
headSelect.add(new Option("mean of heads", String(D.heads)));
for (let h = 0; h < D.heads; h++) headSelect.add(new Option("head " + h, String(h)));
document.getElementById("fidelity").textContent = D.fidelity;
let shaded = [], framed = [], pinned = null, current = null;

function label(i) { const t = tokens[i];
  return JSON.stringify(t.textContent) + " (#" + i + ")"; }
function rowOf(sel) {  // which group and row a selection reads, for the chosen head
  const h = Number(headSelect.value);
  if (sel.kind === "cross") { const ch = h < D.cross_heads ? h : D.cross_heads;
    return [G.cross, sel.i * (D.cross_heads + 1) + ch, h < D.cross_heads ? "head " + h : "mean of heads"]; }
  const name = h < D.heads ? "head " + h : "mean of heads";
  if (slotOf.has(sel.i)) return [G.global, slotOf.get(sel.i) * (D.heads + 1) + h, name];
  return [G.local, sel.i * (D.heads + 1) + h, name];
}
function weights(sel) {  // Map token -> weight of the selection's row (kept weights only)
  const [g, row, name] = rowOf(sel), out = new Map(), top = g.max[row];
  for (let e = row * g.k; e < (row + 1) * g.k; e++) {
    const c = g.codes[e];
    if (c) out.set(g.keys[e], (out.get(g.keys[e]) || 0) + c / 255 * top);
  }
  return [out, top, name];
}
const chips = new Map(D.globals.map(p => [p, document.getElementById("g" + p)]));
function clear() {
  for (const t of shaded) { t.style.background = ""; delete t.dataset.w; }
  for (const t of framed) t.classList.remove("win", "me");
  shaded = []; framed = [];
}
function show(sel) {
  clear(); current = sel;
  const [w, top, name] = weights(sel);
  for (const [key, value] of w) {
    const colour = "rgba(230, 81, 0, " + (value / top).toFixed(3) + ")", t = tokens[key];
    t.style.background = colour; t.dataset.w = value.toPrecision(6); shaded.push(t);
    if (chips.has(key)) { chips.get(key).style.background = colour; shaded.push(chips.get(key)); }
  }
  const me = sel.kind === "cross" ? document.getElementById("s" + sel.i) : tokens[sel.i];
  me.classList.add("me"); framed.push(me);
  let what;
  if (sel.kind === "cross") what = "summary token " + JSON.stringify(me.textContent) + " (#" + sel.i +
    "): cross-attention, decoder " + D.cross_layer;
  else if (slotOf.has(sel.i)) what = label(sel.i) + ", a global token: attention to every token, " + D.layer;
  else {
    what = label(sel.i) + ": its window and the global tokens, " + D.layer;
    for (let j = Math.max(0, sel.i - D.w); j <= Math.min(D.length - 1, sel.i + D.w); j++) {
      tokens[j].classList.add("win"); framed.push(tokens[j]); }
  }
  overview(w, top);
  let best = -1, bestW = 0;
  for (const [key, value] of w) if (value > bestW) { best = key; bestW = value; }
  status.textContent = what + ", " + name + ". Largest weight " + bestW.toFixed(4) +
    (best >= 0 ? " on " + label(best) : "");
}
const strip = document.getElementById("overview");
function overview(w, top) {  // the whole document in the strip at the right: a mark where each weight is
  const height = strip.clientHeight, total = document.documentElement.scrollHeight;
  strip.width = 16; strip.height = height;
  const ctx = strip.getContext("2d");
  ctx.clearRect(0, 0, 16, height);
  for (const [key, value] of w) {
    ctx.fillStyle = "rgba(230, 81, 0, " + Math.max(0.15, value / top).toFixed(3) + ")";
    const t = tokens[key].getBoundingClientRect().top + window.scrollY;
    ctx.fillRect(0, Math.floor(t / total * height), 16, 2);
  }
}
strip.addEventListener("click", event => window.scrollTo(0, event.offsetY / strip.clientHeight *
  document.documentElement.scrollHeight - window.innerHeight / 2));
function selection(target) {
  if (!target || !target.id) return null;
  const n = Number(target.id.slice(1));
  if (target.id[0] === "t" && tokens[n] === target) return { kind: "doc", i: n };
  if (target.id[0] === "g" && chips.get(n) === target) return { kind: "doc", i: n };
  if (target.id[0] === "s" && target.parentElement.id === "summary") return { kind: "cross", i: n };
  return null;
}
function point(event) {
  const sel = selection(event.target);
  if (!sel) return;
  if (!pinned) { show(sel); return; }
  if (sel.kind !== "doc") return;
  const [w] = weights(pinned), value = w.get(sel.i);
  status.textContent = "pinned row: weight on " + label(sel.i) + " = " +
    (value === undefined ? "0 (or below the kept weights)" : value.toFixed(6));
}
function pin(event) {
  const sel = selection(event.target);
  if (!sel) return;
  document.querySelectorAll(".pinned").forEach(t => t.classList.remove("pinned"));
  if (pinned && pinned.kind === sel.kind && pinned.i === sel.i) { pinned = null; return; }
  pinned = sel; show(sel); event.target.classList.add("pinned");
}
document.getElementById("doc").addEventListener("mouseover", point);
document.getElementById("summary").addEventListener("mouseover", point);
document.getElementById("globals").addEventListener("mouseover", point);
document.getElementById("doc").addEventListener("click", pin);
document.getElementById("summary").addEventListener("click", pin);
headSelect.addEventListener("change", () => { if (current) show(current); });
document.body.dataset.ready = "1";
</script>
</body></html>
"""


# ------------------------------------------------------------------------------------------------ the run

def explore(model, text, out, *, tokenizer=None, global_positions=(0,), layer=-1, summarize=False, cross_layer=-1,
            max_bytes=MAX_BYTES, title=None, truncate=False, encoder_progress=None, step_progress=None,
            page_progress=None, **generation_kwargs):
    """Write the explorer page of `text` to `out` and return an ExplorerPage.

    model: a loaded LED (LEDModel or LEDForConditionalGeneration) or a name or path (loaded as
    LEDForConditionalGeneration to summarize, LEDModel otherwise); tokenizer: an LEDTokenizer (default:
    the checkpoint's own, for a name or path). global_positions: token positions given global attention (the
    first, <s>, by default). layer: the encoder layer shown (every head, and their mean). summarize=True
    generates a summary (generation_kwargs go to generate, e.g. max_new_tokens, num_beams) and shows the
    cross-attention of decoder layer `cross_layer` for each of its tokens. truncate cuts a text longer than
    the model reads. The progress callables are called after each encoder layer, each decoding step, and as
    the page is built (with (done, total)).
    """
    from .hub import resolve
    from .model import LEDForConditionalGeneration, LEDModel
    from .tokenizer import LEDTokenizer

    start = time.perf_counter()
    # every argument, before a model is loaded
    if not isinstance(text, str):
        raise InputError(f"text is a {type(text).__name__}; expected the document as a str")
    out = check_path("out", out, InputError)
    if os.path.isdir(out):
        raise InputError(f"out={short(out)} is a directory; expected the path of the .html page to write")
    for name, value in (("layer", layer), ("cross_layer", cross_layer)):
        check_int(name, value, InputError)
    for name, value in (("summarize", summarize), ("truncate", truncate)):
        check_bool(name, value, InputError)
    for name, value in (("encoder_progress", encoder_progress), ("step_progress", step_progress),
                        ("page_progress", page_progress)):
        check_callable(name, value, InputError)
    check_int("max_bytes", max_bytes, InputError, minimum=1)
    if title is not None and not isinstance(title, str):
        raise InputError(f"title={short(title)}; expected a str or None")
    if isinstance(global_positions, (str, bytes)) or not hasattr(global_positions, "__iter__"):
        raise InputError(f"global_positions={short(global_positions)}; expected a sequence of token positions (ints)")
    global_positions = list(global_positions)
    if not all(is_int(p) for p in global_positions):
        raise InputError(f"global_positions={short(global_positions)}; expected a sequence of token positions (ints)")
    if isinstance(model, (str, os.PathLike)):
        path = resolve(model)
        model = (LEDForConditionalGeneration if summarize else LEDModel).from_pretrained(path)
        tokenizer = tokenizer or LEDTokenizer.from_pretrained(path)
    if tokenizer is None:
        raise InputError("tokenizer is None; expected an LEDTokenizer for a loaded model (a path loads its own)")
    if summarize and not hasattr(model, "generate"):
        raise InputError(f"summarize=True needs a model that generates (LEDForConditionalGeneration); got "
                         f"{type(model).__name__}")
    config = model.config
    if not -config.encoder_layers <= layer < config.encoder_layers:
        raise InputError(f"layer={layer} is outside the encoder's layers 0..{config.encoder_layers - 1}")
    if not text.strip():
        raise InputError("the text is empty; expected a document")
    limit = config.max_encoder_position_embeddings
    batch = tokenizer(text, return_offsets_mapping=True, truncation=truncate,
                      max_length=limit if truncate else None)
    ids, offsets = batch["input_ids"], batch["offset_mapping"]
    if len(ids) > limit:
        raise InputError(f"the text is {len(ids):,} tokens long; the model reads at most {limit:,} "
                         f"(max_encoder_position_embeddings); truncate=True cuts it")
    positions = sorted(set(int(p) for p in global_positions))
    if positions and not 0 <= positions[0] <= positions[-1] < len(ids):
        raise InputError(f"global position {positions[-1] if positions[-1] >= len(ids) else positions[0]} is "
                         f"outside the {len(ids):,} tokens")
    global_mask = np.zeros((1, len(ids)), dtype=np.int64)
    global_mask[0, positions] = 1
    input_ids = np.asarray([ids], dtype=np.int64)
    layer = layer % config.encoder_layers
    encoded = model.encoder(input_ids, global_attention_mask=global_mask, output_attentions=[layer],
                            progress=encoder_progress, return_dict=True)  # only the layer shown makes its maps
    attentions = encoded.attentions[layer]
    global_attentions = encoded.global_attentions[layer] if encoded.global_attentions else None
    summary_tokens, cross, summary = None, None, None
    if summarize:
        generated = model.generate(input_ids, encoder_outputs=encoded, return_dict_in_generate=True,
                                   output_attentions=True, step_progress=step_progress, **generation_kwargs)
        cross = cross_attention_heads(generated, 0, cross_layer)  # [T, H, L]
        written = to_numpy(generated.sequences)[0, 1:1 + cross.shape[0]].tolist()
        summary_tokens = [tokenizer.decode([t]) for t in written]
        summary = tokenizer.decode(written, skip_special_tokens=True)
    tokens = batch.tokens()
    cross_name = _layer_name(cross_layer)
    page, stats = build_page(text, offsets, tokens, attentions, global_attentions, global_mask,
                             summary_tokens=summary_tokens, cross_attentions=cross,
                             layer_label=f"encoder layer {layer}", cross_label=cross_name, max_bytes=max_bytes,
                             title=title or f"attention explorer: {len(ids):,} tokens, encoder layer {layer}",
                             progress=page_progress)
    with open(out, "w", encoding="utf-8") as f:
        f.write(page)
    return ExplorerPage(path=os.fspath(out), bytes=stats["bytes"], n_tokens=len(ids), layer=layer,
                        heads=attentions.shape[1], summary=summary, kept=stats["kept"], mass=stats["mass"],
                        seconds=time.perf_counter() - start)
