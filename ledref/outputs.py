"""Output records with transformers' field names. Fields not computed are None."""

from dataclasses import dataclass, fields


class ModelOutput:
    """Attribute access, `out["name"]`, and `to_tuple()` (the non-None fields, in order), as transformers."""

    def __getitem__(self, name):
        if not isinstance(name, str):
            return self.to_tuple()[name]
        return getattr(self, name)

    def keys(self):
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def to_tuple(self):
        return tuple(getattr(self, k) for k in self.keys())


@dataclass
class LEDEncoderBaseModelOutput(ModelOutput):
    last_hidden_state: object = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None
    global_attentions: tuple | None = None


@dataclass
class LEDSeq2SeqModelOutput(ModelOutput):
    last_hidden_state: object = None
    past_key_values: tuple | None = None
    decoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    encoder_last_hidden_state: object = None
    encoder_hidden_states: tuple | None = None
    encoder_attentions: tuple | None = None
    encoder_global_attentions: tuple | None = None


@dataclass
class LEDSeq2SeqLMOutput(ModelOutput):
    loss: object = None
    logits: object = None
    past_key_values: tuple | None = None
    decoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    encoder_last_hidden_state: object = None
    encoder_hidden_states: tuple | None = None
    encoder_attentions: tuple | None = None
    encoder_global_attentions: tuple | None = None


@dataclass
class LEDSeq2SeqSequenceClassifierOutput(LEDSeq2SeqLMOutput):
    pass


@dataclass
class LEDSeq2SeqQuestionAnsweringModelOutput(ModelOutput):
    loss: object = None
    start_logits: object = None
    end_logits: object = None
    past_key_values: tuple | None = None
    decoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    encoder_last_hidden_state: object = None
    encoder_hidden_states: tuple | None = None
    encoder_attentions: tuple | None = None
    encoder_global_attentions: tuple | None = None
