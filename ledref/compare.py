"""Compare two sets of tensors, llm.c style: one line per tensor, OK or NOT OK, with the max error.

    report = compare("reference.safetensors", "mine.safetensors", rtol=1e-5, atol=1e-6, only="encoder.*",
                     exclude="*.band_scores", tolerances={"*.local_probs": (1e-3, 1e-6)})
    print(report)          # the table
    report.ok              # True only when every tensor is OK

`reference` and `other` are two safetensors files, two directories (the `*.safetensors` files of the same
name are compared; a file on one side only is a NOT OK row), or two dicts name -> array.

Every comparison is done in float64, with `other` measured against `reference` as in numpy.isclose:
element (a from other, b from reference) is bad when `|a - b| > atol + rtol * |b|`, or when either is NaN
(equal entries are fine, equal infinities included: masked band scores are -inf in every dtype). Per
tensor the row gives

- max_abs_err  `max |a - b|`
- max_rel_err  `max |a - b| / |b|` (inf where b is 0 and a is not)
- nmse         `sum (a - b)^2 / sum b^2` (0 when both sums are 0, inf when only b is all zero)
- worst_index  the index of the largest `|a - b|` (the first NaN if there is one)
- first_bad_index  the first bad element in C order, or None; n_bad  how many are bad.

A tensor whose shapes differ, or that only one side has, is a NOT OK row without errors.

`only` and `exclude` are fnmatch (shell glob, case-sensitive) patterns, or lists of them: `encoder.layers.0.*`,
`*attn*`, `*.k_proj.?eight`. A tensor is compared when it matches one of `only` (all do without it) and none
of `exclude`. In directory mode a pattern is matched against the tensor name and against
`file.safetensors/tensor`. `tolerances` gives other (rtol, atol) to the tensors matching a pattern: a dict
pattern -> (rtol, atol), or a list of (pattern, rtol, atol); the first matching pattern wins, the others
get rtol and atol. A row's tolerances are in `row.rtol` and `row.atol`.
"""

import fnmatch
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .checks import check_path, check_real, reason, short
from .errors import CompareError

try:  # lets safetensors' numpy reader return bfloat16 tensors
    import ml_dtypes  # noqa: F401
except ImportError:  # pragma: no cover
    pass


@dataclass
class Row:
    """The comparison of one tensor (or a file that only one side has). Errors are None when the shapes
    differ or a side is missing."""
    name: str
    shape_ref: tuple | None
    shape_other: tuple | None
    shape_match: bool
    dtype: str
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    nmse: float | None = None
    worst_index: tuple | None = None
    first_bad_index: tuple | None = None
    n_bad: int = 0
    ok: bool = False
    note: str = ""  # why a row without errors is NOT OK: "only in reference", "shape mismatch", ...
    rtol: float | None = None  # the tolerances this row was judged with
    atol: float | None = None


@dataclass
class Report:
    """All rows of a comparison; `ok` is True only when every row is."""
    rows: list = field(default_factory=list)
    rtol: float = 1e-5
    atol: float = 1e-6
    tolerances: list = field(default_factory=list)  # (pattern, rtol, atol) for the tensors matching pattern

    @property
    def ok(self):
        """True when every tensor is OK."""
        return all(row.ok for row in self.rows)

    def row(self, name):
        """The row of one tensor, by name."""
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def format(self):
        """The table: one line per tensor, then a summary line."""
        header = ["", "tensor", "shape", "dtype", "max abs", "max rel", "NMSE", "worst index", "first bad (n bad)"]
        lines = [header] + [_cells(row) for row in self.rows]
        widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
        text = ["  ".join(c.ljust(width) for c, width in zip(line, widths, strict=True)).rstrip() for line in lines]
        n_ok = sum(row.ok for row in self.rows)
        verdict = "all OK" if self.ok else "NOT OK"
        limits = f"rtol {self.rtol:g}, atol {self.atol:g}" + "".join(f"; {p}: rtol {r:g}, atol {a:g}"
                                                                    for p, r, a in self.tolerances)
        text.append(f"{n_ok} of {len(self.rows)} tensors OK ({limits}): {verdict}")
        return "\n".join(text)

    def __str__(self):
        return self.format()


def _cells(row):
    def number(v):
        return "-" if v is None else f"{v:.3g}"

    def shape(s):
        return "-" if s is None else "[" + ", ".join(map(str, s)) + "]"

    shapes = shape(row.shape_ref) if row.shape_match else f"{shape(row.shape_ref)} vs {shape(row.shape_other)}"
    if row.shape_ref is None and row.shape_other is None:  # a file on one side only
        shapes = "-"
    if row.max_abs_err is None:
        return ["OK" if row.ok else "NOT OK", row.name, shapes, row.dtype, "-", "-", "-", "-", row.note]
    first_bad = "-" if row.first_bad_index is None else f"{row.first_bad_index} ({row.n_bad})"
    return ["OK" if row.ok else "NOT OK", row.name, shapes, row.dtype, number(row.max_abs_err),
            number(row.max_rel_err), number(row.nmse), str(row.worst_index), first_bad]


def _numbers(value, name, side):
    """An array-like of real numbers (or booleans) as a NumPy array, else a CompareError naming the tensor."""
    try:
        a = np.asarray(_to_numpy(value))
    except Exception as e:
        raise CompareError(f"{side} tensor {name} is not an array ({reason(e)})") from None
    if a.dtype.kind not in "biuf" and a.dtype.name not in ("bfloat16",) and not a.dtype.name.startswith("float8"):
        raise CompareError(f"{side} tensor {name} has dtype {a.dtype}; expected real numbers")
    return a


def _to_numpy(value):
    from .backend import to_numpy
    if isinstance(value, (list, tuple, int, float, complex, str, bytes, np.ndarray, np.generic)):
        return value
    return to_numpy(value)


def _tolerances(rtol, atol):
    return check_real("rtol", rtol, CompareError, minimum=0), check_real("atol", atol, CompareError, minimum=0)


def compare_arrays(name, reference, other, rtol=1e-5, atol=1e-6):
    """One row: `other` measured against `reference` (array-likes), in float64."""
    rtol, atol = _tolerances(rtol, atol)
    b, a = _numbers(reference, name, "reference"), _numbers(other, name, "other")
    dtype = str(b.dtype) if a.dtype == b.dtype else f"{b.dtype} vs {a.dtype}"
    if a.shape != b.shape:
        return Row(name, b.shape, a.shape, False, dtype, note="shape mismatch", rtol=rtol, atol=atol)
    a, b = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        equal = a == b  # equal infinities (masked scores at -inf) are equal, not NaN
        err = np.where(equal, 0.0, np.abs(a - b))
        bad = ~(equal | ((err < np.inf) & (err <= atol + rtol * np.abs(b))))  # NaN, or an unequal inf, is bad
        rel = np.where(equal, 0.0, np.where(err == np.inf, np.inf, err / np.abs(b)))  # err / 0 -> inf
        finite = np.isfinite(b)  # NMSE over the finite reference entries
        num, den = float(np.sum(np.where(finite, err, 0.0) ** 2)), float(np.sum(np.where(finite, b, 0.0) ** 2))
    if a.size == 0:
        return Row(name, b.shape, a.shape, True, dtype, 0.0, 0.0, 0.0, None, None, 0, True, rtol=rtol, atol=atol)
    nmse = 0.0 if num == 0 else (num / den if den > 0 else math.inf)
    ranked = np.where(np.isnan(err), np.inf, err)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(ranked)), err.shape))
    n_bad = int(np.count_nonzero(bad))
    first_bad = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape)) if n_bad else None
    max_rel = float(np.nan if np.isnan(rel).any() else np.max(rel))
    return Row(name, b.shape, a.shape, True, dtype, float(err[worst]), max_rel, nmse, worst, first_bad, n_bad,
               n_bad == 0, rtol=rtol, atol=atol)


class Selection:
    """Which tensors a comparison takes (`only`, `exclude`) and with which tolerances (see the module
    docstring). Patterns match the tensor name, or `file/tensor` in directory mode."""

    def __init__(self, rtol=1e-5, atol=1e-6, only=None, exclude=None, tolerances=None):
        self.rtol, self.atol = rtol, atol
        self.only = [only] if isinstance(only, str) else list(only or [])
        self.exclude = [exclude] if isinstance(exclude, str) else list(exclude or [])
        if isinstance(tolerances, dict):
            tolerances = [(pattern, *(values if isinstance(values, (tuple, list)) else (values,)))
                          for pattern, values in tolerances.items()]
        self.tolerances = []
        for t in tolerances or []:
            t = tuple(t) if isinstance(t, (tuple, list)) else (t,)
            if len(t) != 3 or not isinstance(t[0], str):
                raise CompareError(f"tolerances entry {short(t)}: expected (pattern, rtol >= 0, atol >= 0)")
            try:
                self.tolerances.append((t[0], *_tolerances(t[1], t[2])))
            except CompareError as e:
                raise CompareError(f"tolerances entry {short(t)}: {e}") from None

    @staticmethod
    def _matches(pattern, name, file):
        return fnmatch.fnmatchcase(name, pattern) or (file is not None and fnmatch.fnmatchcase(f"{file}/{name}",
                                                                                              pattern))

    def selected(self, name, file=None):
        """Whether tensor `name` (of `file` in directory mode) is compared."""
        if self.only and not any(self._matches(p, name, file) for p in self.only):
            return False
        return not any(self._matches(p, name, file) for p in self.exclude)

    def tolerance(self, name, file=None):
        """(rtol, atol) for tensor `name`: the first matching pattern's, else the defaults."""
        for pattern, rtol, atol in self.tolerances:
            if self._matches(pattern, name, file):
                return rtol, atol
        return self.rtol, self.atol


def compare(reference: str | os.PathLike | Mapping[str, Any], other: str | os.PathLike | Mapping[str, Any],
            rtol: float = 1e-5, atol: float = 1e-6, only: str | Sequence[str] | None = None,
            exclude: str | Sequence[str] | None = None,
            tolerances: Mapping[str, tuple[float, float]] | Sequence[tuple[str, float, float]] | None = None,
            ) -> "Report":
    """Compare `other` with `reference`: two safetensors files, two directories of them, or two dicts
    name -> array. `only`, `exclude`: fnmatch patterns (or lists) selecting tensor names; `tolerances`:
    other (rtol, atol) by pattern. Returns a Report (rows, ok)."""
    rtol, atol = _tolerances(rtol, atol)
    for name, value in (("only", only), ("exclude", exclude)):
        if value is not None and not (isinstance(value, str) or (isinstance(value, (list, tuple))
                                                                  and all(isinstance(p, str) for p in value))):
            raise CompareError(f"{name}={short(value)}; expected an fnmatch pattern (str), a list of them, or None")
    selection = Selection(rtol, atol, only, exclude, tolerances)
    report = Report(rtol=rtol, atol=atol, tolerances=selection.tolerances)
    if isinstance(reference, dict) or isinstance(other, dict):
        if not (isinstance(reference, dict) and isinstance(other, dict)):
            raise CompareError("reference and other must both be dicts, or both paths")
        for side, tensors in (("reference", reference), ("other", other)):
            for name in tensors:
                if not isinstance(name, str):
                    raise CompareError(f"{side} has the tensor name {short(name)}; expected str names")
        report.rows = _compare_sets(reference, other, selection)
    else:
        kinds = [_kind(reference, "reference"), _kind(other, "other")]
        if kinds[0] != kinds[1]:
            raise CompareError(f"reference {reference} is a {kinds[0]} but other {other} is a {kinds[1]}; "
                               f"expected two files or two directories")
        if kinds[0] == "file":
            report.rows = _compare_sets(_lazy(reference), _lazy(other), selection)
        else:
            report.rows = _compare_directories(reference, other, selection)
    if (selection.only or selection.exclude) and not report.rows:
        what = " ".join([f"--only {p!r}" for p in selection.only] + [f"--exclude {p!r}" for p in selection.exclude])
        raise CompareError(f"no tensor is left to compare by {what}")
    if not report.rows:
        raise CompareError("nothing to compare: reference and other hold no tensors; expected at least one")
    return report


def _compare_sets(reference, other, selection, file=None):
    """Rows for two mappings name -> array (or -> a function that loads it), in the reference's order,
    then the names only `other` has."""
    rows = []
    prefix = f"{file}/" if file else ""
    names = list(reference) + [n for n in other if n not in reference]
    for name in names:
        if not selection.selected(name, file):
            continue
        if name not in other or name not in reference:
            side, present = ("reference", reference) if name in reference else ("other", other)
            a = _numbers(_load(present[name]), prefix + name, side)  # loaded for its shape and dtype
            shape_ref, shape_other = (a.shape, None) if side == "reference" else (None, a.shape)
            rows.append(Row(prefix + name, shape_ref, shape_other, False, str(a.dtype), note=f"only in {side}"))
            continue
        rtol, atol = selection.tolerance(name, file)
        rows.append(compare_arrays(prefix + name, _load(reference[name]), _load(other[name]), rtol, atol))
    return rows


def _compare_directories(reference, other, selection):
    files = [sorted(f for f in os.listdir(d) if f.endswith(".safetensors")) for d in (reference, other)]
    rows = []
    for file in files[0] + [f for f in files[1] if f not in files[0]]:
        if file in files[0] and file in files[1]:
            rows += _compare_sets(_lazy(os.path.join(reference, file)), _lazy(os.path.join(other, file)),
                                  selection, file)
            continue
        side, directory = ("reference", reference) if file in files[0] else ("other", other)
        names = list(_lazy(os.path.join(directory, file)))
        # a file one side lacks is NOT OK, unless `only` or `exclude` leave none of it to compare
        if (not (selection.only or selection.exclude) or any(selection.selected(n, file) for n in names)
                or (selection.only and selection.selected(file))):
            rows.append(Row(file, None, None, False, "-", note=f"file only in {side} ({len(names)} tensors)"))
    return rows


def _kind(path, role):
    path = check_path(role, path, CompareError)
    if os.path.isdir(path):
        return "directory"
    if os.path.isfile(path):
        return "file"
    raise CompareError(f"{role} {path}: no such file or directory")


def _lazy(path):
    """A safetensors file as {name: loader} in the file's order; tensors are read when compared."""
    path = os.fspath(path)
    names = _safetensors_names(path, CompareError)

    def loader(name):
        def load():
            return _safetensors_tensor(path, name, CompareError)
        return load

    return {name: loader(name) for name in names}


def _safetensors_names(path, error):
    from safetensors import safe_open
    try:
        with safe_open(path, framework="numpy") as f:
            return list(f.keys())
    except Exception as e:  # SafetensorError, OSError: a corrupt header, a truncated file, no permission
        raise error(f"{path}: not a readable safetensors file ({_short_reason(e)})") from None


def _safetensors_tensor(path, name, error):
    from safetensors import safe_open
    try:
        with safe_open(path, framework="numpy") as f:
            return f.get_tensor(name)
    except Exception as e:
        raise error(f"{path}: tensor {name} cannot be read ({_short_reason(e)})") from None


def _short_reason(e):
    return reason(e).replace("SafetensorError: ", "").replace("Error while deserializing header: ", "header: ")


def read_safetensors(path, error=CompareError):
    """Every tensor of a safetensors file as {name: NumPy array}; a missing or corrupt file is `error`
    naming it."""
    path = check_path("path", path, error)
    if not os.path.isfile(path):
        raise error(f"{path}: no such file")
    return {name: _safetensors_tensor(path, name, error) for name in _safetensors_names(path, error)}


def _load(value):
    return value() if callable(value) else value
