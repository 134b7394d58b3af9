"""ledref's reference: the LED forward pass written as the spec, in plain functions. Read it in this order,
beside Beltagy et al. 2020 (Longformer):

1. `functional`: linear, layer norm, softmax, the activations (the exact GELU by an erfc of our own).
2. `band`: the band layout of sliding-window scores, [L, 2w+1], and the block reshapes that compute it.
3. `attention`: the rule of Longformer attention as L x L masks (`dense_local`), the same from the band
   (`band_local`), the global rows, and the decoder's attention.
4. `model`: embeddings, encoder and decoder layers, the encoder, the decoder, the LM head.

Nothing here exists for speed (no reused buffers, nothing parallel or in place, no branch on the array
library): any Array API library's arrays in, the same library's out. `ledref.fast` is proven equal to it.
"""

from .attention import global_slots, longformer_attention, self_attention
from .model import decoder, encoder, lm_head

__all__ = ["encoder", "decoder", "lm_head", "self_attention", "longformer_attention", "global_slots"]
