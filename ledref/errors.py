"""Named errors. Each message names the offending field, key, file or argument and what was expected.

Every error ledref raises on purpose is a `LedrefError`; the subclasses say where the problem is. Files
that are not what their names promise (a truncated safetensors file, JSON that does not parse, a pickle
that is not plain tensors) raise the class of the thing they were read for, naming the file.
"""


class LedrefError(Exception):
    """Base class of every error ledref raises on purpose."""


class ConfigError(LedrefError, ValueError):
    """A config.json field is missing, has the wrong type or an implausible value, or disagrees with
    the weight files; config.json itself is unreadable or not JSON."""


class CheckpointNotFoundError(LedrefError, FileNotFoundError):
    """The directory or the weight files it should hold are not there."""


class CheckpointError(LedrefError, ValueError):
    """The weights do not fit the config (missing, unexpected or misshapen keys), a weight file or
    index is unreadable (corrupt safetensors, a pickle that is not plain tensors), or an index names a
    file outside the checkpoint directory."""

    def __init__(self, message, missing=(), unexpected=(), mismatched=()):
        super().__init__(message)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)  # (key, shape found, shape expected)


class InputError(LedrefError, ValueError):
    """An argument has the wrong type, shape, dtype, values or backend: the inputs of a forward call,
    and the arguments of the layout, figure and loading functions."""


class TokenizerError(LedrefError, ValueError):
    """Tokenizer files missing or unreadable, or an encode/decode argument of the wrong type or out of
    range."""


class CompareError(LedrefError, ValueError):
    """A path to compare is missing, unreadable, the two sides are not of the same kind, or a tolerance
    or tensor is not usable."""


class GenerationError(LedrefError, ValueError):
    """A generation setting is missing, of the wrong type, out of range or contradicts another;
    generation_config.json is unreadable; or the scores stopped being finite while generating."""
