"""Turn the arguments of a forward call into arrays of the model's backend, or say clearly what is wrong."""

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj

from .errors import InputError


def to_array(value, xp, name):
    """An xp array as it is; nested lists, NumPy arrays (or arrays of another namespace, read through NumPy)
    as an xp array (ragged lists are an error)."""
    if is_array_api_obj(value):
        from .backend import namespace_name, to_numpy
        if namespace_name(array_namespace(value)) == namespace_name(xp):
            return value
        value = to_numpy(value)
    try:
        a = np.asarray(value)
    except ValueError as e:  # ragged nested lists
        raise InputError(f"{name} is not a rectangular array: {e}") from None
    if a.dtype == object:
        raise InputError(f"{name} is not a rectangular array of numbers")
    return xp.asarray(a)


def token_ids(value, xp, name, vocab_size, batch=None, ignore_index=None):
    """A [B, T] integer array with every id in [0, vocab_size) (or equal to ignore_index)."""
    a = to_array(value, xp, name)
    if a.ndim != 2:
        raise InputError(f"{name} has shape {tuple(a.shape)}; expected (batch, length)")
    if not xp.isdtype(a.dtype, "integral"):
        raise InputError(f"{name} has dtype {a.dtype}; expected integer token ids")
    if a.shape[1] == 0:
        raise InputError(f"{name} has length 0; expected at least one token")
    if batch is not None and a.shape[0] != batch:
        raise InputError(f"{name} has batch size {a.shape[0]}; expected {batch} as input_ids")
    a = xp.astype(a, xp.int64)
    bad = (a < 0) | (a >= vocab_size)
    if ignore_index is not None:
        bad = bad & (a != ignore_index)
    if bool(xp.any(bad)):
        allowed = f"[0, {vocab_size})" + (f" or {ignore_index}" if ignore_index is not None else "")
        raise InputError(f"{name} holds ids outside {allowed}, e.g. {_first(a, bad, xp)}")
    return a


def binary_mask(value, xp, name, shape):
    """A [B, T] 0/1 mask as int64."""
    a = to_array(value, xp, name)
    if tuple(a.shape) != tuple(shape):
        raise InputError(f"{name} has shape {tuple(a.shape)}; expected {tuple(shape)}")
    if a.dtype == xp.bool:
        return xp.astype(a, xp.int64)
    bad = (a != 0) & (a != 1)
    if bool(xp.any(bad)):
        raise InputError(f"{name} holds values other than 0 and 1, e.g. {_first(a, bad, xp)}")
    return xp.astype(a, xp.int64)


def positions(value, xp, name, batch):
    """A [B] integer array (start/end positions)."""
    a = to_array(value, xp, name)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1 or a.shape[0] != batch or not xp.isdtype(a.dtype, "integral"):
        raise InputError(f"{name} has shape {tuple(a.shape)} and dtype {a.dtype}; expected ({batch},) integers")
    return xp.astype(a, xp.int64)


def _first(a, bad, xp):
    index = tuple(int(i[0]) for i in xp.nonzero(bad))
    return f"{float(a[index]):g} at index {index}"
