"""Building blocks with Array API operations only: linear, layer norm, softmax, activations.

Every function takes arrays of any Array API backend and returns arrays of the same backend.
"""

import math

import numpy as np
from array_api_compat import array_namespace
from numpy.polynomial import chebyshev

from .backend import namespace_name, parallel_map


def linear(x, weight, bias=None, out=None):
    """x @ weight.T + bias. weight is (out, in) as in the checkpoint. `out`, if given, is a buffer the
    result may be computed into (see `matmul_into`); use the returned array."""
    xp = array_namespace(x)
    y = matmul_into(x, xp.matrix_transpose(weight), out)  # [..., in] -> [..., out]
    if bias is not None:
        y += bias  # y is new: the bias is added in place
    return y


def by_rows(fn, *arrays, rows=None, out=None):
    """fn applied to chunks of `rows` positions (axis 1 of [B, L, ...] arrays, in parallel where the
    backend gains from it), results joined along that axis: keeps the temporaries of position-wise work
    (layer norms, feed-forward) small. With `out`, the results are written there (and `out` returned)."""
    xp = array_namespace(arrays[0])
    length = arrays[0].shape[1]
    if rows is None or rows >= length:
        if out is None:
            return fn(*arrays)
        rows = length

    def chunk(s):
        part = fn(*(a[:, s:min(s + rows, length), ...] for a in arrays))
        if out is not None:
            out[:, s:min(s + rows, length), ...] = part
        return part

    parts = parallel_map(xp, chunk, range(0, length, rows))
    return out if out is not None else xp.concat(parts, axis=1)


def in_blocks(fn, x, rows=None):
    """fn(x) for an elementwise fn, computed `rows` positions (axis 1) at a time and written over x, so
    that the many passes of an activation like the exact GELU stay in cache. `rows=None`: at once.
    Where IN_PLACE has a version of fn for x's backend and dtype, that version does the work."""
    into = IN_PLACE.get((fn, namespace_name(array_namespace(x)), str(x.dtype)))
    if rows is None or rows >= x.shape[1]:
        rows = x.shape[1]
        if into is None:
            return fn(x)
    scratch = into.scratch(x[:, :rows, ...]) if into else None
    for s in range(0, x.shape[1], rows):
        e = min(s + rows, x.shape[1])
        if into:
            into(x[:, s:e, ...], [a[:, :e - s, ...] for a in scratch])
        else:
            x[:, s:e, ...] = fn(x[:, s:e, ...])
    return x


def layer_norm(x, weight, bias, eps=1e-5, overwrite=False):
    """LayerNorm over the last axis (biased variance, as torch). `overwrite=True`: written over x (which
    the caller owns) instead of into a new array."""
    xp = array_namespace(x)
    mean = xp.mean(x, axis=-1, keepdims=True)
    if overwrite:
        x -= mean
        centred = x
    else:
        centred = x - mean  # the one new array: the rest works on it in place
    centred /= xp.sqrt(xp.mean(centred * centred, axis=-1, keepdims=True) + eps)
    centred *= weight
    centred += bias
    return centred


def softmax(x, axis=-1):
    """exp(x) / sum exp(x) along `axis`, the maximum subtracted first so that exp stays finite."""
    xp = array_namespace(x)
    e = exp_inplace(x - xp.max(x, axis=axis, keepdims=True))  # one new array, then worked on in place
    e /= xp.sum(e, axis=axis, keepdims=True)
    return e


def exp_inplace(x):
    """exp(x), written over x where the backend can (NumPy's `out=`, which the Array API standard does
    not have): saves a fresh array and a pass over memory. Elsewhere the standard `xp.exp(x)`."""
    xp = array_namespace(x)
    if namespace_name(xp) == "numpy":
        return np.exp(x, out=x)
    return xp.exp(x)


def matmul_into(a, b, out):
    """a @ b, computed into `out` where the backend can (NumPy's `out=`, which the Array API standard does
    not have): the same numbers without a fresh array, and `out` stays in cache when reused. Elsewhere
    the standard `a @ b`, a new array. Use the returned array."""
    if namespace_name(array_namespace(a)) == "numpy":
        if a.ndim > 1 and b.ndim > 1 and a.shape[-1] == 1:  # an outer product, which NumPy's matmul does
            return np.multiply(a, b, out=out)  # not hand to BLAS: the same single products, several times faster
        return np.matmul(a, b, out=out)
    return a @ b


def log_softmax(x, axis=-1):
    """log(softmax(x)) along `axis`, computed as x - max - log(sum exp(x - max)) to stay finite."""
    xp = array_namespace(x)
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def finfo_min(x):
    """The most negative finite value of x's dtype: transformers' mask value."""
    return array_namespace(x).finfo(x.dtype).min


# Chebyshev coefficients of P in erfc(z) = t * exp(-z**2 + P(t)), t = 1 / (1 + z/2), z >= 0, series in
# u = 2t - 1 on [-1, 1]. Fitted by scripts/fit_erfc.py; 28 terms give |error| < 5e-16 in float64.
ERFC_CHEBYSHEV = (
    -0.6513268598908547, 0.6419697923564902, 0.019476473204185836, -0.009561514786808632,
    -0.0009465953444820369, 0.00036683949785276145, 4.252332480690777e-05, -2.0278578112534242e-05,
    -1.6242900046470256e-06, 1.3036558355805232e-06, 1.5626441722066142e-08, -8.523809591492654e-08,
    6.5290544390988515e-09, 5.059343495551469e-09, -9.91364156493033e-10, -2.273651222931836e-10,
    9.646791102015527e-11, 2.3940380830391146e-12, -6.886027526497553e-12, 8.944879273090725e-13,
    3.130921399342958e-13, -1.1270822361367252e-13, 3.810905255189232e-16, 7.106097613609237e-15,
    -1.5230282014571041e-15, -9.457494571291254e-17, 1.210237189224273e-16, -2.816663087746774e-17,
)


# float32 needs only the first 10 terms (|error| < 4e-7 with float32 rounding); as a polynomial in u,
# Horner's rule evaluates them in half the operations of the Chebyshev recurrence
ERFC_POWERS_FLOAT32 = tuple(float(c) for c in chebyshev.cheb2poly(ERFC_CHEBYSHEV[:10])[::-1])


def _erfc_of_nonnegative(z):
    """erfc(z) for z >= 0: t * exp(-z**2 + P(t)), t = 1 / (1 + z/2), P a series in u = 2t - 1."""
    xp = array_namespace(z)
    t = 0.5 * z
    t += 1.0
    t = 1.0 / t
    u = 2.0 * t - 1.0
    if z.dtype == xp.float64:
        b1, b2 = xp.zeros_like(u), xp.zeros_like(u)  # Clenshaw recurrence for sum c_k T_k(u)
        for c in ERFC_CHEBYSHEV[:0:-1]:
            b1, b2 = 2.0 * u * b1 - b2 + c, b1
        p = u * b1 - b2 + ERFC_CHEBYSHEV[0]
    else:
        p = ERFC_POWERS_FLOAT32[0] * u
        p += ERFC_POWERS_FLOAT32[1]
        for c in ERFC_POWERS_FLOAT32[2:]:
            p *= u
            p += c
    p -= z * z
    p = exp_inplace(p)
    p *= t
    return p


def erfc(x):
    """Complementary error function (the Array API standard has none), to the precision of x's dtype."""
    xp = array_namespace(x)
    r = _erfc_of_nonnegative(xp.abs(x))
    return xp.where(x < 0, 2.0 - r, r)


def _sigmoid(x):
    xp = array_namespace(x)
    return 0.5 * (1.0 + xp.tanh(0.5 * x))  # no overflow for large |x|


def gelu(x):
    """Exact GELU, x * Phi(x) = x * erfc(-x / sqrt 2) / 2, written as relu(x) - a erfc(a / sqrt 2) / 2, a = abs(x):
    the same function (for x >= 0, erfc(-y) = 2 - erfc(y)), with no branch to select per element, and
    large negative x keep their relative precision (erfc's tail is never subtracted from 2)."""
    xp = array_namespace(x)
    a = xp.abs(x)
    r = _erfc_of_nonnegative(a * (1.0 / math.sqrt(2.0)))
    r *= a
    r *= 0.5
    return xp.clip(x, min=0.0) - r


class _GeluFloat32NumPy:
    """`gelu` written over a float32 NumPy array, with `out=` into four scratch arrays of its shape that
    the caller keeps (NumPy's `out=` is not in the Array API standard): the same formula in about 30 passes
    over memory in cache and no fresh array. Two constants are folded: t = 1/(1 + z/2) for z = a/sqrt 2 is
    computed as c/(c + a) with c = 2 sqrt 2, and the final halving, exp(P - z**2)/2, as ln(1/2) added to
    the series' last coefficient. Tested against `gelu` and math.erfc."""

    C = 2.0 * math.sqrt(2.0)
    SERIES = (*ERFC_POWERS_FLOAT32[:-1], ERFC_POWERS_FLOAT32[-1] + math.log(0.5))

    @staticmethod
    def scratch(x):
        return [np.empty_like(x) for _ in range(4)]

    def __call__(self, x, scratch):
        a, t, u, p = scratch
        np.abs(x, out=a)
        np.add(a, self.C, out=t)
        np.divide(self.C, t, out=t)  # t
        np.multiply(t, 2.0, out=u)
        u -= 1.0  # u = 2t - 1
        np.multiply(u, self.SERIES[0], out=p)
        for c in self.SERIES[1:-1]:
            p += c
            p *= u
        p += self.SERIES[-1]  # P(u) + ln(1/2)
        np.multiply(a, a, out=u)
        u *= 0.5  # z**2
        p -= u
        np.exp(p, out=p)
        p *= t
        p *= a  # a erfc(z) / 2
        np.maximum(x, 0.0, out=x)
        x -= p
        return x


def gelu_tanh(x):
    """The tanh approximation of GELU (transformers' gelu_new and gelu_pytorch_tanh)."""
    xp = array_namespace(x)
    return 0.5 * x * (1.0 + xp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def gelu_fast(x):
    """transformers' gelu_fast: the tanh approximation of GELU with its constants written out."""
    xp = array_namespace(x)
    return 0.5 * x * (1.0 + xp.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def relu(x):
    """max(x, 0)."""
    return array_namespace(x).clip(x, min=0.0)


def mish(x):
    """x * tanh(softplus(x)), softplus(x) = log(1 + exp(x)) written as logaddexp(0, x)."""
    xp = array_namespace(x)
    return x * xp.tanh(xp.logaddexp(xp.zeros_like(x), x))


ACTIVATIONS = {
    "gelu": gelu,
    "gelu_python": gelu,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_fast": gelu_fast,
    "quick_gelu": lambda x: x * _sigmoid(1.702 * x),
    "relu": relu,
    "relu6": lambda x: array_namespace(x).clip(x, 0.0, 6.0),
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "sigmoid": _sigmoid,
    "tanh": lambda x: array_namespace(x).tanh(x),
    "mish": mish,
    "linear": lambda x: x,
}


# versions of ACTIVATIONS that write over their input, by (function, backend, dtype), for in_blocks
IN_PLACE = {(gelu, "numpy", "float32"): _GeluFloat32NumPy()}
