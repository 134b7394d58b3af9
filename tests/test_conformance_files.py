"""`ledref conformance --dump DIR` and `--check DIR`: a kernel run in a separate process that reads and writes
only the files (NumPy, safetensors and the kernel's own file; no ledref) gets the same verdicts, case by
case, as the in-process suite on the same cases; missing or wrong outputs fail; a shrunk hypothesis case
joins the dump."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from support import ledref_command

from ledref.conformance_files import default_cases
from ledref.testing import check_longformer_attention, load_kernel

KERNELS = Path(__file__).parent.parent / "docs" / "kernels"

# the engineer's program: reads the manifest and the inputs, runs the kernel, writes the outputs
RUNNER = '''
import importlib.util, json, os, sys
import numpy as np
import ml_dtypes  # lets safetensors' NumPy reader return bfloat16
from safetensors.numpy import load_file, save_file

directory, kernel_file, kernel_name = sys.argv[1:4]
spec = importlib.util.spec_from_file_location("kernels", kernel_file)
kernels = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kernels)
kernel = getattr(kernels, kernel_name)
manifest = json.load(open(os.path.join(directory, "manifest.json")))
for case in manifest["cases"]:
    t = load_file(os.path.join(directory, case["inputs"]))
    variant = {}  # only the dilated and autoregressive cases need the kernel's variant arguments
    if set(t["dilation"].tolist()) != {1} or int(t["autoregressive"]):
        variant = dict(dilation=t["dilation"].tolist(), autoregressive=bool(t["autoregressive"]))
    out, local_probs, global_probs = kernel(t["q"], t["k"], t["v"], t["q_global"], t["k_global"], t["v_global"],
                                            t["attention_mask"], int(t["one_sided_window"]), **variant)
    written = {"output": out, "local_probs": local_probs}
    if global_probs is not None:
        written["global_probs"] = global_probs
    save_file({k: np.ascontiguousarray(v) for k, v in written.items()}, os.path.join(directory, case["outputs"]))
assert not any(name == "ledref" or name.startswith("ledref.") for name in sys.modules), "the runner used ledref"
print(len(manifest["cases"]), "cases")
'''


def run_elsewhere(directory, kernel_name, tmp_path):
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    run = subprocess.run([sys.executable, "-I", str(runner), str(directory), str(KERNELS / "buggy_kernels.py"),
                          kernel_name], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr


def case_lines(text):
    """The per-case lines of a report (the header names the kernel and its framework, which differ)."""
    return text.splitlines()[1:]


def test_round_trip_through_files_matches_the_in_process_suite(tmp_path):
    directory = tmp_path / "cases"
    run = ledref_command("conformance", "--dump", directory, "--dtype", "bfloat16", "--examples", "6", "--seed", "3",
                         "--variants")
    assert run.returncode == 0, run.stderr
    manifest = json.loads((directory / "manifest.json").read_text())
    cases = default_cases(6, 3, variants=True)
    assert manifest["dtype"] == "bfloat16" and [c["name"] for c in manifest["cases"]] == [c.name for c in cases]
    first = load_file(directory / "inputs" / "globals_per_row_differ.safetensors")
    assert first["q"].dtype.name == "bfloat16" and first["attention_mask"].dtype == np.int64
    assert manifest["cases"][2]["expected_shapes"]["global_probs"] == [3, 2, 48, 3]

    # a correct kernel, in another process, through the files: every case passes, as in process
    run_elsewhere(directory, "plain_kernel", tmp_path)
    check = ledref_command("conformance", "--check", directory)
    assert check.returncode == 0, check.stdout + check.stderr
    plain = load_kernel(f"{KERNELS / 'buggy_kernels.py'}:plain_kernel")
    in_process = check_longformer_attention(plain, examples=0, cases=cases, dtype="bfloat16")
    assert in_process.ok and case_lines(check.stdout) == case_lines(in_process.format())
    assert f"{len(cases)} of {len(cases)} cases passed: OK" in check.stdout

    # a buggy one: the same failures, with the same messages
    run_elsewhere(directory, "dilation_first_head_only", tmp_path)
    check = ledref_command("conformance", "--check", directory)
    buggy = load_kernel(f"{KERNELS / 'buggy_kernels.py'}:dilation_first_head_only")
    in_process = check_longformer_attention(buggy, examples=0, cases=cases, dtype="bfloat16")
    assert check.returncode == 1 and not in_process.ok
    assert case_lines(check.stdout) == case_lines(in_process.format())
    assert "FAIL  dilation_per_head" in check.stdout

    # what the program did not write fails the case; tolerances can be given at check time
    os.remove(directory / "outputs" / "no_globals.safetensors")
    check = ledref_command("conformance", "--check", directory, "--rtol", "1", "--atol", "1")
    assert check.returncode == 1 and "FAIL  no_globals" in check.stdout and "no outputs/no_globals.safetensors" \
        in check.stdout


def test_a_shrunk_hypothesis_case_joins_the_dump(tmp_path):
    directory = tmp_path / "cases"
    run = ledref_command("conformance", KERNELS / "buggy_kernels.py:filler_slots_zero", "--examples", "10",
                         "--dump", directory)
    assert run.returncode == 1 and "FAIL  hypothesis" in run.stdout and "hypothesis_shrunk" in run.stdout
    names = [c["name"] for c in json.loads((directory / "manifest.json").read_text())["cases"]]
    assert names[-1] == "hypothesis_shrunk" and "random_019" in names and "dilation_two" not in names
    run_elsewhere(directory, "filler_slots_zero", tmp_path)
    check = ledref_command("conformance", "--check", directory)
    assert check.returncode == 1 and "FAIL  hypothesis_shrunk" in check.stdout
    run_elsewhere(directory, "plain_kernel", tmp_path)
    assert ledref_command("conformance", "--check", directory).returncode == 0
