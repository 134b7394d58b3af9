"""Output records with transformers' field names and order. Fields not computed are None."""

from dataclasses import field, fields, make_dataclass


class ModelOutput:
    """Attribute access, `out["name"]`, and `to_tuple()` (the non-None fields, in order), as transformers."""

    def __getitem__(self, name):
        if not isinstance(name, str):
            return self.to_tuple()[name]
        return getattr(self, name)

    def keys(self):
        """The names of the fields that are not None, in order."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def to_tuple(self):
        """The values of the fields that are not None, in order."""
        return tuple(getattr(self, k) for k in self.keys())


# what every encoder-decoder output carries after its own leading fields
SEQ2SEQ_FIELDS = ("past_key_values", "decoder_hidden_states", "decoder_attentions", "cross_attentions",
                  "encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions",
                  "encoder_global_attentions")


def _record(name, names, doc):
    cls = make_dataclass(name, [(n, object, field(default=None)) for n in names], bases=(ModelOutput,))
    cls.__doc__ = doc
    cls.__module__ = __name__
    return cls


LEDEncoderBaseModelOutput = _record(
    "LEDEncoderBaseModelOutput", ("last_hidden_state", "hidden_states", "attentions", "global_attentions"),
    "Encoder output: last_hidden_state [B, L, D]; per layer hidden_states [B, L, D] (embeddings first), "
    "attentions [B, H, L, x + W + 1], global_attentions [B, H, Lp, x] (None without global tokens).")
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


def as_encoder_output(encoder_outputs):
    """encoder_outputs as transformers accepts them: the output record, a tuple led by the last hidden
    state, or that array alone."""
    if isinstance(encoder_outputs, LEDEncoderBaseModelOutput):
        return encoder_outputs
    if isinstance(encoder_outputs, (tuple, list)) and not encoder_outputs:
        from .errors import InputError
        raise InputError("encoder_outputs is empty; expected the encoder's output (or a tuple led by its last "
                         "hidden state)")
    first = encoder_outputs[0] if isinstance(encoder_outputs, (tuple, list)) else encoder_outputs
    return LEDEncoderBaseModelOutput(last_hidden_state=first)
