"""Linear, layer norm, softmax and the activations, in Array API operations only."""

import math

from array_api_compat import array_namespace


def linear(x, weight, bias):
    """x W^T + b, with W as the checkpoint stores it: (out, in).   [..., in] -> [..., out]"""
    return x @ array_namespace(x).matrix_transpose(weight) + bias


def layer_norm(x, weight, bias, eps=1e-5):
    """Normalise the last axis (biased variance, as torch), then scale and shift."""
    xp = array_namespace(x)
    mean = xp.mean(x, axis=-1, keepdims=True)
    var = xp.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return (x - mean) / xp.sqrt(var + eps) * weight + bias


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along `axis`; the maximum is subtracted first so that exp stays finite."""
    xp = array_namespace(x)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def finfo_min(x):
    """The most negative finite value of x's dtype: transformers' mask value."""
    return array_namespace(x).finfo(x.dtype).min


# erfc(z) = t exp(-z^2 + P(u)) for z >= 0, with t = 1 / (1 + z/2) and P a Chebyshev series in u = 2t - 1.
# Coefficients fitted by scripts/fit_erfc.py; |error| < 5e-16 in float64.
ERFC_CHEBYSHEV = (
    -0.6513268598908547, 0.6419697923564902, 0.019476473204185836, -0.009561514786808632,
    -0.0009465953444820369, 0.00036683949785276145, 4.252332480690777e-05, -2.0278578112534242e-05,
    -1.6242900046470256e-06, 1.3036558355805232e-06, 1.5626441722066142e-08, -8.523809591492654e-08,
    6.5290544390988515e-09, 5.059343495551469e-09, -9.91364156493033e-10, -2.273651222931836e-10,
    9.646791102015527e-11, 2.3940380830391146e-12, -6.886027526497553e-12, 8.944879273090725e-13,
    3.130921399342958e-13, -1.1270822361367252e-13, 3.810905255189232e-16, 7.106097613609237e-15,
    -1.5230282014571041e-15, -9.457494571291254e-17, 1.210237189224273e-16, -2.816663087746774e-17,
)


def erfc(x):
    """The complementary error function (the Array API has no erf): the series above for `|x|`, and
    erfc(-z) = 2 - erfc(z) for negative x."""
    xp = array_namespace(x)
    z = xp.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    u = 2.0 * t - 1.0
    b1, b2 = xp.zeros_like(u), xp.zeros_like(u)  # Clenshaw's recurrence for sum_k c_k T_k(u)
    for c in ERFC_CHEBYSHEV[:0:-1]:
        b1, b2 = 2.0 * u * b1 - b2 + c, b1
    r = t * xp.exp((u * b1 - b2 + ERFC_CHEBYSHEV[0]) - z * z)
    return xp.where(x < 0, 2.0 - r, r)


def gelu(x):
    """The exact GELU, x Phi(x) = x erfc(-x / sqrt 2) / 2."""
    return 0.5 * x * erfc(-x / math.sqrt(2.0))


def gelu_tanh(x):
    """The tanh approximation of GELU (transformers' gelu_new and gelu_pytorch_tanh)."""
    xp = array_namespace(x)
    return 0.5 * x * (1.0 + xp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def gelu_fast(x):
    """transformers' gelu_fast: the tanh approximation with its constants written out."""
    xp = array_namespace(x)
    return 0.5 * x * (1.0 + xp.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def sigmoid(x):
    """1 / (1 + exp(-x)), written with tanh so that no exp overflows."""
    return 0.5 * (1.0 + array_namespace(x).tanh(0.5 * x))


def relu(x):
    """max(x, 0)."""
    return array_namespace(x).clip(x, min=0.0)


def mish(x):
    """x tanh(softplus(x)), softplus(x) = log(1 + exp(x)) written as logaddexp(0, x)."""
    xp = array_namespace(x)
    return x * xp.tanh(xp.logaddexp(xp.zeros_like(x), x))


ACTIVATIONS = {  # by config.activation_function, as transformers' ACT2FN names them
    "gelu": gelu, "gelu_python": gelu, "gelu_new": gelu_tanh, "gelu_pytorch_tanh": gelu_tanh,
    "gelu_fast": gelu_fast, "quick_gelu": lambda x: x * sigmoid(1.702 * x), "relu": relu,
    "relu6": lambda x: array_namespace(x).clip(x, 0.0, 6.0), "silu": lambda x: x * sigmoid(x),
    "swish": lambda x: x * sigmoid(x), "sigmoid": sigmoid, "tanh": lambda x: array_namespace(x).tanh(x),
    "mish": mish, "linear": lambda x: x,
}
