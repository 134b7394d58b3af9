"""The conformance suite through files, for a kernel in any language (CUDA, Rust, C++, JAX...): ledref
writes every case's inputs as safetensors, your program writes its outputs beside them, ledref compares.

    ledref conformance --dump cases/ --dtype bfloat16 [--examples 20] [--seed 0] [--variants]
    my_kernel_runner cases/                      # reads cases/inputs/*, writes cases/outputs/*
    ledref conformance --check cases/            # the same report as an in-process run

The layout of DIR
-----------------
- `manifest.json`: {"format": "ledref-conformance-files/1", "ledref_version", "dtype", "cases": [...]}.
  Each case: "name", "inputs" and "outputs" (file paths relative to DIR), the sizes "batch", "heads",
  "length", "head_dim", "one_sided_window", "dilation" (one int per head), "autoregressive", "seed",
  "global_slots" (x), the two masks as given to transformers ("attention_mask", "global_attention_mask":
  rows of 0/1), "expected_shapes" of the three outputs (global_probs null when x = 0), "description".
- `inputs/<name>.safetensors`, written by ledref: q, k, v, q_global, k_global, v_global [B, H, L, d] in
  the dump's dtype (F64, F32, F16 or BF16); attention_mask I64 [B, L], the merged mask (0 pad, 1 local,
  2 global); one_sided_window I64 []; dilation I64 [H]; autoregressive I64 [] (0 or 1). The meaning of
  every tensor is `ledref.testing`'s kernel contract. Metadata: format, case, dtype.
- `outputs/<name>.safetensors`, written by your program: output [B, H, L, d], local_probs
  [B, H, L, x + 2w + 1] and, when x > 0, global_probs [B, H, L, x], in any float dtype (F64, F32, F16,
  BF16). A case without its file fails ("no outputs"), as a missing tensor does.

The cases: the catalogue (with `variants`, the dilated and autoregressive ones too, for a kernel that
implements them), then `examples` fixed random cases (`ledref.testing.generated_cases`: no hypothesis
search can run across a process boundary), then any extra cases given, such as the shrunk failing case of
an in-process hypothesis search (`ledref conformance KERNEL --dump DIR` adds it as `hypothesis_shrunk`).
`check` computes the float64 reference from the stored inputs, so it judges exactly the values your
program read, and reports with `ledref.testing`'s report and tolerances (the dump's dtype's defaults, or
rtol and atol).
"""

import json
import os

import numpy as np

from . import testing
from .testing import Case, CaseResult, ConformanceError, ConformanceReport

FORMAT = "ledref-conformance-files/1"
MANIFEST = "manifest.json"


def default_cases(examples=20, seed=0, variants=False):
    """The catalogue (and VARIANT_CATALOGUE with `variants`) and `examples` fixed random cases."""
    return (testing.CATALOGUE + (testing.VARIANT_CATALOGUE if variants else [])
            + testing.generated_cases(examples, seed, testing.VARIANT_ARGUMENTS if variants else ()))


def dump(directory, cases=None, dtype="float64", examples=20, seed=0, variants=False):
    """Write manifest.json and inputs/<name>.safetensors for every case (default_cases unless `cases`),
    with inputs in `dtype`. Returns the manifest (a dict)."""
    from safetensors.numpy import save_file

    from . import __version__
    testing.numpy_dtype(dtype)
    cases = default_cases(examples, seed, variants) if cases is None else list(cases)
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise ConformanceError(f"case names must be unique; {sorted({n for n in names if names.count(n) > 1})} repeat")
    os.makedirs(os.path.join(directory, "inputs"), exist_ok=True)
    os.makedirs(os.path.join(directory, "outputs"), exist_ok=True)
    entries = []
    for case in cases:
        inputs = case.inputs(dtype)
        tensors = {name: np.ascontiguousarray(inputs[name]) for name in testing.TENSORS}
        tensors.update(attention_mask=inputs["attention_mask"], one_sided_window=np.array(case.one_sided_window),
                       dilation=np.array(case.dilations(), np.int64), autoregressive=np.array(int(case.autoregressive)))
        path = f"inputs/{case.name}.safetensors"
        save_file(tensors, os.path.join(directory, path), metadata={"format": FORMAT, "case": case.name,
                                                                     "dtype": dtype})
        entries.append(_entry(case, path))
    manifest = {"format": FORMAT, "ledref_version": __version__, "dtype": dtype, "cases": entries}
    with open(os.path.join(directory, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def _entry(case, path):
    x = int(np.max(np.sum(case.merged_mask() == 2, axis=1)))
    shape = [case.batch, case.heads, case.length]
    return {"name": case.name, "inputs": path, "outputs": f"outputs/{case.name}.safetensors",
            "batch": case.batch, "heads": case.heads, "length": case.length, "head_dim": case.head_dim,
            "one_sided_window": case.one_sided_window, "dilation": list(case.dilations()),
            "autoregressive": case.autoregressive, "seed": case.seed, "global_slots": x,
            "attention_mask": [list(r) for r in case.attention_mask],
            "global_attention_mask": [list(r) for r in case.global_attention_mask],
            "expected_shapes": {"output": shape + [case.head_dim],
                                "local_probs": shape + [x + 2 * case.one_sided_window + 1],
                                "global_probs": shape + [x] if x else None},
            "description": case.describe()}


def read_manifest(directory):
    """manifest.json of a dumped directory, checked."""
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except OSError as e:
        raise ConformanceError(f"{path}: cannot read the manifest ({e.strerror}); write one with "
                               f"`ledref conformance --dump {directory}`") from None
    except json.JSONDecodeError as e:
        raise ConformanceError(f"{path}: not JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ConformanceError(f"{path}: format {manifest.get('format') if isinstance(manifest, dict) else None!r}; "
                               f"expected {FORMAT!r}")
    return manifest


def case_of(entry):
    """The Case a manifest entry describes."""
    dilation = tuple(entry["dilation"])
    return Case(entry["name"], entry["batch"], entry["heads"], entry["length"], entry["head_dim"],
                entry["one_sided_window"], tuple(map(tuple, entry["attention_mask"])),
                tuple(map(tuple, entry["global_attention_mask"])), entry["seed"],
                None if set(dilation) == {1} else dilation, bool(entry["autoregressive"]))


def _read(directory, relative):
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    path = os.path.join(directory, relative)
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise ConformanceError(f"{path}: not a readable safetensors file ({' '.join(str(e).split())})") from None


def check(directory, rtol=None, atol=None):
    """Compare outputs/ with the float64 reference of inputs/, case by case -> ConformanceReport (the
    report of ledref.testing, with the dump's dtype and its default tolerances unless rtol, atol)."""
    import ml_dtypes  # noqa: F401  (safetensors reads BF16 through it)
    manifest = read_manifest(directory)
    dtype = manifest.get("dtype", "float64")
    tolerances = testing.tolerances_for(dtype, rtol, atol)
    results = []
    for entry in manifest["cases"]:
        case = case_of(entry)
        inputs = _read(directory, entry["inputs"])
        inputs["dilation"] = tuple(int(r) for r in inputs["dilation"])
        inputs["autoregressive"] = bool(inputs["autoregressive"])
        expected = testing.reference_of(inputs)
        outputs_path = os.path.join(directory, entry["outputs"])
        if not os.path.isfile(outputs_path):
            results.append(CaseResult(case.name, False, case, message=f"no {entry['outputs']}: the kernel wrote "
                                                                     f"nothing for this case"))
            continue
        try:
            written = _read(directory, entry["outputs"])
        except ConformanceError as e:
            results.append(CaseResult(case.name, False, case, message=str(e)))
            continue
        got = [None if written.get(name) is None else np.asarray(written[name]) for name in testing.OUTPUTS]
        results.append(testing.compare_outputs(case, got, expected, tolerances))
    return ConformanceReport(results=results, examples=0, dtype=dtype, tolerances=tolerances,
                             kernel=f"the outputs in {directory}", framework="files")
