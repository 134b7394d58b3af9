"""Capturing the intermediates of a forward pass by name.

    recorder = Recorder()
    model(input_ids, ..., recorder=recorder)
    recorder.tensors["encoder.layers.0.band_scores_masked"]

Names: encoder.embeddings; encoder.layers.<i>.{q, k, v, band_scores, band_scores_masked, q_global, k_global,
v_global, local_probs, global_probs, attention_output, output}; decoder.embeddings;
decoder.layers.<i>.{self_attn_probs, cross_attn_probs, output}; logits. q and q_global are already divided
by sqrt(d); q_global holds the global slots' rows [B, H, x, d]; band scores are [B, H, Lp, 2w+1] at the
padded length (pad, global and out-of-range keys at -inf after masking, which compares equal in every
dtype); local_probs and global_probs are in transformers' layout at the padded length.

Only what `only` keeps is computed for the record: the band scores, which the forward pass itself never
makes in full, are made only when one of them is wanted; with attn_implementation="band", a layer with
nothing wanted runs the fast path and records nothing, and a layer with something wanted runs the
reference (`ledref.reference`), which names every intermediate. `Recorder(only="encoder.layers.5.*")`
thus costs the fast pass plus one reference layer. Its record is then the reference's arithmetic on
inputs from fast layers: equal to an all-reference run within the fast path's proven 1e-10 (float64),
not bit for bit; `Recorder()` (everything wanted, as `ledref golden` uses) runs the reference alone.
"""

import fnmatch

from .checks import short
from .errors import InputError

ENCODER_LAYER_NAMES = ("q", "k", "v", "band_scores", "band_scores_masked", "q_global", "k_global", "v_global",
                       "local_probs", "global_probs", "attention_output", "output")
DECODER_LAYER_NAMES = ("self_attn_probs", "cross_attn_probs", "output")


class Recorder:
    """Collects named arrays. `only`: an fnmatch pattern (or list of them) of the names to keep."""

    def __init__(self, only=None):
        patterns = [only] if isinstance(only, str) else list(only) if isinstance(only, (list, tuple)) else only
        if patterns is not None and (not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns)):
            raise InputError(f"only={short(only)}; expected an fnmatch pattern (str), a list of them, or None")
        self.only = patterns
        self.tensors = {}

    def wants(self, name):
        """Whether an array of this name would be kept: asked before making one that exists only for the
        record."""
        return self.only is None or any(fnmatch.fnmatchcase(name, p) for p in self.only)

    def wants_layer(self, prefix, names):
        """Whether any of `prefix.<name>` for the names of a layer would be kept."""
        return any(self.wants(f"{prefix}.{name}") for name in names)

    def wants_decoder(self, n_layers):
        """Whether anything the decoder records (its embeddings, any of its layers' names) would be kept."""
        return self.wants("decoder.embeddings") or any(self.wants_layer(f"decoder.layers.{i}", DECODER_LAYER_NAMES)
                                                       for i in range(n_layers))

    def __call__(self, name, value):
        if self.wants(name):
            self.tensors[name] = value

    def __bool__(self):
        return True

    def scope(self, prefix):
        """What the layers receive: a callable that records under `prefix.`, with `wants(name)`."""
        return Scope(self, prefix)


class Scope:
    """The recorder seen from inside one layer: names are relative to `prefix`."""

    def __init__(self, recorder, prefix):
        self.recorder, self.prefix = recorder, prefix

    def __call__(self, name, value):
        self.recorder(f"{self.prefix}.{name}", value)

    def wants(self, name):
        """Whether `prefix.name` would be kept."""
        return self.recorder.wants(f"{self.prefix}.{name}")

    def __bool__(self):
        return True
