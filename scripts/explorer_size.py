"""The explorer page's size at 16,384 tokens: a small random LED (12 heads, as led-base; window 512;
16,384 positions) over the embedded model's vocabulary, a document of held-out task texts cut to 16,384
tokens, one layer with every head and a 20-token summary (about 10 s and 2 GB here):

    python scripts/explorer_size.py [--heads 12] [--window 512] [--out page.html]
"""

import argparse
import os
import shutil
import tempfile

import ledref
from ledref import needle
from ledref.checkpoint import random_state_dict, save_checkpoint
from ledref.explorer import explore
from ledref.hub import resolve

parser = argparse.ArgumentParser()
parser.add_argument("--heads", type=int, default=12)
parser.add_argument("--window", type=int, default=512)
parser.add_argument("--out", default=os.path.join(tempfile.mkdtemp(), "page.html"))
args = parser.parse_args()

path = tempfile.mkdtemp()
config = ledref.LEDConfig(vocab_size=557, d_model=8 * args.heads, encoder_layers=2, decoder_layers=1,
                          encoder_attention_heads=args.heads, decoder_attention_heads=args.heads, encoder_ffn_dim=64,
                          decoder_ffn_dim=64, max_encoder_position_embeddings=16384,
                          max_decoder_position_embeddings=64, attention_window=args.window)
save_checkpoint(path, config, random_state_dict(config, seed=0, dtype="float32"))
for name in ("vocab.json", "merges.txt"):
    shutil.copy(os.path.join(resolve("ledref/tiny-needle"), name), path)
tokenizer = ledref.LEDTokenizer.from_pretrained(path)
text, seed = "", 0
while len(tokenizer(text)["input_ids"]) < 16384:
    text += needle.make_document(seed).text + "\n\n"
    seed += 1
text = text[:tokenizer(text, return_offsets_mapping=True)["offset_mapping"][16382][1]]  # 16,384 with <s>, </s>
page = explore(path, text, args.out, summarize=True, max_new_tokens=20, min_new_tokens=20)
k, of = page.kept["local"]
print(f"{page.n_tokens:,} tokens, {page.heads} heads, window {args.window}: {page.bytes / 1e6:.1f} MB "
      f"({args.out}); each token keeps {k} of {of} weights, {100 * page.mass['local'][0]:.1f}% of its attention on "
      f"average (at least {100 * page.mass['local'][1]:.1f}%); {page.seconds:.1f} s")
