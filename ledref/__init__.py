"""ledref: a forward-only LED (Longformer-Encoder-Decoder) on the Python Array API, tensor for tensor
equal to transformers, for teaching, attention analysis and as an oracle for other implementations."""

from .backend import to_numpy
from .compare import compare
from .config import LEDConfig
from .errors import (
                     CheckpointError,
                     CheckpointNotFoundError,
                     ConfigError,
                     GenerationError,
                     InputError,
                     LedrefError,
                     TokenizerError,
)
from .generation import GenerationConfig
from .model import (
                     LEDForConditionalGeneration,
                     LEDForQuestionAnswering,
                     LEDForSequenceClassification,
                     LEDModel,
                     LEDPreTrainedModel,
                     shift_tokens_right,
)
from .recorder import Recorder
from .tokenizer import LEDTokenizer

__version__ = "0.1.0"

__all__ = [
    "LEDConfig", "LEDModel", "LEDForConditionalGeneration", "LEDForQuestionAnswering",
    "LEDForSequenceClassification", "LEDPreTrainedModel", "LEDTokenizer", "GenerationConfig",
    "shift_tokens_right", "to_numpy", "compare", "Recorder",
    "LedrefError", "ConfigError", "CheckpointError", "CheckpointNotFoundError", "InputError", "TokenizerError",
    "GenerationError",
]
