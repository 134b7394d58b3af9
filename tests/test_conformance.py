"""ledref.testing's conformance suite and `ledref conformance`: ledref's band kernel and an independent
NumPy kernel pass; kernels with one planted bug each fail, with the case and the wrong tensor named."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ledref.testing import CATALOGUE, Case, ConformanceError, check_longformer_attention, load_kernel, run_case

KERNELS = Path(__file__).parent.parent / "docs" / "kernels"


def load(file):
    spec = importlib.util.spec_from_file_location(f"kernels_{file}", KERNELS / f"{file}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ledref_command(*args):
    exe = Path(sys.executable).parent / "ledref"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "ledref"]
    return subprocess.run(command + [str(a) for a in args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_reference_kernel_passes():
    report = check_longformer_attention(load("reference_kernel").kernel, examples=25)
    assert report.ok, report.format()
    assert len(report.results) == len(CATALOGUE) + 1


def test_independent_plain_kernel_passes():
    report = check_longformer_attention(load("buggy_kernels").plain_kernel, examples=25)
    assert report.ok, report.format()


# bug -> (a catalogue case it must fail, the tensors that may be named as wrong)
BUGS = {
    "global_keys_in_band": ("global_first_token", {"output", "local_probs"}),
    "pad_rows_not_zeroed": ("no_globals", {"output", "local_probs"}),
    "band_shifted": ("no_globals", {"output", "local_probs"}),
    "filler_slots_zero": ("globals_per_row_differ", {"global_probs"}),
}


@pytest.mark.parametrize("bug", BUGS)
def test_planted_bug_is_caught(bug):
    fn = getattr(load("buggy_kernels"), bug)
    case_name, tensors = BUGS[bug]
    report = check_longformer_attention(fn, examples=10)
    assert not report.ok
    result = next(r for r in report.results if r.name == case_name)
    assert not result.passed and result.tensor in tensors and result.first_bad_index is not None
    text = report.format()
    assert f"FAIL  {case_name}" in text and f"{result.tensor}:" in text
    shrunk = report.results[-1]  # hypothesis: a small reproducer that still fails, and re-runs
    assert shrunk.name == "hypothesis" and not shrunk.passed and isinstance(shrunk.case, Case)
    assert shrunk.case.length <= 8 and shrunk.case.batch <= 2, shrunk.case
    assert "shrunk reproducer: B=" in text and "attention_mask (merged" in text
    assert not run_case(fn, shrunk.case).passed
    assert run_case(load("reference_kernel").kernel, shrunk.case).passed


def test_a_kernel_that_raises_or_returns_the_wrong_things_fails():
    def raises(*args):
        raise RuntimeError("kernel exploded")

    report = check_longformer_attention(raises, examples=0, cases=["no_globals", "window_two"])
    assert [r.passed for r in report.results] == [False, False]
    assert "raised RuntimeError: kernel exploded" in report.format()

    reference = load("reference_kernel").kernel

    def no_global_probs(*args):
        out, local, _ = reference(*args)
        return out, local, None

    result = run_case(no_global_probs, CATALOGUE[1])
    assert not result.passed and result.tensor == "global_probs" and "got None" in result.message

    def narrow_band(*args):
        out, local, glob = reference(*args)
        return out, local[..., :-1], glob

    result = run_case(narrow_band, CATALOGUE[0])
    assert not result.passed and result.tensor == "local_probs" and "shape" in result.message


def test_cases_rebuild_the_same_inputs():
    case = next(c for c in CATALOGUE if c.name == "global_flag_on_pad")
    a, b = case.inputs(), case.inputs()
    assert all(np.array_equal(a[n], b[n]) for n in ("q", "k", "v", "q_global", "k_global", "v_global"))
    mask = case.merged_mask()  # HF: attention_mask * (global_attention_mask + 1); a flagged pad stays 0
    assert case.global_attention_mask[1][25] == 1 and mask[1, 25] == 0 and mask[1, 0] == 2
    assert mask.dtype == np.int64 and a["attention_mask"].tolist() == mask.tolist()


def test_load_kernel_errors(tmp_path):
    with pytest.raises(ConformanceError, match="expected MODULE:FUNCTION"):
        load_kernel("no_colon")
    with pytest.raises(ConformanceError, match="no such file"):
        load_kernel(str(tmp_path / "missing.py") + ":kernel")
    with pytest.raises(ConformanceError, match="has no attribute 'nope'"):
        load_kernel(f"{KERNELS / 'reference_kernel.py'}:nope")
    with pytest.raises(ConformanceError, match="cannot import"):
        load_kernel("no_such_module_here:kernel")


def test_cli_reference_kernel_passes():
    run = ledref_command("conformance", KERNELS / "reference_kernel.py:kernel", "--examples", "5")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "FAIL" not in run.stdout and "12 of 12 catalogue cases passed" in run.stdout


def test_cli_buggy_kernel_fails_and_names_the_case():
    run = ledref_command("conformance", KERNELS / "buggy_kernels.py:filler_slots_zero", "--examples", "5")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAIL  globals_per_row_differ" in run.stdout and "global_probs" in run.stdout


def test_cli_bad_spec():
    run = ledref_command("conformance", "nonsense")
    assert run.returncode == 2 and run.stderr.startswith("ledref: error: ")
    run = ledref_command("conformance", "docs/kernels/missing.py:kernel")
    assert run.returncode == 1 and len(run.stderr.splitlines()) == 1 and "missing.py" in run.stderr
