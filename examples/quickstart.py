"""ledref in one run, no download: write a small random LED checkpoint in the Hugging Face layout, load
it, encode a 4,096-token input with the first token global, and read the outputs.

    python examples/quickstart.py [DIRECTORY]      (default: ./tiny-led)
"""

import sys
import time

import numpy as np

import ledref
from ledref.checkpoint import random_state_dict, save_checkpoint

path = sys.argv[1] if len(sys.argv) > 1 else "tiny-led"
config = ledref.LEDConfig(vocab_size=1000, d_model=64, encoder_layers=2, decoder_layers=2,
                          encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128,
                          decoder_ffn_dim=128, max_encoder_position_embeddings=4096,
                          max_decoder_position_embeddings=128, attention_window=[128, 256])
save_checkpoint(path, config, random_state_dict(config, seed=0))
print(f"wrote a random LED checkpoint to {path}/ (config.json, model.safetensors)")

model = ledref.LEDForConditionalGeneration.from_pretrained(path)
rng = np.random.default_rng(0)
input_ids = rng.integers(3, 1000, (1, 4000))
global_attention_mask = np.zeros_like(input_ids)
global_attention_mask[:, 0] = 1  # the first token attends everywhere, as for summarisation
start = time.perf_counter()
out = model(input_ids, global_attention_mask=global_attention_mask, decoder_input_ids=[[2, 0, 5, 6]],
            output_attentions=True)
padded = out.encoder_global_attentions[0].shape[2]
seconds = time.perf_counter() - start
print(f"input of {input_ids.shape[1]} tokens (padded to {padded} inside), forward in {seconds:.2f} s")
print("logits", out.logits.shape)
for layer, (local, glob) in enumerate(zip(out.encoder_attentions, out.encoder_global_attentions, strict=True)):
    print(f"encoder layer {layer}: attentions {local.shape} = (batch, heads, tokens, x + window + 1), "
          f"global_attentions {glob.shape} = (batch, heads, padded tokens, x)")
rows = out.encoder_attentions[0][0, :, 1:, :].sum(axis=-1)  # local tokens' rows: global column + band
print(f"every local token's attention sums to 1: max |sum - 1| = {np.max(np.abs(rows - 1)):.1e}")

# the band implementation and the dense masked reference agree (float64, first 512 tokens)
short = dict(input_ids=input_ids[:, :512], global_attention_mask=global_attention_mask[:, :512],
             decoder_input_ids=[[2, 0, 5, 6]])
band = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype="float64")(**short)
dense = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype="float64", attn_implementation="dense")(**short)
difference = np.max(np.abs(band.logits - dense.logits))
print(f"band vs dense reference, float64: max |difference| of logits = {difference:.1e}")
