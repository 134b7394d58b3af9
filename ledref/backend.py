"""Where arrays live: the backends by name, and arrays moved between NumPy (where checkpoints are read) and
them. The reference never asks which backend it runs on; the fast path asks through `fast.runtime`."""

import importlib

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj

from .errors import InputError, LedrefError

BACKENDS = {"numpy": "array_api_compat.numpy", "array_api_strict": "array_api_strict",
            "cupy": "array_api_compat.cupy"}


def namespace(name):
    """The Array API namespace of a backend given by name."""
    if name not in BACKENDS:
        raise LedrefError(f"backend={name!r} is not supported; expected one of {sorted(BACKENDS)}")
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
            "cupy": "cupy"}.get(name, name)


def to_namespace(tree, xp):
    """NumPy arrays (nested in dicts and lists) -> the same tree of xp arrays."""
    if isinstance(tree, dict):
        return {k: to_namespace(v, xp) for k, v in tree.items()}
    if isinstance(tree, list):
        return [to_namespace(v, xp) for v in tree]
    return xp.asarray(tree)


def to_numpy(a):
    """Any backend's array (or a tuple/list of them, or None) -> NumPy."""
    if a is None:
        return None
    if isinstance(a, (tuple, list)):
        return type(a)(to_numpy(v) for v in a)
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    if isinstance(a, (np.ndarray, np.generic)):
        return np.asarray(a)
    from .lowp import LowArray
    if isinstance(a, LowArray):  # an emulated bfloat16 or float16 array: NumPy of that dtype
        return np.asarray(a)
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
