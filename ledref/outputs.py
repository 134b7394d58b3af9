"""Output records with transformers' field names and order. Fields not computed are None."""

from collections.abc import Mapping
from dataclasses import field, fields, make_dataclass


class ModelOutput(Mapping):
    """An output record that behaves as transformers' ModelOutput: attributes, and a mapping over the
    fields that are set (not None), in field order.

    `out.logits` and `out["logits"]` are the same array; `"logits" in out`, `len(out)`, `list(out)` (the
    names), `keys()`, `values()`, `items()` and `get()` see only the fields that are set; `out[0]` and
    `out[1:]` index `to_tuple()`, the values of those fields in order, which is what a forward call with
    `return_dict=False` returns. A field set to an array after construction joins the mapping.
    """

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self._names() or getattr(self, key) is None:
                raise KeyError(key)
            return getattr(self, key)
        return self.to_tuple()[key]

    def __iter__(self):
        return iter(self._set_names())

    def __len__(self):
        return len(self._set_names())

    def __contains__(self, key):
        return isinstance(key, str) and key in self._set_names()

    def to_tuple(self):
        """The values of the fields that are not None, in order."""
        return tuple(getattr(self, name) for name in self._set_names())

    @classmethod
    def _names(cls):
        return [f.name for f in fields(cls)]

    def _set_names(self):
        return [name for name in self._names() if getattr(self, name) is not None]

    __hash__ = None  # type: ignore[assignment]  # a record of arrays: not hashable, as a dict


# what every encoder-decoder output carries after its own leading fields
SEQ2SEQ_FIELDS = ("past_key_values", "decoder_hidden_states", "decoder_attentions", "cross_attentions",
                  "encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions",
                  "encoder_global_attentions")
ENCODER_FIELDS = ("last_hidden_state", "hidden_states", "attentions", "global_attentions")


def _record(name, names, doc):
    # eq=False: comparing records of arrays field by field has no single truth value
    cls = make_dataclass(name, [(n, object, field(default=None)) for n in names], bases=(ModelOutput,), eq=False)
    cls.__doc__ = doc
    cls.__module__ = __name__
    return cls


LEDEncoderBaseModelOutput = _record(
    "LEDEncoderBaseModelOutput", ENCODER_FIELDS,
    "Encoder output: last_hidden_state [B, L, D]; per layer hidden_states [B, L, D] (embeddings first), "
    "attentions [B, H, L, x + W + 1], global_attentions [B, H, Lp, x] (None without global tokens).")
BaseModelOutputWithPastAndCrossAttentions = _record(
    "BaseModelOutputWithPastAndCrossAttentions",
    ("last_hidden_state", "past_key_values", "hidden_states", "attentions", "cross_attentions"),
    "Decoder output (`model.get_decoder()(...)`): last_hidden_state [B, T, D]; past_key_values per layer "
    "(self k, self v, cross k, cross v); per layer hidden_states (embeddings first), attentions [B, H, T, "
    "past + T] and cross_attentions [B, H, T, L].")
LEDSeq2SeqModelOutput = _record(
    "LEDSeq2SeqModelOutput", ("last_hidden_state",) + SEQ2SEQ_FIELDS,
    "LEDModel output: last_hidden_state is the decoder's [B, T, D].")
LEDSeq2SeqLMOutput = _record(
    "LEDSeq2SeqLMOutput", ("loss", "logits") + SEQ2SEQ_FIELDS,
    "LEDForConditionalGeneration output: logits [B, T, V].")
LEDSeq2SeqSequenceClassifierOutput = _record(
    "LEDSeq2SeqSequenceClassifierOutput", ("loss", "logits") + SEQ2SEQ_FIELDS,
    "LEDForSequenceClassification output: logits [B, num_labels].")
LEDSeq2SeqQuestionAnsweringModelOutput = _record(
    "LEDSeq2SeqQuestionAnsweringModelOutput", ("loss", "start_logits", "end_logits") + SEQ2SEQ_FIELDS,
    "LEDForQuestionAnswering output: start_logits and end_logits [B, T].")


# what generate returns besides its sequences and scores: the encoder's outputs once, the decoder's per step
GENERATE_FIELDS = ("encoder_attentions", "encoder_hidden_states", "decoder_attentions", "cross_attentions",
                   "decoder_hidden_states", "encoder_global_attentions")
GenerateEncoderDecoderOutput = _record(
    "GenerateEncoderDecoderOutput", ("sequences", "scores", "logits") + GENERATE_FIELDS,
    "`generate(..., return_dict_in_generate=True)` for greedy search and sampling, transformers' fields: "
    "sequences [N, T] (N = B * num_return_sequences; NumPy); with output_scores, scores, one [N, V] float32 "
    "NumPy array per step of the processed scores the token was chosen from; with output_logits, logits, the "
    "raw ones. With output_attentions: encoder_attentions per layer [B, H, L, x + W + 1] and "
    "encoder_global_attentions per layer [B, H, Lp, x] (ledref keeps LED's global rows, which transformers' "
    "generate drops; None without global tokens) once, and per step a tuple over decoder layers of "
    "decoder_attentions [N, H, t, past + t] and cross_attentions [N, H, t, L] (t = 1 with the cache); with "
    "output_hidden_states, encoder_hidden_states once and decoder_hidden_states per step (embeddings first, "
    "[N, t, D]). Attentions and hidden states are arrays of the model's backend.")
GenerateBeamEncoderDecoderOutput = _record(
    "GenerateBeamEncoderDecoderOutput",
    ("sequences", "sequences_scores", "scores", "logits", "beam_indices") + GENERATE_FIELDS,
    "`generate(..., return_dict_in_generate=True)` for beam search (and beam sampling), transformers' fields: "
    "sequences [N, T] (N = B * num_return_sequences); beam_indices [N, T - 1], the flat beam (row * "
    "num_beams + beam) each token was chosen from at every step, -1 past the end; with output_scores, "
    "sequences_scores [N] (the length-penalised sum of log-probabilities) and scores, one [B * num_beams, V] "
    "array per step of the processed log-probabilities; the rest as GenerateEncoderDecoderOutput, per step "
    "over the B * num_beams running beams in the order of that step.")


def as_encoder_output(encoder_outputs):
    """encoder_outputs as transformers accepts them: the output record, or a tuple (what the encoder
    returns with return_dict=False: last hidden state, then hidden states, attentions, global attentions
    as far as given), or the last hidden state alone."""
    if isinstance(encoder_outputs, LEDEncoderBaseModelOutput):
        return encoder_outputs
    if isinstance(encoder_outputs, (tuple, list)) and not encoder_outputs:
        from .errors import InputError
        raise InputError("encoder_outputs is empty; expected the encoder's output (or a tuple led by its last "
                         "hidden state)")
    if isinstance(encoder_outputs, (tuple, list)):
        return LEDEncoderBaseModelOutput(**dict(zip(ENCODER_FIELDS, encoder_outputs, strict=False)))
    return LEDEncoderBaseModelOutput(last_hidden_state=encoder_outputs)
