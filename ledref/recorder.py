"""Capturing the intermediates of a forward pass by name.

    recorder = Recorder()
    model(input_ids, ..., recorder=recorder)
    recorder.tensors["encoder.layers.0.band_scores_masked"]

Names: encoder.embeddings; encoder.layers.<i>.{q, k, v, band_scores, band_scores_masked, q_global, k_global,
v_global, local_probs, global_probs, attention_output, output}; decoder.embeddings;
decoder.layers.<i>.{self_attn_probs, cross_attn_probs, output}; logits. q and q_global are already divided
by sqrt(d); q_global holds the global slots' rows [B, H, x, d]; band scores are [B, H, Lp, 2w+1] at the
padded length (pad, global and out-of-range keys at the dtype's finfo.min after masking); local_probs and
global_probs are in transformers' layout at the padded length. The model code calls a recorder only
where one is given; nothing is kept otherwise.
"""

import fnmatch

from .checks import short
from .errors import InputError


class Recorder:
    """Collects named arrays. `only`: an fnmatch pattern (or list of them) of the names to keep."""

    def __init__(self, only=None):
        patterns = [only] if isinstance(only, str) else list(only) if isinstance(only, (list, tuple)) else only
        if patterns is not None and (not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns)):
            raise InputError(f"only={short(only)}; expected an fnmatch pattern (str), a list of them, or None")
        self.only = patterns
        self.tensors = {}

    def __call__(self, name, value):
        if self.only is None or any(fnmatch.fnmatchcase(name, p) for p in self.only):
            self.tensors[name] = value

    def __bool__(self):
        return True

    def scope(self, prefix):
        """A callable that records under `prefix.`: what the layers receive."""
        return lambda name, value: self(f"{prefix}.{name}", value)
