"""LEDTokenizer against transformers: 5.x live, and 4.57.6 (slow and fast) through a golden file.

The vocabulary is trained in the session from tests/data/tokenizer/corpus.txt; the calls (texts, pairs, options)
are in tests/data/tokenizer/tokenizer_cases.py, shared with scripts/make_tokenizer_golden.py. Every call is
compared on input_ids, attention_mask and the text decoded four ways (skip_special_tokens x
clean_up_tokenization_spaces), row by row.
"""

import fnmatch
import json
import os
import shutil
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import AddedToken

from conftest import require
from ledref import TokenizerError
from ledref.tokenizer import LEDTokenizer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "data", "tokenizer"))
import tokenizer_cases as cases  # noqa: E402

pytestmark = [pytest.mark.parity,
              pytest.mark.filterwarnings("ignore:`max_length` is ignored when `padding`=`True`:UserWarning")]
CALLS = {call["name"]: call for call in cases.CALLS}

def same(ours, reference):
    """ledref's result equals transformers'; where transformers raises, ledref raises TokenizerError."""
    if "error" in reference:
        return ours == {"error": "TokenizerError"}
    return ours == reference


def uncleaned(result):
    """A result without its clean_up_tokenization_spaces=True strings."""
    if "decoded" not in result:
        return result
    return {**result, "decoded": {k: v for k, v in result["decoded"].items() if k.endswith("clean=0")}}


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory):
    """vocab.json + merges.txt trained now from the bundled corpus (the only files in the directory)."""
    directory = tmp_path_factory.mktemp("led_bpe")
    cases.train_bpe(str(directory))
    return directory


@pytest.fixture(scope="session")
def ours(trained_dir):
    """ledref tokenizers on the trained files, keyed by add_prefix_space."""
    return {prefix: LEDTokenizer.from_pretrained(trained_dir, add_prefix_space=prefix) for prefix in (False, True)}


@pytest.fixture(scope="session")
def hf5(trained_dir):
    """transformers 5 tokenizers on the trained files, keyed by (class name, add_prefix_space).

    Told the two things it loses from bare vocab.json + merges.txt (see ledref.tokenizer): <mask> strips the space
    before it, and clean_up_tokenization_spaces=True cleans.
    """
    transformers = require("transformers")
    assert transformers.__version__.split(".")[0] == "5", \
        f"these tests call transformers 5, found {transformers.__version__}; 4.57.6 is covered by the golden file"
    mask = AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)
    return {(cls, prefix): getattr(transformers, cls).from_pretrained(
        trained_dir, add_prefix_space=prefix, mask_token=mask,
        clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output=True)
        for cls in ("LEDTokenizerFast", "LEDTokenizer") for prefix in (False, True)}


@pytest.fixture(scope="session")
def bare(trained_dir):
    """(ledref, transformers 5) on the bare files, each with its own defaults but ledref's <mask> as 5.x's."""
    transformers = require("transformers")
    mask = AddedToken("<mask>", lstrip=False, special=True)
    return (LEDTokenizer.from_pretrained(trained_dir, mask_token=mask),
            transformers.LEDTokenizerFast.from_pretrained(trained_dir))


@pytest.fixture(scope="session")
def committed():
    """ledref tokenizers on the committed vocab.json + merges.txt (those of the golden file), by add_prefix_space."""
    return {prefix: LEDTokenizer.from_files(cases.VOCAB, cases.MERGES, add_prefix_space=prefix)
            for prefix in (False, True)}


@pytest.fixture(scope="session")
def golden():
    with open(cases.GOLDEN, encoding="utf-8") as f:
        return json.load(f)


def test_cases_cover_the_brief():
    assert len(cases.TEXTS) >= 50 and len(cases.CALLS) > 400  # the long text's length is checked below


def test_committed_vocabulary_is_the_trained_one(trained_dir):
    """The golden file was made on the committed files; they are what training on the corpus gives today."""
    for name in ("vocab.json", "merges.txt"):
        with open(trained_dir / name, encoding="utf-8") as f, \
                open(os.path.join(cases.HERE, name), encoding="utf-8") as g:
            assert f.read() == g.read(), f"{name}: retrain with scripts/make_tokenizer_golden.py --train"
    vocab = json.loads((trained_dir / "vocab.json").read_text(encoding="utf-8"))
    assert len(vocab) == cases.VOCAB_SIZE
    assert [vocab[t] for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")] == [0, 1, 2, 3, cases.VOCAB_SIZE - 1]


@pytest.mark.parametrize("name", list(CALLS))
def test_matches_transformers5(name, ours, hf5):
    call = CALLS[name]
    result = cases.run(ours[call["prefix_space"]], call)
    for cls in ("LEDTokenizerFast", "LEDTokenizer"):
        assert same(result, cases.run(hf5[cls, call["prefix_space"]], call)), f"{name} differs from 5.x {cls}"


@pytest.mark.parametrize("name", [n for n, call in CALLS.items() if not call["prefix_space"]])
def test_matches_transformers5_on_bare_files(name, bare):
    """transformers 5's own defaults on vocab.json + merges.txt alone: <mask> keeps the space before it, and
    clean_up_tokenization_spaces=True does nothing. ledref gives its ids with mask_token=AddedToken(lstrip=False)."""
    mine, theirs = bare
    result, reference = cases.run(mine, CALLS[name]), cases.run(theirs, CALLS[name])
    assert same(uncleaned(result), uncleaned(reference))
    if "decoded" in reference:  # 5.x ignores clean_up_tokenization_spaces=True for BPE: the text stays uncleaned
        for skip in (0, 1):
            assert reference["decoded"][f"skip={skip},clean=1"] == result["decoded"][f"skip={skip},clean=0"]


# pieces of text that stress the tokenizer, glued at random: special tokens, whitespace, contractions, scripts
PIECES = st.one_of(
    st.sampled_from(["<s>", "</s>", "<pad>", "<mask>", "<unk>", " ", "  ", "\t", "\n", "\u00a0", "\u200b", "'s",
                     "n't", " '", "'", ".", " ,", "?", "👨‍👩‍👧", "🇫🇷", "e\u0301", "中文", "שלום", "١٢٣",
                     "x\x1c"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6),
    st.text(alphabet="ab <>/smk'\n\t", max_size=8))
TEXT = st.lists(PIECES, max_size=10).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=TEXT, pair=st.one_of(st.none(), TEXT), prefix=st.booleans(), max_length=st.integers(4, 24))
def test_random_texts_match_transformers5(ours, hf5, text, pair, prefix, max_length):
    call = {"text": text, "text_pair": pair, "options": {}}
    tokenizer, theirs = ours[prefix], hf5["LEDTokenizerFast", prefix]
    assert same(cases.run(tokenizer, call), cases.run(theirs, call))
    call["options"] = {"truncation": True, "max_length": max_length, "padding": "max_length"}
    assert same(cases.run(tokenizer, call), cases.run(theirs, call))


def test_long_text_is_thousands_of_tokens(ours, hf5):
    ids = ours[False](cases.TEXTS[cases.LONG])["input_ids"]
    assert len(ids) > 2000
    assert ids == hf5["LEDTokenizerFast", False](cases.TEXTS[cases.LONG])["input_ids"]


@pytest.mark.parametrize("name", list(CALLS))
def test_matches_transformers4_golden(name, committed, golden):
    """ledref on the committed files against transformers 4.57.6's LEDTokenizerFast (and its slow LEDTokenizer,
    which agrees except on the calls of cases.SLOW_FAST_DIFFERENCES)."""
    call = CALLS[name]
    assert same(cases.run(committed[call["prefix_space"]], call), golden["calls"][name]["fast"])


@pytest.mark.parametrize("index", cases.PREFIX_TEXTS)
def test_decode_cut_characters_matches_transformers4_golden(index, committed, golden):
    assert cases.run_prefixes(committed[False], cases.TEXTS[index]) == golden["prefixes"][str(index)]["fast"]


def test_some_cuts_land_inside_characters(golden):
    """The prefixes above exercise the lossy decode: bytes of a cut character become U+FFFD."""
    assert any("\ufffd" in text for entry in golden["prefixes"].values() for text in entry["fast"])


def test_slow_fast_differences_are_the_documented_ones(golden):
    assert golden["transformers"] == "4.57.6" and len(golden["calls"]) == len(CALLS)
    found = golden["slow_fast_differences"]
    patterns = [p for group in cases.SLOW_FAST_DIFFERENCES.values() for p in group]
    for name in found:
        assert any(fnmatch.fnmatchcase(name, p) for p in patterns), f"undocumented slow/fast difference: {name}"
    for p in patterns:
        assert any(fnmatch.fnmatchcase(name, p) for name in found), f"documented difference {p!r} is gone"
    assert all("slow" in golden["calls"][name] for name in found if name in golden["calls"])  # recorded


# ------------------------------------------------------------------------------------------------ other outputs
def test_numpy_output_and_properties(ours, hf5):
    tokenizer, theirs = ours[False], hf5["LEDTokenizerFast", False]
    texts = [cases.TEXTS[0], cases.TEXTS[45], cases.TEXTS[34]]
    mine, reference = tokenizer(texts, padding=True, return_tensors="np"), theirs(texts, padding=True,
                                                                                  return_tensors="np")
    for key in ("input_ids", "attention_mask"):
        assert mine[key].dtype == np.int64 and mine[key].shape == reference[key].shape
        np.testing.assert_array_equal(mine[key], reference[key])
    single = tokenizer(cases.TEXTS[0], return_tensors="np")
    np.testing.assert_array_equal(single.input_ids, theirs(cases.TEXTS[0], return_tensors="np")["input_ids"])
    assert tokenizer.batch_decode(mine["input_ids"], skip_special_tokens=True) == theirs.batch_decode(
        reference["input_ids"], skip_special_tokens=True)
    assert tokenizer.decode(mine["input_ids"]) == theirs.decode(reference["input_ids"].tolist())
    for name in ("pad_token_id", "bos_token_id", "eos_token_id", "unk_token_id", "mask_token_id", "sep_token_id",
                 "cls_token_id", "vocab_size", "model_max_length", "pad_token", "mask_token"):
        assert getattr(tokenizer, name) == getattr(theirs, name), name
    assert len(tokenizer) == len(theirs)
    ids = tokenizer.encode(cases.TEXTS[12])
    assert ids == theirs.encode(cases.TEXTS[12])
    assert tokenizer.encode(*cases.PAIRS[0], truncation=True, max_length=9) == theirs.encode(
        *cases.PAIRS[0], truncation=True, max_length=9)
    assert tokenizer.convert_ids_to_tokens(ids) == theirs.convert_ids_to_tokens(ids)
    assert tokenizer.convert_ids_to_tokens(ids[1]) == theirs.convert_ids_to_tokens(ids[1])
    tokens = ["Ġthe", "<mask>", "not-a-token", "<s>"]
    assert tokenizer.convert_tokens_to_ids(tokens) == theirs.convert_tokens_to_ids(tokens)
    assert tokenizer.convert_tokens_to_ids("Ġthe") == theirs.convert_tokens_to_ids("Ġthe")


def lookups(encoding, call):
    """offset_mapping (as lists), and per row word_ids, sequence_ids and tokens, of a tokenizer's output."""
    batched = isinstance(call["text"], list)
    rows = len(call["text"]) if batched else 1
    offsets = encoding["offset_mapping"]
    offsets = offsets.tolist() if hasattr(offsets, "tolist") else offsets
    offsets = [[list(span) for span in row] for row in (offsets if batched or np.ndim(offsets) == 3 else [offsets])]
    return {"offset_mapping": offsets, "word_ids": [encoding.word_ids(i) for i in range(rows)],
            "sequence_ids": [encoding.sequence_ids(i) for i in range(rows)],
            "tokens": [encoding.tokens(i) for i in range(rows)],
            "input_ids": np.asarray(encoding["input_ids"], dtype=object).tolist()}


def offsets_of(tokenizer, call):
    try:
        return lookups(tokenizer(call["text"], call["text_pair"], return_offsets_mapping=True, **call["options"]),
                       call)
    except Exception as e:  # noqa: BLE001  (transformers' error, or ledref's, is the result compared)
        return {"error": type(e).__name__}


def test_offsets_and_word_ids_match_transformers(ours, hf5):
    """return_offsets_mapping=True, word_ids(), sequence_ids() and tokens() on every call of the cases (pairs,
    truncation, padding, special tokens inside the text, <mask>, add_prefix_space, NumPy output): what
    transformers' fast tokenizer returns."""
    compared = 0
    for call in cases.CALLS:
        mine, reference = offsets_of(ours[call["prefix_space"]], call), offsets_of(
            hf5["LEDTokenizerFast", call["prefix_space"]], call)
        assert same(mine, reference), call["name"]
        compared += "error" not in reference
    assert compared > 400
    # the spans point at the text: each token's span holds the characters the token stands for
    text = cases.TEXTS[0]
    encoding = ours[False](text, return_offsets_mapping=True)
    pieces = [text[a:b] for a, b in encoding["offset_mapping"]]
    assert "".join(pieces[1:-1]).replace(" ", "") == text.replace(" ", "")
    assert encoding["offset_mapping"][0] == encoding["offset_mapping"][-1] == (0, 0)


@settings(max_examples=200, deadline=None)
@given(text=TEXT, pair=st.one_of(st.none(), TEXT), prefix=st.booleans(), max_length=st.integers(4, 24))
def test_random_offsets_match_transformers(ours, hf5, text, pair, prefix, max_length):
    for options in ({}, {"truncation": True, "max_length": max_length, "padding": "max_length"},
                    {"add_special_tokens": False}):
        call = {"text": text, "text_pair": pair, "options": options}
        assert same(offsets_of(ours[prefix], call), offsets_of(hf5["LEDTokenizerFast", prefix], call))


def test_offsets_bad_arguments(ours):
    encoding = ours[False](["a b", "c"])
    with pytest.raises(TokenizerError, match=r"batch_index=2 is not a row of this encoding of 2 rows"):
        encoding.word_ids(2)
    with pytest.raises(TokenizerError, match=r"return_offsets_mapping='yes'; expected True or False"):
        ours[False]("a", return_offsets_mapping="yes")
    assert "offset_mapping" not in encoding


def test_global_attention_mask(ours):
    tokenizer = ours[False]
    batch = tokenizer(cases.TEXTS[:6], padding=True)
    ids, mask = np.array(batch["input_ids"]), np.array(batch["attention_mask"])
    expected = np.zeros_like(ids)  # the LED docs: global attention on <s>, the first token of every row
    expected[:, 0] = 1
    np.testing.assert_array_equal(tokenizer.global_attention_mask(ids), expected)
    got = tokenizer.global_attention_mask(batch["input_ids"], attention_mask=batch["attention_mask"])
    assert got == expected.tolist()
    expected[:, 3] = mask[:, 3]  # never on padding
    got = tokenizer.global_attention_mask(ids, positions=[0, 3], attention_mask=mask)
    assert got.dtype == ids.dtype and got.shape == ids.shape
    np.testing.assert_array_equal(got, expected)
    ragged = tokenizer(["a b c d e", "a"])["input_ids"]
    assert tokenizer.global_attention_mask(ragged) == [[1] + [0] * (len(ragged[0]) - 1), [1, 0, 0]]
    assert tokenizer.global_attention_mask(ragged[0], positions=2) == [0, 0, 1] + [0] * (len(ragged[0]) - 3)
    np.testing.assert_array_equal(tokenizer.global_attention_mask(ids[0], positions=(1,)),
                                  [0, 1] + [0] * (ids.shape[1] - 2))


# ------------------------------------------------------------------------------------------------ files
def test_save_pretrained_loads_in_transformers(ours, tmp_path):
    transformers = require("transformers")
    for prefix in (False, True):
        directory = tmp_path / f"prefix{prefix}"
        written = ours[prefix].save_pretrained(directory)
        assert sorted(os.path.basename(p) for p in written) == sorted(os.listdir(directory))
        theirs = transformers.LEDTokenizerFast.from_pretrained(directory)
        again = LEDTokenizer.from_pretrained(directory)
        assert theirs.model_max_length == again.model_max_length == ours[prefix].model_max_length
        for call in (c for c in cases.CALLS if c["prefix_space"] == prefix):
            result = cases.run(ours[prefix], call)
            assert same(uncleaned(result), uncleaned(cases.run(theirs, call))), call["name"]
            assert cases.run(again, call) == result, call["name"]
        # the files alone carry what bare vocab.json + merges.txt lose in transformers 5: <mask> strips the space
        assert theirs("a <mask>")["input_ids"] == ours[prefix]("a <mask>")["input_ids"]


def test_settings_from_tokenizer_config(trained_dir, tmp_path):
    """model_max_length, add_prefix_space and clean_up_tokenization_spaces read as transformers reads them."""
    transformers = require("transformers")
    shutil.copytree(trained_dir, tmp_path, dirs_exist_ok=True)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"model_max_length": 16, "add_prefix_space": True, "clean_up_tokenization_spaces": True}))
    mine = LEDTokenizer.from_pretrained(tmp_path)
    theirs = transformers.LEDTokenizerFast.from_pretrained(
        tmp_path, mask_token=AddedToken("<mask>", lstrip=True, special=True),
        clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output=True)
    assert (mine.model_max_length, mine.add_prefix_space, mine.clean_up_tokenization_spaces) == (16, True, True)
    texts = [cases.TEXTS[12], cases.TEXTS[13], cases.TEXTS[45]]
    for options in ({}, {"truncation": True}, {"padding": "max_length"}, {"padding": "max_length", "truncation": True}):
        assert mine(texts, **options) == dict(theirs(texts, **options)), options
    ids = mine(cases.TEXTS[13])["input_ids"]
    assert mine.decode(ids) == theirs.decode(ids) and mine.decode(ids) != mine.decode(ids, False, False)


@pytest.mark.parametrize("lstrip", [True, False])
def test_special_tokens_map_flags(lstrip, trained_dir, tmp_path):
    """special_tokens_map.json can set <mask>'s lstrip; transformers 5 reads it from there too."""
    transformers = require("transformers")
    shutil.copytree(trained_dir, tmp_path, dirs_exist_ok=True)
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"mask_token": {
        "content": "<mask>", "lstrip": lstrip, "rstrip": False, "normalized": True, "single_word": False}}))
    for prefix in (False, True):
        mine = LEDTokenizer.from_pretrained(tmp_path, add_prefix_space=prefix)
        theirs = transformers.LEDTokenizerFast.from_pretrained(tmp_path, add_prefix_space=prefix)
        for text in (cases.TEXTS[45], cases.TEXTS[47], cases.TEXTS[50], "a <mask>"):
            assert mine(text)["input_ids"] == theirs(text)["input_ids"], (prefix, text)


def test_tokenizer_json_and_its_flags(bare, tmp_path):
    """A directory with tokenizer.json (here written by transformers 5 from bare files, so <mask> without lstrip)."""
    transformers = require("transformers")
    theirs = bare[1]
    theirs.save_pretrained(tmp_path)
    assert "tokenizer.json" in os.listdir(tmp_path)
    mine = LEDTokenizer.from_pretrained(str(tmp_path))
    again = transformers.LEDTokenizerFast.from_pretrained(tmp_path)
    for text in cases.TEXTS:
        assert mine(text)["input_ids"] == theirs(text)["input_ids"] == again(text)["input_ids"], text


# ------------------------------------------------------------------------------------------------ errors
def test_missing_files(tmp_path, trained_dir):
    with pytest.raises(TokenizerError, match=r"does not exist.*tokenizer\.json, or vocab\.json and merges\.txt"):
        LEDTokenizer.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(TokenizerError, match=rf"{tmp_path.name}.*found: nothing.*vocab\.json and merges\.txt"):
        LEDTokenizer.from_pretrained(tmp_path)
    shutil.copy(trained_dir / "vocab.json", tmp_path)
    with pytest.raises(TokenizerError, match=r"found: \['vocab\.json'\].*merges\.txt"):
        LEDTokenizer.from_pretrained(tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\nĠ t\nthree parts here\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match=r"merges\.txt line 3 is 'three parts here'"):
        LEDTokenizer.from_pretrained(tmp_path)
    shutil.copy(trained_dir / "merges.txt", tmp_path)
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(TokenizerError, match=r"tokenizer_config\.json as JSON"):
        LEDTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text('{"padding_side": "left"}')
    with pytest.raises(TokenizerError, match=r"padding_side='left'"):
        LEDTokenizer.from_pretrained(tmp_path)
    os.remove(tmp_path / "tokenizer_config.json")
    with pytest.raises(TokenizerError, match=r"unknown tokenizer option 'add_prefix_spaces'"):
        LEDTokenizer.from_pretrained(tmp_path, add_prefix_spaces=True)
    with pytest.raises(TokenizerError, match=r"mask_token '\[MASK\]' is not in the vocabulary"):
        LEDTokenizer.from_pretrained(tmp_path, mask_token="[MASK]")


@pytest.mark.parametrize("options, culprit", [
    (dict(padding="longer"), r"padding='longer' is not a padding strategy"),
    (dict(padding=1), r"padding=1 is not a padding strategy"),
    (dict(truncation="only_third"), r"truncation='only_third' is not a truncation strategy"),
    (dict(truncation=True, max_length=-1), r"max_length=-1"),
    (dict(padding=True, pad_to_multiple_of=0), r"pad_to_multiple_of=0; expected an int >= 1"),
    (dict(padding=True, pad_to_multiple_of=-8), r"pad_to_multiple_of=-8"),
    (dict(padding=True, truncation=True, max_length=10, pad_to_multiple_of=4),
     r"max_length=10 .* pad_to_multiple_of=4"),
    (dict(truncation="only_second", max_length=5), r"truncation='only_second' needs a text_pair"),
    (dict(return_tensors="pt"), r"return_tensors='pt'"),
    (dict(return_tensors="np"), r"return_tensors='np' needs rows of one length"),
])
def test_bad_arguments(options, culprit, ours):
    with pytest.raises(TokenizerError, match=culprit):
        ours[False]([cases.TEXTS[12], "short"], **options)


def test_bad_texts_and_ids(ours):
    tokenizer = ours[False]
    for text, culprit in ((None, r"text must be a str"), ([], r"empty list"), (["a", 3], r"text\[1\] is a int"),
                          (b"bytes", r"text must be a str")):
        with pytest.raises(TokenizerError, match=culprit):
            tokenizer(text)
    with pytest.raises(TokenizerError, match=r"text has 2 entries but text_pair has 1"):
        tokenizer(["a", "b"], ["c"])
    with pytest.raises(TokenizerError, match=r"text_pair must be a list"):
        tokenizer(["a", "b"], "c")
    first, second = (len(tokenizer.encode(t, add_special_tokens=False)) for t in cases.PAIRS[8])
    with pytest.raises(TokenizerError, match=rf"truncation='only_first' must remove {first + second - 8} tokens but "
                                             rf"the first text has only {first}"):
        tokenizer(*cases.PAIRS[8], truncation="only_first", max_length=12)
    with pytest.raises(TokenizerError, match=r"encode takes one text"):
        tokenizer.encode(["a", "b"])
    with pytest.raises(TokenizerError, match=r"token id 3000 is not in the vocabulary; expected ints in \[0, 3000\)"):
        tokenizer.decode([0, 3000])
    with pytest.raises(TokenizerError, match=r"token id -1"):
        tokenizer.convert_ids_to_tokens(-1)


def test_max_length_below_the_special_tokens(ours, hf5):
    """transformers silently returns rows longer than max_length there (unsigned underflow in tokenizers);
    ledref raises instead."""
    theirs, tokenizer = hf5["LEDTokenizerFast", False], ours[False]
    assert len(theirs(cases.TEXTS[12], truncation=True, max_length=1)["input_ids"]) > 1
    assert len(theirs(*cases.PAIRS[0], truncation=True, max_length=3)["input_ids"]) > 3
    with pytest.raises(TokenizerError, match=r"max_length=1 is smaller than the 2 special tokens of a single text"):
        tokenizer(cases.TEXTS[12], truncation=True, max_length=1)
    with pytest.raises(TokenizerError, match=r"max_length=3 is smaller than the 4 special tokens of a pair"):
        tokenizer(*cases.PAIRS[0], truncation=True, max_length=3)
    # without special tokens nothing is subtracted, and max_length 0 empties the text as in transformers
    assert tokenizer(cases.TEXTS[12], add_special_tokens=False, truncation=True, max_length=0)["input_ids"] == \
        theirs(cases.TEXTS[12], add_special_tokens=False, truncation=True, max_length=0)["input_ids"] == []


@pytest.mark.parametrize("positions, culprit", [
    ((40,), r"position 40 is outside row 1 of input_ids, which has 3 tokens"),
    ((-1,), r"position -1 is outside row 0"),
    (("first",), r"position 'first' is not an int"),
])
def test_bad_global_attention_positions(positions, culprit, ours):
    tokenizer = ours[False]
    ragged = tokenizer([" ".join(["word"] * 40), "a"])["input_ids"]
    with pytest.raises(TokenizerError, match=culprit):
        tokenizer.global_attention_mask(ragged, positions=positions)
    padded = np.array(tokenizer(["a b c", "a"], padding=True)["input_ids"])
    with pytest.raises(TokenizerError, match=r"position 9 is outside input_ids, which has 5 tokens"):
        tokenizer.global_attention_mask(padded, positions=(9,))
    with pytest.raises(TokenizerError, match=r"attention_mask has shape \(2, 4\); expected the shape of input_ids"):
        tokenizer.global_attention_mask(padded, attention_mask=np.ones((2, 4)))


def test_a_directory_under_the_home_directory(trained_dir, tmp_path, monkeypatch):
    """"~/name" names a folder of the home directory, for the tokenizer as for the model classes."""
    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(trained_dir, tmp_path / "led_bpe")
    from_home = LEDTokenizer.from_pretrained("~/led_bpe")
    assert from_home("the home directory")["input_ids"] == LEDTokenizer.from_pretrained(trained_dir)(
        "the home directory")["input_ids"]
