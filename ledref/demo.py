"""`ledref demo`: LED's sliding-window and global attention at work on a long document, offline.

With no arguments it runs the model shipped inside ledref (`ledref/tiny-needle`, trained on the task of
`ledref.needle`) on a held-out document: tokenizes it, encodes it with global attention on the first token,
generates the answer, says whether it is right, and writes figures of where the model looks:

- `layout_explainer.png`: how Longformer's compact `x + window + 1` attention layout maps to the dense matrix;
- `band_view.png`: the encoder's attention over the whole document in that layout (query position x relative
  offset, the global column first), last layer;
- `where_it_looks.png`: the global first token's attention over the document, and the decoder's
  cross-attention while it writes each answer token, with the facts it copies marked.

`run(model=..., text=...)` points it at another checkpoint and a text of your own.
"""

import os
import time
from dataclasses import dataclass, field

import numpy as np

from . import needle, viz
from .checks import check_callable, check_int, check_path
from .errors import InputError
from .hub import resolve
from .model import LEDForConditionalGeneration
from .tokenizer import LEDTokenizer

DEFAULT_MODEL = "ledref/tiny-needle"
"""The embedded model the demo runs by default."""

DEFAULT_SEED = 0
"""The held-out document (`ledref.needle.make_document(seed)`) the demo reads by default."""


@dataclass
class DemoResult:
    """What `run` did: the input length in tokens, the generated answer, the expected one (None for a text
    of your own) and whether they agree, the share of the decoder's cross-attention on the copied facts (and
    the share of the document they are), the figures written, and the seconds it took."""

    n_tokens: int
    answer: str
    expected: str | None = None
    correct: bool | None = None
    fact_attention: float | None = None
    fact_share: float | None = None
    figures: list = field(default_factory=list)
    seconds: float = 0.0


def token_spans(tokenizer, text):
    """The (start, end) character span of every token of `tokenizer(text)["input_ids"]`; (0, 0) for the
    special tokens <s> and </s> around the text."""
    return tokenizer(text, return_offsets_mapping=True)["offset_mapping"]


def tokens_in(spans, char_spans):
    """Indices of the tokens that overlap any of the character spans."""
    return [i for i, (s, e) in enumerate(spans) if e > s and any(s < ce and e > cs for cs, ce in char_spans)]


def run(model=DEFAULT_MODEL, text=None, out="ledref-demo", seed=DEFAULT_SEED, say=print):
    """The whole story, printed through `say`; returns a DemoResult.

    model: a short name (ledref/tiny-needle), checkpoint directory, Hugging Face cache folder or repo id.
    text: the document (a string); None reads the held-out task document `seed` and checks the answer.
    out: the folder the figures are written to (made if missing).
    """
    start = time.perf_counter()
    if text is not None and not isinstance(text, str):
        raise InputError(f"text is a {type(text).__name__}; expected the document as a str, or None")
    out = check_path("out", out, InputError)
    if os.path.exists(out) and not os.path.isdir(out):
        raise InputError(f"out={out!r} exists and is not a directory; expected a folder for the figures")
    check_int("seed", seed, InputError, minimum=0)
    check_callable("say", say, InputError, optional=False)
    path = resolve(model)
    tokenizer = LEDTokenizer.from_pretrained(path)
    led = LEDForConditionalGeneration.from_pretrained(path)
    expected = facts = distractors = None
    if text is None:
        doc = needle.make_document(seed)
        text, expected, facts, distractors = doc.text, doc.answer, doc.facts, list(doc.distractors)
        source = f"held-out task document {seed}"
    else:
        source = "your text"
    if not text.strip():
        raise InputError("the text is empty; expected a document to read")

    batch = tokenizer(text, return_tensors="np", return_offsets_mapping=True)
    ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    n = ids.shape[1]
    limit = led.config.max_encoder_position_embeddings
    if n > limit:
        raise InputError(f"the text is {n} tokens long and {model} reads at most {limit}; expected a shorter text")
    global_attention_mask = np.zeros_like(ids)
    global_attention_mask[:, 0] = 1  # <s> attends to, and is attended by, every token

    say(f"ledref demo: {model} on {source}")
    say(f"document: {n:,} tokens, first words {text[:40]!r}...; global attention on token 0 (<s>)")
    # every attention the answer was written with comes back with it
    outputs = led.generate(ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask,
                           return_dict_in_generate=True, output_attentions=True)
    generated = outputs.sequences
    answer = tokenizer.decode(generated[0], skip_special_tokens=True).strip()
    result = DemoResult(n_tokens=n, answer=answer, expected=expected)
    say(f"answer:   {answer}")
    if expected is not None:
        result.correct = answer == expected
        say(f"expected: {expected}  ({'right' if result.correct else 'WRONG'})")

    cross = viz.cross_attention_map(outputs)  # [answer tokens, document tokens], last layer, mean of heads
    written = [tokenizer.decode([t]) for t in generated[0, 1:]]
    spans = batch["offset_mapping"][0].tolist()  # each token's characters, as token_spans gives them
    fact_tokens = tokens_in(spans, facts) if facts else []
    copying = [t for t, piece in enumerate(written) if piece.strip().isdigit()]  # the steps that copy digits
    if fact_tokens:
        result.fact_share = len(fact_tokens) / n
    if fact_tokens and copying:
        result.fact_attention = float(np.mean(np.sum(cross[copying][:, fact_tokens], axis=1)))
        say(f"attention: writing the answer's digits, the decoder puts {result.fact_attention:.0%} of its "
            f"cross-attention on the {len(fact_tokens)} tokens of the codes it copies ({result.fact_share:.1%} of "
            f"the document)")

    os.makedirs(out, exist_ok=True)
    figures = {
        "layout_explainer.png": viz.plot_layout_explainer(),
        "band_view.png": viz.plot_band(outputs.encoder_attentions[-1], outputs.encoder_global_attentions[-1],
                                       global_attention_mask, attention_mask, head=0, log=True,
                                       title=f"encoder's last layer, head 0, all {n:,} tokens (log scale)"),
        "where_it_looks.png": viz.plot_where_it_looks(outputs, tokenizer, marks={
            "codes copied": fact_tokens, "other codes": tokens_in(spans, distractors or [])} if facts else None),
    }
    for name, fig in figures.items():
        path = os.path.join(out, name)
        fig.savefig(path, dpi=110)
        result.figures.append(path)
    result.seconds = time.perf_counter() - start
    say(f"figures:  {', '.join(result.figures)}")
    say(f"took {result.seconds:.1f} s")
    return result

