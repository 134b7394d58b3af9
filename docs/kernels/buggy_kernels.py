"""Kernels with one planted bug each, for trying out `ledref conformance`:

    ledref conformance docs/kernels/buggy_kernels.py:global_keys_in_band      # fails
    ledref conformance docs/kernels/buggy_kernels.py:plain_kernel             # the same code, no bug: passes
    ledref conformance docs/kernels/buggy_kernels.py:plain_kernel --dtype float32   # run in float32: passes

`plain_kernel` is a small, independent NumPy implementation of Longformer attention that builds the band
layout directly: for every query i and head h it gathers the keys i + r_h (c - w), c = 0..2w (r_h the
head's dilation; clipped at the edges) and masks the columns that are out of range, pad, global, or (with
autoregressive windows) after the token itself. It computes in the dtype of its inputs (float32 inputs:
float32 arithmetic), except bfloat16, which NumPy cannot multiply: it computes those in float32 and rounds
its outputs to bfloat16. The buggy kernels call it with one mistake switched on:

- global_keys_in_band       keeps global keys in the window (they are then counted twice: once in the
                            global columns, once in the band);
- pad_rows_not_zeroed       forgets to zero the output and probabilities of pad queries;
- band_shifted              reads column c as key i + c - w + 1, so the token itself sits at x + w - 1;
- filler_slots_zero         leaves the global slots a row does not use at 0 instead of uniform 1/L;
- dilation_first_head_only  applies the first head's dilation to every head (it takes dilation= and
                            autoregressive=, so the suite gives it the dilated and autoregressive cases);
- autoregressive_one_ahead  lets an autoregressive window see the next token too.
"""

import numpy as np


def softmax_allowed(scores, allowed):
    """Softmax over the allowed entries of the last axis; rows with none allowed are all zero."""
    scores = np.where(allowed, scores, -np.inf)
    top = np.max(scores, axis=-1, keepdims=True)
    weights = np.exp(scores - np.where(np.isfinite(top), top, 0.0))  # exp(-inf) = 0
    total = np.sum(weights, axis=-1, keepdims=True)
    return weights / np.where(total > 0, total, 1.0)


def plain_kernel(q, k, v, q_global, k_global, v_global, attention_mask, one_sided_window, dilation=None,
                 autoregressive=False, bug=None):
    """Longformer attention in the layout of transformers (see ledref.testing), with an optional bug."""
    if q.dtype.name == "bfloat16":  # NumPy cannot multiply bfloat16: compute in float32, return bfloat16
        tensors = (a.astype(np.float32) for a in (q, k, v, q_global, k_global, v_global))
        out = plain_kernel(*tensors, attention_mask, one_sided_window, dilation, autoregressive, bug)
        return tuple(None if a is None else a.astype(q.dtype) for a in out)
    b, h, length, d = q.shape
    w, mask = one_sided_window, np.asarray(attention_mask)
    rows = np.arange(b)[:, None]
    rates = np.asarray(dilation if dilation is not None else [1] * h)  # [H]
    if bug == "dilation_first_head_only":
        rates = np.full(h, rates[0])

    # global slots: the row's global positions in order, padded with 0; `used` marks real slots
    counts = np.sum(mask == 2, axis=1)  # [B]
    x = int(counts.max())
    positions = np.zeros((b, x), dtype=np.int64)
    for r in range(b):
        positions[r, :counts[r]] = np.flatnonzero(mask[r] == 2)
    used = np.arange(x)[None, :] < counts[:, None]  # [B, x]

    # band: column c of query i in head h is key i + r_h (c - w)
    shift = 1 if bug == "band_shifted" else 0
    columns = np.arange(-w, w + 1)
    keys = np.arange(length)[None, :, None] + rates[:, None, None] * columns[None, None, :] + shift  # [H, L, 2w+1]
    inside = (keys >= 0) & (keys < length)
    if autoregressive:
        inside &= columns <= (1 if bug == "autoregressive_one_ahead" else 0)
    keys = np.clip(keys, 0, length - 1)
    batch_index, head_index = np.arange(b)[:, None, None, None], np.arange(h)[None, :, None, None]
    key_kind = mask[batch_index, keys[None]]  # [B, H, L, 2w+1]
    band_key = inside & ((key_kind != 0) if bug == "global_keys_in_band" else (key_kind == 1))

    k_band = k[batch_index, head_index, keys[None]]  # [B, H, L, 2w+1, d]
    v_band = v[batch_index, head_index, keys[None]]
    band_scores = np.einsum("bhid,bhicd->bhic", q, k_band)  # [B, H, L, 2w+1]
    k_at_globals = k[rows, :, positions].transpose(0, 2, 1, 3)  # [B, H, x, d]
    v_at_globals = v[rows, :, positions].transpose(0, 2, 1, 3)
    global_scores = q @ k_at_globals.transpose(0, 1, 3, 2)  # [B, H, L, x]
    scores = np.concatenate([global_scores, band_scores], axis=-1)  # [B, H, L, x + 2w + 1]
    allowed = np.concatenate([np.broadcast_to(used[:, None, None, :], global_scores.shape),
                              np.broadcast_to(band_key, band_scores.shape)], axis=-1)
    probs = softmax_allowed(scores, allowed)
    out = probs[..., :x] @ v_at_globals + np.einsum("bhic,bhicd->bhid", probs[..., x:], v_band)  # [B, H, L, d]

    # global queries: every non-pad key, with the global projections
    global_probs = None
    if x:
        qg = q_global[rows, :, positions].transpose(0, 2, 1, 3)  # [B, H, x, d]
        gscores = qg @ k_global.transpose(0, 1, 3, 2)  # [B, H, x, L]
        gprobs = softmax_allowed(gscores, np.broadcast_to((mask != 0)[:, None, None, :], gscores.shape))
        filler = 0.0 if bug == "filler_slots_zero" else 1.0 / length
        gprobs = np.where(used[:, None, :, None], gprobs, filler)
        gout = gprobs @ v_global  # [B, H, x, d]
        for r in range(b):
            out[r, :, positions[r, :counts[r]]] = gout[r, :, :counts[r]].transpose(1, 0, 2)
        global_probs = gprobs.transpose(0, 1, 3, 2)  # [B, H, L, x]

    zero_rows = (mask == 2) if bug == "pad_rows_not_zeroed" else (mask != 1)  # global or pad queries
    local_probs = np.where(zero_rows[:, None, :, None], 0.0, probs)
    if bug != "pad_rows_not_zeroed":
        out = np.where((mask == 0)[:, None, :, None], 0.0, out)
    return out, local_probs, global_probs


def global_keys_in_band(*args):
    """Bug 1: global keys are not removed from the window."""
    return plain_kernel(*args, bug="global_keys_in_band")


def pad_rows_not_zeroed(*args):
    """Bug 2: the output and local_probs rows of pad queries are left as computed."""
    return plain_kernel(*args, bug="pad_rows_not_zeroed")


def band_shifted(*args):
    """Bug 3: the band is off by one column (self at x + w - 1)."""
    return plain_kernel(*args, bug="band_shifted")


def filler_slots_zero(*args):
    """Bug 4: global slots a row does not use are 0 instead of uniform 1/L."""
    return plain_kernel(*args, bug="filler_slots_zero")


def dilation_first_head_only(*args, dilation=None, autoregressive=False):
    """Bug 5: every head gets the first head's dilation."""
    return plain_kernel(*args, dilation=dilation, autoregressive=autoregressive, bug="dilation_first_head_only")


def autoregressive_one_ahead(*args, dilation=None, autoregressive=False):
    """Bug 6: an autoregressive window also sees the next token (column x + w + 1)."""
    return plain_kernel(*args, dilation=dilation, autoregressive=autoregressive, bug="autoregressive_one_ahead")
