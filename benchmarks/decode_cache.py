"""Cached decoding against recomputing the whole prefix at every step (ledref, greedy search).

    python benchmarks/decode_cache.py [--new-tokens 64] [--source 4096] [--repeats 3]

A random LED (d_model 512, 6 + 6 layers, vocabulary 8000) is written with ledref.checkpoint; both runs
generate exactly --new-tokens tokens (eos banned until then) from the same --source-token input, one
global token. The encoder runs once in both; the ratio is of whole generate() calls, the best of
--repeats. Writes benchmarks/results/decode_cache.json.
"""

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np

import ledref
from ledref.checkpoint import random_state_dict, save_checkpoint

parser = argparse.ArgumentParser()
parser.add_argument("--new-tokens", type=int, default=64)
parser.add_argument("--source", type=int, default=4096)
parser.add_argument("--repeats", type=int, default=3)
args = parser.parse_args()

config = ledref.LEDConfig(vocab_size=8000, d_model=512, encoder_layers=6, decoder_layers=6,
                          encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048,
                          decoder_ffn_dim=2048, attention_window=512, max_encoder_position_embeddings=args.source,
                          max_decoder_position_embeddings=max(128, args.new_tokens + 1))
path = tempfile.mkdtemp()
save_checkpoint(path, config, random_state_dict(config, seed=0))
model = ledref.LEDForConditionalGeneration.from_pretrained(path)
rng = np.random.default_rng(0)
input_ids = rng.integers(3, 8000, (1, args.source))
global_attention_mask = np.zeros_like(input_ids)
global_attention_mask[:, 0] = 1
settings = dict(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)

times, outputs = {}, {}
for use_cache in [True, False] * args.repeats:
    start = time.perf_counter()
    ids = model.generate(input_ids, global_attention_mask=global_attention_mask, use_cache=use_cache, **settings)
    elapsed = time.perf_counter() - start
    times[use_cache] = min(times.get(use_cache, float("inf")), elapsed)
    outputs[use_cache] = ids
start = time.perf_counter()
model.encoder(input_ids, global_attention_mask=global_attention_mask)
encoder_time = time.perf_counter() - start

assert (outputs[True] == outputs[False]).all(), "cached and uncached decoding disagree"
result = {
    "benchmark": "decode_cache", "source_tokens": args.source, "new_tokens": args.new_tokens,
    "model": {k: getattr(config, k) for k in ("d_model", "encoder_layers", "decoder_layers", "vocab_size")},
    "seconds_with_cache": times[True], "seconds_without_cache": times[False], "seconds_encoder": encoder_time,
    "speedup_whole_generate": times[False] / times[True],
    "speedup_decoding_only": (times[False] - encoder_time) / (times[True] - encoder_time),
    "tokens_per_second_with_cache": args.new_tokens / (times[True] - encoder_time),
    "tokens_per_second_without_cache": args.new_tokens / (times[False] - encoder_time),
    "machine": platform.machine(), "cpus": os.cpu_count(), "numpy": np.__version__,
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "decode_cache.json")
with open(out, "w") as f:
    json.dump(result, f, indent=2)
print(json.dumps(result, indent=2))
