"""The strings and calls of the tokenizer parity tests, in one place.

Imported by tests/test_tokenizer.py (ledref against transformers 5 live, and against the golden file) and by
scripts/make_tokenizer_golden.py (transformers 4.57.6 slow and fast, which writes the golden file), so the three
cannot drift apart. `run(tokenizer, call)` works on all of them: ledref's LEDTokenizer has transformers' call shape.

The vocabulary is a byte-level BPE trained here (`train_bpe`) on corpus.txt, with BART's special tokens: `<s>`,
`<pad>`, `</s>`, `<unk>` first and `<mask>` last. The trained vocab.json and merges.txt are committed beside this file.
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus.txt")
VOCAB = os.path.join(HERE, "vocab.json")
MERGES = os.path.join(HERE, "merges.txt")
GOLDEN = os.path.join(HERE, "golden_transformers_4.57.6.json")
VOCAB_SIZE = 3000  # 2999 trained (4 special tokens, 256 bytes, merges) + <mask>


def train_bpe(out_dir, corpus=CORPUS):
    """Train the test vocabulary with `tokenizers` and write vocab.json and merges.txt into out_dir.

    Deterministic (the same files with tokenizers 0.22 and 0.23): byte-level pre-tokenizer without prefix space,
    every byte in the initial alphabet, merges down to frequency 1, then `<mask>` appended as the last id as in BART.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE - 1, min_frequency=1, show_progress=False,
                                  special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train([corpus], trainer)
    os.makedirs(out_dir, exist_ok=True)
    tokenizer.model.save(out_dir)  # vocab.json, and merges.txt with its "#version: 0.2" header line
    vocab_file = os.path.join(out_dir, "vocab.json")
    with open(vocab_file, encoding="utf-8") as f:
        vocab = json.load(f)
    vocab["<mask>"] = len(vocab)
    with open(vocab_file, "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    return vocab_file, os.path.join(out_dir, "merges.txt")


def _long_text():
    """A few thousand tokens: numbered paragraphs mixing prose, numbers, other scripts, emoji and code."""
    words = ["lantern", "gannet", "tide", "ledger", "quartz", "bearing", "harbour", "keeper", "fog", "shingle"]
    paragraphs = []
    for i in range(24):
        w = [words[(i * 7 + k) % len(words)] for k in range(6)]
        paragraphs.append(
            f"Paragraph {i}: the {w[0]} and the {w[1]} met at {i * 37 % 24:02d}:{i * 13 % 60:02d}, "
            f"{i * 1.25:.2f} km from the {w[2]}; they didn't stop ({w[3]}, {w[4]}). "
            f"Über {i} Möwen — 第{i}号灯台 — {'🌊' * (i % 3 + 1)} x_{i} = f({w[5]!r}) != {i ** 2};")
    return "\n".join(paragraphs)


LONG_TEXT = _long_text()

# At least 50 strings, each chosen to stress one thing; the comment says which.
TEXTS = [
    "Hello world",
    " Hello world",  # leading space: a different first token
    "Hello world ",  # trailing space
    "   three leading spaces",
    "trailing spaces   ",
    "",  # empty
    " ",  # only a space
    "words   with    runs     of  spaces",
    "tabs\tand\ttabs\t\tdouble tab",
    "line one\nline two\n\nline four\r\nwindows line\rold mac",
    "\n\nleading newlines and trailing\n\n",
    "mixed \t \n whitespace \u00a0 nbsp \u3000 ideographic \u2028 line sep",
    "I can't believe it's not butter, isn't it? You're right: they'll say we'd've done it.",
    "Don 't do that , it 's wrong . Is n't it ? Yes ! We 've seen ' quotes ' and they 're fine ; I 'm sure .",
    "'s 't 're 've 'm 'll 'd at the start, and rock 'n' roll",
    "CAN'T WON'T I'M YOU'RE",  # the contraction rule of the regex is case-sensitive
    "Call +44 1224 000 000 at 07:45 on 2019-04-07; pay £1,234.56 or €99.99 (12.5% off).",
    "3.14159 2.71828 6.022e23 -273.15 1/3 0x1F 0b1010 1e-9",
    "1234567890123456789012345678901234567890",
    "Zoë, Renée, José, François, Jürgen, Søren, Ångström, Łukasz, Dvořák",
    "e\u0301 vs \u00e9, n\u0303 vs \u00f1, a\u030a\u0301 stacked marks",  # combining marks, NFD next to NFC
    "Ça va? Où êtes-vous? Grüße aus der Straße, naïve café",
    "Nguyễn Văn An: Cảm ơn rất nhiều",
    "灯台はとても美しかったです。",  # Japanese, in the corpus
    "量子计算机的纠缠态很难维持",  # Chinese, not in the corpus
    "한국어 문장입니다, 감사합니다!",
    "中文English混合text123数字",
    "مرحبا بالعالم، كيف حالك؟",  # Arabic, right to left
    "שלום עולם! מה שלומך?",  # Hebrew
    "abc \u200fשלום\u200e def \u202eevil\u202c end",  # bidi marks and overrides
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",  # zero-width characters inside words
    "\ufeffBOM at the start",
    "soft\u00adhyphen and word\u2060joiner",
    "I love 🍕 and 🎉!",
    "family 👨‍👩‍👧‍👦, rainbow flag 🏳️‍🌈, technologist 👩🏽‍💻",  # ZWJ sequences
    "🇬🇧🇫🇷🇯🇵🇺🇳 flags and 🏴󠁧󠁢󠁳󠁣󠁴󠁿 Scotland",  # regional indicators, tag sequence
    "👍🏻👍🏿 1️⃣ #️⃣ ©️ ™",  # skin tones, keycaps, variation selectors
    "😀😃😄😁😆😅🤣😂",
    "<s>",
    "</s>",
    "<pad>",
    "<mask>",
    "<unk>",
    "<s> hello </s>",
    "hello<s>world</s>again",
    "The capital of France is <mask>.",
    "The capital of France is<mask>.",
    "two masks: <mask> <mask>  <mask>\t<mask>\n<mask>",
    "<pad><pad> padded <pad>",
    "almost special: <s <mask </s <S> <MASK> < s > <ss> <s>> <<s>",
    "  <mask> leading spaces then a mask",
    "x\u00a0<mask> no-break space before the mask",
    "x\u3000<mask> ideographic space before the mask",
    "x\x1c<mask>\x1f\x85 control separators",
    "def f(x: int) -> int:\n    return x ** 2  # square\n",
    "if (a != b && c >= 0) { return a / b; } else { return -1; }",
    '{"key": "value", "list": [1, 2, 3], "null": null}',
    "https://example.org/path?q=1&lang=en#frag user@example.com",
    "sudo rm -rf /tmp/x && echo $HOME | grep -i 'home'",
    '<p class="notice">HTML &amp; entities&nbsp;here</p>',
    "Wait... what?! Really?? Yes!!! (no) [yes] {maybe} <- -> => ...",
    "“curly” ‘quotes’ «angled» „low“ 「corner」 — dashes – and … ellipsis",
    "¯\\_(ツ)_/¯",
    "Смотритель маяка считал чаек каждое утро",
    "Ο φύλακας μετρούσε τα πλοία κάθε βράδυ",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",  # words not in the corpus
    "xqzjv wkpfg brrrrrrrr zzzzzzzzzzzzzzzzzzzzzzzzzzzz",
    "a" * 40,
    "Kawi 𑼄𑼅𑼆 digits 𑽐𑽑 Nag Mundari 𞓐𞓑",  # letters and digits of Unicode 15
    "math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 ∑∫√∞ ≠ ≤",
    "superscripts x² y³ ½ ¼ Ⅻ ① ٣ ४ ๕",  # \p{N} beyond ASCII digits
    "\x00 null \x07 bell \x1b[31mANSI\x1b[0m",
    LONG_TEXT,  # thousands of tokens
]
LONG = len(TEXTS) - 1

PAIRS = [
    ("Hello world", "How are you?"),
    ("", "an empty first text"),
    ("an empty second text", ""),
    ("a <mask> in the first", "and <s> in the second"),
    ("  spaces  ", "\ttabs\t"),
    ("量子计算机的纠缠态", "👨‍👩‍👧‍👦 🇬🇧"),
    ("I can't , you 're", "isn't it ?"),
    ("same length one two three", "same length one two three"),  # ties in longest_first
    ("one two three four five six", "alpha beta gamma delta epsilon zeta eta theta iota kappa"),
    (TEXTS[LONG][:1200], "a short question?"),
]

# (skip_special_tokens, clean_up_tokenization_spaces) for every decoded row
DECODES = [(False, False), (False, True), (True, False), (True, True)]


def _calls():
    calls = []

    def add(name, text, text_pair=None, prefix_space=False, **options):
        calls.append({"name": name, "text": text, "text_pair": text_pair, "prefix_space": prefix_space,
                      "options": options})

    for i, text in enumerate(TEXTS):
        add(f"text{i:02d}", text)
        add(f"text{i:02d}-prefix", text, prefix_space=True)
        add(f"text{i:02d}-nospecial", text, add_special_tokens=False)
    for i, (a, b) in enumerate(PAIRS):
        add(f"pair{i:02d}", a, b)
        add(f"pair{i:02d}-prefix", a, b, prefix_space=True)
        add(f"pair{i:02d}-nospecial", a, b, add_special_tokens=False)

    # truncation of single texts: every strategy, lengths around the two special tokens
    for i in (12, 23, 34, 45):
        for strategy in (True, "longest_first", "only_first", "only_second"):
            for max_length in (2, 3, 7, 16, 64):
                add(f"text{i:02d}-truncate-{strategy}-{max_length}", TEXTS[i], truncation=strategy,
                    max_length=max_length)
    for strategy in (True, "longest_first", "only_first"):
        for max_length in (64, 1024):
            add(f"text{LONG:02d}-truncate-{strategy}-{max_length}", TEXTS[LONG], truncation=strategy,
                max_length=max_length)
    # truncation of pairs: every strategy, lengths around the four special tokens and odd/even leftovers
    for i in (0, 3, 7, 8, 9):
        for strategy in ("longest_first", "only_first", "only_second"):
            for max_length in (4, 5, 6, 9, 12, 33):
                a, b = PAIRS[i]
                add(f"pair{i:02d}-truncate-{strategy}-{max_length}", a, b, truncation=strategy, max_length=max_length)
    add("pair08-truncate-nospecial", *PAIRS[8], add_special_tokens=False, truncation="longest_first", max_length=5)
    add("text45-max_length-only", TEXTS[45], max_length=5)  # max_length alone switches truncation on
    add("text45-truncation-no-max_length", TEXTS[45], truncation=True)  # falls back to model_max_length
    add("text45-max_length-padding-only", TEXTS[45], padding="max_length")
    add("text45-padding-single", TEXTS[45], padding="max_length", max_length=16)
    add("text45-padding-multiple", TEXTS[45], padding=True, pad_to_multiple_of=7)
    add("text45-no-mask", TEXTS[45], return_attention_mask=False)

    short = [t for i, t in enumerate(TEXTS) if i != LONG]
    add("batch-pad-longest", short, padding=True)
    add("batch-pad-longest-prefix", short[::3], padding="longest", prefix_space=True)
    add("batch-pad-max_length-truncate", short[2::3], padding="max_length", truncation=True, max_length=24)
    add("batch-pad-max_length-no-truncate", short[:20], padding="max_length", max_length=20, pad_to_multiple_of=8)
    add("batch-pad-multiple", short[1::3], padding=True, pad_to_multiple_of=8)
    add("batch-pad-multiple-truncate", short[::2], padding=True, truncation="longest_first", max_length=32,
        pad_to_multiple_of=16)
    add("batch-pad-multiple-truncate-mismatch", short[:5], padding=True, truncation=True, max_length=12,
        pad_to_multiple_of=5)
    add("batch-pad-ignores-max_length", short[:10], padding=True, max_length=8)
    add("batch-max_length-only", short[:10], max_length=10)
    add("batch-do-not", short[:10], padding="do_not_pad", truncation="do_not_truncate", max_length=5)
    add("batch-no-mask", short[:10], padding=True, return_attention_mask=False)
    add("batch-np", short[:10], padding=True, return_tensors="np")
    add("batch-long-and-short", [TEXTS[LONG], "short"], padding=True, truncation=True, max_length=512)
    add("batch-unpadded", short[30:45])
    add("batch-single-element", ["only one"], padding=True)
    firsts, seconds = [a for a, _ in PAIRS[:-1]], [b for _, b in PAIRS[:-1]]  # all but the long pair
    add("batch-pairs", firsts, seconds, padding=True)  # an empty second text is a pair in a batch
    add("batch-pairs-truncate", firsts, seconds, padding="max_length", truncation="longest_first", max_length=16)
    add("batch-pairs-truncate-only_second", firsts[:2], seconds[:2], padding=True, truncation="only_second",
        max_length=9)
    add("batch-pairs-prefix", firsts, seconds, padding=True, prefix_space=True)
    return calls


CALLS = _calls()

# Calls where transformers 4.57.6's slow (pure Python) LEDTokenizer and its LEDTokenizerFast disagree: reason ->
# patterns of call names. ledref follows the fast one (the `tokenizers` library), as transformers 5 does. The golden
# script records the calls that disagree; the test checks that these patterns cover exactly them.
SLOW_FAST_DIFFERENCES = {
    "add_prefix_space: fast puts a space before every piece of text between special tokens and before text that "
    "starts with \\n or \\t; slow only before the whole text, and only when it does not start with whitespace":
        ["text*-prefix", "pair*-prefix", "batch-*-prefix"],
    "<mask> lstrip: slow strips what str.rstrip strips (\\x1c-\\x1f too), fast only Unicode White_Space":
        ["text53", "text53-nospecial", "batch-pad-longest"],
    "text_pair='': fast (and transformers 5) encode a single text, slow a pair with an empty second text":
        ["pair02"],
    "truncation: slow's longest_first gives the odd token to the first text; slow logs an error and returns the "
    "untruncated ids where fast raises (only_first / only_second too short, only_second without a pair); slow "
    "never empties a text when max_length equals the number of special tokens":
        ["*truncate*"],
}


def run(tokenizer, call):
    """Encode one call and decode every row four ways; the result as plain JSON-able lists and strings.

    {"error": <exception class>} when the call raises.
    """
    options = dict(call["options"])
    try:
        encoded = tokenizer(call["text"], call["text_pair"], **options)
    except Exception as e:  # noqa: BLE001  (any error of the tokenizer under test is part of its behaviour)
        return {"error": type(e).__name__}
    out = {key: (value.tolist() if hasattr(value, "tolist") else value) for key, value in encoded.items()}
    if options.get("return_tensors") == "np":
        out["dtype"] = str(encoded["input_ids"].dtype)
    rows = out["input_ids"] if out["input_ids"] and isinstance(out["input_ids"][0], list) else [out["input_ids"]]
    out["decoded"] = {f"skip={int(skip)},clean={int(clean)}": [
        tokenizer.decode(row, skip_special_tokens=skip, clean_up_tokenization_spaces=clean) for row in rows]
        for skip, clean in DECODES}
    return {key: out[key] for key in sorted(out)}


def run_prefixes(tokenizer, text):
    """Decode every prefix of the ids of `text` (no special tokens): the cuts land inside multi-byte characters."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return [tokenizer.decode(ids[:k]) for k in range(len(ids) + 1)]


# texts whose every prefix is decoded: cut UTF-8 sequences decode to U+FFFD
PREFIX_TEXTS = [23, 24, 33, 34, 35, 36, 19]
