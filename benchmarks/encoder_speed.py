"""ledref against transformers on a led-base-sized random LED: encoder and full forward at 1k..16k tokens,
and greedy generation of 64 new tokens from a 4,096-token source, timed twice: `generate` on the source
(encoder and decoding), and decoding alone (the encoder's output given to `generate`). Where decoding time
goes: the matrix products of one decoding step on their own (linears, cross-attention over the 4,096-token
cache, LM head), as NumPy runs ledref's and as torch runs transformers'.

    python benchmarks/encoder_speed.py [--lengths 1024 2048 4096 8192 16384] [--repeats 2] [--skip-decode]

The model is made by transformers (led-base shape: d_model 768, 6 + 6 layers, 12 heads, ffn 3072,
window 1024, 16,384 positions; random weights with transformers' own init), saved as safetensors and
loaded by both. Every measurement runs in a fresh process (so peak RSS is its own), ledref and
transformers alternating, the first token global, float32, torch on all cores. Reported: best time of
--repeats, peak RSS, their ratios, and the FLOP floor: the matrix-product FLOPs of the encoder (from the
shapes, as transformers computes it: the band counts 2w + 1 keys per query, global key/value projections
cover all tokens) divided by the sgemm rate NumPy reaches in the same run.
Writes benchmarks/results/encoder_speed.json and docs/encoder_speed.png.
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


def worker(args):
    """One measurement in this process: prints a JSON line with seconds and peak RSS."""
    import numpy as np
    which, task, path, length = args.worker, args.task, args.path, args.length
    if task == "step_products":
        print(json.dumps(step_products(which)))
        return
    rng = np.random.default_rng(0)
    ids = rng.integers(3, SHAPE["vocab_size"], (1, length))
    gm = np.zeros_like(ids)
    gm[0, 0] = 1
    dec = rng.integers(3, SHAPE["vocab_size"], (1, 128))
    if which == "transformers":
        import torch
        import transformers
        model = transformers.LEDForConditionalGeneration.from_pretrained(path).eval()
        t = {k: torch.from_numpy(v) for k, v in dict(ids=ids, gm=gm, dec=dec).items()}
        with torch.no_grad():
            start = time.perf_counter()
            if task == "encoder":
                model.get_encoder()(input_ids=t["ids"], global_attention_mask=t["gm"])
            elif task == "forward":
                model(input_ids=t["ids"], global_attention_mask=t["gm"], decoder_input_ids=t["dec"])
            elif task == "generate":  # from the source: the encoder, then decoding
                out = model.generate(t["ids"], global_attention_mask=t["gm"], max_new_tokens=64,
                                     min_new_tokens=64, num_beams=1)
            else:  # decoding alone: the encoder's output is given
                encoded = model.get_encoder()(input_ids=t["ids"], global_attention_mask=t["gm"])
                start = time.perf_counter()
                out = model.generate(t["ids"], global_attention_mask=t["gm"], encoder_outputs=encoded,
                                     max_new_tokens=64, min_new_tokens=64, num_beams=1)
            seconds = time.perf_counter() - start
    else:
        import ledref
        model = ledref.LEDForConditionalGeneration.from_pretrained(path)
        start = time.perf_counter()
        if task == "encoder":
            model.encoder(ids, global_attention_mask=gm)
        elif task == "forward":
            model(ids, global_attention_mask=gm, decoder_input_ids=dec)
        elif task == "generate":  # from the source: the encoder, then decoding
            out = model.generate(ids, global_attention_mask=gm, max_new_tokens=64, min_new_tokens=64)
        else:  # decoding alone: the encoder's output is given
            encoded = model.encoder(ids, global_attention_mask=gm)
            start = time.perf_counter()
            out = model.generate(ids, global_attention_mask=gm, encoder_outputs=encoded, max_new_tokens=64,
                                 min_new_tokens=64)
        seconds = time.perf_counter() - start
    result = {"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if task in ("generate", "decode"):
        result["new_tokens"] = int(out.shape[1]) - 1  # after the decoder start token
        result["tokens_per_second"] = result["new_tokens"] / seconds
    print(json.dumps(result))


def step_products(which, steps=64):
    """Median milliseconds per decoding step of its matrix products, by kind, with nothing else of the
    step: led-base shapes, a 4,096-token cross-attention cache of 12 heads, one new token. NumPy takes
    the products as ledref's decoder does (x @ W.T + b; per-head scores and probabilities x values as one
    stacked matmul); torch as transformers' eager attention does (linear, matmul)."""
    import numpy as np
    d, f, heads, source, vocab = (SHAPE["d_model"], SHAPE["decoder_ffn_dim"], SHAPE["decoder_attention_heads"],
                                  4096, SHAPE["vocab_size"])
    rng = np.random.default_rng(0)
    if which == "transformers":
        import torch
        convert = torch.from_numpy  # plain tensors: no gradients are recorded
        linear, transpose = torch.nn.functional.linear, lambda a: a.transpose(-1, -2)
    else:
        convert = np.asarray
        linear, transpose = (lambda x, w, b: x @ w.T + b), (lambda a: np.swapaxes(a, -1, -2))

    def rand(*shape):
        return convert(rng.standard_normal(shape, dtype=np.float32))

    layers = [dict(square=[(rand(d, d), rand(d)) for _ in range(6)],  # self q, k, v, out; cross q, out
                   fc1=(rand(f, d), rand(f)), fc2=(rand(d, f), rand(d)),
                   k=rand(1, heads, source, d // heads), v=rand(1, heads, source, d // heads))
              for _ in range(SHAPE["decoder_layers"])]
    head = (rand(vocab, d), rand(vocab))
    x, x_ffn = rand(1, 1, d), rand(1, 1, f)
    q, p = rand(1, heads, 1, d // heads), rand(1, heads, 1, source)
    times = {"linears": [], "cross_attention": [], "lm_head": []}
    for _ in range(steps + 2):
        spent = dict.fromkeys(times, 0.0)
        for layer in layers:
            start = time.perf_counter()
            for w, b in layer["square"]:
                linear(x, w, b)
            linear(x, *layer["fc1"])
            linear(x_ffn, *layer["fc2"])
            middle = time.perf_counter()
            q @ transpose(layer["k"])
            p @ layer["v"]
            spent["linears"] += middle - start
            spent["cross_attention"] += time.perf_counter() - middle
        start = time.perf_counter()
        linear(x, *head)
        spent["lm_head"] += time.perf_counter() - start
        for k in times:
            times[k].append(spent[k])
    result = {k: 1e3 * float(np.median(v[2:])) for k, v in times.items()}  # the first two warm up
    result["total"] = sum(result.values())
    return result


def sgemm_rate():
    """GFLOP/s of NumPy's float32 matrix product on the encoder's largest shapes (best of 5)."""
    import numpy as np
    a = np.random.default_rng(0).standard_normal((16384, 768), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((768, 3072), dtype=np.float32)
    best = min(_timed(lambda: a @ b) for _ in range(5))
    return 2 * 16384 * 768 * 3072 / best / 1e9


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def encoder_flops(length):
    """Matrix-product FLOPs of the encoder on `length` tokens (padded to the window), one global token."""
    n = -(-length // 1024) * 1024
    d, f, w = SHAPE["d_model"], SHAPE["encoder_ffn_dim"], 512
    per_layer = (2 * n * d * d * 4  # query, key, value, output
                 + 2 * n * d * d * 2  # key_global, value_global over every token
                 + 2 * 1 * d * d  # query_global of the one global token
                 + 2 * n * (2 * w + 1) * d * 2  # band scores and probabilities x values
                 + 2 * n * 1 * d * 2 * 2  # the global key column, and the global row
                 + 2 * n * d * f * 2)  # feed-forward
    return per_layer * SHAPE["encoder_layers"]


def run(which, task, path, length):
    out = subprocess.run([sys.executable, __file__, "--worker", which, "--task", task, "--path", path,
                          "--length", str(length)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-decode", action="store_true")
    parser.add_argument("--worker"), parser.add_argument("--task"), parser.add_argument("--path")
    parser.add_argument("--length", type=int)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    import torch
    import transformers
    path = tempfile.mkdtemp()
    torch.manual_seed(0)
    transformers.LEDForConditionalGeneration(transformers.LEDConfig(**SHAPE)).save_pretrained(path)
    rate = sgemm_rate()
    results = {"benchmark": "encoder_speed", "shape": SHAPE, "sgemm_gflops": rate, "machine": platform.machine(),
               "cpus": os.cpu_count(), "torch": torch.__version__, "transformers": transformers.__version__,
               "runs": []}
    for task in ("encoder", "forward"):
        for length in args.lengths:
            best = {}
            for _ in range(args.repeats):
                for which in ("ledref", "transformers"):  # alternating
                    r = run(which, task, path, length)
                    if which not in best or r["seconds"] < best[which]["seconds"]:
                        best[which] = r
            entry = {"task": task, "length": length, "ledref": best["ledref"], "transformers": best["transformers"],
                     "time_ratio": best["ledref"]["seconds"] / best["transformers"]["seconds"],
                     "rss_ratio": best["ledref"]["peak_rss_mb"] / best["transformers"]["peak_rss_mb"]}
            if task == "encoder":
                entry["flop_floor_seconds"] = encoder_flops(length) / (rate * 1e9)
                entry["ledref_over_floor"] = best["ledref"]["seconds"] / entry["flop_floor_seconds"]
            results["runs"].append(entry)
            print(json.dumps({k: v for k, v in entry.items() if k not in ("ledref", "transformers")}),
                  f"ledref {best['ledref']['seconds']:.2f}s {best['ledref']['peak_rss_mb']:.0f}MB,",
                  f"transformers {best['transformers']['seconds']:.2f}s {best['transformers']['peak_rss_mb']:.0f}MB",
                  flush=True)
    enc = {r["length"]: r["ledref"]["seconds"] for r in results["runs"] if r["task"] == "encoder"}
    if 4096 in enc and 16384 in enc:
        results["ledref_t16k_over_t4k"] = enc[16384] / enc[4096]
    for task in () if args.skip_decode else ("generate", "decode"):
        best = {}
        for _ in range(args.repeats):
            for which in ("ledref", "transformers"):
                r = run(which, task, path, 4096)
                if which not in best or r["tokens_per_second"] > best[which]["tokens_per_second"]:
                    best[which] = r
        results[task] = best
        print(task, "tokens/s:", {k: round(v["tokens_per_second"], 2) for k, v in best.items()}, flush=True)
    if not args.skip_decode:  # the run with the smallest total of --repeats
        best = {}
        for _ in range(args.repeats):
            for which in ("ledref", "transformers"):
                r = run(which, "step_products", path, 4096)
                if which not in best or r["total"] < best[which]["total"]:
                    best[which] = r
        results["step_products_ms"] = best
        print("matrix products of one decoding step, ms:", json.dumps(best), flush=True)
    with open(os.path.join(HERE, "results", "encoder_speed.json"), "w") as f:
        json.dump(results, f, indent=2)
    plot(results)


def plot(results):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    time_ax, rss_ax = fig.subplots(1, 2)
    runs = [r for r in results["runs"] if r["task"] == "encoder"]
    lengths = [r["length"] for r in runs]
    for which, style in (("ledref", "o-"), ("transformers", "s--")):
        time_ax.loglog(lengths, [r[which]["seconds"] for r in runs], style, label=which, base=2)
        rss_ax.loglog(lengths, [r[which]["peak_rss_mb"] for r in runs], style, label=which, base=2)
    time_ax.loglog(lengths, [r["flop_floor_seconds"] for r in runs], ":", color="grey", label="FLOP floor", base=2)
    time_ax.set(xlabel="tokens", ylabel="encoder seconds", title="encoder time (led-base shape, float32)")
    rss_ax.set(xlabel="tokens", ylabel="peak RSS (MB)", title="peak memory of the process")
    for ax in (time_ax, rss_ax):
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    fig.savefig(os.path.join(HERE, "..", "docs", "encoder_speed.png"), dpi=110)


if __name__ == "__main__":
    main()
