"""Named errors. Each message names the offending field, key, file or argument and what was expected."""


class LedrefError(Exception):
    """Base class of every error ledref raises on purpose."""


class ConfigError(LedrefError, ValueError):
    """A config.json field is missing, has the wrong type or an impossible value."""


class CheckpointNotFoundError(LedrefError, FileNotFoundError):
    """The directory or the weight files it should hold are not there."""


class CheckpointError(LedrefError, ValueError):
    """The weights do not fit the config: missing, unexpected or misshapen keys."""

    def __init__(self, message, missing=(), unexpected=(), mismatched=()):
        super().__init__(message)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)  # (key, shape found, shape expected)


class InputError(LedrefError, ValueError):
    """An argument of a forward call has the wrong shape, dtype, values or backend."""


class TokenizerError(LedrefError, ValueError):
    """Tokenizer files missing or unreadable, or an encode/decode argument out of range."""


class CompareError(LedrefError, ValueError):
    """A path to compare is missing, unreadable, or the two sides are not of the same kind."""


class GenerationError(LedrefError, ValueError):
    """A generation setting is missing, out of range or contradicts another."""
