"""Kernels with one planted bug each, for trying out `ledref conformance`:

    ledref conformance docs/kernels/buggy_kernels.py:global_keys_in_band      # fails
    ledref conformance docs/kernels/buggy_kernels.py:plain_kernel             # the same code, no bug: passes

`plain_kernel` is a small, independent NumPy implementation of Longformer attention that builds the band
layout directly: for every query i it gathers the keys i-w..i+w (clipped at the edges) and masks the
columns that are out of range, pad or global. The buggy kernels call it with one mistake switched on:

- global_keys_in_band   keeps global keys in the window (they are then counted twice: once in the global
                        columns, once in the band);
- pad_rows_not_zeroed   forgets to zero the output and probabilities of pad queries;
- band_shifted          reads column c as key i + c - w + 1, so the token itself sits at x + w - 1;
- filler_slots_zero     leaves the global slots a row does not use at 0 instead of uniform 1/L.
"""

import numpy as np


def softmax_allowed(scores, allowed):
    """Softmax over the allowed entries of the last axis; rows with none allowed are all zero."""
    scores = np.where(allowed, scores, -np.inf)
    top = np.max(scores, axis=-1, keepdims=True)
    weights = np.exp(scores - np.where(np.isfinite(top), top, 0.0))  # exp(-inf) = 0
    total = np.sum(weights, axis=-1, keepdims=True)
    return weights / np.where(total > 0, total, 1.0)


def plain_kernel(q, k, v, q_global, k_global, v_global, attention_mask, one_sided_window, bug=None):
    """Longformer attention in the layout of transformers (see ledref.testing), with an optional bug."""
    b, h, length, d = q.shape
    w, mask = one_sided_window, np.asarray(attention_mask)
    rows = np.arange(b)[:, None]

    # global slots: the row's global positions in order, padded with 0; `used` marks real slots
    counts = np.sum(mask == 2, axis=1)  # [B]
    x = int(counts.max())
    positions = np.zeros((b, x), dtype=np.int64)
    for r in range(b):
        positions[r, :counts[r]] = np.flatnonzero(mask[r] == 2)
    used = np.arange(x)[None, :] < counts[:, None]  # [B, x]

    # band: column c of query i is key i + c - w
    shift = 1 if bug == "band_shifted" else 0
    keys = np.arange(length)[:, None] + np.arange(-w, w + 1)[None, :] + shift  # [L, 2w+1]
    inside = (keys >= 0) & (keys < length)
    keys = np.clip(keys, 0, length - 1)
    key_kind = mask[:, keys]  # [B, L, 2w+1]
    band_key = inside & ((key_kind != 0) if bug == "global_keys_in_band" else (key_kind == 1))

    k_band, v_band = k[:, :, keys], v[:, :, keys]  # [B, H, L, 2w+1, d]
    band_scores = np.einsum("bhid,bhicd->bhic", q, k_band)  # [B, H, L, 2w+1]
    k_at_globals = k[rows, :, positions].transpose(0, 2, 1, 3)  # [B, H, x, d]
    v_at_globals = v[rows, :, positions].transpose(0, 2, 1, 3)
    global_scores = q @ k_at_globals.transpose(0, 1, 3, 2)  # [B, H, L, x]
    scores = np.concatenate([global_scores, band_scores], axis=-1)  # [B, H, L, x + 2w + 1]
    allowed = np.concatenate([np.broadcast_to(used[:, None, None, :], global_scores.shape),
                              np.broadcast_to(band_key[:, None], band_scores.shape)], axis=-1)
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
