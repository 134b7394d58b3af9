"""ledref.testing's conformance suite and `ledref conformance`: ledref's band kernel and independent NumPy
and torch kernels pass, at every dtype with that dtype's default tolerances; kernels with one planted bug
each fail at every dtype, with the case and the wrong tensor named; kernels that take dilation= and
autoregressive= get those cases, others do not; the suite runs (catalogue and fixed random cases) without
hypothesis."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import require
from ledref import testing
from ledref.testing import (
    CATALOGUE,
    VARIANT_CATALOGUE,
    Case,
    ConformanceError,
    check_longformer_attention,
    load_kernel,
    run_case,
)

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
    """ledref's fast kernel takes no dilation or autoregressive argument: the variant cases are not run."""
    report = check_longformer_attention(load("reference_kernel").kernel, examples=25)
    assert report.ok, report.format()
    assert len(report.results) == len(CATALOGUE) + 1
    assert report.not_run == [c.name for c in VARIANT_CATALOGUE]
    assert "not run: 5 variant cases" in report.format()


def test_independent_plain_kernel_passes():
    report = check_longformer_attention(load("buggy_kernels").plain_kernel, examples=25)
    assert report.ok, report.format()
    assert len(report.results) == len(CATALOGUE) + len(VARIANT_CATALOGUE) + 1 and not report.not_run


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_a_correct_kernel_passes_at_its_dtype_with_the_default_tolerances(dtype):
    """plain_kernel computes in its inputs' dtype (bfloat16: in float32, rounded back), independently of
    ledref's code; at each dtype it gets inputs of that dtype and passes that dtype's defaults."""
    seen = []

    def kernel(q, *args, **kwargs):
        seen.append(q.dtype.name)
        return load("buggy_kernels").plain_kernel(q, *args, **kwargs)

    report = check_longformer_attention(kernel, examples=20, dtype=dtype)
    assert report.ok, report.format()
    assert set(seen) == {dtype}
    assert report.tolerances == {name: tuple(v) for name, v in testing.TOLERANCES[dtype].items()}
    # and the defaults are needed: float64's tolerances fail it
    assert dtype == "float64" or not check_longformer_attention(kernel, 1e-7, 1e-9, examples=0, dtype=dtype).ok


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_a_torch_kernel_gets_torch_tensors_and_passes(dtype):
    torch = require("torch")
    kernel = load("torch_kernel").longformer_attention
    seen = set()

    def checked(*args, **kwargs):
        seen.update((type(a).__name__, str(a.dtype)) for a in args[:6])
        assert isinstance(args[6], torch.Tensor) and args[6].dtype == torch.int64
        return kernel(*args, **kwargs)

    report = check_longformer_attention(checked, examples=15, dtype=dtype, framework="torch")
    assert report.ok, report.format()
    assert seen == {("Tensor", f"torch.{dtype}")}


def test_jax_framework_or_a_clear_error():
    try:
        import jax  # noqa: F401
    except ImportError:
        with pytest.raises(ConformanceError, match=r"needs jax installed \(pip install jax\)"):
            check_longformer_attention(load("buggy_kernels").plain_kernel, examples=0, framework="jax")
        run = ledref_command("conformance", KERNELS / "buggy_kernels.py:plain_kernel", "--framework", "jax")
        assert run.returncode == 1 and len(run.stderr.splitlines()) == 1 and "pip install jax" in run.stderr
        return
    plain = load("buggy_kernels").plain_kernel

    def kernel(*args, **kwargs):
        assert type(args[0]).__module__.startswith("jax")
        return plain(*(np.asarray(a) for a in args[:7]), args[7], **kwargs)

    assert check_longformer_attention(kernel, examples=5, dtype="bfloat16", framework="jax").ok


# bug -> (a catalogue case it must fail, the tensors that may be named as wrong)
BUGS = {
    "global_keys_in_band": ("global_first_token", {"output", "local_probs"}),
    "pad_rows_not_zeroed": ("no_globals", {"output", "local_probs"}),
    "band_shifted": ("no_globals", {"output", "local_probs"}),
    "filler_slots_zero": ("globals_per_row_differ", {"global_probs"}),
    "dilation_first_head_only": ("dilation_per_head", {"output", "local_probs"}),
    "autoregressive_one_ahead": ("autoregressive", {"output", "local_probs"}),
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
    assert shrunk.case.length <= 8 and shrunk.case.batch * shrunk.case.length <= 8, shrunk.case
    assert "shrunk reproducer: B=" in text and "attention_mask (merged" in text
    assert not run_case(fn, shrunk.case).passed
    assert run_case(load("buggy_kernels").plain_kernel, shrunk.case).passed


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("bug", BUGS)
def test_planted_bug_fails_at_every_dtype(bug, dtype):
    """At the low-precision dtypes' wider default tolerances, every planted bug is still caught."""
    case_name, tensors = BUGS[bug]
    report = check_longformer_attention(getattr(load("buggy_kernels"), bug), examples=0, dtype=dtype)
    result = next(r for r in report.results if r.name == case_name)
    assert not report.ok and not result.passed and result.tensor in tensors, report.format()


def test_default_tolerances_come_from_the_measured_table():
    """ledref.testing.TOLERANCES are those scripts/measure_tolerances.py derived from its measurement
    (benchmarks/results/tolerances.json): 4 times the larger measured error, rounded up to 1, 2 or 5 times a
    power of ten, atol = rtol * floor; and docs/tolerances.md is the script's rendering of that file."""
    import json
    import math
    results = json.loads((KERNELS.parent.parent / "benchmarks" / "results" / "tolerances.json").read_text())
    for dtype, outputs in results["kernels"].items():
        for name, errors in outputs.items():
            rtol, atol = testing.TOLERANCES[dtype][name]
            assert [rtol, atol] == results["kernel_defaults"][dtype][name], (dtype, name)
            needed = 4 * max(errors.values())
            assert needed <= rtol <= 5 * needed and math.isclose(atol, rtol * results["settings"]["floors"][name])
    sys.path.insert(0, str(KERNELS.parent.parent / "scripts"))
    from measure_tolerances import render
    assert render(results) == (KERNELS.parent / "tolerances.md").read_text()


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
    assert "FAIL" not in run.stdout and "12 of 12 cases passed" in run.stdout


def test_cli_float32_and_bfloat16_kernels_pass_with_their_defaults():
    for dtype in ("float32", "bfloat16"):
        run = ledref_command("conformance", KERNELS / "buggy_kernels.py:plain_kernel", "--dtype", dtype,
                             "--examples", "10")
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"{dtype} inputs (numpy)" in run.stdout and "17 of 17 cases passed" in run.stdout
    run = ledref_command("conformance", KERNELS / "buggy_kernels.py:plain_kernel", "--dtype", "float32",
                         "--rtol", "1e-5", "--atol", "1e-5", "--examples", "5")  # as docs/oracle.md shows
    assert run.returncode == 0 and "output rtol 1e-05 atol 1e-05" in run.stdout, run.stdout + run.stderr
    run = ledref_command("conformance", KERNELS / "buggy_kernels.py:plain_kernel", "--dtype", "float32",
                         "--examples", "0", "--rtol", "1e-9", "--atol", "0")
    assert run.returncode == 1 and "FAIL  no_globals" in run.stdout


def test_cli_buggy_kernel_fails_and_names_the_case():
    run = ledref_command("conformance", KERNELS / "buggy_kernels.py:filler_slots_zero", "--examples", "5")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAIL  globals_per_row_differ" in run.stdout and "global_probs" in run.stdout


def test_cli_bad_spec():
    run = ledref_command("conformance", "nonsense")
    assert run.returncode == 2 and run.stderr.startswith("ledref: error: ")
    run = ledref_command("conformance", "docs/kernels/missing.py:kernel")
    assert run.returncode == 1 and len(run.stderr.splitlines()) == 1 and "missing.py" in run.stderr
    for args, message in ((["--check", "x", "--dump", "y"], "give one of them"), ([], "give a kernel"),
                          ([KERNELS / "reference_kernel.py:kernel", "--check", "x"], "takes no kernel"),
                          (["--check", "x", "--dtype", "float32"], "drop --dtype"),
                          ([KERNELS / "reference_kernel.py:kernel", "--device", "cuda"], "--framework torch"),
                          ([KERNELS / "reference_kernel.py:kernel", "--dtype", "float8"], "invalid choice")):
        run = ledref_command("conformance", *args)
        assert run.returncode == 2 and len(run.stderr.splitlines()) == 1 and message in run.stderr, run.stderr
    run = ledref_command("conformance", "--check", KERNELS / "no_such_dir")
    assert run.returncode == 1 and len(run.stderr.splitlines()) == 1 and "manifest" in run.stderr


def test_without_hypothesis_fixed_random_cases_run_instead(monkeypatch, tmp_path):
    """In the README's plain install hypothesis is absent: the catalogue and fixed random cases run, and the
    report says so; in process and on the command line."""
    monkeypatch.setitem(sys.modules, "hypothesis", None)  # import hypothesis -> ImportError
    assert not testing.hypothesis_available()
    report = check_longformer_attention(load("buggy_kernels").plain_kernel, examples=6)
    assert report.ok and not report.searched, report.format()
    assert [r.name for r in report.results[-6:]] == [f"random_{i:03d}" for i in range(6)]
    assert "hypothesis is not installed" in report.format() and "pip install 'ledref[test]'" in report.format()
    bad = check_longformer_attention(load("buggy_kernels").band_shifted, examples=6)
    assert not bad.ok and all(not r.passed for r in bad.results if r.name.startswith("random_"))
    blocker = tmp_path / "blocker" / "hypothesis"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('hypothesis is not installed here')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker.parent), "PYTHONWARNINGS": "ignore"}
    exe = Path(sys.executable).parent / "ledref"
    run = subprocess.run([str(exe), "conformance", str(KERNELS / "buggy_kernels.py:plain_kernel"), "--examples", "4"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "hypothesis is not installed" in run.stdout and "random_003" in run.stdout
