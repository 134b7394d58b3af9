"""bfloat16 and float16 compute, emulated over float32 NumPy arrays: the reference, run unchanged, with the
numerics of a correct low-precision implementation.

    model = ledref.LEDForConditionalGeneration.from_pretrained(path, dtype="bfloat16")   # or "float16"

What a low-precision LED computes (transformers run with `model.to(torch.bfloat16)`, or a GPU kernel):
every weight and every activation is held in the type; matrix products multiply the stored values and
accumulate in float32, rounding once at the end; layer norm, softmax and the activations are single
kernels that compute in float32 inside and round their result once (transformers asks for the encoder's
softmax in float32 explicitly, torch does the same for the others); everything else (a residual add, the
scaling by 1/sqrt(d), a mask) is one operation, rounded.

How this module reproduces that. `namespace("bfloat16")` is an Array API namespace whose arrays
(`LowArray`) hold float32 NumPy arrays. Every operation unwraps its arguments, runs NumPy's float32
operation (matrix products in float32 BLAS, sums and means accumulated in float32) and rounds its floating
result to the type with ml_dtypes (round to nearest even, overflow to inf). The reference's building blocks
that are one kernel in torch (`FUSED`: linear, layer_norm, softmax, the activations, and the model's
log_softmax) are recognised by the code of the calling function: operations called from inside one of
them are not rounded, and their inputs are rounded on the way in only when they come from outside it. So
`softmax(scores)` runs in float32 and hands back its float32 result, which the next operation outside
rounds: the value transformers stores. Arrays report the low dtype; `finfo(x.dtype).min` is the type's
own (-65504 for float16), as transformers' masks.

Why an emulation and not torch tensors of the type: torch is only a test dependency of ledref, the
emulation runs wherever NumPy does, and it makes the rounding points explicit and testable (each operation
rounds exactly once, and float32 accumulation is NumPy's). Why not rounding calls in the reference: the
reference stays the spec of what is computed; where it is rounded is a property of the machine, which this
module supplies. It is a measuring instrument (docs/tolerances.md), not a fast path: the model runs the
reference (`band_matrix`, or `dense`) in these modes, on NumPy only.
"""

import operator
import sys

import array_api_compat.numpy as base
import ml_dtypes
import numpy as np

LOW_DTYPES = {"bfloat16": np.dtype(ml_dtypes.bfloat16), "float16": np.dtype(np.float16)}
_FLOAT_NAMES = ("float16", "bfloat16", "float32", "float64")


def round_to(data, low):
    """Float data rounded to the low dtype in one rounding, held as float32 (round to nearest even;
    overflow gives inf). ml_dtypes takes float64 to bfloat16 through float32, two roundings that can
    differ from one at a tie; float64 data therefore goes to float32 rounded to odd first, after which
    rounding to bfloat16 is the one correct rounding (float32 keeps 24 bits, more than 8 + 2)."""
    data = np.asarray(data)
    with np.errstate(over="ignore"):  # beyond the type's range is inf, as in hardware
        if data.dtype == np.float64 and low == LOW_DTYPES["bfloat16"]:
            data = _float32_rounded_to_odd(data)
        return data.astype(low).astype(np.float32)


def _float32_rounded_to_odd(x):
    """float64 x as float32, truncated toward zero and, when that is inexact, with the last bit set."""
    t = x.astype(np.float32)
    away = np.abs(t.astype(np.float64)) > np.abs(x)  # rounded away from zero: one step back toward it
    t = np.where(away, np.nextafter(t, np.float32(0)), t)
    inexact = t.astype(np.float64) != x
    return (t.view(np.uint32) | inexact.astype(np.uint32)).view(np.float32)


def _floating(dtype):
    """A NumPy floating dtype, ml_dtypes' bfloat16 (whose kind is "V") included."""
    return dtype.kind == "f" or dtype == LOW_DTYPES["bfloat16"]


def _fused():
    """code object -> the kernel it belongs to, for the reference's functions that torch runs as one kernel."""
    from . import model
    from .reference import functional as f
    groups = {f.linear: "linear", f.layer_norm: "layer_norm", f.softmax: "softmax", model.log_softmax: "log_softmax"}
    for fn in (f.erfc, f.gelu, f.gelu_tanh, f.gelu_fast, f.sigmoid, f.relu, f.mish, *f.ACTIVATIONS.values()):
        groups[fn] = "activation"  # an activation and what it calls (erfc, sigmoid) are one kernel
    return {fn.__code__: group for fn, group in groups.items()}


FUSED: dict = {}


def _caller_kernel():
    """The kernel (see FUSED) whose code called into this module, or None."""
    if not FUSED:
        FUSED.update(_fused())
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    return None if frame is None else FUSED.get(frame.f_code)


class LowArray:
    """An array of the emulated type: `data` is a NumPy array (float32 holding the type's values, or the
    integer or boolean array as it is); `kernel` is None once the values are rounded, or the fused kernel
    whose float32 result they still are."""

    __slots__ = ("data", "kernel", "ns")

    def __init__(self, data, ns, kernel=None):
        self.data, self.ns, self.kernel = data, ns, kernel

    def __array_namespace__(self, api_version=None):
        return self.ns

    @property
    def dtype(self):
        """The low dtype for floating arrays, else the data's dtype."""
        return self.ns.low if self.data.dtype == np.float32 else self.data.dtype

    @property
    def shape(self):
        """The data's shape."""
        return self.data.shape

    @property
    def ndim(self):
        """The data's number of axes."""
        return self.data.ndim

    @property
    def size(self):
        """The data's number of elements."""
        return self.data.size

    @property
    def device(self):
        """Always "cpu"."""
        return "cpu"

    @property
    def mT(self):  # noqa: N802 (the Array API's name)
        """The last two axes swapped."""
        return self.ns.matrix_transpose(self)

    def to_device(self, device, stream=None):
        """Only "cpu" exists."""
        return self

    def __array__(self, dtype=None, copy=None):
        """The values as NumPy, floating data in the low dtype (ml_dtypes.bfloat16 or float16)."""
        data = self.data.astype(self.ns.low) if self.data.dtype == np.float32 else self.data
        return data if dtype is None else data.astype(dtype)

    def __repr__(self):
        return f"LowArray({np.asarray(self)!r})"

    def __len__(self):
        return len(self.data)

    def __int__(self):
        return int(self.data)

    def __float__(self):
        return float(self.ns._rounded(self))

    def __bool__(self):
        return bool(self.data)

    def __index__(self):
        return operator.index(self.data)

    def __getitem__(self, key):
        return self.ns._apply(operator.getitem, self, key)

    def __setitem__(self, key, value):
        raise TypeError("LowArray does not support assignment; the reference writes nothing in place")


def _binary(op, reflected=False):
    if reflected:
        return lambda self, other: self.ns._apply(op, other, self)
    return lambda self, other: self.ns._apply(op, self, other)


for _name, _op in {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
                   "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow,
                   "matmul": operator.matmul, "and": operator.and_, "or": operator.or_, "xor": operator.xor}.items():
    setattr(LowArray, f"__{_name}__", _binary(_op))
    setattr(LowArray, f"__r{_name}__", _binary(_op, reflected=True))
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(LowArray, f"__{_name}__", _binary(getattr(operator, _name)))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(LowArray, f"__{_name}__", (lambda op: lambda self: self.ns._apply(op, self))(getattr(operator, _name)))
LowArray.__hash__ = None  # type: ignore[assignment,method-assign]


class Namespace:
    """The Array API namespace of one emulated dtype: NumPy's functions (array_api_compat.numpy) on the
    unwrapped data, each floating result rounded (see the module docstring). Every floating dtype asked
    for (float16, bfloat16, float32, float64) is the emulated one."""

    def __init__(self, name):
        self.__name__ = f"ledref.lowp.{name}"
        self.name, self.low = name, LOW_DTYPES[name]

    def __repr__(self):
        return f"<Array API namespace {self.__name__}>"

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name in _FLOAT_NAMES:
            return self.low
        value = getattr(base, name)
        if not callable(value) or isinstance(value, type) or name in ("finfo", "iinfo", "isdtype"):
            return value if name not in ("finfo", "isdtype") else getattr(self, f"_{name}")
        return lambda *args, **kwargs: self._apply(value, *args, **kwargs)

    def _finfo(self, dtype):
        dtype = dtype.dtype if isinstance(dtype, LowArray) else dtype
        return ml_dtypes.finfo(self.low) if self._is_float(dtype) else base.finfo(dtype)

    def _isdtype(self, dtype, kind):
        return base.isdtype(np.dtype(np.float32) if self._is_float(dtype) else dtype, kind)

    def _is_float(self, dtype):
        try:
            return np.dtype(dtype) in (self.low, *map(np.dtype, (np.float16, np.float32, np.float64)))
        except TypeError:
            return False

    def _rounded(self, a):
        """a's data, rounded when it is a fused kernel's float32 result."""
        return a.data if a.kernel is None else round_to(a.data, self.low)

    def _unwrap(self, value, kernel):
        if isinstance(value, LowArray):
            return value.data if value.kernel is None or value.kernel == kernel else self._rounded(value)
        if isinstance(value, (tuple, list)):
            return type(value)(self._unwrap(v, kernel) for v in value)
        if isinstance(value, dict):
            return {k: self._unwrap(v, kernel) for k, v in value.items()}
        if isinstance(value, np.generic) and value.dtype == self.low:
            return float(value)
        if not isinstance(value, np.ndarray) and self._is_float_dtype_object(value):
            return np.float32
        return value

    def _is_float_dtype_object(self, value):
        return isinstance(value, (np.dtype, type)) and self._is_float(value)

    def _wrap(self, value, kernel):
        if isinstance(value, (tuple, list)):
            return type(value)(self._wrap(v, kernel) for v in value)
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray):
            return value
        if not _floating(value.dtype):
            return LowArray(value, self)
        if kernel is None:
            return LowArray(round_to(value, self.low), self)
        return LowArray(value.astype(np.float32, copy=False), self, kernel)

    def _apply(self, fn, *args, **kwargs):
        kernel = _caller_kernel()
        return self._wrap(fn(*self._unwrap(args, kernel), **self._unwrap(kwargs, kernel)), kernel)

    def asarray(self, obj, dtype=None, device=None, copy=None):
        """An array of this namespace: floating values rounded to the type (from float64 in one rounding)."""
        if isinstance(obj, LowArray):
            obj = np.asarray(obj)
        data = np.asarray(obj)
        if dtype is not None and not self._is_float(dtype):
            return LowArray(data.astype(dtype), self)
        if _floating(data.dtype) or (dtype is not None and self._is_float(dtype)):
            return LowArray(round_to(data, self.low), self)
        return LowArray(data.copy() if copy else data, self)

    def astype(self, x, dtype, copy=True, device=None):
        """x converted to dtype; every floating dtype is the emulated one."""
        if self._is_float(dtype):
            return LowArray(round_to(self._rounded(x), self.low), self)
        return LowArray(self._rounded(x).astype(dtype), self)


_NAMESPACES: dict = {}


def namespace(name):
    """The namespace of one emulated dtype, "bfloat16" or "float16" (one object per dtype, so that
    array_namespace finds a single namespace for the arrays of a model)."""
    if name not in LOW_DTYPES:
        raise ValueError(f"no emulated dtype {name!r}; expected one of {sorted(LOW_DTYPES)}")
    if name not in _NAMESPACES:
        _NAMESPACES[name] = Namespace(name)
    return _NAMESPACES[name]
