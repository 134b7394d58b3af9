"""ledref.compare and `ledref compare`: errors measured against plain NumPy arithmetic on known inputs,
the CLI run as a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from ledref.compare import CompareError, compare


def ledref_command(*args):
    exe = Path(sys.executable).parent / "ledref"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "ledref"]
    return subprocess.run(command + [str(a) for a in args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


def tensors(seed=0):
    rng = np.random.default_rng(seed)
    return {"encoder.layers.0.attn.q": rng.standard_normal((2, 3, 4)),
            "encoder.layers.0.attn.probs": rng.random((2, 5)).astype(np.float32),
            "decoder.out": rng.standard_normal((7,))}


@pytest.fixture
def files(tmp_path):
    """(reference path, writer): writer(dict) saves a second file and returns its path."""
    ref = tmp_path / "ref.safetensors"
    save_file(tensors(), str(ref))
    counter = iter(range(100))

    def write(d):
        path = tmp_path / f"other{next(counter)}.safetensors"
        save_file(d, str(path))
        return path

    return ref, write


def test_identical_files_are_ok(files):
    ref, write = files
    other = write(tensors())
    report = compare(ref, other)
    assert report.ok and len(report.rows) == 3
    assert all(r.max_abs_err == 0 and r.nmse == 0 and r.first_bad_index is None for r in report.rows)
    run = ledref_command("compare", ref, other)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("\nOK ") == 3 and "NOT OK" not in run.stdout


def test_one_perturbed_element_is_found(files):
    ref, write = files
    d = tensors()
    d["encoder.layers.0.attn.q"][1, 2, 3] += 1e-3
    other = write(d)
    report = compare(ref, other)
    row = report.row("encoder.layers.0.attn.q")
    b = tensors()["encoder.layers.0.attn.q"]
    assert not report.ok and not row.ok and row.n_bad == 1
    assert row.first_bad_index == (1, 2, 3) and row.worst_index == (1, 2, 3)
    assert row.max_abs_err == pytest.approx(1e-3, rel=1e-9)
    assert row.max_rel_err == pytest.approx(1e-3 / abs(b[1, 2, 3]), rel=1e-9)
    assert row.nmse == pytest.approx(1e-6 / np.sum(b ** 2), rel=1e-6)
    assert sorted(r.name for r in report.rows if r.ok) == ["decoder.out", "encoder.layers.0.attn.probs"]
    run = ledref_command("compare", ref, other)
    assert run.returncode == 1, run.stderr
    line = next(ln for ln in run.stdout.splitlines() if "attn.q" in ln)
    assert line.startswith("NOT OK") and "(1, 2, 3)" in line


def test_shape_mismatch_is_not_ok(files):
    ref, write = files
    d = tensors()
    d["decoder.out"] = d["decoder.out"][:6]
    report = compare(ref, write(d))
    row = report.row("decoder.out")
    assert not report.ok and not row.shape_match and not row.ok
    assert row.shape_ref == (7,) and row.shape_other == (6,) and row.max_abs_err is None
    assert "[7] vs [6]" in report.format()


def test_tensor_on_one_side_only(files):
    ref, write = files
    d = tensors()
    del d["decoder.out"]
    d["extra"] = np.zeros(3)
    report = compare(ref, write(d))
    assert not report.ok
    assert report.row("decoder.out").note == "only in reference" and not report.row("decoder.out").ok
    assert report.row("extra").note == "only in other" and not report.row("extra").ok
    assert report.row("encoder.layers.0.attn.q").ok


def test_only_filters(files):
    ref, write = files
    d = tensors()
    d["decoder.out"][0] += 1.0
    other = write(d)
    report = compare(ref, other, only="encoder.*")
    assert report.ok and sorted(r.name for r in report.rows) == ["encoder.layers.0.attn.probs",
                                                                "encoder.layers.0.attn.q"]
    assert ledref_command("compare", ref, other, "--only", "encoder.*").returncode == 0
    run = ledref_command("compare", ref, other, "--only", "*.out")
    assert run.returncode == 1 and "decoder.out" in run.stdout and "attn" not in run.stdout
    with pytest.raises(CompareError, match="nothing"):
        compare(ref, other, only="nothing")


def test_directories(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for directory in (a, b):
        save_file(tensors(0), str(directory / "layer0.safetensors"))
    changed = tensors(1)
    save_file(tensors(1), str(a / "layer1.safetensors"))
    changed["decoder.out"][4] *= 2
    save_file(changed, str(b / "layer1.safetensors"))
    save_file(tensors(2), str(a / "only_here.safetensors"))
    save_file({}, str(a / "empty_only_here.safetensors"))
    report = compare(a, b)
    names = {r.name: r for r in report.rows}
    assert names["layer0.safetensors/decoder.out"].ok
    assert names["layer1.safetensors/decoder.out"].first_bad_index == (4,)
    assert not names["only_here.safetensors"].ok and "only in reference" in names["only_here.safetensors"].note
    assert not names["empty_only_here.safetensors"].ok  # a missing file is NOT OK, even one without tensors
    assert compare(a, b, only="layer0.safetensors/*").ok
    run = ledref_command("compare", a, b)
    assert run.returncode == 1 and "only_here.safetensors" in run.stdout


def test_tolerance_semantics():
    # bad when |other - ref| > atol + rtol * |ref|: with ref 2, rtol 1e-5, atol 1e-6 the bound is 2.1e-5
    ref = {"x": np.array([2.0, 0.0])}
    inside = {"x": np.array([2.0 + 2.0e-5, 0.9e-6])}
    assert compare(ref, inside).ok
    assert compare(ref, {"x": np.array([2.0 + 2.2e-5, 0.0])}).row("x").first_bad_index == (0,)
    assert compare(ref, {"x": np.array([2.0, 1.1e-6])}).row("x").first_bad_index == (1,)
    assert compare(ref, {"x": np.array([2.0 + 2.2e-5, 1.1e-6])}, rtol=1e-4, atol=2e-6).ok
    assert not compare(ref, {"x": np.array([2.0, np.nan])}).ok  # NaN is never close
    assert compare({"x": np.array([np.inf])}, {"x": np.array([np.inf])}).ok


def test_tolerance_flags_on_the_command_line(tmp_path):
    save_file({"x": np.array([2.0, 0.0])}, str(tmp_path / "ref.safetensors"))
    save_file({"x": np.array([2.0 + 3e-5, 0.0])}, str(tmp_path / "other.safetensors"))
    files = (tmp_path / "ref.safetensors", tmp_path / "other.safetensors")
    assert ledref_command("compare", *files).returncode == 1
    assert ledref_command("compare", *files, "--rtol", "2e-5").returncode == 0
    assert ledref_command("compare", *files, "--atol", "2e-5").returncode == 0


def test_errors_are_one_line(tmp_path, files):
    ref, _ = files
    run = ledref_command("compare", ref, tmp_path / "missing.safetensors")
    assert run.returncode == 1 and run.stderr.startswith("ledref: error: ") and len(run.stderr.splitlines()) == 1
    assert "missing.safetensors" in run.stderr and "Traceback" not in run.stderr
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    run = ledref_command("compare", ref, tmp_path / "junk.safetensors")
    assert run.returncode == 1 and "junk.safetensors" in run.stderr and len(run.stderr.splitlines()) == 1
    run = ledref_command("compare", ref)
    assert run.returncode == 2 and run.stderr.startswith("ledref: error: ")


def test_several_only_and_exclude(files):
    ref, write = files
    d = tensors()
    d["decoder.out"][0] += 1.0
    d["encoder.layers.0.attn.q"][0, 0, 0] += 1.0
    other = write(d)
    report = compare(ref, other, only=["*.probs", "decoder.*"])
    assert sorted(r.name for r in report.rows) == ["decoder.out", "encoder.layers.0.attn.probs"]
    assert compare(ref, other, exclude=["*.q", "decoder.*"]).ok
    only_probs = compare(ref, other, only="encoder.*", exclude="*.q")
    assert [r.name for r in only_probs.rows] == ["encoder.layers.0.attn.probs"]
    with pytest.raises(CompareError, match="no tensor is left"):
        compare(ref, other, only="encoder.*", exclude="encoder.*")
    run = ledref_command("compare", ref, other, "--exclude", "*.q", "--exclude", "decoder.*")
    assert run.returncode == 0 and "1 of 1 tensors OK" in run.stdout, run.stdout + run.stderr
    run = ledref_command("compare", ref, other, "--only", "*.probs", "--only", "decoder.*")
    assert run.returncode == 1 and "1 of 2 tensors OK" in run.stdout and "decoder.out" in run.stdout


def test_per_tensor_tolerances(files):
    ref, write = files
    d = tensors()
    d["decoder.out"] = d["decoder.out"] + 1e-3
    other = write(d)
    assert not compare(ref, other).ok
    report = compare(ref, other, tolerances={"decoder.*": (0, 2e-3)})
    assert report.ok and report.row("decoder.out").atol == 2e-3 and report.row("encoder.layers.0.attn.q").atol == 1e-6
    first_wins = compare(ref, other, tolerances=[("decoder.*", 0, 1e-4), ("*", 0, 1.0)])
    assert not first_wins.row("decoder.out").ok and first_wins.row("encoder.layers.0.attn.q").ok
    run = ledref_command("compare", ref, other, "--tol", "decoder.*=0,2e-3")
    assert run.returncode == 0 and "decoder.*: rtol 0, atol 0.002" in run.stdout, run.stdout + run.stderr
    run = ledref_command("compare", ref, other, "--tol", "decoder.*=0")
    assert run.returncode == 2 and "PATTERN=RTOL,ATOL" in run.stderr


def test_masked_entries_at_minus_infinity_compare_equal_across_dtypes():
    scores = np.array([[1.5, -np.inf, 0.25], [-np.inf, -np.inf, 2.0]])
    report = compare({"s": scores}, {"s": scores.astype(np.float32)}, rtol=0, atol=0)
    assert report.ok and report.row("s").max_abs_err == 0 and report.row("s").nmse == 0
    shifted = scores.copy()
    shifted[0, 1] = np.finfo(np.float32).min  # a finite mask value is not the masked -inf
    assert compare({"s": scores}, {"s": shifted}).row("s").first_bad_index == (0, 1)
    row = compare({"s": scores}, {"s": shifted}).row("s")
    assert row.max_abs_err == np.inf and row.max_rel_err == np.inf and row.n_bad == 1
