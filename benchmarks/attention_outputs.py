"""What attention maps of a long document cost: the encoder alone, the encoder with one layer and one head of
attention, and with every layer's attentions, ledref against transformers' output_attentions=True.

    python benchmarks/attention_outputs.py [--lengths 4096 16384] [--repeats 2] [--layer 5] [--head 0]

The model is made by transformers (led-base shape: d_model 768, 6 + 6 layers, 12 heads, ffn 3072, window
1024, vocabulary 50265; random weights with transformers' own init), saved as safetensors and loaded by
both. Every measurement runs in a fresh process (so its peak RSS is its own), the four kinds alternating
within each repeat, the first token global, float32, torch on all cores:

- `plain`: ledref's `model.encoder(ids, global_attention_mask=gm)`;
- `one`: the same with `output_attentions=[layer], attention_heads=[head]`;
- `all`: the same with `output_attentions=True` (every layer and head, transformers' layout);
- `transformers_all`: transformers' encoder with `output_attentions=True`.

Reported per length: the best time of --repeats for each kind, with the peak RSS of that run, and the
ratios the targets are stated in: `one` against `plain` (time; target at most 1.25 at 16,384 tokens, and
at most 2 GB peak RSS) and `all` against `transformers_all` (time, target at most 0.6; peak RSS, target
at most 1). Each worker checks the shapes of what it got, so that a run that computed something else fails.
Writes benchmarks/results/attention_outputs.json and docs/attention_outputs.png.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPE = dict(vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
             decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072, attention_window=1024,
             max_encoder_position_embeddings=16384, max_decoder_position_embeddings=1024)
KINDS = ("plain", "one", "all", "transformers_all")
TARGETS = {"one_over_plain_time": 1.25, "one_peak_rss_mb": 2048, "all_over_transformers_time": 0.6,
           "all_over_transformers_rss": 1.0}


def worker(args):
    """One measurement in this process: prints a JSON line with seconds and peak RSS."""
    import numpy as np
    kind, path, length, layer, head = args.worker, args.path, args.length, args.layer, args.head
    rng = np.random.default_rng(0)
    ids = rng.integers(3, SHAPE["vocab_size"], (1, length))
    gm = np.zeros_like(ids)
    gm[0, 0] = 1
    columns = 1 + SHAPE["attention_window"] + 1  # one global slot, then the window and the token itself
    if kind == "transformers_all":
        import torch
        import transformers
        model = transformers.LEDForConditionalGeneration.from_pretrained(path).eval()
        with torch.no_grad():
            start = time.perf_counter()
            out = model.get_encoder()(input_ids=torch.from_numpy(ids), global_attention_mask=torch.from_numpy(gm),
                                      output_attentions=True)
            seconds = time.perf_counter() - start
        shapes = [tuple(a.shape) for a in out.attentions]
        expected = [(1, SHAPE["encoder_attention_heads"], length, columns)] * SHAPE["encoder_layers"]
    else:
        import ledref
        model = ledref.LEDForConditionalGeneration.from_pretrained(path)
        selection = {"plain": {}, "one": dict(output_attentions=[layer], attention_heads=[head]),
                     "all": dict(output_attentions=True)}[kind]
        start = time.perf_counter()
        out = model.encoder(ids, global_attention_mask=gm, **selection)
        seconds = time.perf_counter() - start
        shapes = None if out.attentions is None else [None if a is None else tuple(a.shape) for a in out.attentions]
        expected = {"plain": None,
                    "one": [(1, 1, length, columns) if i == layer else None for i in range(SHAPE["encoder_layers"])],
                    "all": [(1, SHAPE["encoder_attention_heads"], length, columns)] * SHAPE["encoder_layers"]}[kind]
    if shapes != expected:
        raise SystemExit(f"{kind}: attentions of shapes {shapes}, expected {expected}")
    print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run(kind, path, length, layer, head):
    out = subprocess.run([sys.executable, __file__, "--worker", kind, "--path", path, "--length", str(length),
                          "--layer", str(layer), "--head", str(head)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{kind} at {length} tokens failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--layer", type=int, default=SHAPE["encoder_layers"] - 1, help="the one layer (default: last)")
    parser.add_argument("--head", type=int, default=0, help="the one head (default 0)")
    parser.add_argument("--worker", choices=KINDS), parser.add_argument("--path")
    parser.add_argument("--length", type=int)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    import torch
    import transformers
    path = tempfile.mkdtemp()
    torch.manual_seed(0)
    transformers.LEDForConditionalGeneration(transformers.LEDConfig(**SHAPE)).save_pretrained(path)
    results = {"benchmark": "attention_outputs", "shape": SHAPE, "layer": args.layer, "head": args.head,
               "targets": TARGETS, "machine": platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__,
               "transformers": transformers.__version__, "repeats": args.repeats, "runs": []}
    for length in args.lengths:
        best = {}
        for _ in range(args.repeats):
            for kind in KINDS:  # alternating
                r = run(kind, path, length, args.layer, args.head)
                if kind not in best or r["seconds"] < best[kind]["seconds"]:
                    best[kind] = r
        entry = {"length": length, **best,
                 "one_over_plain_time": best["one"]["seconds"] / best["plain"]["seconds"],
                 "one_peak_rss_mb": best["one"]["peak_rss_mb"],
                 "all_over_plain_time": best["all"]["seconds"] / best["plain"]["seconds"],
                 "all_over_transformers_time": best["all"]["seconds"] / best["transformers_all"]["seconds"],
                 "all_over_transformers_rss": best["all"]["peak_rss_mb"] / best["transformers_all"]["peak_rss_mb"]}
        results["runs"].append(entry)
        print(json.dumps(entry), flush=True)
    with open(os.path.join(HERE, "results", "attention_outputs.json"), "w") as f:
        json.dump(results, f, indent=2)
    plot(results)


def plot(results):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    time_ax, rss_ax = fig.subplots(1, 2)
    labels = {"plain": "ledref, no attentions", "one": f"ledref, layer {results['layer']} head {results['head']}",
              "all": "ledref, every layer", "transformers_all": "transformers, every layer"}
    colours = {"plain": "#9e9e9e", "one": "#2e7d32", "all": "#1565c0", "transformers_all": "#e65100"}
    runs = results["runs"]
    width = 0.8 / len(KINDS)
    for k, kind in enumerate(KINDS):
        xs = [i + (k - (len(KINDS) - 1) / 2) * width for i in range(len(runs))]
        time_ax.bar(xs, [r[kind]["seconds"] for r in runs], width, label=labels[kind], color=colours[kind])
        rss_ax.bar(xs, [r[kind]["peak_rss_mb"] / 1024 for r in runs], width, label=labels[kind], color=colours[kind])
    for ax, unit, title in ((time_ax, "encoder seconds", "time"), (rss_ax, "peak RSS (GB)", "peak memory")):
        ax.set_xticks(range(len(runs)), [f"{r['length']:,} tokens" for r in runs])
        ax.set(ylabel=unit, title=f"{title}, led-base shape, float32")
        ax.grid(True, axis="y", alpha=0.3)
    time_ax.legend(fontsize=8)
    fig.savefig(os.path.join(HERE, "..", "docs", "attention_outputs.png"), dpi=110)


if __name__ == "__main__":
    main()
