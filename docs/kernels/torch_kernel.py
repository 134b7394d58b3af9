"""A Longformer attention kernel in torch, for any float dtype, with dilation and autoregressive windows:

    ledref conformance docs/kernels/torch_kernel.py:longformer_attention --framework torch --dtype bfloat16

It computes the way transformers runs LED in a low-precision dtype: the products in the tensors' dtype
(torch accumulates them in float32), the masked scores' softmax in float32 (float64 for float64), the
probabilities rounded back to the dtype before they meet the values. It is written from the rule (an L x L
mask per head, then the band and the global columns gathered into transformers' layout), independently of
ledref's code, so its errors show what a correct kernel of each dtype gets: scripts/measure_tolerances.py
measures them.
"""

import torch


def longformer_attention(q, k, v, q_global, k_global, v_global, attention_mask, one_sided_window, dilation=None,
                         autoregressive=False):
    """torch tensors [B, H, L, d] (queries scaled), merged mask [B, L] (0 pad, 1 local, 2 global), w ->
    (output [B, H, L, d], local_probs [B, H, L, x + 2w + 1], global_probs [B, H, L, x] or None)."""
    b, h, length, _ = q.shape
    w, mask, dtype, dev = one_sided_window, attention_mask, q.dtype, q.device
    most_negative = torch.finfo(dtype).min
    rates = torch.tensor(dilation if dilation is not None else [1] * h, device=dev)[:, None, None]  # [H, 1, 1]
    i = torch.arange(length, device=dev)
    offset = i[None, :] - i[:, None]  # [L, L]: key minus query
    near = (offset.abs() <= w * rates) & (offset % rates == 0)  # [H, L, L]
    if autoregressive:
        near = near & (offset <= 0)
    local, is_global = mask == 1, mask == 2
    allowed = (near[None] & local[:, None, None, :]) | is_global[:, None, None, :]  # [B, H, L, L]

    def attend(queries, keys, values, allowed):
        scores = (queries @ keys.transpose(-1, -2)).masked_fill(~allowed, most_negative)
        probs = torch.softmax(scores, dim=-1, dtype=torch.promote_types(dtype, torch.float32)).to(dtype)
        return probs @ values, probs

    out, probs = attend(q, k, v, allowed)  # local rows
    out_global, probs_global = attend(q_global, k_global, v_global, (mask != 0)[:, None, None, :])
    out = torch.where(is_global[:, None, :, None], out_global, out)
    out = torch.where((mask == 0)[:, None, :, None], torch.zeros((), dtype=dtype, device=dev), out)

    # transformers' layout: band column c of query i is key i + r (c - w), only where that key is local
    columns = torch.arange(2 * w + 1, device=dev)
    keys = i[None, :, None] + rates * (columns[None, None, :] - w)  # [H, L, 2w+1]
    inside = (keys >= 0) & (keys < length)
    if autoregressive:
        inside = inside & (columns <= w)
    keys = keys.clamp(0, length - 1)
    band = torch.gather(probs, 3, keys[None].expand(b, h, length, 2 * w + 1))
    band_key = inside[None] & torch.gather(local[:, None, None, :].expand(b, h, length, length), 3,
                                           keys[None].expand(b, h, length, 2 * w + 1))
    band = torch.where(band_key, band, torch.zeros((), dtype=dtype, device=dev))

    counts = is_global.sum(dim=1)  # [B]
    x = int(counts.max())
    global_probs = None
    if x:
        positions = torch.zeros(b, x, dtype=torch.long, device=dev)
        for row in range(b):
            positions[row, :int(counts[row])] = torch.nonzero(is_global[row]).flatten()
        used = torch.arange(x, device=dev)[None, :] < counts[:, None]  # [B, x]
        at = positions[:, None, None, :].expand(b, h, length, x)
        zero = torch.zeros((), dtype=dtype, device=dev)
        slots = torch.where(used[:, None, None, :], torch.gather(probs, 3, at), zero)
        band = torch.cat([slots, band], dim=-1)
        rows = torch.gather(probs_global, 2, positions[:, None, :, None].expand(b, h, x, length))  # [B, H, x, L]
        rows = torch.where(used[:, None, :, None], rows, torch.full((), 1.0 / length, dtype=dtype, device=dev))
        global_probs = rows.transpose(-1, -2)
    local_probs = torch.where((mask != 1)[:, None, :, None], torch.zeros((), dtype=dtype, device=dev), band)
    return out, local_probs, global_probs
