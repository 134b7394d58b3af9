"""Write the visualizer's figures of a tiny random LED into docs/ (about 20 s here):

    python scripts/make_figures.py

docs/layout_explainer.png   the compact layout beside the dense matrix, 16 tokens
docs/band_view.png          band view of layer 0, head 0 over 3,000 tokens, 3 global tokens
docs/grid_view.png          band views of 2 layers x 4 heads over 400 tokens
docs/dense_view.png         dense view of the first 40 tokens with token labels
docs/sparsity.png           pairs computed for 1,024 tokens, window 128, 2 global tokens
"""

import os
import tempfile

import numpy as np

import ledref
from ledref import viz
from ledref.checkpoint import random_state_dict, save_checkpoint

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs")
config = ledref.LEDConfig(vocab_size=500, d_model=64, encoder_layers=2, decoder_layers=1, encoder_attention_heads=4,
                          decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
                          max_encoder_position_embeddings=4096, max_decoder_position_embeddings=16,
                          attention_window=[64, 128])
path = tempfile.mkdtemp()
save_checkpoint(path, config, random_state_dict(config, seed=3))
model = ledref.LEDForConditionalGeneration.from_pretrained(path)
rng = np.random.default_rng(0)


def encode(length, globals_):
    ids = rng.integers(3, 500, (1, length))
    gm = np.zeros_like(ids)
    gm[0, globals_] = 1
    return ids, gm, model.encoder(ids, global_attention_mask=gm, output_attentions=True)


viz.plot_layout_explainer().savefig(os.path.join(DOCS, "layout_explainer.png"), dpi=110)
ids, gm, out = encode(3000, [0, 1500, 2999])
viz.plot_band(out.attentions[0], out.global_attentions[0], gm, head=0, log=True,
              title="band view, layer 0 head 0, 3,000 tokens (log scale)").savefig(
    os.path.join(DOCS, "band_view.png"), dpi=110)
ids, gm, out = encode(400, [0, 200])
viz.plot_grid(out.attentions, out.global_attentions, gm, log=True).savefig(os.path.join(DOCS, "grid_view.png"), dpi=90)
viz.plot_dense(out.attentions[0], out.global_attentions[0], gm, head=1, stop=40, tokens=[f"t{i}" for i in ids[0]],
               title="dense view, layer 0 head 1, tokens 0..40").savefig(os.path.join(DOCS, "dense_view.png"), dpi=110)
viz.plot_sparsity(1024, 128, [0, 600]).savefig(os.path.join(DOCS, "sparsity.png"), dpi=110)
print("wrote", sorted(f for f in os.listdir(DOCS) if f.endswith(".png")))
