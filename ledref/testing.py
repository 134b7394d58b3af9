"""A conformance suite for Longformer attention kernels, with ledref's dense float64 rule as the oracle.

    from ledref.testing import check_longformer_attention
    report = check_longformer_attention(my_kernel, examples=100)
    print(report); assert report.ok

or from the shell: `ledref conformance my_module:my_kernel` (or `path/to/file.py:my_kernel`).

The kernel
----------
    fn(q, k, v, q_global, k_global, v_global, attention_mask, one_sided_window)
        -> (output, local_probs, global_probs)

Notation: B batch, H heads, L length (not padded to a multiple of the window), d head dim, w one-sided
window, x = the largest number of global tokens in a batch row (0 when none).

Arguments (float64 NumPy arrays, fresh copies for every call):

- q, k, v [B, H, L, d]: the local projections, split into heads; q is already divided by sqrt(d).
- q_global, k_global, v_global [B, H, L, d]: the global projections for every position; q_global is
  divided by sqrt(d) too. Only the rows of q_global at global tokens are used; k_global and v_global are
  used over all non-pad tokens.
- attention_mask int64 [B, L]: transformers' merged mask, 0 pad, 1 local, 2 global. It is built the way
  HF builds it, attention_mask * (global_attention_mask + 1), so a global flag on a pad position is 0.
- one_sided_window int w >= 1 (HF's attention_window is 2w).

The rule:

- a local token i attends, with q, k, v, to the local keys j with `|i - j| <= w` (not pad, not global) and
  to every global token j (wherever it is);
- a global token attends, with q_global, k_global, v_global, to every non-pad token;
- the output rows of pad tokens are 0.

Returns:

- output [B, H, L, d];
- local_probs [B, H, L, x + 2w + 1], transformers' layout: the first x columns are the attention to the
  row's global tokens in position order (slot s = the s-th global token; zero in slots the row does not
  use), then the band: column x + w + o is the key i + o for o = -w..+w (the token itself at x + w); zero
  where that key is global, pad, or outside 0..L-1. The rows of global and pad queries are all zero;
- global_probs [B, H, L, x]: global_probs[b, h, j, s] is the attention of the row's s-th global token to
  token j; slots a row does not use are uniform 1/L; None when no token of the batch is global.

Any array type NumPy can read (np.asarray, or torch tensors on any device) is accepted; every tensor is
compared in float64 with the reference, `ledref.reference.attention.longformer_attention` with
implementation="dense"
(element bad when `|ours - ref| > atol + rtol * |ref|`). A kernel that raises fails that case.

The suite
---------
- a catalogue of named cases (`CATALOGUE`), one per edge of the layout;
- hypothesis-generated cases (random B, H, L, d, w, padding, global positions, seed). On a failure
  hypothesis shrinks to a smallest failing case, which the report prints; re-run it with
  `run_case(fn, case)`, or get its inputs with `case.inputs()` / `make_inputs(...)`.
"""

import importlib
import importlib.util
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from .checks import check_callable, check_int, check_real, is_int, short
from .compare import compare
from .errors import LedrefError

OUTPUTS = ("output", "local_probs", "global_probs")


class ConformanceError(LedrefError, ValueError):
    """A kernel spec that cannot be imported, or a case with impossible parameters."""


# ------------------------------------------------------------------------------------------ cases

@dataclass(frozen=True)
class Case:
    """One input of the suite: sizes, the two HF masks as tuples of rows, and the seed of the tensors."""
    name: str
    batch: int
    heads: int
    length: int
    head_dim: int
    one_sided_window: int
    attention_mask: tuple  # [B][L] of 0 (pad) / 1
    global_attention_mask: tuple  # [B][L] of 0 / 1 (may flag pad positions)
    seed: int = 0

    def merged_mask(self):
        """transformers' rule: attention_mask * (global_attention_mask + 1) -> 0 pad, 1 local, 2 global.   [B, L]"""
        return np.asarray(self.attention_mask, np.int64) * (np.asarray(self.global_attention_mask, np.int64) + 1)

    def inputs(self):
        """The kernel's keyword arguments for this case (see `make_inputs`)."""
        return make_inputs(self.batch, self.heads, self.length, self.head_dim, self.one_sided_window,
                           self.merged_mask(), self.seed)

    def describe(self):
        """One line of sizes and masks, enough to rebuild the case by hand."""
        mask = self.merged_mask()
        globals_ = [np.flatnonzero(row == 2).tolist() for row in mask]
        lengths = [int(np.count_nonzero(row)) for row in mask]
        return (f"B={self.batch} H={self.heads} L={self.length} d={self.head_dim} w={self.one_sided_window} "
                f"seed={self.seed} non-pad lengths={lengths} global positions={globals_}")


def make_case(name, batch, heads, length, head_dim, one_sided_window, lengths=None, global_positions=None,
              seed=0):
    """A Case from per-row non-pad lengths (default: no padding; pad at the end) and per-row global
    positions (default none; positions past a row's length are flagged but become 0 in the merged mask)."""
    _check_sizes(batch, heads, length, head_dim, one_sided_window, seed)
    for arg, value in (("lengths", lengths), ("global_positions", global_positions)):
        if value is not None and not isinstance(value, (list, tuple, range)):
            raise ConformanceError(f"case {name}: {arg}={short(value)}; expected a list with one entry per row")
    lengths = [length] * batch if lengths is None else list(lengths)
    global_positions = [[] for _ in range(batch)] if global_positions is None else list(global_positions)
    if len(lengths) != batch or len(global_positions) != batch:
        raise ConformanceError(f"case {name}: expected {batch} lengths and global position lists, got "
                               f"{len(lengths)} and {len(global_positions)}")
    for n in lengths:
        check_int("lengths[i]", n, ConformanceError, minimum=0, maximum=length)
    for row in global_positions:
        if not isinstance(row, (list, tuple, range)) or not all(is_int(p) and 0 <= p < length for p in row):
            raise ConformanceError(f"case {name}: global_positions row {short(row)}; expected a list of positions "
                                   f"in 0..{length - 1}")
    attention_mask = tuple(tuple(int(j < n) for j in range(length)) for n in lengths)
    global_mask = tuple(tuple(int(j in set(g)) for j in range(length)) for g in global_positions)
    return Case(name, batch, heads, length, head_dim, one_sided_window, attention_mask, global_mask, seed)


def make_inputs(batch, heads, length, head_dim, one_sided_window, mask, seed=0):
    """The kernel's keyword arguments: six standard-normal float64 tensors [B, H, L, d] drawn from
    numpy.random.default_rng(seed) in the order q, k, v, q_global, k_global, v_global (q and q_global
    then divided by sqrt(d)), the merged mask int64 [B, L] and the window."""
    _check_sizes(batch, heads, length, head_dim, one_sided_window, seed)
    try:
        mask = np.asarray(mask)
    except (ValueError, TypeError):
        raise ConformanceError("mask is not a rectangular array of 0/1/2") from None
    if mask.dtype.kind not in "biu":
        raise ConformanceError(f"mask has dtype {mask.dtype}; expected integers 0/1/2")
    rng = np.random.default_rng(seed)
    shape = (batch, heads, length, head_dim)
    q, k, v, qg, kg, vg = (rng.standard_normal(shape) for _ in range(6))
    mask = mask.astype(np.int64)
    if mask.shape != (batch, length) or not np.isin(mask, (0, 1, 2)).all():
        raise ConformanceError(f"mask: expected [B, L] = [{batch}, {length}] of 0/1/2, got shape {mask.shape}")
    scale = 1 / math.sqrt(head_dim)
    return dict(q=q * scale, k=k, v=v, q_global=qg * scale, k_global=kg, v_global=vg, attention_mask=mask,
                one_sided_window=one_sided_window)


MAX_ELEMENTS = 2 ** 26  # the largest B * H * L * d a case may ask for (six float64 tensors of it: 3 GB)


def _check_sizes(batch, heads, length, head_dim, one_sided_window, seed):
    for arg, value in (("batch", batch), ("heads", heads), ("length", length), ("head_dim", head_dim),
                       ("one_sided_window", one_sided_window)):
        check_int(arg, value, ConformanceError, minimum=1, maximum=MAX_ELEMENTS)
    check_int("seed", seed, ConformanceError, minimum=0, maximum=2 ** 63)
    if batch * heads * length * head_dim > MAX_ELEMENTS:
        raise ConformanceError(f"batch * heads * length * head_dim = {batch * heads * length * head_dim:,}; "
                               f"expected at most {MAX_ELEMENTS:,}")


CATALOGUE = [
    make_case("no_globals", 2, 2, 37, 8, 4, lengths=[37, 30], seed=1),
    make_case("global_first_token", 2, 2, 40, 8, 4, lengths=[40, 33], global_positions=[[0], [0]], seed=2),
    make_case("globals_per_row_differ", 3, 2, 48, 8, 4, lengths=[48, 40, 33],
              global_positions=[[0, 5, 20], [7], []], seed=3),  # x = 3: filler slots in rows 1 and 2
    make_case("global_flag_on_pad", 2, 2, 32, 8, 4, lengths=[32, 20], global_positions=[[0], [0, 25]], seed=4),
    make_case("padding_not_window_multiple", 2, 2, 45, 8, 4, lengths=[45, 41], global_positions=[[0], [3]],
              seed=5),
    make_case("window_covers_length", 2, 2, 10, 8, 16, lengths=[10, 7], global_positions=[[3], []], seed=6),
    make_case("window_two", 2, 2, 17, 8, 1, lengths=[17, 12], global_positions=[[0, 9], [11]], seed=7),
    make_case("per_row_padding", 4, 2, 24, 8, 3, lengths=[24, 17, 9, 1], global_positions=[[0]] * 4, seed=8),
    make_case("globals_at_the_end", 1, 2, 20, 8, 3, global_positions=[[18, 19]], seed=9),
    make_case("all_global", 2, 2, 12, 8, 2, lengths=[12, 8], global_positions=[list(range(12))] * 2, seed=10),
    make_case("single_token", 1, 1, 1, 4, 1, seed=11),
    make_case("long_input", 1, 1, 4096, 4, 64, lengths=[4000], global_positions=[[0, 1000]], seed=12),
]


# ------------------------------------------------------------------------------------------ running

def reference(case):
    """The oracle's (output, local_probs, global_probs) of a case: ledref's reference with the local rows
    by the dense rule (cached for the catalogue's cases)."""
    if case in _reference_cache:
        return _reference_cache[case]
    from .reference.attention import global_slots, longformer_attention, take_positions
    inputs = case.inputs()
    mask = inputs["attention_mask"]
    slots = global_slots(mask)
    result = longformer_attention(inputs["q"], inputs["k"], inputs["v"], take_positions(inputs["q_global"], slots[0], 1),
                                  inputs["k_global"], inputs["v_global"], mask, slots, inputs["one_sided_window"],
                                  implementation="dense")
    if case in CATALOGUE:
        _reference_cache[case] = result
    return result


_reference_cache = {}


@dataclass
class CaseResult:
    """The verdict of one case. On a mismatch: the first wrong tensor, its largest absolute error and where, the first
    bad element (C order); `message` says it in words (every wrong tensor, or the exception)."""
    name: str
    passed: bool
    case: Case | None = None
    tensor: str | None = None
    max_abs_err: float | None = None
    worst_index: tuple | None = None
    first_bad_index: tuple | None = None
    message: str = ""
    exception: BaseException | None = None


def _as_numpy(a):
    if a is None:
        return None
    if hasattr(a, "detach"):  # torch, on any device
        a = a.detach().cpu()
    return np.asarray(a)


def run_case(fn, case, rtol=1e-7, atol=1e-9):
    """Run the kernel on one case and compare every returned tensor with the reference -> CaseResult."""
    check_callable("fn", fn, ConformanceError, optional=False)
    if not isinstance(case, Case):
        raise ConformanceError(f"case={short(case)}; expected a ledref.testing.Case (make_case builds one)")
    rtol = check_real("rtol", rtol, ConformanceError, minimum=0)
    atol = check_real("atol", atol, ConformanceError, minimum=0)
    expected = reference(case)
    inputs = case.inputs()
    try:
        got = fn(inputs["q"], inputs["k"], inputs["v"], inputs["q_global"], inputs["k_global"], inputs["v_global"],
                 inputs["attention_mask"], inputs["one_sided_window"])
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            return CaseResult(case.name, False, case, message=f"returned {type(got).__name__}; expected a tuple "
                                                             f"(output, local_probs, global_probs)")
        got = [_as_numpy(a) for a in got]
    except Exception as e:  # a kernel that raises fails the case
        return CaseResult(case.name, False, case, message=f"raised {type(e).__name__}: {e}", exception=e)
    problems = []
    first = None
    for name, ours, ref in zip(OUTPUTS, got, expected):
        if ref is None or ours is None:
            if (ref is None) != (ours is None):
                what = "None" if ours is None else f"an array of shape {list(ours.shape)}"
                problems.append(f"{name}: got {what}, expected "
                                + ("None (no global token)" if ref is None else f"shape {list(ref.shape)}"))
                first = first or (name, None)
            continue
        row = compare({name: ref}, {name: ours}, rtol=rtol, atol=atol).rows[0]
        if row.ok:
            continue
        if not row.shape_match:
            problems.append(f"{name}: shape {list(row.shape_other)}, expected {list(row.shape_ref)}")
        else:
            problems.append(f"{name}: {row.n_bad} of {ours.size} elements wrong, max |error| {row.max_abs_err:.3g} "
                            f"at {row.worst_index}, first wrong at {row.first_bad_index}")
        first = first or (name, row)
    if not problems:
        return CaseResult(case.name, True, case)
    name, row = first
    return CaseResult(case.name, False, case, tensor=name, message="; ".join(problems),
                      max_abs_err=row.max_abs_err if row else None, worst_index=row.worst_index if row else None,
                      first_bad_index=row.first_bad_index if row else None)


def random_cases():
    """Hypothesis strategy of Cases: B 1..3, H 1..3, L 1..40, d 1..8, w 1..8, each row padded at the end to
    a length 1..L, up to 4 global flags per row anywhere (pad positions included), any seed."""
    from hypothesis import strategies as st

    @st.composite
    def cases(draw):
        batch, heads = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        length, head_dim, w = draw(st.integers(1, 40)), draw(st.integers(1, 8)), draw(st.integers(1, 8))
        lengths = [draw(st.integers(1, length)) for _ in range(batch)]
        global_positions = [draw(st.lists(st.integers(0, length - 1), max_size=4, unique=True))
                            for _ in range(batch)]
        seed = draw(st.integers(0, 2 ** 16))
        return make_case("hypothesis", batch, heads, length, head_dim, w, lengths, global_positions, seed)

    return cases()


def _hypothesis_search(fn, examples, rtol, atol):
    """Run `examples` random cases; on a failure return the shrunk failing CaseResult, else a pass."""
    from hypothesis import HealthCheck, Verbosity, given, settings

    failures = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True, print_blob=False,
              verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck))
    @given(random_cases())
    def search(case):
        result = run_case(fn, case, rtol, atol)
        if not result.passed:
            failures.append(result)  # hypothesis replays the shrunk case last
            raise AssertionError(result.message)

    try:
        search()
    except Exception as e:
        if failures:
            return failures[-1]
        return CaseResult("hypothesis", False, message=f"hypothesis stopped: {type(e).__name__}: {e}", exception=e)
    return CaseResult("hypothesis", True)


@dataclass
class ConformanceReport:
    """Per-case results of the catalogue, then (when examples > 0) the hypothesis result."""
    results: list = field(default_factory=list)
    examples: int = 0
    rtol: float = 1e-7
    atol: float = 1e-9
    kernel: str = ""

    @property
    def ok(self):
        """True when every case passed."""
        return all(r.passed for r in self.results)

    @property
    def failures(self):
        """The CaseResults that failed."""
        return [r for r in self.results if not r.passed]

    def format(self):
        """Readable text: one line per case (PASS / FAIL and what is wrong), the shrunk hypothesis case with
        its masks, and a summary."""
        lines = [f"Longformer attention conformance{' of ' + self.kernel if self.kernel else ''} "
                 f"(rtol {self.rtol:g}, atol {self.atol:g})"]
        width = max([len(r.name) for r in self.results] + [4])
        for r in self.results:
            if r.name == "hypothesis":
                continue
            detail = r.case.describe() if r.passed else r.message
            lines.append(f"{'PASS' if r.passed else 'FAIL'}  {r.name.ljust(width)}  {detail}")
            if not r.passed:
                lines.append(f"      {' ' * width}  case: {r.case.describe()}")
        for r in self.results:
            if r.name != "hypothesis":
                continue
            if r.passed:
                lines.append(f"PASS  {'hypothesis'.ljust(width)}  {self.examples} random cases")
            elif r.case is None:
                lines.append(f"FAIL  {'hypothesis'.ljust(width)}  {r.message}")
            else:
                mask = r.case.merged_mask()
                lines += [f"FAIL  {'hypothesis'.ljust(width)}  {r.message}",
                          f"      shrunk reproducer: {r.case.describe()}",
                          f"      attention_mask (merged, 0 pad / 1 local / 2 global) = {mask.tolist()}",
                          f"      re-run: ledref.testing.run_case(fn, {r.case!r})"]
        n = len([r for r in self.results if r.name != "hypothesis"])
        passed = len([r for r in self.results if r.name != "hypothesis" and r.passed])
        summary = f"{passed} of {n} catalogue cases passed"
        if self.examples:
            summary += "; hypothesis " + ("passed" if all(r.passed for r in self.results if r.name == "hypothesis")
                                          else "found a failing case")
        lines.append(summary + (": OK" if self.ok else ": FAILED"))
        return "\n".join(lines)

    def __str__(self):
        return self.format()


def check_longformer_attention(fn, rtol=1e-7, atol=1e-9, examples=100, cases=None):
    """Run the suite on kernel `fn` (signature in the module docstring): the catalogue's cases (or `cases`:
    Case objects or catalogue names), then `examples` hypothesis cases (0: none). Returns a
    ConformanceReport; `report.ok` is True only when every case passed."""
    check_callable("fn", fn, ConformanceError, optional=False)
    rtol = check_real("rtol", rtol, ConformanceError, minimum=0)
    atol = check_real("atol", atol, ConformanceError, minimum=0)
    examples = check_int("examples", examples, ConformanceError, minimum=0)
    if cases is None:
        cases = CATALOGUE
    if isinstance(cases, (str, Case)) or not hasattr(cases, "__iter__"):
        raise ConformanceError(f"cases={short(cases)}; expected a list of Cases or catalogue names")
    by_name = {c.name: c for c in CATALOGUE}
    chosen = []
    for c in cases:
        if isinstance(c, str) and c not in by_name:
            raise ConformanceError(f"no catalogue case named {c!r}; expected one of {', '.join(by_name)}")
        if not isinstance(c, (str, Case)):
            raise ConformanceError(f"cases holds {short(c)}; expected Cases or catalogue names")
        chosen.append(by_name[c] if isinstance(c, str) else c)
    report = ConformanceReport(examples=examples, rtol=rtol, atol=atol,
                               kernel=getattr(fn, "__qualname__", ""))
    report.results = [run_case(fn, c, rtol, atol) for c in chosen]
    if examples:
        report.results.append(_hypothesis_search(fn, examples, rtol, atol))
    return report


def load_kernel(spec):
    """'package.module:function' or 'path/to/file.py:function' -> the function."""
    if not isinstance(spec, str):
        raise ConformanceError(f"kernel {short(spec)}: expected a str MODULE:FUNCTION or path/to/file.py:FUNCTION")
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise ConformanceError(f"kernel {spec!r}: expected MODULE:FUNCTION or path/to/file.py:FUNCTION")
    try:
        if target.endswith(".py") or os.sep in target or "/" in target:
            if not os.path.isfile(target):
                raise ConformanceError(f"kernel {spec!r}: no such file {target}")
            module_name = "_ledref_kernel_" + os.path.splitext(os.path.basename(target))[0]
            loader_spec = importlib.util.spec_from_file_location(module_name, target)
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[module_name] = module
            loader_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:  # like `python -m`: modules beside you are importable
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(target)
    except ConformanceError:
        raise
    except Exception as e:
        raise ConformanceError(f"kernel {spec!r}: cannot import {target}: {type(e).__name__}: {e}") from None
    fn = getattr(module, name, None)
    if fn is None:
        raise ConformanceError(f"kernel {spec!r}: {target} has no attribute {name!r}")
    if not callable(fn):
        raise ConformanceError(f"kernel {spec!r}: {name} is a {type(fn).__name__}, not a function")
    return fn
