"""Turn the arguments of a forward call into arrays of the model's backend, or say clearly what is wrong."""

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj

from .checks import is_int, short
from .errors import InputError


def to_array(value, xp, name):
    """An xp array as it is; nested lists, NumPy arrays (or arrays of another namespace, read through NumPy)
    as an xp array (ragged lists are an error)."""
    if is_array_api_obj(value):
        from .backend import namespace_name, to_numpy
        if namespace_name(array_namespace(value)) == namespace_name(xp):
            return value
        value = to_numpy(value)
    elif isinstance(value, (str, bytes, dict, set)):
        raise InputError(f"{name} is a {type(value).__name__}; expected an array (or nested lists) of numbers")
    try:
        a = np.asarray(value)
    except (ValueError, TypeError, OverflowError) as e:  # ragged nested lists, odd objects, huge ints
        raise InputError(f"{name} is not a rectangular array of numbers: {' '.join(str(e).split())}") from None
    if a.dtype.kind not in "biuf":
        raise InputError(f"{name} is not a rectangular array of numbers (NumPy reads it as {a.dtype})")
    return xp.asarray(a)


def token_ids(value, xp, name, vocab_size, batch=None, ignore_index=None):
    """A [B, T] integer array with every id in [0, vocab_size) (or equal to ignore_index)."""
    a = to_array(value, xp, name)
    if a.ndim != 2:
        raise InputError(f"{name} has shape {tuple(a.shape)}; expected (batch, length)")
    if not xp.isdtype(a.dtype, "integral"):
        raise InputError(f"{name} has dtype {a.dtype}; expected integer token ids")
    if a.shape[0] == 0:
        raise InputError(f"{name} has batch size 0; expected at least one row")
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


def indices(value, name, count, what):
    """A sequence of integer indices into `count` things (negative ones count from the end), checked ->
    a tuple of indices in [0, count), in the given order."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise InputError(f"{name}={short(value)}; expected a sequence of {what} indices")
    found = []
    for v in (np.asarray(value).tolist() if hasattr(value, "shape") else value):
        if not is_int(v):
            raise InputError(f"{name} holds {short(v)}; expected integer {what} indices")
        if not -count <= v < count:
            raise InputError(f"{name} holds {what} {v}; there are {count} {what}s, 0..{count - 1} (or -{count}..-1 "
                             f"from the end)")
        found.append(int(v) % count)
    if not found:
        raise InputError(f"{name} is empty; expected at least one {what} index")
    if len(set(found)) < len(found):
        article = "an" if what[0] in "aeiou" else "a"
        raise InputError(f"{name}={short(value)} names {article} {what} twice; expected each at most once")
    return tuple(found)


def attention_selection(output_attentions, attention_heads, n_layers, n_heads):
    """output_attentions (True, False, or a sequence of encoder layer indices) and attention_heads (None or
    a sequence of head indices), checked -> (False | True | the sorted tuple of layers, None | the tuple of
    heads in the given order). Negative indices count from the end."""
    if isinstance(output_attentions, (bool, np.bool_)):
        layers = bool(output_attentions)
    elif output_attentions is None:
        layers = False
    elif isinstance(output_attentions, (str, bytes)) or not hasattr(output_attentions, "__iter__"):
        raise InputError(f"output_attentions={short(output_attentions)}; expected True or False, or a sequence of "
                         f"encoder layer indices")
    else:
        layers = tuple(sorted(indices(output_attentions, "output_attentions", n_layers, "encoder layer")))
    if attention_heads is None:
        return layers, None
    if layers is False:
        raise InputError(f"attention_heads={short(attention_heads)} but output_attentions is False; expected "
                         f"output_attentions=True or a sequence of encoder layers to take the heads from")
    return layers, indices(attention_heads, "attention_heads", n_heads, "head")
