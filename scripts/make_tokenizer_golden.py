"""Golden outputs of transformers 4.57.6's LED tokenizers, the last release with LED's own tokenizer classes.

Run once with transformers 4.57.6 (its LEDTokenizer is the slow pure-Python BPE, LEDTokenizerFast is on
`tokenizers`):
    python -m venv /tmp/hf4 && /tmp/hf4/bin/pip install transformers==4.57.6 tokenizers
    /tmp/hf4/bin/python scripts/make_tokenizer_golden.py [--train]
--train first retrains tests/data/tokenizer/vocab.json and merges.txt from corpus.txt (deterministic).
It runs every call of tests/data/tokenizer/tokenizer_cases.py through both tokenizers, on the committed
vocab.json + merges.txt, and writes tests/data/tokenizer/golden_transformers_4.57.6.json: per call the fast
tokenizer's ids, attention masks and decoded strings, and the slow tokenizer's too wherever the two disagree.
"""

import json
import os
import shutil
import sys
import tempfile
import warnings

import tokenizers
import transformers

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "data", "tokenizer"))
import tokenizer_cases as cases  # noqa: E402

assert transformers.__version__ == "4.57.6", transformers.__version__
warnings.simplefilter("ignore")
transformers.logging.set_verbosity_error()

if "--train" in sys.argv:
    cases.train_bpe(os.path.dirname(cases.VOCAB))

directory = tempfile.mkdtemp()
shutil.copy(cases.VOCAB, directory)
shutil.copy(cases.MERGES, directory)
tokenizers_by_kind = {
    (kind, prefix_space): cls.from_pretrained(directory, add_prefix_space=prefix_space)
    for kind, cls in (("slow", transformers.LEDTokenizer), ("fast", transformers.LEDTokenizerFast))
    for prefix_space in (False, True)}
assert not tokenizers_by_kind["slow", False].is_fast and tokenizers_by_kind["fast", False].is_fast

def slow_record(slow, fast):
    """What the slow tokenizer did where it disagrees: its ids (or error), and its decoded strings only where the ids
    agree with the fast one's (otherwise they follow from the ids and would only bloat the file)."""
    keep = ("input_ids", "attention_mask", "error") + (("decoded",) if slow.get("input_ids") == fast.get("input_ids")
                                                        else ())
    return {key: value for key, value in slow.items() if key in keep}


golden = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__, "calls": {},
          "prefixes": {}, "slow_fast_differences": []}
for call in cases.CALLS:
    fast = cases.run(tokenizers_by_kind["fast", call["prefix_space"]], call)
    slow = cases.run(tokenizers_by_kind["slow", call["prefix_space"]], call)
    golden["calls"][call["name"]] = {"fast": fast} if slow == fast else {"fast": fast, "slow": slow_record(slow, fast)}
    if slow != fast:
        golden["slow_fast_differences"].append(call["name"])
for i in cases.PREFIX_TEXTS:
    fast = cases.run_prefixes(tokenizers_by_kind["fast", False], cases.TEXTS[i])
    slow = cases.run_prefixes(tokenizers_by_kind["slow", False], cases.TEXTS[i])
    golden["prefixes"][str(i)] = {"fast": fast} if slow == fast else {"fast": fast, "slow": slow}
    if slow != fast:
        golden["slow_fast_differences"].append(f"prefixes{i:02d}")

with open(cases.GOLDEN, "w", encoding="utf-8") as f:
    json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
    f.write("\n")
print(f"{len(golden['calls'])} calls, {len(golden['prefixes'])} prefix texts -> {cases.GOLDEN} "
      f"({os.path.getsize(cases.GOLDEN) // 1024} KiB)")
print(f"slow and fast disagree on {len(golden['slow_fast_differences'])}:")
for name in golden["slow_fast_differences"]:
    print("  ", name)
