"""ledref's fast path: the same forward pass as `ledref.reference`, arranged for speed.

Everything that exists only for speed lives here, each trick documented once in the module that holds it,
with the reference function it replaces named:

- `runtime`: threads, buffers shared by the layers, chunk sizes, NumPy's hugepage advice;
- `functional`: products into given buffers, in-place layer norms and the exact GELU, row chunks;
- `attention`: the chunked band kernel, fused q/k/v, the factored global rows;
- `model`: the encoder built on them, and the decoder's cross-attention cache.

The fast path may import the reference; the reference never imports it. tests/test_fast_equals_reference.py
proves the two equal (float64, <= 1e-10, random shapes, windows, masks and global sets); tests/test_fast.py
tests the parts.
"""

from .model import decoder, encoder

__all__ = ["encoder", "decoder"]
