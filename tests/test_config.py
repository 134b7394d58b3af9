"""LEDConfig reads what transformers writes, with the same derived values."""

import pytest

import ledref
from conftest import require


@pytest.mark.parametrize("overrides", [dict(attention_window=8), dict(attention_window=[4, 8], encoder_layers=2),
                                       dict(num_labels=5), dict(d_model=32, encoder_attention_heads=4)])
def test_config_matches_transformers(overrides, tmp_path):
    transformers = require("transformers")
    theirs = transformers.LEDConfig(**overrides)
    theirs.save_pretrained(tmp_path)
    ours = ledref.LEDConfig.from_pretrained(tmp_path)
    window = theirs.attention_window
    assert ours.attention_window == (window if isinstance(window, list) else [window] * theirs.encoder_layers)
    for name in ("vocab_size", "d_model", "hidden_size", "num_attention_heads", "num_hidden_layers",
                 "encoder_layers", "decoder_layers", "encoder_ffn_dim", "decoder_ffn_dim", "pad_token_id",
                 "eos_token_id", "decoder_start_token_id", "max_encoder_position_embeddings",
                 "max_decoder_position_embeddings", "activation_function", "num_labels"):
        assert getattr(ours, name) == getattr(theirs, name), name


def test_aliases_and_extra_fields():
    config = ledref.LEDConfig.from_dict({"hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 2,
                                         "encoder_attention_heads": 4, "attention_window": 16, "dropout": 0.1,
                                         "id2label": {"0": "a", "1": "b", "2": "c"}})
    assert (config.d_model, config.encoder_layers, config.attention_window) == (32, 2, [16, 16])
    assert config.num_labels == 3 and config.extra["dropout"] == 0.1
    assert config.to_dict()["dropout"] == 0.1
    with pytest.raises(ledref.ConfigError, match=r"hidden_size=32 and d_model=64 disagree"):
        ledref.LEDConfig.from_dict({"hidden_size": 32, "d_model": 64})
