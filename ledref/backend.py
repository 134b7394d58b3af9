"""Where arrays live. The model code never asks which backend it runs on; this module is the one place
that knows the backends by name and moves arrays between NumPy (where checkpoints are read) and them."""

import importlib
import os
import threading
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj

from .errors import InputError, LedrefError

BACKENDS = {"numpy": "array_api_compat.numpy", "array_api_strict": "array_api_strict",
            "cupy": "array_api_compat.cupy"}


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
            "cupy": "cupy"}.get(name, name)


def attention_chunk(xp, w, heads):
    """(query rows, heads) the band attention takes at a time: on the CPU few enough that one chunk's
    scores ((rows + 2w) keys per row) stay in cache, on a GPU enough to fill it."""
    if namespace_name(xp) == "cupy":
        return 4096, heads
    return min(128, max(16, w)), 1


_pool = _blas = None


def parallel_map(xp, fn, items):
    """[fn(item) for item in items]. On NumPy, whose elementwise work runs on one core, the items are
    shared among threads, one per core, with BLAS held to one thread meanwhile (it would otherwise start
    its own threads on the same cores). fn must only write disjoint slices of shared arrays."""
    global _pool
    items = list(items)
    cores = os.cpu_count() or 1
    if namespace_name(xp) != "numpy" or len(items) < 2 or cores < 2:
        return [fn(item) for item in items]
    global _blas
    if _pool is None:
        from threadpoolctl import ThreadpoolController
        _pool = ThreadPoolExecutor(max_workers=cores, thread_name_prefix="ledref")
        _blas = ThreadpoolController()  # finds the BLAS libraries once (threadpool_limits does it every call)
    with _blas.limit(limits=1, user_api="blas"):
        return list(_pool.map(fn, items))


def row_chunk(xp):
    """Positions per chunk of position-wise work (feed-forward, layer norms): on the CPU its temporaries
    (rows x ffn dim) stay small and are reused instead of page-faulted anew; a GPU takes all at once."""
    return None if namespace_name(xp) == "cupy" else 512


@contextmanager
def small_pages(xp):
    """Within the block, NumPy gives its large new arrays no transparent-hugepage advice (it does by
    default). With the kernel's THP defrag set to `madvise`, as on many servers, a page fault under that
    advice may compact memory first: measured here, fresh 25 MB arrays took 3 times longer to fault in and
    the 16k-token encoder 10 % longer. Results do not change. LEDREF_HUGEPAGES=1 keeps NumPy's setting;
    other backends are untouched."""
    setter = getattr(getattr(np, "_core", None), "multiarray", None)
    setter = getattr(setter, "_set_madvise_hugepage", None)
    if namespace_name(xp) != "numpy" or setter is None or os.environ.get("LEDREF_HUGEPAGES") == "1":
        yield
        return
    previous = setter(False)
    try:
        yield
    finally:
        setter(previous)


class Workspace:
    """Arrays, and values derived from the inputs, that the layers of one forward pass share: each layer
    reuses the previous layer's buffers instead of allocating its own. On the CPU every fresh large array
    is paid for in page faults (about 1.3 s per GB on a small machine); on a GPU it saves the pool's work.
    Only for arrays no caller keeps: the model makes one when nothing is recorded or returned per layer."""

    def __init__(self):
        self._arrays, self._values = {}, {}

    def array(self, name, xp, shape, dtype, device):
        """An uninitialised array of this shape and dtype: the one handed out under `name` before when
        it matches (its contents are then whatever the previous user left), else a new one."""
        a = self._arrays.get(name)
        if a is None or tuple(a.shape) != tuple(shape) or a.dtype != dtype:
            a = self._arrays[name] = xp.empty(shape, dtype=dtype, device=device)
        return a

    def thread_array(self, name, xp, shape, dtype, device):
        """`array` kept apart for each thread: the buffer of the calling thread, for work that
        parallel_map shares among threads."""
        return self.array((name, threading.get_ident()), xp, shape, dtype, device)

    def value(self, key, make):
        """make(), computed the first time `key` is asked for and remembered for the rest of the pass."""
        if key not in self._values:
            self._values[key] = make()
        return self._values[key]


def elementwise_chunk(xp):
    """Positions per block of elementwise work on a row chunk (the feed-forward activation): a block of
    rows x ffn dim that fits in a core's cache on the CPU; a GPU takes the chunk at once."""
    return None if namespace_name(xp) == "cupy" else 32


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
