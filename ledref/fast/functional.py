"""The building blocks of `reference.functional`, written into buffers and over their inputs.

NumPy's `out=` is not in the Array API standard: on NumPy these functions compute into arrays the caller
reuses (no fresh array, no page faults, the buffer stays in cache); on every other backend they fall
back to the standard operations, and so to the reference's numbers.
"""

import math

import numpy as np
from array_api_compat import array_namespace
from numpy.polynomial import chebyshev

from ..reference.functional import ERFC_CHEBYSHEV, gelu
from .runtime import on_numpy, parallel_map


def matmul_into(a, b, out):
    """a @ b, computed into `out` on NumPy (`out=`); elsewhere the standard a @ b. Use the returned array.
    An inner dimension of 1 (an outer product, which NumPy's matmul does not hand to BLAS) is multiplied
    instead: the same single products, several times faster."""
    if on_numpy(array_namespace(a)):
        if a.ndim > 1 and b.ndim > 1 and a.shape[-1] == 1:
            return np.multiply(a, b, out=out)
        return np.matmul(a, b, out=out)
    return a @ b


def multiply_into(a, b, out):
    """a * b (broadcast), computed into `out` on NumPy; elsewhere the standard a * b. Use the returned array."""
    if on_numpy(array_namespace(a)):
        return np.multiply(a, b, out=out)
    return a * b


def linear(x, weight, bias=None, out=None):
    """reference.functional.linear computed into `out` (see matmul_into), the bias added in place."""
    xp = array_namespace(x)
    y = matmul_into(x, xp.matrix_transpose(weight), out)  # [..., in] -> [..., out]
    if bias is not None:
        y += bias
    return y


def layer_norm(x, weight, bias, eps=1e-5):
    """reference.functional.layer_norm written over x (which the caller owns); its one temporary, x * x for
    the variance, is as large as x: callers hand it chunks of rows (by_rows)."""
    xp = array_namespace(x)
    x -= xp.mean(x, axis=-1, keepdims=True)
    x /= xp.sqrt(xp.mean(x * x, axis=-1, keepdims=True) + eps)
    x *= weight
    x += bias
    return x


def exp_inplace(x):
    """exp(x) written over x on NumPy; elsewhere the standard xp.exp(x), a new array."""
    xp = array_namespace(x)
    return np.exp(x, out=x) if on_numpy(xp) else xp.exp(x)


def by_rows(fn, *arrays, rows=None, out=None):
    """fn applied to chunks of `rows` positions (axis 1 of [B, L, ...] arrays, in parallel on NumPy), the
    results joined along that axis, or written into `out` (then returned): the temporaries of
    position-wise work (layer norms, feed-forward) stay small. rows=None: all at once."""
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


# float32 needs only the series' first 10 terms (|error| < 4e-7 after float32 rounding); as a polynomial
# in u, Horner's rule evaluates them in half the operations of Clenshaw's recurrence
ERFC_POWERS_FLOAT32 = tuple(float(c) for c in chebyshev.cheb2poly(ERFC_CHEBYSHEV[:10])[::-1])


class GeluFloat32NumPy:
    """reference.functional.gelu for a float32 NumPy array, written over it with `out=` into four scratch
    arrays of its shape that the caller keeps: about 30 passes over memory in cache and no fresh array.
    It computes relu(x) - a erfc(a / sqrt 2) / 2 with a = `|x|` (the same function, without a per-element
    branch), from the 10-term series; two constants are folded: t = 1/(1 + z/2) for z = a / sqrt 2 is
    c / (c + a) with c = 2 sqrt 2, and the final halving is ln(1/2) added to the series' last
    coefficient. Tested against math.erfc and the reference gelu."""

    C = 2.0 * math.sqrt(2.0)
    SERIES = (*ERFC_POWERS_FLOAT32[:-1], ERFC_POWERS_FLOAT32[-1] + math.log(0.5))

    @staticmethod
    def scratch(x):
        """The four scratch arrays for blocks shaped like x."""
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


# versions of reference activations that write over their input, by (function, dtype), on NumPy
IN_PLACE = {(gelu, "float32"): GeluFloat32NumPy()}


def in_blocks(fn, x, rows=None):
    """fn(x) for an elementwise fn, computed `rows` positions (axis 1) at a time and written over x, so
    that the many passes of an activation like the exact GELU stay in cache. rows=None: at once. Where
    IN_PLACE has a version of fn for x's dtype (NumPy only), that version does the work."""
    into = IN_PLACE.get((fn, str(x.dtype))) if on_numpy(array_namespace(x)) else None
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
