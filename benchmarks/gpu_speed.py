"""ledref on CuPy against transformers on CUDA: encoder and full forward of led-base- and led-large-shaped
random LEDs at 4,096 and 16,384 tokens, float32, TF32 off on both sides.

    pip install -e ".[test,gpu]" && python benchmarks/gpu_speed.py

Each measurement runs in its own process (after one warm-up call), ledref and transformers alternating;
time is measured with the device synchronised, peak GPU memory as torch.cuda.max_memory_allocated and
CuPy's memory-pool size (the pool keeps what was allocated: its size is the peak). Writes
benchmarks/results/gpu_speed.json. `--device cpu --lengths 1024` runs the same script on the CPU (NumPy
and torch) to check it without a GPU.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = {
    "led-base": dict(vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
                     decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072, attention_window=1024,
                     max_encoder_position_embeddings=16384, max_decoder_position_embeddings=1024),
    "led-large": dict(vocab_size=50265, d_model=1024, encoder_layers=12, decoder_layers=12,
                      encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
                      decoder_ffn_dim=4096, attention_window=1024, max_encoder_position_embeddings=16384,
                      max_decoder_position_embeddings=1024),
}


def worker(args):
    import numpy as np
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 50265, (1, args.length))
    gm = np.zeros_like(ids)
    gm[0, 0] = 1
    dec = rng.integers(3, 50265, (1, 128))
    cuda = args.device == "cuda"
    if args.worker == "transformers":
        import torch
        import transformers
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        model = transformers.LEDForConditionalGeneration.from_pretrained(args.path).eval().to(args.device)
        t = {k: torch.from_numpy(v).to(args.device) for k, v in dict(ids=ids, gm=gm, dec=dec).items()}

        def run():
            with torch.no_grad():
                if args.task == "encoder":
                    model.get_encoder()(input_ids=t["ids"], global_attention_mask=t["gm"])
                else:
                    model(input_ids=t["ids"], global_attention_mask=t["gm"], decoder_input_ids=t["dec"])
            if cuda:
                torch.cuda.synchronize()
        run()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() if cuda else None
    else:
        os.environ["CUPY_TF32"] = "0"
        import ledref
        backend = "cupy" if cuda else "numpy"
        model = ledref.LEDForConditionalGeneration.from_pretrained(args.path, backend=backend)
        xp = model.default_xp
        a = {k: xp.asarray(v) for k, v in dict(ids=ids, gm=gm, dec=dec).items()}

        def run():
            if args.task == "encoder":
                out = model.encoder(a["ids"], global_attention_mask=a["gm"]).last_hidden_state
            else:
                out = model(a["ids"], global_attention_mask=a["gm"], decoder_input_ids=a["dec"]).logits
            if cuda:
                import cupy
                cupy.cuda.Device().synchronize()
            return out
        run()
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        if cuda:
            import cupy
            peak = cupy.get_default_memory_pool().total_bytes()
        else:
            peak = None
    print(json.dumps({"seconds": seconds, "peak_gpu_bytes": peak}))


def run(which, task, path, length, device):
    out = subprocess.run([sys.executable, __file__, "--worker", which, "--task", task, "--path", path,
                          "--length", str(length), "--device", device], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{which} {task} {length} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--lengths", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--worker"), parser.add_argument("--task"), parser.add_argument("--path")
    parser.add_argument("--length", type=int)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    import torch
    import transformers
    results = {"benchmark": "gpu_speed", "device": args.device, "torch": torch.__version__,
               "transformers": transformers.__version__, "runs": []}
    if args.device == "cuda":
        results["gpu"] = torch.cuda.get_device_name(0)
    for shape in args.shapes:
        path = tempfile.mkdtemp()
        torch.manual_seed(0)
        transformers.LEDForConditionalGeneration(transformers.LEDConfig(**SHAPES[shape])).save_pretrained(path)
        for task in ("encoder", "forward"):
            for length in args.lengths:
                best = {}
                for _ in range(args.repeats):
                    for which in ("ledref", "transformers"):
                        r = run(which, task, path, length, args.device)
                        if which not in best or r["seconds"] < best[which]["seconds"]:
                            best[which] = r
                entry = {"shape": shape, "task": task, "length": length, **best,
                         "time_ratio": best["ledref"]["seconds"] / best["transformers"]["seconds"]}
                if best["ledref"]["peak_gpu_bytes"] and best["transformers"]["peak_gpu_bytes"]:
                    entry["memory_ratio"] = best["ledref"]["peak_gpu_bytes"] / best["transformers"]["peak_gpu_bytes"]
                results["runs"].append(entry)
                print(json.dumps(entry), flush=True)
    name = "gpu_speed.json" if args.device == "cuda" else "gpu_speed_cpu_check.json"
    with open(os.path.join(HERE, "results", name), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
