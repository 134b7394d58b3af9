"""Where arrays live: the backends by name, and arrays moved between NumPy (where checkpoints are read) and
them. The reference never asks which backend it runs on; the fast path asks through `fast.runtime`."""

import importlib
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device, is_array_api_obj

from .errors import InputError, LedrefError

# names for annotations: the Array API has no common array class, so these say what is meant and check nothing
Array = Any  # an array of any Array API library
ArrayLike = Any  # an Array, a NumPy array, or nested lists of numbers

BACKENDS = {"numpy": "array_api_compat.numpy", "array_api_strict": "array_api_strict",
            "cupy": "array_api_compat.cupy", "torch": "array_api_compat.torch"}


def namespace(name):
    """The Array API namespace of a backend given by name."""
    if not isinstance(name, str) or name not in BACKENDS:
        raise InputError(f"backend={name!r} is not supported; expected one of {sorted(BACKENDS)} (or None)")
    try:
        xp = importlib.import_module(BACKENDS[name])
    except ImportError as e:
        raise LedrefError(f"backend={name!r} needs a package that is not installed ({e}); "
                          f"for cupy: pip install 'ledref[gpu]'") from None
    if name == "cupy":
        import cupy
        try:
            gpus = cupy.cuda.runtime.getDeviceCount()
        except cupy.cuda.runtime.CUDARuntimeError as e:
            raise LedrefError(f"backend='cupy' needs a CUDA GPU, and CUDA reports none usable ({e})") from None
        if gpus == 0:
            raise LedrefError("backend='cupy' needs a CUDA GPU, and CUDA reports none")
    return xp


def namespace_name(xp):
    """The backend name of an Array API namespace: "numpy", "cupy", or the namespace's module name."""
    name = xp.__name__
    return {"array_api_compat.numpy": "numpy", "numpy": "numpy", "array_api_compat.cupy": "cupy",
            "array_api_compat.torch": "torch", "torch": "torch",
            "cupy": "cupy"}.get(name, name)


def to_namespace(tree, xp, device=None):
    """NumPy arrays (nested in dicts and lists) -> the same tree of xp arrays (on `device`, if given)."""
    if isinstance(tree, dict):
        return {k: to_namespace(v, xp, device) for k, v in tree.items()}
    if isinstance(tree, list):
        return [to_namespace(v, xp, device) for v in tree]
    return xp.asarray(tree) if device is None else xp.asarray(tree, device=device)


def to_numpy(a):
    """Any backend's array (or a tuple/list of them, or None) -> NumPy."""
    if a is None:
        return None
    if isinstance(a, (tuple, list)):
        return type(a)(to_numpy(v) for v in a)
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    if type(a).__module__.startswith("torch"):  # on any device, with or without a gradient
        a = a.detach().cpu()
        if str(a.dtype) == "torch.bfloat16":  # NumPy has no bfloat16 of torch's: ml_dtypes', bit for bit
            import ml_dtypes
            import torch
            return a.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        return a.numpy()
    if isinstance(a, (np.ndarray, np.generic)):
        return np.asarray(a)
    from .lowp import LowArray
    if isinstance(a, LowArray):  # an emulated bfloat16 or float16 array: NumPy of that dtype
        return np.asarray(a)
    if not hasattr(a, "__dlpack__"):
        raise InputError(f"to_numpy takes an array (or a tuple or list of them, or None), got a {type(a).__name__}")
    return np.from_dlpack(a)


def input_namespace(values, default):
    """The namespace of the array arguments of a call (all must share one), else `default`."""
    found = {}
    for name, value in values.items():
        if value is not None and is_array_api_obj(value):
            found[name] = array_namespace(value)
    names = {namespace_name(xp) for xp in found.values()}
    if len(names) > 1:
        detail = ", ".join(f"{k}: {namespace_name(xp)}" for k, xp in found.items())
        raise InputError(f"arguments come from different array backends ({detail}); expected one backend")
    return next(iter(found.values())) if found else default


def input_device(values):
    """The device of the first array argument of a call, None when every argument is a list or None: the
    weights are placed where the inputs are."""
    for value in values.values():
        if value is not None and is_array_api_obj(value):
            return device(value)
    return None
