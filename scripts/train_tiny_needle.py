"""Train the tiny LED of ledref/assets/tiny-needle on the task of ledref.needle (copy the codes scattered
through a document of 1,000 to 4,000 tokens, in order).

1. A byte-level BPE tokenizer is trained with `tokenizers` on task documents and on a text holding every
   two-digit code, so that a code (with its leading space) is one token. Special tokens as LED's: <s>=0,
   <pad>=1, </s>=2, <unk>=3, <mask> last. ledref.LEDTokenizer and transformers' LEDTokenizerFast, both loaded
   from the output directory, must encode held-out documents identically.
2. A tiny transformers.LEDForConditionalGeneration (d_model 128, 2 + 2 layers, 4 heads, FFN 512, attention
   window 32, 4,096 encoder positions initialised as small sinusoids) is trained with plain torch (AdamW,
   warm-up then cosine decay) with global attention on <s>, through a curriculum of stages from one code in a
   few words to three to five codes in the evaluation's length (900 to 3,400 filler words). Labels are
   `<s> answer </s>`, as LED's summarisation checkpoints are trained; batches hold documents of similar length.
3. The model (float32 safetensors), generation_config.json (greedy), vocab.json and merges.txt are written to
   the output directory (default ledref/assets/tiny-needle).

Progress lines give the loss and, every --eval-every steps, the teacher-forced exact match on validation
documents (seeds training never draws; a teacher-forced exact match is a greedy one).

    python scripts/train_tiny_needle.py

is the run that made the shipped checkpoint: about 10 minutes on one thread of a 2-core CPU (torch 2.13,
transformers 5.24). `--stage 20:1-20:1-1:0-0:1500 --out /tmp/x` is a smoke test.
"""

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from ledref import needle  # noqa: E402
from ledref.tokenizer import LEDTokenizer  # noqa: E402

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "ledref", "assets",
                           "tiny-needle")
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
DEFAULT_STAGES = ["200:1-20:1-1:0-0:1500", "300:1-40:1-2:0-0:1500", "700:1-100:1-5:0-0:2000",
                  "400:50-600:3-5:0-0:3000", "600:900-3400:3-5:0-0:6000"]
VALIDATION_START = 900_000
# training seeds from VALIDATION_START on are kept for validation (training draws from 0 upward)
CODES = [f"{i:0{needle.CODE_DIGITS}d}" for i in range(10 ** needle.CODE_DIGITS)]


def train_tokenizer(directory, n_docs=400):
    """Byte-level BPE trained on task documents and on every code, so that each code is one token; writes
    vocab.json and merges.txt."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    docs = [needle.make_document(seed, n_words=300) for seed in needle.training_seeds(n_docs, start=VALIDATION_START
                                                                                         + 50_000)]
    texts = [d.text for d in docs] + [d.answer for d in docs]
    texts += [" ".join(f"is {code}." for code in CODES)] * 20
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=4096, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts, trainer)
    model = json.loads(bpe.to_str())["model"]
    vocab = dict(model["vocab"])
    assert [vocab[t] for t in SPECIALS] == [0, 1, 2, 3], "special tokens must come first"
    vocab["<mask>"] = len(vocab)
    merges = [m.split(" ") if isinstance(m, str) else m for m in model["merges"]]
    with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=2)
        f.write("\n")
    with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return LEDTokenizer.from_pretrained(directory)


def check_tokenizer(directory, tokenizer, n=20):
    """ledref's and transformers' tokenizers give the same ids on held-out documents and answers, every code
    is one token (in a document and in an answer alike), and the documents fit the encoder."""
    from transformers import LEDTokenizerFast

    reference = LEDTokenizerFast.from_pretrained(directory)
    for code in CODES:
        alone = tokenizer.encode(f"blue {code}", add_special_tokens=False)
        assert len(alone) == 2 and tokenizer.encode(f"is {code}.", add_special_tokens=False)[-2] == alone[1], \
            f"code {code} is not one token"
    longest = 0
    for seed in needle.held_out_seeds(n):
        doc = needle.make_document(seed)
        for text in (doc.text, doc.answer):
            ours = tokenizer(text)["input_ids"]
            assert ours == reference(text)["input_ids"], f"tokenizers disagree on held-out document {seed}"
        assert len(tokenizer(doc.answer)["input_ids"]) == len(doc.facts) + 2, doc.answer  # <s> kind a b </s>
        longest = max(longest, len(tokenizer(doc.text)["input_ids"]))
    return longest


def build_model(vocab_size, args):
    """A tiny LED with sinusoidal initial encoder positions (then trained)."""
    from transformers import LEDConfig, LEDForConditionalGeneration

    config = LEDConfig(
        vocab_size=vocab_size, d_model=args.d_model, encoder_layers=args.encoder_layers,
        decoder_layers=args.decoder_layers,
        encoder_attention_heads=args.heads, decoder_attention_heads=args.heads, encoder_ffn_dim=args.ffn,
        decoder_ffn_dim=args.ffn, attention_window=args.window, max_encoder_position_embeddings=4096,
        max_decoder_position_embeddings=32, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        activation_function="gelu", pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
        tie_word_embeddings=True, init_std=args.init_std)
    model = LEDForConditionalGeneration(config)
    with torch.no_grad():
        table = model.led.encoder.embed_positions.weight
        n, d = table.shape
        position = torch.arange(n, dtype=torch.float32)[:, None]
        frequency = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2, dtype=torch.float32) / d)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency)
        table.mul_(args.position_scale)
    return model


class Stage:
    """A stretch of training: `steps` steps on documents with filler words, requested codes and distractor codes
    drawn from the given inclusive ranges, about `tokens` encoder tokens per batch."""

    def __init__(self, spec):
        try:
            steps, words, facts, distractors, tokens = spec.split(":")
            self.steps, self.tokens = int(steps), int(tokens)
            self.words, self.facts, self.distractors = (tuple(int(x) for x in r.split("-")) for r in
                                                        (words, facts, distractors))
        except ValueError:
            raise argparse.ArgumentTypeError(f"stage {spec!r}; expected steps:words:facts:distractors:tokens "
                                             f"with ranges written lo-hi, e.g. 500:1-40:1-1:0-0:1500") from None

    def __str__(self):
        r = lambda t: f"{t[0]}-{t[1]}"  # noqa: E731
        return f"{self.steps}:{r(self.words)}:{r(self.facts)}:{r(self.distractors)}:{self.tokens}"


class Batches:
    """Batches of training documents of similar length, tokenised, drawn from consecutive training seeds."""

    def __init__(self, tokenizer, seed, window):
        self.tokenizer = tokenizer
        self.window = window
        self.rng = random.Random(seed)
        self.next_seed = 0

    def __call__(self, stage):
        """About stage.tokens encoder tokens of documents of the stage (lengths within 15% of each other)."""
        rng = self.rng
        hi = rng.randint(*stage.words)
        lo = max(stage.words[0], int(hi * 0.85))
        n = max(1, round(stage.tokens / (1.15 * hi + 10 * sum(stage.facts + stage.distractors) / 2 + 10)))
        docs = []
        for _ in range(n):
            seed = needle.training_seeds(1, start=self.next_seed)[0]
            self.next_seed += 1
            assert self.next_seed < VALIDATION_START
            docs.append(needle.make_document(seed, n_words=rng.randint(lo, hi), n_facts=rng.randint(*stage.facts),
                                             n_distractors=rng.randint(*stage.distractors)))
        return encode(self.tokenizer, docs, self.window)


def encode(tokenizer, docs, window=32):
    """Tensors for a list of documents: inputs padded on the right (to a multiple of the attention window, as
    LED would pad them), labels <s> answer </s> with -100 padding."""
    source = tokenizer([d.text for d in docs], padding=True, pad_to_multiple_of=window, return_tensors="np")
    labels = tokenizer([d.answer for d in docs], padding=True, return_tensors="np")
    input_ids = torch.from_numpy(source["input_ids"])
    attention_mask = torch.from_numpy(source["attention_mask"])
    global_attention_mask = torch.zeros_like(input_ids)
    global_attention_mask[:, 0] = 1
    label_ids = torch.from_numpy(labels["input_ids"])
    label_ids[torch.from_numpy(labels["attention_mask"]) == 0] = -100
    return dict(input_ids=input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask,
                labels=label_ids)


@torch.no_grad()
def validate(model, batches):
    """Teacher-forced exact match (every answer token the argmax) over the validation batches."""
    model.eval()
    right = total = 0
    for batch in batches:
        logits = model(**batch).logits
        labels = batch["labels"]
        ok = ((logits.argmax(-1) == labels) | (labels == -100)).all(-1)
        right += int(ok.sum())
        total += len(ok)
    model.train()
    return right / total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="output directory (default ledref/assets/tiny-needle)")
    parser.add_argument("--seed", type=int, default=0, help="torch and document-sampling seed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--stage", type=Stage, action="append", dest="stages",
                        help="steps:words:facts:distractors:tokens, ranges as lo-hi (repeat for a curriculum; "
                             f"default {' '.join(DEFAULT_STAGES)})")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--encoder-layers", type=int, default=2)
    parser.add_argument("--decoder-layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=512)
    parser.add_argument("--window", type=int, default=32, help="attention_window (even)")
    parser.add_argument("--init-std", type=float, default=0.02, help="std of the initial weights")
    parser.add_argument("--position-scale", type=float, default=0.03, help="scale of the sinusoidal init")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--log-every", type=int, default=25)
    args = parser.parse_args()

    from transformers import GenerationConfig
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.time()
    work = tempfile.mkdtemp(prefix="tiny-needle-")
    tokenizer = train_tokenizer(work)
    longest = check_tokenizer(work, tokenizer)
    print(f"tokenizer: {len(tokenizer)} tokens; ledref and transformers agree on held-out documents "
          f"(longest {longest} tokens)", flush=True)

    model = build_model(len(tokenizer), args)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params:,} parameters ({4 * n_params / 2**20:.2f} MiB in float32)", flush=True)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed_positions" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed_positions" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": other, "weight_decay": 0.0}],
                                  lr=args.lr, betas=(0.9, 0.98))
    stages = args.stages or [Stage(spec) for spec in DEFAULT_STAGES]
    total = sum(stage.steps for stage in stages)
    print("curriculum: " + " ".join(map(str, stages)), flush=True)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, total - args.warmup)
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))

    batches = Batches(tokenizer, args.seed, args.window)
    vrng = random.Random(12345)
    validation = {}
    for name, words in (("short", (100, 900)), ("long", needle.N_WORDS_RANGE)):
        docs = [needle.make_document(seed, n_words=vrng.randint(*words))
                for seed in needle.training_seeds(32, start=VALIDATION_START + (0 if name == "short" else 1000))]
        docs.sort(key=lambda d: len(d.text))
        validation[name] = [encode(tokenizer, docs[i:i + 8], args.window) for i in range(0, len(docs), 8)]

    running, seen_tokens, step = None, 0, 0
    for number, stage in enumerate(stages):
        for _ in range(stage.steps):
            batch = batches(stage)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            loss = model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            seen_tokens += int(batch["attention_mask"].sum())
            running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
            step += 1
            if step % args.log_every == 0 or step == total:
                print(f"step {step}/{total} (stage {number + 1}) loss {running:.4f} lr {lr_at(step - 1):.2e} "
                      f"batch {tuple(batch['input_ids'].shape)} tokens {seen_tokens:,} {time.time() - start:.0f}s",
                      flush=True)
            if step % args.eval_every == 0 or step == total:
                long = number == len(stages) - 1 or step == total
                scores = {name: validate(model, v) for name, v in validation.items() if name == "short" or long}
                print("  validation exact match (teacher-forced): "
                      + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()), flush=True)

    model.eval()
    model.generation_config = GenerationConfig(decoder_start_token_id=2, bos_token_id=0, eos_token_id=2,
                                               pad_token_id=1, max_length=32, num_beams=1)
    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    model.to(torch.float32).save_pretrained(out, safe_serialization=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(work, name), os.path.join(out, name))
    shutil.rmtree(work)
    keep = {"config.json", "generation_config.json", "model.safetensors", "vocab.json", "merges.txt"}
    for name in os.listdir(out):
        if name not in keep:
            os.remove(os.path.join(out, name))
    size = sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out))
    print(f"wrote {sorted(os.listdir(out))} to {out} ({size / 2**20:.2f} MiB) after {time.time() - start:.0f}s",
          flush=True)


if __name__ == "__main__":
    main()
