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
from .checks import check_int, check_path, inside, is_bool, is_int, make_directory, read_json, short
from .compare import read_safetensors
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
    check_int("examples", examples, ConformanceError, minimum=0)
    check_int("seed", seed, ConformanceError, minimum=0)
    cases = default_cases(examples, seed, variants) if cases is None else list(cases)
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise ConformanceError(f"case names must be unique; {sorted({n for n in names if names.count(n) > 1})} repeat")
    for name in names:  # each names its two files
        if not isinstance(name, str) or "/" in name or not inside(name):
            raise ConformanceError(f"case name {short(name)}; expected a plain name for <name>.safetensors")
    directory = make_directory("directory", directory, ConformanceError)
    for part in ("inputs", "outputs"):
        make_directory(part, os.path.join(directory, part), ConformanceError)
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
    """manifest.json of a dumped directory, checked: its format, and each case entry (see case_of)."""
    directory = check_path("directory", directory, ConformanceError)
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        raise ConformanceError(f"{path}: cannot read the manifest (no such file); write one with "
                               f"`ledref conformance --dump {directory}`")
    manifest = read_json(path, ConformanceError, "conformance manifest")
    if manifest.get("format") != FORMAT:
        raise ConformanceError(f"{path}: format {short(manifest.get('format'))}; expected {FORMAT!r}")
    if not isinstance(manifest.get("cases"), list):
        raise ConformanceError(f"{path}: cases={short(manifest.get('cases'))}; expected a list of case entries")
    return manifest


def case_of(entry, where="the manifest"):
    """The Case a manifest entry describes, checked as hostile: its files inside the directory, its sizes
    within the suite's bounds (checked before anything of their size is made), its masks rows of 0 and 1."""
    if not isinstance(entry, dict):
        raise ConformanceError(f"{where}: a case entry is {short(entry)}; expected an object")
    name = entry.get("name")

    def bad(field, expected):
        return ConformanceError(f"{where}: case {short(name)}: {field}={short(entry.get(field))}; expected {expected}")

    for field in ("name", "inputs", "outputs"):
        value = entry.get(field)
        if not isinstance(value, str) or not inside(value) or (field == "name" and "/" in value):
            raise bad(field, "a plain name" if field == "name" else "a relative path inside the directory")
    sizes = {field: entry.get(field) for field in ("batch", "heads", "length", "head_dim", "one_sided_window", "seed")}
    try:
        testing.check_sizes(**sizes)
    except ConformanceError as e:
        raise ConformanceError(f"{where}: case {name}: {e}") from None
    batch, heads, length = sizes["batch"], sizes["heads"], sizes["length"]
    for field in ("attention_mask", "global_attention_mask"):
        rows = entry.get(field)
        if not (isinstance(rows, list) and len(rows) == batch and all(
                isinstance(r, list) and len(r) == length and all(is_int(v) and v in (0, 1) for v in r) for r in rows)):
            raise bad(field, f"{batch} rows of {length} zeros and ones")
    dilation = entry.get("dilation")
    if not (isinstance(dilation, list) and len(dilation) == heads and all(is_int(r) and r >= 1 for r in dilation)):
        raise bad("dilation", f"{heads} ints >= 1 (one per head)")
    if not is_bool(entry.get("autoregressive")):
        raise bad("autoregressive", "true or false")
    return Case(name, batch, heads, length, sizes["head_dim"], sizes["one_sided_window"],
                tuple(map(tuple, entry["attention_mask"])), tuple(map(tuple, entry["global_attention_mask"])),
                sizes["seed"], None if set(dilation) == {1} else tuple(dilation), bool(entry["autoregressive"]))


def _read(directory, relative):
    return read_safetensors(os.path.join(directory, relative), ConformanceError)


def _check_inputs(inputs, case, path):
    """The stored inputs have the shapes the entry gives (so the reference is no larger than the checked
    sizes say)."""
    b, h, length, d = case.batch, case.heads, case.length, case.head_dim
    shapes = {**{name: (b, h, length, d) for name in testing.TENSORS}, "attention_mask": (b, length),
              "one_sided_window": (), "dilation": (h,), "autoregressive": ()}
    for name, shape in shapes.items():
        if name not in inputs or tuple(inputs[name].shape) != shape:
            found = tuple(inputs[name].shape) if name in inputs else "missing"
            raise ConformanceError(f"{path}: tensor {name} is {found}; expected shape {shape} as the manifest says")


def check(directory, rtol=None, atol=None):
    """Compare outputs/ with the float64 reference of inputs/, case by case -> ConformanceReport (the
    report of ledref.testing, with the dump's dtype and its default tolerances unless rtol, atol)."""
    import ml_dtypes  # noqa: F401  (safetensors reads BF16 through it)
    directory = check_path("directory", directory, ConformanceError)
    manifest = read_manifest(directory)
    dtype = manifest.get("dtype", "float64")
    tolerances = testing.tolerances_for(dtype, rtol, atol)
    results = []
    where = os.path.join(directory, MANIFEST)
    for entry in manifest["cases"]:
        case = case_of(entry, where)
        inputs = _read(directory, entry["inputs"])
        _check_inputs(inputs, case, os.path.join(directory, entry["inputs"]))
        inputs["dilation"] = tuple(int(r) for r in inputs["dilation"])
        inputs["autoregressive"] = bool(inputs["autoregressive"])
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
        expected = testing.reference_of(inputs)
        got = [None if written.get(name) is None else np.asarray(written[name]) for name in testing.OUTPUTS]
        results.append(testing.compare_outputs(case, got, expected, tolerances))
    return ConformanceReport(results=results, examples=0, dtype=dtype, tolerances=tolerances,
                             kernel=f"the outputs in {directory}", framework="files")
