"""A synthetic long-document task for a tiny LED: find the codes scattered through a long document and copy
them in order.

A document opens with a request naming one of four colours, for instance ``find the blue codes.``, followed by
one to four thousand tokens of filler sentences drawn from a small word list. Scattered far apart through the
filler are three to five facts of the form ``the second blue code is 47.``, numbered first, second, ... in the
order they appear. The answer names the requested colour and lists the codes in document order:
``blue 83 47 09``.

Every code is two digits (00 to 99, distinct within a document), which the tokenizer trained for the task
(scripts/train_tiny_needle.py) makes one token (with the space before it), so an answer is a copy of pieces of
the document, thousands of tokens apart: the colour word of the request, then one token per code. A local
window of 32 tokens sees at most one of them.

A harder variant adds codes of other colours (`n_distractors`, default none, `N_DISTRACTORS_RANGE`), which the
answer must leave out: the request decides which codes count. The embedded model ledref/tiny-needle is trained
on the default task, without them.

Documents are deterministic functions of their seed. Training uses seeds from `TRAIN_SEED_START` (1,000,000)
upward; evaluation uses the held-out seeds 0, 1, 2, ... (`held_out_seeds`), which training never touches.
"""

import random
from dataclasses import dataclass

from .checks import check_int
from .errors import InputError

__all__ = ["Document", "make_document", "held_out_seeds", "training_seeds", "KINDS", "ORDINALS", "FILLER_WORDS",
           "TRAIN_SEED_START", "N_WORDS_RANGE", "N_FACTS_RANGE", "N_DISTRACTORS_RANGE", "CODE_DIGITS", "MAX_WORDS"]

KINDS = ("red", "blue", "green", "amber")
"""The four colours a code can have; a document asks for one of them."""

ORDINALS = ("first", "second", "third", "fourth", "fifth")
"""How the facts of one colour are numbered, in document order (at most five of a colour)."""

FILLER_WORDS = (
    "the", "a", "river", "stone", "light", "old", "small", "house", "road", "tree", "wind", "rain", "hill",
    "field", "bird", "boat", "walks", "runs", "sees", "holds", "keeps", "turns", "falls", "rests", "over",
    "under", "near", "past", "into", "with", "and", "slowly", "quietly", "again", "often", "never", "cold",
    "warm", "dark", "bright", "long", "quiet", "morning", "evening", "winter", "summer", "village", "garden",
)
"""The words of the filler sentences (no colour, ordinal, digit or the word "code" among them)."""

TRAIN_SEED_START = 1_000_000
"""Training documents use seeds >= this; held-out (evaluation) documents use seeds below it."""

N_WORDS_RANGE = (900, 3400)
"""Default range (inclusive) of the number of filler words: about 1,000 to 4,000 tokens per document."""

N_FACTS_RANGE = (3, 5)
"""Default range (inclusive) of the number of codes of the requested colour (the answer's length)."""

N_DISTRACTORS_RANGE = (0, 0)
"""Default range (inclusive) of the number of codes of other colours: none (the harder variant takes more)."""

CODE_DIGITS = 2
"""Digits of a code."""

MAX_WORDS = 2 ** 20
"""The most filler words a document may ask for (far more than any LED reads)."""


@dataclass(frozen=True)
class Document:
    """One example of the task.

    text: the source document. answer: the exact target string, the requested colour and its codes, separated by
    spaces (``blue 83 47 09``). facts: the (start, end) character spans in `text` of the pieces the answer
    copies, in answer order: first the colour word of the request, then each code, so that
    ``answer == " ".join(text[s:e] for s, e in facts)``. kind: the requested colour.
    distractors: the spans of the codes of other colours, in document order.
    """

    text: str
    answer: str
    facts: list
    kind: str = ""
    distractors: list | tuple = ()


def _sentence(rng):
    """One filler sentence: 4 to 12 filler words and a full stop."""
    return " ".join(rng.choice(FILLER_WORDS) for _ in range(rng.randint(4, 12))) + "."


def make_document(seed, n_words=None, n_facts=None, n_distractors=None):
    """The document of `seed` (deterministic): a request, filler sentences and facts placed far apart.

    n_words: number of filler words (default: drawn from `N_WORDS_RANGE`, giving about 1,000 to 4,000 tokens).
    n_facts: number of codes of the requested colour, 1 to 5 (default: drawn from `N_FACTS_RANGE`).
    n_distractors: number of codes of other colours (default: drawn from `N_DISTRACTORS_RANGE`); at most five
    of any colour. Facts are spread evenly: the filler is cut into one stretch per fact and each fact goes to a
    random sentence boundary inside its stretch, so that with at least three sentences per stretch facts stand
    three or more sentences apart. Codes are distinct within a document.
    """
    check_int("seed", seed, InputError)
    for name, value, low, high in (("n_words", n_words, 1, MAX_WORDS), ("n_facts", n_facts, 1, len(ORDINALS)),
                                   ("n_distractors", n_distractors, 0, len(ORDINALS) * (len(KINDS) - 1))):
        if value is not None:
            check_int(name, value, InputError, minimum=low, maximum=high)
    rng = random.Random(seed)
    if n_words is None:
        n_words = rng.randint(*N_WORDS_RANGE)
    if n_facts is None:
        n_facts = rng.randint(*N_FACTS_RANGE)
    if n_distractors is None:
        n_distractors = rng.randint(*N_DISTRACTORS_RANGE)  # the drawn sizes lie inside the checked ranges

    kind = rng.choice(KINDS)
    others = [k for k in KINDS if k != kind]
    distractor_kinds = []
    for _ in range(n_distractors):  # at most five of a colour
        distractor_kinds.append(rng.choice([k for k in others if distractor_kinds.count(k) < len(ORDINALS)]))
    kinds = [kind] * n_facts + distractor_kinds
    rng.shuffle(kinds)

    sentences = []
    words = 0
    while words < n_words:
        sentence = _sentence(rng)
        sentences.append(sentence)
        words += sentence.count(" ") + 1
    # one stretch of sentences per fact; a fact goes after a random sentence of its stretch, not the first or
    # the last one when the stretch has three or more (so that facts stand at least three sentences apart)
    m = len(kinds)
    bounds = [round(i * len(sentences) / m) for i in range(m + 1)]
    slots = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        if hi - lo >= 3:
            lo, hi = lo + 1, hi - 1
        slots.append(rng.randrange(lo, hi) if hi > lo else lo)

    codes = set()
    pieces = [f"find the {kind} codes."]
    counts = dict.fromkeys(KINDS, 0)
    facts, distractors = [(len("find the "), len("find the ") + len(kind))], []
    length = len(pieces[0])
    position = 0
    for i, k in enumerate(kinds):
        while position <= slots[i] and position < len(sentences):
            pieces.append(sentences[position])
            length += 1 + len(sentences[position])
            position += 1
        while True:
            code = "".join(rng.choice("0123456789") for _ in range(CODE_DIGITS))
            if code not in codes:
                codes.add(code)
                break
        head = f"the {ORDINALS[counts[k]]} {k} code is "
        counts[k] += 1
        start = length + 1 + len(head)
        pieces.append(head + code + ".")
        length += 1 + len(pieces[-1])
        (facts if k == kind else distractors).append((start, start + CODE_DIGITS))
    pieces.extend(sentences[position:])
    text = " ".join(pieces)
    answer = " ".join(text[s:e] for s, e in facts)
    return Document(text=text, answer=answer, facts=facts, kind=kind, distractors=distractors)


def held_out_seeds(n):
    """The seeds of the first n held-out documents: 0, 1, ..., n - 1 (training never uses seeds below
    `TRAIN_SEED_START`)."""
    check_int("n", n, InputError, minimum=0, maximum=TRAIN_SEED_START)
    return range(n)


def training_seeds(n, start=0):
    """n training seeds: TRAIN_SEED_START + start, ..., disjoint from every held-out seed."""
    check_int("n", n, InputError, minimum=0)
    check_int("start", start, InputError, minimum=0)
    return range(TRAIN_SEED_START + start, TRAIN_SEED_START + start + n)
