"""LEDTokenizer: LED's byte-level BPE tokenizer on the `tokenizers` library, with transformers' rules around it.

LED uses BART's tokenizer, which is RoBERTa's: GPT-2's byte-level BPE with fairseq's special tokens `<s>`=0,
`<pad>`=1, `</s>`=2, `<unk>`=3 and `<mask>` last (50264 in the real vocabulary). A text becomes `<s> X </s>`,
a pair `<s> A </s></s> B </s>`.

`tokenizers` does the BPE itself: it splits the text on the special tokens, pre-tokenizes byte-level (GPT-2's
regex, bytes mapped to printable characters), applies the merges, and decodes ids back to text. This module adds
what transformers adds on top, in plain Python: the special-token template, truncation (the `tokenizers` rules,
which are transformers' fast rules), padding on the right, and the decode clean-up, with transformers' defaults.

Where transformers versions disagree, ledref follows LED's tokenizer as transformers 4.57.6 defines it, the last
release with LED's own tokenizer classes (its slow and fast classes agree on both points):

- `<mask>` takes the whitespace before it (an AddedToken with lstrip=True, as in BART): "is <mask>." gives
  [..., "Ġis", "<mask>", "."]. transformers 5 does the same when tokenizer.json or tokenizer_config.json says so,
  but loses the flag on a directory with only vocab.json + merges.txt (the allenai LED repositories); to get its ids
  there, pass `mask_token=tokenizers.AddedToken("<mask>", lstrip=False, special=True)`.
- `clean_up_tokenization_spaces=True` (argument or tokenizer_config.json) cleans the decoded text. transformers 5
  ignores it for BPE tokenizers; pass False to get its strings. Both versions default to False.

Where transformers 4.57.6's slow (pure Python) tokenizer and its fast one disagree, ledref follows the fast one,
as transformers 5 does: add_prefix_space puts a space before every piece of text between special tokens, not
only at the start of the text; `<mask>` strips only Unicode White_Space (not \\x1c-\\x1f); a single empty
`text_pair` means no pair; and truncation uses the `tokenizers` rules (see `_truncate`).
"""

import json
import os
import warnings

import numpy as np
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

from .checks import check_int, check_path, is_int, make_directory, read_json, read_text, short
from .errors import TokenizerError
from .hub import REPO_ID, resolve

VERY_LARGE_INTEGER = int(1e30)  # transformers' model_max_length when the files set none: no limit
LARGE_INTEGER = int(1e20)  # above this, transformers treats model_max_length as "no limit"
MAX_PADDED = 2 ** 24  # the longest row padding may make (far beyond any model's positions)
# name -> content; the AddedToken flags are all False except <mask>'s lstrip (see the module docstring)
SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                  "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}
TOKEN_FLAGS = ("lstrip", "rstrip", "single_word", "normalized")
OPTIONS = ("add_prefix_space", "model_max_length", "clean_up_tokenization_spaces", *SPECIAL_TOKENS)
PADDING = ("longest", "max_length", "do_not_pad")
TRUNCATION = ("longest_first", "only_first", "only_second", "do_not_truncate")


class BatchEncoding(dict):
    """What `LEDTokenizer.__call__` returns: a dict of `input_ids` and `attention_mask` (and `offset_mapping` when
    asked for), also readable as attributes, with transformers' per-token lookups `word_ids`, `sequence_ids` and
    `tokens` (from the `tokenizers` encodings, as transformers' fast tokenizer gives them)."""

    def __init__(self, data=None, rows=None):
        super().__init__(data or {})
        self._rows = rows  # per batch row: (tokens, word ids, sequence ids), one entry per input id

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def _row(self, batch_index):
        rows = self._rows or []
        if isinstance(batch_index, bool) or not isinstance(batch_index, (int, np.integer)) or \
                not -len(rows) <= batch_index < len(rows):
            raise TokenizerError(f"batch_index={batch_index!r} is not a row of this encoding of {len(rows)} "
                                 f"row{'s' if len(rows) != 1 else ''}; expected an int in [0, {len(rows)})")
        return rows[batch_index]

    def tokens(self, batch_index=0):
        """The token strings of a row, special and pad tokens included (byte-level: "Ġ" is a space)."""
        return list(self._row(batch_index)[0])

    def word_ids(self, batch_index=0):
        """For each token of a row, the index of the word it belongs to in its own text (words are what the
        byte-level pre-tokenizer splits: a word with the space before it, a run of punctuation, ...), None for
        special tokens and padding. In a pair, the second text's words count from 0 again."""
        return list(self._row(batch_index)[1])

    def sequence_ids(self, batch_index=0):
        """For each token of a row, 0 if it comes from the text, 1 from the text_pair, None for special tokens
        and padding."""
        return list(self._row(batch_index)[2])


class LEDTokenizer:
    """LED's tokenizer: byte-level BPE on `tokenizers`, called like transformers' LEDTokenizer(Fast).

    Build it with `from_pretrained(directory)` or `from_files(vocab_file, merges_file)`; the constructor takes the
    vocabulary itself. `vocab` maps token -> id and must hold the special tokens; `merges` is a list of pairs of
    tokens in merge order. add_prefix_space (False) puts a space before the text, as if it followed a word;
    model_max_length (none) is what truncation=True and padding="max_length" use without a max_length;
    clean_up_tokenization_spaces (False) is decode's default. The special tokens bos_token, eos_token, unk_token,
    sep_token, pad_token, cls_token and mask_token are given as a string, a dict of AddedToken fields or a
    `tokenizers.AddedToken`; a string gets LED's flags (only `<mask>` strips the whitespace before it).
    """

    def __init__(self, vocab, merges, *, add_prefix_space=False, model_max_length=VERY_LARGE_INTEGER,
                 clean_up_tokenization_spaces=False, **special_tokens):
        for name in special_tokens:
            if name not in SPECIAL_TOKENS:
                raise TokenizerError(f"unknown tokenizer option {name!r}; expected one of {list(OPTIONS)}")
        self.add_prefix_space = _check_bool("add_prefix_space", add_prefix_space)
        self.clean_up_tokenization_spaces = _check_bool("clean_up_tokenization_spaces", clean_up_tokenization_spaces)
        self.model_max_length = check_int("model_max_length", model_max_length, TokenizerError, minimum=1)
        self.vocab = _check_vocab(vocab, "vocab")
        self.merges = _check_merges(merges, "merges")
        self.special_tokens = {name: _added_token(name, special_tokens.get(name, content))
                               for name, content in SPECIAL_TOKENS.items()}
        for name, token in self.special_tokens.items():
            if token.content not in self.vocab:
                raise TokenizerError(f"{name} {token.content!r} is not in the vocabulary; expected the special "
                                     f"tokens of LED ({', '.join(sorted(set(SPECIAL_TOKENS.values())))}) in vocab.json")
        # transformers builds the same BPE model (no unk token: byte-level BPE always has a token for every byte)
        try:
            self._backend = Tokenizer(models.BPE(vocab=self.vocab, merges=self.merges, dropout=None, fuse_unk=False,
                                                 continuing_subword_prefix="", end_of_word_suffix=""))
        except Exception as e:  # tokenizers' own check: a merge of tokens the vocabulary does not have
            raise TokenizerError(f"the vocabulary and merges do not make a BPE model ({' '.join(str(e).split())}); "
                                 f"expected merges of tokens in the vocabulary") from None
        self._backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=self.add_prefix_space)
        self._backend.decoder = decoders.ByteLevel()
        # __call__ writes the template itself; the post-processor only makes the saved tokenizer.json complete
        self._backend.post_processor = processors.RobertaProcessing(
            (self.sep_token, self.sep_token_id), (self.cls_token, self.cls_token_id),
            add_prefix_space=self.add_prefix_space)
        unique = {token.content: token for token in self.special_tokens.values()}
        self._backend.add_special_tokens(list(unique.values()))

    # ----------------------------------------------------------------------------------------------- loading
    @classmethod
    def from_files(cls, vocab_file, merges_file, **options):
        """A tokenizer from a GPT-2 style vocab.json and merges.txt; options as in the constructor."""
        vocab_file = check_path("vocab_file", vocab_file, TokenizerError)
        merges_file = check_path("merges_file", merges_file, TokenizerError)
        return cls(_read_vocab(vocab_file), _read_merges(merges_file), **options)

    @classmethod
    def from_pretrained(cls, directory, revision=None, cache_dir=None, local_files_only=False, **options):
        """A tokenizer from a checkpoint directory (or a Hugging Face cache folder or Hub repo id, found as
        ledref.hub.resolve finds models), as transformers loads it.

        The directory holds tokenizer.json, or vocab.json and merges.txt (the allenai LED repositories ship only
        these two), and optionally tokenizer_config.json and special_tokens_map.json, from which add_prefix_space,
        model_max_length, clean_up_tokenization_spaces and the special tokens (with their AddedToken flags) are
        read. `options` (the constructor's keywords) override the files.
        """
        directory = check_path("directory", directory, TokenizerError)
        if os.path.isdir(os.path.join(directory, "snapshots")) or (REPO_ID.match(directory)
                                                                    and not os.path.exists(directory)):
            directory = resolve(directory, revision, cache_dir, local_files_only)
        directory = os.path.expanduser(directory)  # "~/ckpt", as resolve reads it for the model
        expected = "tokenizer.json, or vocab.json and merges.txt"
        if not os.path.isdir(directory):
            raise TokenizerError(f"tokenizer directory {directory!r} does not exist; expected a directory holding "
                                 f"{expected}")

        def path(name):
            return os.path.join(directory, name)

        def optional_json(name):
            return _read_json(path(name), expect=dict) if os.path.isfile(path(name)) else {}

        flags = {}  # token content -> AddedToken flags found in the files
        if os.path.isfile(path("tokenizer.json")):
            vocab, merges, flags = _read_tokenizer_json(path("tokenizer.json"))
        elif os.path.isfile(path("vocab.json")) and os.path.isfile(path("merges.txt")):
            vocab, merges = _read_vocab(path("vocab.json")), _read_merges(path("merges.txt"))
        else:
            raise TokenizerError(f"tokenizer directory {directory!r} holds neither tokenizer.json nor vocab.json "
                                 f"with merges.txt (found: {sorted(os.listdir(directory)) or 'nothing'}); "
                                 f"expected {expected}")
        config, special_map = optional_json("tokenizer_config.json"), optional_json("special_tokens_map.json")
        added = config.get("added_tokens_decoder") or {}
        if not isinstance(added, dict):
            raise TokenizerError(f"{path('tokenizer_config.json')} has added_tokens_decoder={short(added)}; expected "
                                 f"an object of id -> token")
        for entry in added.values():
            if isinstance(entry, dict) and isinstance(entry.get("content"), str):
                flags.setdefault(entry["content"], {k: entry[k] for k in TOKEN_FLAGS if k in entry})
        for key, expected_value in (("padding_side", "right"), ("truncation_side", "right")):
            if config.get(key, expected_value) != expected_value:
                raise TokenizerError(f"tokenizer_config.json sets {key}={short(config[key])}; ledref supports only "
                                     f"{expected_value!r}")
        settings = {name: config[name] for name in OPTIONS if config.get(name) is not None}
        settings.update({name: value for name, value in special_map.items() if name in SPECIAL_TOKENS})
        tokens = {**SPECIAL_TOKENS, **settings, **options}
        contents = {_added_token(name, tokens[name]).content for name in SPECIAL_TOKENS}
        for content in flags:
            if content not in contents:
                raise TokenizerError(f"tokenizer files in {directory!r} add the token {content!r}; ledref supports "
                                     f"only LED's special tokens ({', '.join(sorted(contents))})")
        for name in SPECIAL_TOKENS:  # a token named by its content alone takes the flags the files give it
            if isinstance(settings.get(name), str) and settings[name] in flags:
                settings[name] = {"content": settings[name], **flags[settings[name]]}
        return cls(vocab, merges, **{**settings, **options})

    def save_pretrained(self, directory):
        """Write vocab.json, merges.txt, tokenizer.json and tokenizer_config.json; transformers loads the result.

        Returns the paths written.
        """
        directory = make_directory("directory", directory, TokenizerError)
        files = [os.path.join(directory, name) for name in
                 ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json")]
        with open(files[0], "w", encoding="utf-8") as f:
            json.dump(self.vocab, f, ensure_ascii=False, indent=2)
            f.write("\n")
        with open(files[1], "w", encoding="utf-8") as f:  # transformers' slow reader skips the first line
            f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in self.merges))
        self._backend.save(files[2])
        config = {"tokenizer_class": "LEDTokenizer", "add_prefix_space": self.add_prefix_space,
                  "model_max_length": self.model_max_length,
                  "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces, "errors": "replace",
                  "trim_offsets": True,
                  **{name: token.content for name, token in self.special_tokens.items()},
                  "added_tokens_decoder": {
                      str(self.vocab[token.content]): {"content": token.content, "special": True,
                                                       **{k: getattr(token, k) for k in TOKEN_FLAGS}}
                      for token in self.special_tokens.values()}}
        with open(files[3], "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=2)
            f.write("\n")
        return files

    # ----------------------------------------------------------------------------------------------- encoding
    def __call__(self, text, text_pair=None, add_special_tokens=True, padding=False, truncation=None,
                 max_length=None, pad_to_multiple_of=None, return_attention_mask=True, return_tensors=None,
                 return_offsets_mapping=False):
        """Tokenize a text, a pair of texts, or a batch (a list) of either, as transformers does.

        padding: False / "do_not_pad", True / "longest" (to the longest row of the batch) or "max_length".
        truncation: None / False / "do_not_truncate", True / "longest_first", "only_first" or "only_second";
        max_length alone (no padding, truncation None) switches truncation on, and truncation or
        padding="max_length" without max_length use model_max_length (when the files set one; else none happens).
        pad_to_multiple_of rounds the padded length up. Padding is on the right with the pad id, attention_mask 0.
        Returns a BatchEncoding with `input_ids` (and `attention_mask` unless return_attention_mask=False): lists
        (one row for a single text) or, with return_tensors="np", int64 arrays of shape [batch, length].
        return_offsets_mapping=True adds `offset_mapping`: each token's (start, end) character span in its own
        text (a pair's second text counts from 0), (0, 0) for special tokens and padding, as transformers' fast
        tokenizer returns them (spans trimmed of the space a byte-level token carries); with
        return_tensors="np" an int64 array [batch, length, 2]. `word_ids()`, `sequence_ids()` and `tokens()` of
        the result say which word and which text each token comes from.
        """
        _check_bool("add_special_tokens", add_special_tokens)
        if return_attention_mask is not None:
            _check_bool("return_attention_mask", return_attention_mask)
        if return_tensors is not None and not (isinstance(return_tensors, str) and return_tensors == "np"):
            raise TokenizerError(f"return_tensors={short(return_tensors)} is not supported; expected None or 'np'")
        batched = isinstance(text, (list, tuple))
        rows = _rows(text, text_pair, batched)  # [(text, pair text or None)]
        padding, truncation, max_length = self._strategies(padding, truncation, max_length, pad_to_multiple_of)
        _check_bool("return_offsets_mapping", return_offsets_mapping)
        is_pair = rows[0][1] is not None
        n_special = (4 if is_pair else 2) if add_special_tokens else 0
        if truncation != "do_not_truncate" and max_length < n_special:
            # transformers (tokenizers) subtracts the special tokens in unsigned arithmetic, wraps around and so
            # silently skips truncation
            raise TokenizerError(f"max_length={max_length} is smaller than the {n_special} special tokens of a "
                                 f"{'pair' if is_pair else 'single text'}; expected max_length >= {n_special}")
        firsts = self._backend.encode_batch([a for a, _ in rows], add_special_tokens=False)
        seconds = self._backend.encode_batch([b for _, b in rows], add_special_tokens=False) if is_pair else None

        input_ids, offsets, rows_info = [], [], []
        for i, first in enumerate(firsts):
            second = seconds[i] if is_pair else None
            ids, pair_ids = first.ids, second.ids if is_pair else None
            if truncation != "do_not_truncate":
                ids, pair_ids = _truncate(ids, pair_ids, truncation, max_length - n_special)
            # truncation keeps a prefix of each text: cut the spans, words and tokens to the same length
            texts = [(first, len(ids), 0)] + ([(second, len(pair_ids), 1)] if is_pair else [])
            texts = [(e.offsets[:n], e.word_ids[:n], [which] * n, e.tokens[:n]) for e, n, which in texts]
            if add_special_tokens:
                ids = self._with_special_tokens(ids, pair_ids)
                cls, sep = ([(0, 0)], [None], [None], [self.cls_token]), ([(0, 0)], [None], [None], [self.sep_token])
                parts = [cls, texts[0], sep] + ([sep, texts[1], sep] if is_pair else [])
            else:
                ids = ids + (pair_ids or [])
                parts = texts
            spans, words, sequences, tokens = ([x for part in parts for x in part[k]] for k in range(4))
            input_ids.append(ids)
            offsets.append([tuple(span) for span in spans])
            rows_info.append((tokens, words, sequences))

        attention_mask = [[1] * len(ids) for ids in input_ids]
        if padding != "do_not_pad":
            length = max(map(len, input_ids)) if padding == "longest" else max_length
            if pad_to_multiple_of is not None and length % pad_to_multiple_of:
                length += pad_to_multiple_of - length % pad_to_multiple_of
            if length > MAX_PADDED:
                raise TokenizerError(f"padding would make rows of {length:,} tokens (max_length={max_length}, "
                                     f"pad_to_multiple_of={pad_to_multiple_of}); expected at most {MAX_PADDED:,}")
            # rows longer than the padded length stay as they are (only truncation shortens)
            missing = [max(0, length - len(ids)) for ids in input_ids]
            input_ids = [ids + [self.pad_token_id] * n for ids, n in zip(input_ids, missing, strict=True)]
            attention_mask = [mask + [0] * n for mask, n in zip(attention_mask, missing, strict=True)]
            offsets = [spans + [(0, 0)] * n for spans, n in zip(offsets, missing, strict=True)]
            rows_info = [(tokens + [self.pad_token] * n, words + [None] * n, sequences + [None] * n)
                         for (tokens, words, sequences), n in zip(rows_info, missing, strict=True)]

        encoding = {"input_ids": input_ids}
        if return_attention_mask or return_attention_mask is None:  # None: transformers' default, a mask
            encoding["attention_mask"] = attention_mask
        if return_offsets_mapping:
            encoding["offset_mapping"] = offsets
        if return_tensors == "np":
            if len(set(map(len, input_ids))) > 1:
                raise TokenizerError(f"return_tensors='np' needs rows of one length, got lengths "
                                     f"{sorted(set(map(len, input_ids)))}; pass padding=True")
            arrays = {k: np.asarray(v, dtype=np.int64).reshape(len(v), -1) for k, v in encoding.items()
                      if k != "offset_mapping"}
            if return_offsets_mapping:
                arrays["offset_mapping"] = np.asarray(offsets, dtype=np.int64).reshape(len(input_ids), -1, 2) \
                    if input_ids[0] else np.zeros((len(input_ids), 0, 2), dtype=np.int64)
            return BatchEncoding(arrays, rows_info)
        if not batched:
            return BatchEncoding({k: v[0] for k, v in encoding.items()}, rows_info)
        return BatchEncoding(encoding, rows_info)

    def encode(self, text, text_pair=None, **options):
        """The input_ids of one text (or pair) as a list of ints; options as in `__call__`."""
        if not isinstance(text, str):
            raise TokenizerError(f"encode takes one text (str), got {type(text).__name__}; call the tokenizer "
                                 f"itself for a batch")
        if options.get("return_tensors") is not None:
            raise TokenizerError("encode returns a list; call the tokenizer itself with return_tensors='np'")
        return self(text, text_pair, **options)["input_ids"]

    def _with_special_tokens(self, ids, pair_ids=None):
        """<s> A </s>, or <s> A </s></s> B </s>."""
        if pair_ids is None:
            return [self.cls_token_id] + ids + [self.sep_token_id]
        return [self.cls_token_id] + ids + [self.sep_token_id] * 2 + pair_ids + [self.sep_token_id]

    def _strategies(self, padding, truncation, max_length, pad_to_multiple_of):
        """transformers' `_get_padding_truncation_strategies`: (padding, truncation, max_length) resolved."""
        if max_length is not None:
            check_int("max_length", max_length, TokenizerError, minimum=0)
        if pad_to_multiple_of is not None:
            check_int("pad_to_multiple_of", pad_to_multiple_of, TokenizerError, minimum=1)
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"  # transformers' backward compatibility: max_length alone truncates
        if padding is True and max_length is not None and truncation in (None, False, "do_not_truncate"):
            warnings.warn("`max_length` is ignored when `padding`=`True` and there is no truncation strategy. "
                          "To pad to max length, use `padding='max_length'`.", stacklevel=3)
        if padding is True or padding is False:
            padding = "longest" if padding else "do_not_pad"
        elif not isinstance(padding, str) or padding not in PADDING:
            raise TokenizerError(f"padding={short(padding)} is not a padding strategy; expected True, False or one of "
                                 f"{list(PADDING)}")
        if truncation is True or truncation is False or truncation is None:
            truncation = "longest_first" if truncation else "do_not_truncate"
        elif not isinstance(truncation, str) or truncation not in TRUNCATION:
            raise TokenizerError(f"truncation={short(truncation)} is not a truncation strategy; expected True, False, "
                                 f"None or one of {list(TRUNCATION)}")
        if max_length is None:
            # without max_length, fall back to model_max_length; with none set, neither pad nor truncate
            limited = self.model_max_length <= LARGE_INTEGER
            if padding == "max_length":
                padding = padding if limited else "do_not_pad"
            if truncation != "do_not_truncate":
                truncation = truncation if limited else "do_not_truncate"
            max_length = self.model_max_length if limited else None
        if (truncation != "do_not_truncate" and padding != "do_not_pad" and pad_to_multiple_of is not None
                and max_length is not None and max_length % pad_to_multiple_of):
            raise TokenizerError(f"truncation to max_length={max_length} and padding to a multiple of "
                                 f"pad_to_multiple_of={pad_to_multiple_of} disagree; expected max_length to be a "
                                 f"multiple of pad_to_multiple_of")
        return padding, truncation, max_length

    def global_attention_mask(self, input_ids, positions=(0,), attention_mask=None):
        """LED's `global_attention_mask` for `input_ids`: 1 at `positions` of every row, 0 elsewhere.

        The LED docs advise global attention on the first token (`<s>`) for summarisation, the default here.
        Never 1 on padding: where `attention_mask` is 0 the result is 0. `input_ids` is a list of ids, a list of
        rows (they may differ in length) or a NumPy array of 1 or 2 dimensions; the result has the same kind and
        shape. A position outside a row raises TokenizerError.
        """
        if not isinstance(positions, (int, np.integer, list, tuple, range, np.ndarray)) or isinstance(positions, bool):
            raise TokenizerError(f"positions={short(positions)}; expected an int or a list of token positions")
        positions = [positions] if isinstance(positions, (int, np.integer)) else list(np.asarray(positions).ravel()) \
            if isinstance(positions, np.ndarray) else list(positions)
        for p in positions:
            if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
                raise TokenizerError(f"global attention position {p!r} is not an int; expected token indices")
        if isinstance(input_ids, np.ndarray):
            if input_ids.ndim not in (1, 2) or input_ids.dtype.kind not in "iu":
                raise TokenizerError(f"input_ids has shape {input_ids.shape} and dtype {input_ids.dtype}; expected "
                                     f"integer ids of shape [length] or [batch, length]")
            mask = np.ones_like(input_ids) if attention_mask is None else np.asarray(attention_mask)
            if mask.shape != input_ids.shape:
                raise TokenizerError(f"attention_mask has shape {mask.shape}; expected the shape of input_ids, "
                                     f"{input_ids.shape}")
            result = np.zeros_like(input_ids)  # [batch, length] or [length]
            for p in positions:
                _check_position(p, input_ids.shape[-1])
                result[..., p] = 1
            return np.where(mask != 0, result, 0).astype(input_ids.dtype)
        if not isinstance(input_ids, (list, tuple)):
            raise TokenizerError(f"input_ids is a {type(input_ids).__name__}; expected a list of ids, a list of rows "
                                 f"of ids or a NumPy array")
        single = not input_ids or not isinstance(input_ids[0], (list, tuple, np.ndarray))
        rows = [input_ids] if single else input_ids
        for i, row in enumerate(rows):
            if not isinstance(row, (list, tuple, np.ndarray)) or not all(is_int(t) for t in row):
                where = "input_ids" if single else f"input_ids[{i}]"
                raise TokenizerError(f"{where} is {short(row)}; expected a list of int token ids")
        masks = [[1] * len(row) for row in rows] if attention_mask is None else (
            [attention_mask] if single else attention_mask)
        if (not isinstance(masks, (list, tuple, np.ndarray)) or len(masks) != len(rows)
                or any(not hasattr(m, "__len__") or len(m) != len(r) for m, r in zip(masks, rows, strict=True))):
            raise TokenizerError("attention_mask does not have the shape of input_ids; expected one 0/1 per id")
        result = []
        for i, (row, mask) in enumerate(zip(rows, masks, strict=True)):
            out = [0] * len(row)
            for p in positions:
                _check_position(p, len(row), row=None if single else i)
                out[p] = 1 if mask[p] else 0
            result.append(out)
        return result[0] if single else result

    # ----------------------------------------------------------------------------------------------- decoding
    def decode(self, token_ids, skip_special_tokens=False, clean_up_tokenization_spaces=None):
        """The text of a sequence of ids (a list, a 1-D array or tensor, or one int); a batch of rows (2-D) gives a
        list of texts.

        skip_special_tokens drops `<s>`, `</s>`, `<pad>`, `<unk>` and `<mask>`. clean_up_tokenization_spaces
        (default: the tokenizer's setting, False unless tokenizer_config.json says otherwise) removes the space
        before punctuation and contractions, as transformers 4 does; transformers 5 ignores it for BPE tokenizers.
        Byte sequences cut in the middle of a character decode to U+FFFD.
        """
        ids = _as_ids(token_ids, "token_ids")
        if ids and isinstance(ids[0], (list, tuple)):
            return self.batch_decode(ids, skip_special_tokens, clean_up_tokenization_spaces)
        _check_bool("skip_special_tokens", skip_special_tokens)
        if clean_up_tokenization_spaces is not None:
            _check_bool("clean_up_tokenization_spaces", clean_up_tokenization_spaces)
        self._check_ids(ids)
        text = self._backend.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        return clean_up_tokenization(text) if clean_up_tokenization_spaces else text

    def batch_decode(self, sequences, skip_special_tokens=False, clean_up_tokenization_spaces=None):
        """`decode` for each row of a batch (a list of lists or a 2-D array); a list of texts."""
        rows = _as_ids(sequences, "sequences")
        for i, row in enumerate(rows):
            ids = row if isinstance(row, (list, tuple)) else [row]
            if any(isinstance(t, (list, tuple)) for t in ids):
                raise TokenizerError(f"sequences[{i}] holds lists; expected rows of token ids (1 or 2 dimensions)")
        return [self.decode(list(row) if isinstance(row, (list, tuple)) else [row], skip_special_tokens,
                            clean_up_tokenization_spaces) for row in rows]

    def convert_ids_to_tokens(self, ids):
        """The token string of an id, or the list of token strings of a list of ids."""
        if isinstance(ids, (int, np.integer)) and not isinstance(ids, bool):
            self._check_ids([ids])
            return self._backend.id_to_token(int(ids))
        ids = _as_ids(ids, "ids")
        self._check_ids(ids)
        return [self._backend.id_to_token(int(i)) for i in ids]

    def convert_tokens_to_ids(self, tokens):
        """The id of a token string (the `<unk>` id when it is not in the vocabulary), or the list of ids."""
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        if not isinstance(tokens, (list, tuple)) or not all(isinstance(t, str) for t in tokens):
            raise TokenizerError(f"tokens={short(tokens)}; expected a token string or a list of them")
        return [self.vocab.get(token, self.unk_token_id) for token in tokens]

    def _check_ids(self, ids):
        size = len(self)
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < size:
                raise TokenizerError(f"token id {short(i)} is not in the vocabulary; expected ints in [0, {size})")

    # ----------------------------------------------------------------------------------------------- properties
    def __len__(self):
        """The number of ids, special tokens included."""
        return self._backend.get_vocab_size(with_added_tokens=True)

    @property
    def vocab_size(self):
        """The size of the BPE vocabulary (LED's special tokens are part of it: 50265 for the real one)."""
        return self._backend.get_vocab_size(with_added_tokens=False)

    def get_vocab(self):
        """token -> id, a copy."""
        return dict(self.vocab)

    def __repr__(self):
        return (f"LEDTokenizer(vocab_size={self.vocab_size}, add_prefix_space={self.add_prefix_space}, "
                f"model_max_length={self.model_max_length})")

    # the seven special tokens, as strings and ids (<s> is both bos and cls, </s> both eos and sep)
    bos_token = property(lambda self: self.special_tokens["bos_token"].content, doc="`<s>`.")
    eos_token = property(lambda self: self.special_tokens["eos_token"].content, doc="`</s>`.")
    unk_token = property(lambda self: self.special_tokens["unk_token"].content, doc="`<unk>`.")
    sep_token = property(lambda self: self.special_tokens["sep_token"].content, doc="`</s>`, between and after texts.")
    pad_token = property(lambda self: self.special_tokens["pad_token"].content, doc="`<pad>`.")
    cls_token = property(lambda self: self.special_tokens["cls_token"].content, doc="`<s>`, before the first text.")
    mask_token = property(lambda self: self.special_tokens["mask_token"].content, doc="`<mask>`.")
    bos_token_id = property(lambda self: self.vocab[self.bos_token], doc="Id of `<s>` (0).")
    eos_token_id = property(lambda self: self.vocab[self.eos_token], doc="Id of `</s>` (2).")
    unk_token_id = property(lambda self: self.vocab[self.unk_token], doc="Id of `<unk>` (3).")
    sep_token_id = property(lambda self: self.vocab[self.sep_token], doc="Id of `</s>` (2).")
    pad_token_id = property(lambda self: self.vocab[self.pad_token], doc="Id of `<pad>` (1).")
    cls_token_id = property(lambda self: self.vocab[self.cls_token], doc="Id of `<s>` (0).")
    mask_token_id = property(lambda self: self.vocab[self.mask_token], doc="Id of `<mask>` (the last id).")


def clean_up_tokenization(text):
    """transformers' `clean_up_tokenization`: drop the space before . ? ! , and English contractions."""
    for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                          (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(before, after)
    return text


def _truncate(ids, pair_ids, strategy, max_length):
    """Cut one text (or pair) to max_length tokens, special tokens not counted, by the `tokenizers` rules.

    These are transformers' fast rules (its slow tokenizer differs): longest_first splits max_length between
    the two texts, leaving a shorter one whole when the longer one can take the cut alone, else halves with the
    odd token to the second text; only_first / only_second cut that text and raise when it is too short.
    max_length 0 empties both texts whatever the strategy.
    """
    if max_length == 0:
        return [], None if pair_ids is None else []
    total = len(ids) + len(pair_ids or ())
    if total <= max_length:
        return ids, pair_ids
    if strategy == "longest_first":
        if pair_ids is None:
            return ids[:max_length], None
        short, long = sorted((len(ids), len(pair_ids)))
        long = short if short > max_length else max(short, max_length - short)
        if short + long > max_length:
            short, long = max_length // 2, max_length // 2 + max_length % 2
        n1, n2 = (short, long) if len(ids) <= len(pair_ids) else (long, short)
        return ids[:n1], pair_ids[:n2]
    if strategy == "only_second" and pair_ids is None:
        raise TokenizerError(f"truncation='only_second' needs a text_pair; the single text has {len(ids)} tokens "
                             f"and max_length leaves room for {max_length}")
    which, target = ("first", ids) if strategy == "only_first" else ("second", pair_ids)
    to_remove = total - max_length
    if len(target) <= to_remove:
        raise TokenizerError(f"truncation={strategy!r} must remove {to_remove} tokens but the {which} text has only "
                             f"{len(target)}; expected a larger max_length or truncation='longest_first'")
    target = target[:len(target) - to_remove]
    return (target, pair_ids) if strategy == "only_first" else (ids, target)


def _rows(text, text_pair, batched):
    """[(text, text of the pair or None)], checking types and lengths."""
    texts = list(text) if batched else [text]
    if not batched and not isinstance(text, str):
        raise TokenizerError(f"text must be a str or a list of str, got {type(text).__name__}")
    if batched and not texts:
        raise TokenizerError("text is an empty list; expected at least one str")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TokenizerError(f"text[{i}] is a {type(t).__name__}; expected str")
    if text_pair is not None and not isinstance(text_pair, (str, list, tuple)):
        raise TokenizerError(f"text_pair is a {type(text_pair).__name__}; expected a str, a list of str or None")
    if text_pair is None or (not batched and text_pair == ""):  # transformers: an empty pair text is no pair
        return [(t, None) for t in texts]
    pairs = list(text_pair) if batched and isinstance(text_pair, (list, tuple)) else None
    if batched and pairs is None:
        raise TokenizerError(f"text is a batch, so text_pair must be a list of the same length, got "
                             f"{type(text_pair).__name__}")
    pairs = pairs if batched else [text_pair]
    if len(pairs) != len(texts):
        raise TokenizerError(f"text has {len(texts)} entries but text_pair has {len(pairs)}; expected the same")
    for i, t in enumerate(pairs):
        if not isinstance(t, str):
            raise TokenizerError(f"text_pair{f'[{i}]' if batched else ''} is a {type(t).__name__}; expected str")
    return list(zip(texts, pairs, strict=True))


def _added_token(name, value):
    """A special token as a `tokenizers.AddedToken`, from a string, a dict of its fields or an AddedToken."""
    if isinstance(value, AddedToken):
        value = {"content": value.content, **{k: getattr(value, k) for k in TOKEN_FLAGS}}
    if isinstance(value, str):
        value = {"content": value}
    if not isinstance(value, dict) or not isinstance(value.get("content"), str):
        raise TokenizerError(f"{name}={short(value)}; expected a str, a dict with 'content' or a "
                             f"tokenizers.AddedToken")
    flags = {"lstrip": name == "mask_token", "rstrip": False, "single_word": False, "normalized": False}
    flags.update({k: value[k] for k in TOKEN_FLAGS if k in value})
    for k, flag in flags.items():
        if not isinstance(flag, bool):
            raise TokenizerError(f"{name} has {k}={short(flag)}; expected True or False")
    return AddedToken(value["content"], special=True, **flags)


def _as_ids(value, name):
    """Token ids as a list (of ints, or of rows): from a list or tuple, one int, or an array (NumPy, CuPy,
    torch: anything with tolist). A text or another object is a TokenizerError naming the argument."""
    if isinstance(value, (str, bytes)):
        raise TokenizerError(f"{name} is a {type(value).__name__}; expected token ids (ints), not text; call the "
                             f"tokenizer itself to turn text into ids")
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise TokenizerError(f"{name} is a {type(value).__name__}; expected token ids: a list of ints, a list of "
                             f"rows, or an array")
    return list(value)


def _check_position(p, length, row=None):
    if not 0 <= p < length:
        where = f"row {row} of input_ids" if row is not None else "input_ids"
        raise TokenizerError(f"global attention position {p} is outside {where}, which has {length} tokens; "
                             f"expected 0 <= position < {length}")


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise TokenizerError(f"{name}={short(value)}; expected True or False")
    return value


def _read_json(path, expect=None):
    return read_json(path, TokenizerError, "tokenizer file", expect=expect)


def _check_vocab(vocab, where):
    """{token: id} with str tokens and distinct int ids >= 0 (a copy), else a TokenizerError naming `where`."""
    if not isinstance(vocab, dict):
        raise TokenizerError(f"{where} is a {type(vocab).__name__}; expected a dict of token -> int id")
    for token, i in vocab.items():
        if not isinstance(token, str) or isinstance(i, bool) or not isinstance(i, (int, np.integer)) \
                or not 0 <= i < 2 ** 31:
            raise TokenizerError(f"{where} maps {short(token)} to {short(i)}; expected str tokens and int ids "
                                 f"from 0 to 2**31 - 1")
    if len(set(vocab.values())) != len(vocab):
        raise TokenizerError(f"{where} gives the same id to two tokens; expected distinct ids")
    return {token: int(i) for token, i in vocab.items()}


def _check_merges(merges, where):
    """A list of (left, right) pairs of str tokens, else a TokenizerError naming `where`."""
    if isinstance(merges, (str, bytes, dict)) or not hasattr(merges, "__iter__"):
        raise TokenizerError(f"{where} is a {type(merges).__name__}; expected a list of pairs of tokens")
    pairs = []
    for i, pair in enumerate(merges):
        if isinstance(pair, str) or not isinstance(pair, (list, tuple)) or len(pair) != 2 \
                or not all(isinstance(t, str) for t in pair):
            raise TokenizerError(f"{where}[{i}] is {short(pair)}; expected a pair of tokens (two str)")
        pairs.append(tuple(pair))
    return pairs


def _read_vocab(path):
    """vocab.json: {token: id}, ids distinct ints."""
    vocab = _read_json(path)
    if not isinstance(vocab, dict) or not all(isinstance(i, int) and not isinstance(i, bool) for i in vocab.values()):
        raise TokenizerError(f"{path} is not a vocabulary; expected a JSON object of token -> int id")
    return _check_vocab(vocab, path)


def _read_merges(path):
    """merges.txt: an optional "#version" line, then one merge "left right" per line."""
    lines = read_text(path, TokenizerError, "tokenizer file").split("\n")
    merges = []
    for number, line in enumerate(lines, start=1):
        if not line or (number == 1 and line.startswith("#version")):
            continue
        pair = line.split(" ")
        if len(pair) != 2:
            raise TokenizerError(f"{path} line {number} is {short(line)}; expected two tokens separated by one space")
        merges.append(tuple(pair))
    return merges


def _read_tokenizer_json(path):
    """(vocab, merges, {content: AddedToken flags}) from a `tokenizers` tokenizer.json holding a BPE model."""
    data = _read_json(path, expect=dict)
    model = data.get("model")
    if not isinstance(model, dict) or model.get("type", "BPE") != "BPE" or "vocab" not in model:
        raise TokenizerError(f"{path} does not hold a BPE model; expected model.type 'BPE' with vocab and merges")
    raw_merges = model.get("merges", [])
    if not isinstance(raw_merges, list):
        raise TokenizerError(f"{path} has model.merges={short(raw_merges)}; expected a list")
    merges = [tuple(m.split(" ")) if isinstance(m, str) else m for m in raw_merges]
    added = data.get("added_tokens") or []
    if not isinstance(added, list) or not all(isinstance(t, dict) and isinstance(t.get("content"), str)
                                              for t in added):
        raise TokenizerError(f"{path} has added_tokens={short(added)}; expected a list of objects with a "
                             f"'content' string")
    flags = {t["content"]: {k: t[k] for k in TOKEN_FLAGS if k in t} for t in added}
    return _check_vocab(model["vocab"], f"{path} model.vocab"), _check_merges(merges, f"{path} model.merges"), flags
