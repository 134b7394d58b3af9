"""A conformance suite for Longformer attention kernels, with ledref's dense float64 rule as the oracle.

    from ledref.testing import check_longformer_attention
    report = check_longformer_attention(my_kernel, dtype="bfloat16", framework="torch", examples=100)
    print(report); assert report.ok

or from the shell: `ledref conformance my_module:my_kernel --dtype bfloat16 --framework torch` (or
`path/to/file.py:my_kernel`). A kernel in another language runs the suite through files: see
`ledref.conformance_files` (`ledref conformance --dump DIR`, then `--check DIR`).

The kernel
----------
    fn(q, k, v, q_global, k_global, v_global, attention_mask, one_sided_window[, dilation=..., autoregressive=...])
        -> (output, local_probs, global_probs)

Notation: B batch, H heads, L length (not padded to a multiple of the window), d head dim, w one-sided
window, x = the largest number of global tokens in a batch row (0 when none).

Arguments (fresh copies for every call):

- q, k, v [B, H, L, d]: the local projections, split into heads; q is already divided by sqrt(d).
- q_global, k_global, v_global [B, H, L, d]: the global projections for every position; q_global is
  divided by sqrt(d) too. Only the rows of q_global at global tokens are used; k_global and v_global are
  used over all non-pad tokens.
- attention_mask int64 [B, L]: transformers' merged mask, 0 pad, 1 local, 2 global. It is built the way
  HF builds it, attention_mask * (global_attention_mask + 1), so a global flag on a pad position is 0.
- one_sided_window int w >= 1 (HF's attention_window is 2w).
- only for a kernel whose signature names them (or takes `**kwargs`): dilation, a tuple of H ints (the
  dilation of each head), and autoregressive, a bool. Such a kernel also gets the suite's dilated and
  autoregressive cases; a kernel without them is never given those cases.

The six tensors come in the suite's dtype (`dtype`: float64, float32, float16, or bfloat16 as
ml_dtypes.bfloat16), as the framework's own arrays (`framework`: NumPy arrays, torch tensors on `device`,
or JAX arrays). The mask is int64 in the same framework.

The rule:

- a local token i attends, with q, k, v, to the local keys j = i + r o, o = -w..w (not pad, not global;
  o <= 0 when autoregressive; r the head's dilation, 1 unless given) and to every global token j (wherever
  it is);
- a global token attends, with q_global, k_global, v_global, to every non-pad token;
- the output rows of pad tokens are 0.

Returns:

- output [B, H, L, d];
- local_probs [B, H, L, x + 2w + 1], transformers' layout: the first x columns are the attention to the
  row's global tokens in position order (slot s = the s-th global token; zero in slots the row does not
  use), then the band: column x + w + o is the key i + r o for o = -w..+w (the token itself at x + w); zero
  where that key is global, pad, outside 0..L-1, or (autoregressive) after the token. The rows of global
  and pad queries are all zero;
- global_probs [B, H, L, x]: global_probs[b, h, j, s] is the attention of the row's s-th global token to
  token j; slots a row does not use are uniform 1/L; None when no token of the batch is global.

Any array NumPy can read (NumPy, torch tensors on any device, JAX arrays) in any floating dtype is
accepted. Every tensor is compared in float64 with the reference, `ledref.reference.attention.
longformer_attention` with implementation="dense", run in float64 on the very values the kernel got (the
inputs rounded to the dtype, then widened): the comparison measures the kernel's arithmetic, not the
rounding of its inputs. Element bad when `|ours - ref| > atol + rtol * |ref|`, with (rtol, atol) per
output tensor: `TOLERANCES[dtype]` by default (measured: docs/tolerances.md), or the rtol and atol given.
A kernel that raises fails that case.

The suite
---------
- a catalogue of named cases (`CATALOGUE`), one per edge of the layout, and `VARIANT_CATALOGUE` for
  kernels that take dilation and autoregressive;
- hypothesis-generated cases (random B, H, L, d, w, padding, global positions, seed, and for such kernels
  dilations and autoregressive). On a failure hypothesis shrinks to a smallest failing case, which the
  report prints; re-run it with `run_case(fn, case)`, or get its inputs with `case.inputs()`. Without
  hypothesis installed (it comes with `pip install 'ledref[test]'`), `examples` fixed random cases
  (`generated_cases`) are run instead, without shrinking, and the report says so.
"""

import importlib
import importlib.util
import inspect
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .checks import check_callable, check_int, check_real, is_int, short
from .compare import compare
from .errors import LedrefError

OUTPUTS = ("output", "local_probs", "global_probs")
DTYPES = ("float64", "float32", "float16", "bfloat16")
FRAMEWORKS = ("numpy", "torch", "jax")
VARIANT_ARGUMENTS = ("dilation", "autoregressive")

# (rtol, atol) per dtype and output: 4 times the largest error of a correct kernel of that dtype against the
# float64 reference, error |a - b| / (|b| + floor) with floor 1 for output and 1e-3 for the probabilities, as
# `scripts/measure_tolerances.py` measured it (docs/tolerances.md, "Attention kernels"; the numbers in
# benchmarks/results/tolerances.json), rounded up to 1, 2 or 5 times a power of ten; atol = rtol * floor.
# float64: fixed, far above a float64 kernel's error (about 1e-15), so that any order of summation passes.
TOLERANCES = {
    "float64": {"output": (1e-7, 1e-9), "local_probs": (1e-7, 1e-9), "global_probs": (1e-7, 1e-9)},
    "float32": {"output": (2e-6, 2e-6), "local_probs": (5e-6, 5e-9), "global_probs": (5e-6, 5e-9)},
    "float16": {"output": (1e-2, 1e-2), "local_probs": (2e-2, 2e-5), "global_probs": (1e-2, 1e-5)},
    "bfloat16": {"output": (5e-2, 5e-2), "local_probs": (1e-1, 1e-4), "global_probs": (1e-1, 1e-4)},
}

class LongformerKernel(Protocol):
    """The signature the suite calls (see the module docstring): the six projected tensors [B, H, L, d],
    the merged mask [B, L] and the one-sided window -> (output [B, H, L, d], local_probs
    [B, H, L, x + 2w + 1], global_probs [B, H, L, x] or None). A kernel that also takes the keyword
    arguments `dilation` and `autoregressive` gets the suite's variant cases too."""

    def __call__(self, q: Any, k: Any, v: Any, q_global: Any, k_global: Any, v_global: Any, attention_mask: Any,
                 one_sided_window: int, /) -> tuple[Any, Any, Any]: ...


class ConformanceError(LedrefError, ValueError):
    """A kernel spec that cannot be imported, a case with impossible parameters, an unknown dtype or
    framework, or files that do not follow the conformance layout."""


# ------------------------------------------------------------------------------------------ cases

@dataclass(frozen=True)
class Case:
    """One input of the suite: sizes, the two HF masks as tuples of rows, the seed of the tensors, and the
    variant (a dilation per head, or None for the plain window; autoregressive or not)."""
    name: str
    batch: int
    heads: int
    length: int
    head_dim: int
    one_sided_window: int
    attention_mask: tuple  # [B][L] of 0 (pad) / 1
    global_attention_mask: tuple  # [B][L] of 0 / 1 (may flag pad positions)
    seed: int = 0
    dilation: tuple | None = None  # [H] ints; None: 1 for every head
    autoregressive: bool = False

    @property
    def needs(self):
        """The keyword arguments a kernel must take to run this case: a subset of VARIANT_ARGUMENTS."""
        return {name for name, used in (("dilation", self.dilation is not None and set(self.dilation) != {1}),
                                         ("autoregressive", self.autoregressive)) if used}

    def dilations(self):
        """The dilation of every head, as the kernel gets it."""
        return tuple(self.dilation) if self.dilation is not None else (1,) * self.heads

    def merged_mask(self):
        """transformers' rule: attention_mask * (global_attention_mask + 1) -> 0 pad, 1 local, 2 global.   [B, L]"""
        return np.asarray(self.attention_mask, np.int64) * (np.asarray(self.global_attention_mask, np.int64) + 1)

    def inputs(self, dtype="float64"):
        """The kernel's arguments for this case as NumPy arrays of `dtype` (see `make_inputs`), and, for
        a variant case, dilation and autoregressive."""
        inputs = make_inputs(self.batch, self.heads, self.length, self.head_dim, self.one_sided_window,
                             self.merged_mask(), self.seed)
        inputs.update({name: cast(inputs[name], dtype) for name in TENSORS})
        if self.needs:
            inputs.update(dilation=self.dilations(), autoregressive=self.autoregressive)
        return inputs

    def describe(self):
        """One line of sizes and masks, enough to rebuild the case by hand."""
        mask = self.merged_mask()
        globals_ = [np.flatnonzero(row == 2).tolist() for row in mask]
        lengths = [int(np.count_nonzero(row)) for row in mask]
        variant = "".join([f" dilation={list(self.dilations())}" if "dilation" in self.needs else "",
                           " autoregressive" if self.autoregressive else ""])
        return (f"B={self.batch} H={self.heads} L={self.length} d={self.head_dim} w={self.one_sided_window}"
                f"{variant} seed={self.seed} non-pad lengths={lengths} global positions={globals_}")


TENSORS = ("q", "k", "v", "q_global", "k_global", "v_global")


def numpy_dtype(dtype):
    """The NumPy dtype of a suite dtype name (bfloat16: ml_dtypes.bfloat16)."""
    if dtype not in DTYPES:
        raise ConformanceError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    if dtype == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def cast(a, dtype):
    """A float64 array rounded to a suite dtype (round to nearest even)."""
    return np.asarray(a).astype(numpy_dtype(dtype))


def make_case(name, batch, heads, length, head_dim, one_sided_window, lengths=None, global_positions=None,
              seed=0, dilation=None, autoregressive=False):
    """A Case from per-row non-pad lengths (default: no padding; pad at the end) and per-row global
    positions (default none; positions past a row's length are flagged but become 0 in the merged mask).
    dilation: an int (every head) or one per head; autoregressive: keys up to the token only."""
    check_sizes(batch, heads, length, head_dim, one_sided_window, seed)
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
    if dilation is not None:
        dilation = (int(dilation),) * heads if isinstance(dilation, (int, np.integer)) else tuple(map(int, dilation))
        if len(dilation) != heads or min(dilation) < 1:
            raise ConformanceError(f"case {name}: dilation {list(dilation)}; expected {heads} ints >= 1")
    attention_mask = tuple(tuple(int(j < n) for j in range(length)) for n in lengths)
    global_mask = tuple(tuple(int(j in set(g)) for j in range(length)) for g in global_positions)
    return Case(name, batch, heads, length, head_dim, one_sided_window, attention_mask, global_mask, seed,
                dilation, bool(autoregressive))


def make_inputs(batch, heads, length, head_dim, one_sided_window, mask, seed=0):
    """The kernel's keyword arguments: six standard-normal float64 tensors [B, H, L, d] drawn from
    numpy.random.default_rng(seed) in the order q, k, v, q_global, k_global, v_global (q and q_global
    then divided by sqrt(d)), the merged mask int64 [B, L] and the window."""
    check_sizes(batch, heads, length, head_dim, one_sided_window, seed)
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
MAX_DENSE = 2 ** 26  # the largest B * H * L * L: the dense reference's score matrices (float64: 512 MB each)


def check_sizes(batch, heads, length, head_dim, one_sided_window, seed):
    """A case's sizes within the suite's bounds (ints, and the tensors and the dense reference's scores
    no larger than MAX_ELEMENTS and MAX_DENSE), checked before anything of their size is made."""
    for arg, value in (("batch", batch), ("heads", heads), ("length", length), ("head_dim", head_dim),
                       ("one_sided_window", one_sided_window)):
        check_int(arg, value, ConformanceError, minimum=1, maximum=MAX_ELEMENTS)
    check_int("seed", seed, ConformanceError, minimum=0, maximum=2 ** 63)
    if batch * heads * length * head_dim > MAX_ELEMENTS:
        raise ConformanceError(f"batch * heads * length * head_dim = {batch * heads * length * head_dim:,}; "
                               f"expected at most {MAX_ELEMENTS:,}")
    if batch * heads * length * length > MAX_DENSE:
        raise ConformanceError(f"batch * heads * length ** 2 = {batch * heads * length * length:,} (the dense "
                               f"reference's scores); expected at most {MAX_DENSE:,}")


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

# for kernels that take dilation= and autoregressive= (allenai/longformer's diagonaled_mm and its variants)
VARIANT_CATALOGUE = [
    make_case("dilation_two", 2, 2, 40, 8, 3, lengths=[40, 31], global_positions=[[0], [6]], seed=21, dilation=2),
    make_case("dilation_per_head", 2, 4, 45, 8, 2, lengths=[45, 38], global_positions=[[0, 30], []], seed=22,
              dilation=(1, 2, 3, 5)),
    make_case("dilation_past_the_length", 1, 2, 20, 8, 4, global_positions=[[9]], seed=23, dilation=(8, 3)),
    make_case("autoregressive", 2, 2, 37, 8, 4, lengths=[37, 29], global_positions=[[0], [20]], seed=24,
              autoregressive=True),
    make_case("autoregressive_dilated", 2, 3, 33, 8, 3, lengths=[33, 25], global_positions=[[5], []], seed=25,
              dilation=(1, 2, 4), autoregressive=True),
]


def generated_cases(n, seed=0, variants=()):
    """n fixed random cases (`random_000`, ...) from numpy.random.default_rng(seed), drawn as the hypothesis
    strategy draws them (`random_cases`): what the suite runs without hypothesis, and what files hold."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        batch, heads = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        length, head_dim, w = int(rng.integers(1, 41)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
        lengths = [int(rng.integers(1, length + 1)) for _ in range(batch)]
        global_positions = [sorted(rng.choice(length, size=int(rng.integers(0, min(4, length) + 1)),
                                              replace=False).tolist()) for _ in range(batch)]
        dilation = tuple(int(r) for r in rng.integers(1, 5, heads)) if "dilation" in variants else None
        autoregressive = "autoregressive" in variants and bool(rng.integers(0, 2))
        cases.append(make_case(f"random_{i:03d}", batch, heads, length, head_dim, w, lengths, global_positions,
                               int(rng.integers(0, 2 ** 16)), dilation, autoregressive))
    return cases


# ------------------------------------------------------------------------------------------ running

def reference(case, dtype="float64"):
    """The oracle's (output, local_probs, global_probs) of a case, in float64, on the case's inputs rounded
    to `dtype`: ledref's reference with the local rows by the dense rule (cached for the catalogues)."""
    key = (case, dtype)
    if key not in _reference_cache:
        result = reference_of(case.inputs(dtype))
        if case in CATALOGUE or case in VARIANT_CATALOGUE:
            _reference_cache[key] = result
        return result
    return _reference_cache[key]


def reference_of(inputs):
    """The reference's (output, local_probs, global_probs) in float64 for the kernel's arguments (NumPy
    arrays of any float dtype; dilation and autoregressive optional)."""
    from .reference.attention import global_slots, longformer_attention, take_positions
    q, k, v, qg, kg, vg = (np.asarray(inputs[name]).astype(np.float64) for name in TENSORS)
    mask = np.asarray(inputs["attention_mask"], np.int64)
    slots = global_slots(mask)
    return longformer_attention(q, k, v, take_positions(qg, slots[0], 1), kg, vg, mask, slots,
                                int(inputs["one_sided_window"]), implementation="dense",
                                dilation=tuple(int(r) for r in inputs.get("dilation") or (1,) * q.shape[1]),
                                autoregressive=bool(inputs.get("autoregressive", False)))


_reference_cache: dict = {}


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


def as_numpy(a):
    """A kernel's returned array (NumPy, torch on any device, JAX, anything np.asarray reads) -> NumPy."""
    if a is None:
        return None
    if hasattr(a, "detach"):  # torch, on any device, bfloat16 included
        from .backend import to_numpy
        return to_numpy(a)
    return np.asarray(a)


def tolerances_for(dtype, rtol=None, atol=None):
    """{output: (rtol, atol)}: the dtype's defaults (TOLERANCES), with rtol and atol overriding them for
    every output where given."""
    if not isinstance(dtype, str) or dtype not in TOLERANCES:
        raise ConformanceError(f"dtype {short(dtype)}: expected one of {', '.join(DTYPES)}")
    rtol = None if rtol is None else check_real("rtol", rtol, ConformanceError, minimum=0)
    atol = None if atol is None else check_real("atol", atol, ConformanceError, minimum=0)
    return {name: (default[0] if rtol is None else rtol, default[1] if atol is None else atol)
            for name, default in TOLERANCES[dtype].items()}


def compare_outputs(case, got, expected, tolerances):
    """The verdict on a kernel's three outputs (NumPy arrays or None) against the reference's."""
    problems = []
    first = None
    for name, ours, ref in zip(OUTPUTS, got, expected, strict=True):
        if ref is None or ours is None:
            if (ref is None) != (ours is None):
                what = "None" if ours is None else f"an array of shape {list(ours.shape)}"
                problems.append(f"{name}: got {what}, expected "
                                + ("None (no global token)" if ref is None else f"shape {list(ref.shape)}"))
                first = first or (name, None)
            continue
        rtol, atol = tolerances[name]
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


def to_framework(inputs, framework="numpy", device=None):
    """The kernel's arguments as the framework's arrays: NumPy as they are, torch tensors (on `device`,
    default cpu; bfloat16 as torch.bfloat16) or JAX arrays. Other arguments pass through."""
    if framework not in FRAMEWORKS:
        raise ConformanceError(f"framework {framework!r}: expected one of {', '.join(FRAMEWORKS)}")
    if framework == "numpy":
        return dict(inputs)
    converted = dict(inputs)
    names = [n for n in (*TENSORS, "attention_mask") if n in inputs]
    if framework == "torch":
        torch = _import("torch", "torch")
        for n in names:
            a = inputs[n]
            dtype = torch.bfloat16 if a.dtype.name == "bfloat16" else None
            t = torch.from_numpy(np.ascontiguousarray(a.astype(np.float32) if dtype else a))
            converted[n] = t.to(device=device or "cpu", dtype=dtype)
    else:
        jnp = _import("jax.numpy", "jax")
        for n in names:
            converted[n] = jnp.asarray(inputs[n]) if device is None else _jax_put(inputs[n], device)
    return converted


def _jax_put(a, device):
    import jax
    return jax.device_put(a, jax.devices(device)[0])


def _import(module, package):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConformanceError(f"the {package} framework needs {package} installed (pip install {package})") from None


def accepted(fn):
    """Which of VARIANT_ARGUMENTS the kernel's signature takes (all of them with `**kwargs`)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return set(VARIANT_ARGUMENTS)
    return {p.name for p in parameters if p.name in VARIANT_ARGUMENTS}


def run_case(fn, case, rtol=None, atol=None, dtype="float64", framework="numpy", device=None):
    """Run the kernel on one case (inputs in `dtype`, as `framework`'s arrays) and compare every returned
    tensor with the float64 reference -> CaseResult. rtol, atol: see tolerances_for."""
    check_callable("fn", fn, ConformanceError, optional=False)
    if not isinstance(case, Case):
        raise ConformanceError(f"case={short(case)}; expected a ledref.testing.Case (make_case builds one)")
    tolerances = tolerances_for(dtype, rtol, atol)
    expected = reference(case, dtype)
    inputs = case.inputs(dtype)
    variants = accepted(fn)
    if not case.needs <= variants:
        raise ConformanceError(f"case {case.name} needs a kernel that takes {', '.join(sorted(case.needs))}=")
    extra = {"dilation": case.dilations(), "autoregressive": case.autoregressive}
    kwargs = {name: extra[name] for name in sorted(variants)}
    args = to_framework(inputs, framework, device)
    try:
        got = fn(*(args[n] for n in (*TENSORS, "attention_mask")), case.one_sided_window, **kwargs)
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            return CaseResult(case.name, False, case, message=f"returned {type(got).__name__}; expected a tuple "
                                                             f"(output, local_probs, global_probs)")
        got = [as_numpy(a) for a in got]
    except Exception as e:  # a kernel that raises fails the case
        return CaseResult(case.name, False, case, message=f"raised {type(e).__name__}: {e}", exception=e)
    return compare_outputs(case, got, expected, tolerances)


def hypothesis_available():
    """Whether hypothesis can be imported (it comes with `pip install 'ledref[test]'`)."""
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        return False
    return True


def random_cases(variants=()):
    """Hypothesis strategy of Cases: B 1..3, H 1..3, L 1..40, d 1..8, w 1..8, each row padded at the end to
    a length 1..L, up to 4 global flags per row anywhere (pad positions included), any seed; with
    "dilation" in `variants` a dilation 1..4 per head, with "autoregressive" either kind of window."""
    from hypothesis import strategies as st

    @st.composite
    def cases(draw):
        batch, heads = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        length, head_dim, w = draw(st.integers(1, 40)), draw(st.integers(1, 8)), draw(st.integers(1, 8))
        lengths = [draw(st.integers(1, length)) for _ in range(batch)]
        global_positions = [draw(st.lists(st.integers(0, length - 1), max_size=4, unique=True))
                            for _ in range(batch)]
        seed = draw(st.integers(0, 2 ** 16))
        dilation = (tuple(draw(st.integers(1, 4)) for _ in range(heads)) if "dilation" in variants else None)
        autoregressive = draw(st.booleans()) if "autoregressive" in variants else False
        return make_case("hypothesis", batch, heads, length, head_dim, w, lengths, global_positions, seed,
                         dilation, autoregressive)

    return cases()


def _hypothesis_search(fn, examples, seed, run):
    """Run `examples` random cases; on a failure return the shrunk failing CaseResult, else a pass."""
    from hypothesis import HealthCheck, Verbosity, given, settings
    from hypothesis import seed as hypothesis_seed

    failures = []

    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None, print_blob=False,
              verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck))
    @given(random_cases(accepted(fn)))
    def search(case):
        result = run(case)
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
    """Per-case results of the catalogue, then (when examples > 0) the hypothesis result, or the fixed
    random cases' results when hypothesis is not installed."""
    results: list = field(default_factory=list)
    examples: int = 0
    dtype: str = "float64"
    tolerances: dict = field(default_factory=lambda: tolerances_for("float64"))
    kernel: str = ""
    framework: str = "numpy"
    not_run: list = field(default_factory=list)  # variant cases the kernel cannot take
    searched: bool = True  # False: hypothesis missing, fixed random cases instead

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
        limits = ", ".join(f"{name} rtol {r:g} atol {a:g}" for name, (r, a) in self.tolerances.items())
        lines = [f"Longformer attention conformance{' of ' + self.kernel if self.kernel else ''}: "
                 f"{self.dtype} inputs ({self.framework}), float64 reference; {limits}"]
        width = max([len(r.name) for r in self.results] + [10])
        cases = [r for r in self.results if r.name != "hypothesis"]
        for r in cases:
            detail = r.case.describe() if r.passed else r.message
            lines.append(f"{'PASS' if r.passed else 'FAIL'}  {r.name.ljust(width)}  {detail}")
            if not r.passed and r.case is not None:
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
                          f"      re-run: ledref.testing.run_case(fn, {r.case!r}, dtype={self.dtype!r})"]
        if self.not_run:
            lines.append(f"not run: {len(self.not_run)} variant cases ({', '.join(self.not_run)}); the kernel takes "
                         f"no dilation= / autoregressive= argument")
        if not self.searched:
            lines.append("hypothesis is not installed: fixed random cases ran instead of a search, without "
                         "shrinking (pip install 'ledref[test]' for the search)")
        passed = len([r for r in cases if r.passed])
        summary = f"{passed} of {len(cases)} cases passed"
        if any(r.name == "hypothesis" for r in self.results):
            summary += "; hypothesis " + ("passed" if all(r.passed for r in self.results if r.name == "hypothesis")
                                          else "found a failing case")
        lines.append(summary + (": OK" if self.ok else ": FAILED"))
        return "\n".join(lines)

    def __str__(self):
        return self.format()


def check_longformer_attention(fn: LongformerKernel, rtol: float | None = None, atol: float | None = None,
                               examples: int = 100, cases: Sequence[Case | str] | None = None,
                               dtype: str = "float64", framework: str = "numpy", device: Any = None,
                               seed: int = 0) -> "ConformanceReport":
    """Run the suite on kernel `fn` (signature in the module docstring) with inputs in `dtype` as
    `framework`'s arrays: the catalogue's cases (and VARIANT_CATALOGUE's for a kernel that takes dilation
    and autoregressive), or `cases` (Case objects or catalogue names), then `examples` hypothesis cases
    drawn from `seed` (0: none). rtol and atol override TOLERANCES[dtype]. Returns a ConformanceReport;
    `report.ok` is True only when every case passed."""
    check_callable("fn", fn, ConformanceError, optional=False)
    examples = check_int("examples", examples, ConformanceError, minimum=0)
    check_int("seed", seed, ConformanceError, minimum=0)
    if cases is not None and (isinstance(cases, (str, Case)) or not hasattr(cases, "__iter__")):
        raise ConformanceError(f"cases={short(cases)}; expected a list of Cases or catalogue names")
    tolerances = tolerances_for(dtype, rtol, atol)
    numpy_dtype(dtype)
    to_framework({}, framework)  # an unknown or missing framework fails before any case
    variants = accepted(fn)
    by_name = {c.name: c for c in CATALOGUE + VARIANT_CATALOGUE}
    chosen: list[Case] = []
    not_run: list[Case] = []
    for c in (CATALOGUE + VARIANT_CATALOGUE if cases is None else cases):
        if isinstance(c, str) and c not in by_name:
            raise ConformanceError(f"no catalogue case named {c!r}; expected one of {', '.join(by_name)}")
        if not isinstance(c, (str, Case)):
            raise ConformanceError(f"cases holds {short(c)}; expected Cases or catalogue names")
        c = by_name[c] if isinstance(c, str) else c
        (chosen if c.needs <= variants else not_run).append(c)
    report = ConformanceReport(examples=examples, dtype=dtype, tolerances=tolerances,
                               kernel=getattr(fn, "__qualname__", ""), framework=framework,
                               not_run=[c.name for c in not_run])

    def run(case):
        return run_case(fn, case, rtol, atol, dtype, framework, device)

    report.results = [run(c) for c in chosen]
    if examples and hypothesis_available():
        report.results.append(_hypothesis_search(fn, examples, seed, run))
    elif examples:
        report.searched = False
        report.results += [run(c) for c in generated_cases(examples, seed, variants)]
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
