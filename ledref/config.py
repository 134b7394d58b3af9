"""LEDConfig: the fields of a transformers `config.json` that the forward pass uses, validated."""

import json
import os
from dataclasses import dataclass, field, fields

from .checks import check_path, is_int, make_directory, read_json, short
from .errors import CheckpointNotFoundError, ConfigError
from .reference.functional import ACTIVATIONS

# the forward arguments' defaults; the last three are omitted from config.json at these values, as transformers does
FLAGS = {"use_cache": True, "output_attentions": False, "output_hidden_states": False, "return_dict": True}

# transformers' LEDConfig.attribute_map: alias -> field
ALIASES = {
    "hidden_size": "d_model",
    "num_attention_heads": "encoder_attention_heads",
    "num_hidden_layers": "encoder_layers",
    "attention_probs_dropout_prob": "attention_dropout",
    "initializer_range": "init_std",
}

# the largest value taken as plausible for each size: far above any LED (or any model of this kind) there is,
# low enough that nothing built from a config (the per-layer windows, the expected keys) can take more than
# a moment; the weight files' headers then say what the checkpoint really holds (checkpoint.check_config)
LIMITS = {"vocab_size": 2 ** 24, "d_model": 2 ** 16, "encoder_layers": 4096, "decoder_layers": 4096,
          "encoder_attention_heads": 2 ** 16, "decoder_attention_heads": 2 ** 16, "encoder_ffn_dim": 2 ** 20,
          "decoder_ffn_dim": 2 ** 20, "max_encoder_position_embeddings": 2 ** 24,
          "max_decoder_position_embeddings": 2 ** 24, "num_labels": 2 ** 24}


@dataclass
class LEDConfig:
    """Model shape and special tokens, with transformers' defaults (those of led-large-16384).

    `attention_window` is always a list, one even window per encoder layer, after construction.
    Fields transformers writes but the forward pass does not use (dropouts, init_std, ...) are kept
    in `extra` so that `to_dict()` gives back what was read. Sizes are checked for plausibility (`LIMITS`)
    before anything is built from them; a ConfigError names the first field that is wrong.

    `use_cache`, `output_attentions`, `output_hidden_states` and `return_dict` are what a forward call
    does with the argument of that name left at None, as in transformers: set
    `model.config.output_attentions = True` and every call returns attentions.
    """

    vocab_size: int = 50265
    d_model: int = 1024
    encoder_layers: int = 12
    decoder_layers: int = 12
    encoder_attention_heads: int = 16
    decoder_attention_heads: int = 16
    encoder_ffn_dim: int = 4096
    decoder_ffn_dim: int = 4096
    activation_function: str = "gelu"
    max_encoder_position_embeddings: int = 16384
    max_decoder_position_embeddings: int = 1024
    attention_window: int | list = 512  # a list, one window per encoder layer, once constructed
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2
    decoder_start_token_id: int = 2
    num_labels: int = 2
    problem_type: str | None = None
    # transformers' defaults of the forward arguments left at None
    use_cache: bool = True
    output_attentions: bool = False
    output_hidden_states: bool = False
    return_dict: bool = True
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        for name, limit in LIMITS.items():
            _check_int(name, getattr(self, name), minimum=1, maximum=limit)
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            _check_int(name, getattr(self, name), minimum=0, below=self.vocab_size)
        for name in ("encoder_attention_heads", "decoder_attention_heads"):
            if self.d_model % getattr(self, name):
                raise ConfigError(f"config field d_model={self.d_model} is not divisible by "
                                  f"{name}={getattr(self, name)}; expected d_model to be a multiple of it")
        if not isinstance(self.activation_function, str) or self.activation_function not in ACTIVATIONS:
            raise ConfigError(f"config field activation_function={short(self.activation_function)} is not "
                              f"supported; expected one of {sorted(ACTIVATIONS)}")
        window = self.attention_window
        if isinstance(window, int) and not isinstance(window, bool):
            _check_window("attention_window", window)
            window = [window] * self.encoder_layers
        elif isinstance(window, (list, tuple)):
            if len(window) != self.encoder_layers:
                raise ConfigError(f"config field attention_window has {len(window)} entries; expected one per "
                                  f"encoder layer, encoder_layers={self.encoder_layers}")
            for i, w in enumerate(window):
                _check_window(f"attention_window[{i}]", w)
            window = list(window)
        else:
            raise ConfigError(f"config field attention_window={short(window)}; expected an even positive int "
                              f"or a list of them, one per encoder layer")
        self.attention_window = window
        for name in FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"config field {name}={short(getattr(self, name))}; expected true or false")
        if self.problem_type is not None and (not isinstance(self.problem_type, str) or self.problem_type not in (
                "regression", "single_label_classification", "multi_label_classification")):
            raise ConfigError(f"config field problem_type={short(self.problem_type)} is not one of regression, "
                              f"single_label_classification, multi_label_classification")
        if not isinstance(self.extra, dict):
            raise ConfigError(f"extra={short(self.extra)}; expected a dict of the config's other fields")

    # transformers' attribute aliases
    hidden_size = property(lambda self: self.d_model, doc="`d_model`, under transformers' generic name.")
    num_attention_heads = property(lambda self: self.encoder_attention_heads,
                                   doc="`encoder_attention_heads`, under transformers' generic name.")
    num_hidden_layers = property(lambda self: self.encoder_layers,
                                 doc="`encoder_layers`, under transformers' generic name.")

    @property
    def max_attention_window(self):
        """The length inputs are padded to a multiple of (the largest layer window)."""
        return max(self.attention_window)

    @classmethod
    def from_dict(cls, d):
        """Build from a dict as in config.json; aliases are accepted, unknown fields kept in `extra`."""
        if not isinstance(d, dict):
            raise ConfigError(f"config is a {type(d).__name__}; expected a dict of config fields")
        d = dict(d)
        if d.get("model_type", "led") != "led":
            raise ConfigError(f"config field model_type={short(d['model_type'])}; expected 'led'")
        for alias, name in ALIASES.items():
            if alias in d:
                value = d.pop(alias)
                if name in d and d[name] != value:
                    raise ConfigError(f"config fields {alias}={short(value)} and {name}={short(d[name])} disagree")
                d[name] = value
        if "id2label" in d:
            if not isinstance(d["id2label"], (dict, list)):
                raise ConfigError(f"config field id2label={short(d['id2label'])}; expected an object of "
                                  f"label id -> name")
            d["num_labels"] = len(d["id2label"])
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs["extra"] = {k: v for k, v in d.items() if k not in known}
        return cls(**kwargs)

    @classmethod
    def from_json_file(cls, path):
        """Read a config.json file (see `from_dict`); a missing file, a file that is not UTF-8 JSON, or a
        field that is wrong is a named error, naming the file."""
        path = check_path("path", path, ConfigError)
        if not os.path.exists(path):
            raise CheckpointNotFoundError(f"config file {path} does not exist")
        d = read_json(path, ConfigError, "config file")
        try:
            return cls.from_dict(d)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    @classmethod
    def from_pretrained(cls, path):
        """Read `config.json` from a checkpoint directory (or the file itself)."""
        path = check_path("path", path, ConfigError)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        return cls.from_json_file(path)

    def to_dict(self):
        """The fields as config.json holds them (unknown fields of the file kept, `model_type` "led")."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        d.update(self.extra)
        d["model_type"] = "led"
        return d

    def to_json_string(self, use_diff=True):
        """config.json's text: `to_dict()` as JSON, keys sorted, as transformers writes it. With use_diff,
        output_attentions, output_hidden_states and return_dict are left out at their defaults (transformers
        leaves out every generic setting at its default)."""
        d = self.to_dict()
        if use_diff:
            d = {k: v for k, v in d.items() if not (k in FLAGS and k != "use_cache" and v == FLAGS[k])}
        return json.dumps(d, indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path, use_diff=True):
        """Write `to_json_string()` to a file."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json_string(use_diff))

    def save_pretrained(self, save_directory):
        """Write config.json into a directory (made if needed), which transformers' and ledref's
        from_pretrained read."""
        save_directory = make_directory("save_directory", save_directory, ConfigError)
        self.to_json_file(os.path.join(save_directory, "config.json"))


def _check_int(name, value, minimum, below=None, maximum=None):
    if (not is_int(value) or value < minimum or (below is not None and value >= below)
            or (maximum is not None and value > maximum)):
        expected = f"an int >= {minimum}" + (f" and < {below}" if below is not None else "") + (
            f" and <= {maximum}" if maximum is not None else "")
        raise ConfigError(f"config field {name}={short(value)}; expected {expected}")


def _check_window(name, w):
    if not is_int(w) or w <= 0 or w % 2 or w > LIMITS["max_encoder_position_embeddings"]:
        raise ConfigError(f"config field {name}={short(w)}; expected an even positive int (the two-sided window) "
                          f"<= {LIMITS['max_encoder_position_embeddings']}")
