"""Time to draw the band view of one layer and head at 16,384 tokens (window 1,024, one global token) and
write it as a PNG, with linear and logarithmic colour scales.

    python benchmarks/plot_band.py [--tokens 16384]

The attentions come from a small random LED (the model's cost is not what is measured; its time is
reported apart). Writes benchmarks/results/plot_band.json.
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np

import ledref
from ledref import viz
from ledref.checkpoint import random_state_dict, save_checkpoint

parser = argparse.ArgumentParser()
parser.add_argument("--tokens", type=int, default=16384)
args = parser.parse_args()

config = ledref.LEDConfig(vocab_size=100, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                          decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16,
                          max_encoder_position_embeddings=args.tokens, max_decoder_position_embeddings=8,
                          attention_window=1024)
path = tempfile.mkdtemp()
save_checkpoint(path, config, random_state_dict(config, seed=0))
model = ledref.LEDModel.from_pretrained(path)
ids = np.random.default_rng(0).integers(3, 100, (1, args.tokens))
gm = np.zeros_like(ids)
gm[0, 0] = 1
start = time.perf_counter()
out = model.encoder(ids, global_attention_mask=gm, output_attentions=True)
encoder_seconds = time.perf_counter() - start

result = {"benchmark": "plot_band", "tokens": args.tokens, "window": 1024, "encoder_seconds": encoder_seconds}
for log in (False, True):
    target = os.path.join(path, f"band_{log}.png")
    start = time.perf_counter()
    viz.plot_band(out.attentions[0], out.global_attentions[0], gm, head=0, log=log).savefig(target, dpi=110)
    result[f"plot_and_save_seconds{'_log' if log else ''}"] = time.perf_counter() - start
    result[f"png_bytes{'_log' if log else ''}"] = os.path.getsize(target)
out_file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "plot_band.json")
with open(out_file, "w") as f:
    json.dump(result, f, indent=2)
print(json.dumps(result, indent=2))
