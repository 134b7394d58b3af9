"""Held-out exact-match accuracy of the tiny trained LED (ledref/assets/tiny-needle) on ledref.needle's task, with
ledref's greedy `generate` and transformers', with and without global attention on <s>.

For each held-out document (seeds 0 .. N-1, which training never used; about 1,000 to 4,000 tokens), both
libraries decode greedily (the checkpoint's generation_config.json: max_length 32) from the same input ids,
once with global attention on the first token (as the model was trained) and once with global_attention_mask
all zeros. The script asserts that ledref's generated ids equal transformers' on every document in both
settings, then prints a table and writes it as JSON to benchmarks/results/tiny_needle_eval.json. An answer is
right when the decoded text (special tokens skipped) equals the document's answer exactly.

    python scripts/eval_tiny_needle.py            # 100 documents: 67 s here (one thread)
    python scripts/eval_tiny_needle.py -n 10 --out /tmp/eval.json

torch and BLAS are held to --threads threads (default 1).
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
sys.path.insert(0, ROOT)
import ledref  # noqa: E402
from ledref import needle  # noqa: E402

DEFAULT_MODEL = os.path.join(ROOT, "ledref", "assets", "tiny-needle")
DEFAULT_OUT = os.path.join(ROOT, "benchmarks", "results", "tiny_needle_eval.json")
BUCKETS = {"<2000 tokens": (0, 2000), "2000-2999 tokens": (2000, 3000), ">=3000 tokens": (3000, 10 ** 9)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100, help="held-out documents (seeds 0 .. n-1)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="checkpoint directory")
    parser.add_argument("--out", default=DEFAULT_OUT, help="JSON file to write")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    args = parser.parse_args()

    import torch
    import transformers
    from threadpoolctl import threadpool_limits
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    start = time.time()

    tokenizer = ledref.LEDTokenizer.from_pretrained(args.model)
    ours = ledref.LEDForConditionalGeneration.from_pretrained(args.model)
    theirs = transformers.LEDForConditionalGeneration.from_pretrained(args.model).eval()
    max_length = ours.generation_config.max_length
    n_params = sum(p.numel() for p in theirs.parameters())

    settings = {"global": True, "no_global": False}
    runs = {(lib, s): {"right": 0, "seconds": 0.0, "by_length": {b: [0, 0] for b in BUCKETS}}
            for lib in ("ledref", "transformers") for s in settings}
    identical = {s: 0 for s in settings}
    lengths, failures = [], []
    for i, seed in enumerate(needle.held_out_seeds(args.n)):
        doc = needle.make_document(seed)
        input_ids = np.asarray([tokenizer(doc.text)["input_ids"]], dtype=np.int64)
        length = input_ids.shape[1]
        lengths.append(length)
        bucket = next(b for b, (lo, hi) in BUCKETS.items() if lo <= length < hi)
        attention_mask = np.ones_like(input_ids)
        for setting, use_global in settings.items():
            global_attention_mask = np.zeros_like(input_ids)
            if use_global:
                global_attention_mask[:, 0] = 1
            t = time.perf_counter()
            ids_ours = ledref.to_numpy(ours.generate(input_ids, attention_mask=attention_mask,
                                                     global_attention_mask=global_attention_mask))
            runs["ledref", setting]["seconds"] += time.perf_counter() - t
            t = time.perf_counter()
            with torch.no_grad():
                ids_theirs = theirs.generate(
                    input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask),
                    global_attention_mask=torch.from_numpy(global_attention_mask), max_length=max_length,
                    num_beams=1, do_sample=False).numpy()
            runs["transformers", setting]["seconds"] += time.perf_counter() - t
            assert ids_ours.shape == ids_theirs.shape and (ids_ours == ids_theirs).all(), (
                f"document {seed} ({setting}): ledref generated {ids_ours.tolist()}, transformers "
                f"{ids_theirs.tolist()}")
            identical[setting] += 1
            text = tokenizer.decode(ids_ours[0].tolist(), skip_special_tokens=True)
            ok = text == doc.answer
            for lib in ("ledref", "transformers"):  # the ids are the same, so is the text
                runs[lib, setting]["right"] += ok
                runs[lib, setting]["by_length"][bucket][0] += ok
                runs[lib, setting]["by_length"][bucket][1] += 1
            if not ok:
                failures.append({"seed": seed, "setting": setting, "tokens": length, "expected": doc.answer,
                                 "generated": text})
        if (i + 1) % 10 == 0:
            print(f"{i + 1}/{args.n} documents, {time.time() - start:.0f}s", flush=True)

    n = args.n
    table = [{"implementation": lib, "global_attention": "<s>" if settings[s] else "none",
              "exact_match": run["right"] / n, "right": run["right"], "documents": n,
              "generate_seconds": round(run["seconds"], 2),
              "exact_match_by_tokens": {b: f"{r}/{t}" for b, (r, t) in run["by_length"].items() if t}}
             for (lib, s), run in runs.items()]
    result = {
        "model": os.path.relpath(os.path.abspath(args.model), os.path.abspath(ROOT)), "parameters": n_params,
        "task": "ledref.needle: copy the codes of the requested colour, in order", "held_out_seeds": f"0..{n - 1}",
        "tokens": {"min": min(lengths), "mean": round(sum(lengths) / n, 1), "max": max(lengths)},
        "decoding": f"greedy, max_length {max_length}",
        "ids_identical_ledref_transformers": {s: f"{identical[s]}/{n}" for s in settings},
        "results": table, "failures": failures,
        "run_seconds": round(time.time() - start, 1), "threads": args.threads,
        "versions": {"ledref": ledref.__version__, "transformers": transformers.__version__,
                     "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }

    print(f"\n{n} held-out documents, {min(lengths)}..{max(lengths)} tokens (mean {sum(lengths) / n:.0f}); "
          f"{n_params:,} parameters")
    print(f"{'implementation':<14} {'global attention':<17} {'exact match':>11} {'generate s':>11}")
    for row in table:
        print(f"{row['implementation']:<14} {row['global_attention']:<17} {row['exact_match']:>11.2%} "
              f"{row['generate_seconds']:>11.1f}")
    print("ledref's generated ids equal transformers' on "
          + ", ".join(f"{v} documents ({k})" for k, v in result["ids_identical_ledref_transformers"].items()))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}; run time {result['run_seconds']:.0f}s")


if __name__ == "__main__":
    main()
