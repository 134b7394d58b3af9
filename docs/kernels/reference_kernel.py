"""ledref's own fast band kernel (ledref.fast), in the signature `ledref conformance` checks; it must pass:

    ledref conformance docs/kernels/reference_kernel.py:kernel
"""

from ledref.fast.attention import longformer_attention


def kernel(q, k, v, q_global, k_global, v_global, attention_mask, one_sided_window):
    """The chunked band kernel of ledref.fast.   [B, H, L, d] x 6, mask [B, L], w ->
    (output [B, H, L, d], local_probs [B, H, L, x + 2w + 1], global_probs [B, H, L, x] or None)."""
    return longformer_attention(q, k, v, q_global, k_global, v_global, attention_mask, one_sided_window)
