"""Where the fast path's time and memory go: threads, buffers shared by the layers, chunk sizes, and
NumPy's hugepage advice. Nothing here changes a number; it changes where and when the numbers are made."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from ..backend import namespace_name


def on_numpy(xp):
    """Whether xp is NumPy, whose `out=` arguments, free host reads and single-core elementwise work the
    fast path's NumPy-only tricks rely on."""
    return namespace_name(xp) == "numpy"


def attention_chunk(xp, w, heads):
    """(query rows, heads) the band kernel takes at a time: on the CPU few enough that one chunk's scores
    ((rows + 2w) keys per row) stay in cache, on a GPU enough to fill it."""
    if namespace_name(xp) == "cupy":
        return 4096, heads
    return min(128, max(16, w)), 1


def row_chunk(xp):
    """Positions per chunk of position-wise work (feed-forward, layer norms): on the CPU its temporaries
    (rows x ffn dim) stay small and are reused instead of page-faulted anew; a GPU takes all at once."""
    return None if namespace_name(xp) == "cupy" else 512


def elementwise_chunk(xp):
    """Positions per block of elementwise work on a row chunk (the feed-forward activation): a block of
    rows x ffn dim that fits in a core's cache on the CPU; a GPU takes the chunk at once."""
    return None if namespace_name(xp) == "cupy" else 32


_pool = _blas = None


def parallel_map(xp, fn, items):
    """[fn(item) for item in items]. On NumPy, whose elementwise work runs on one core, the items are
    shared among threads, one per core, with BLAS held to one thread meanwhile (it would otherwise start
    its own threads on the same cores). fn must only write disjoint slices of shared arrays."""
    global _pool, _blas
    items = list(items)
    cores = os.cpu_count() or 1
    if not on_numpy(xp) or len(items) < 2 or cores < 2:
        return [fn(item) for item in items]
    if _pool is None:
        from threadpoolctl import ThreadpoolController
        _pool = ThreadPoolExecutor(max_workers=cores, thread_name_prefix="ledref")
        _blas = ThreadpoolController()  # finds the BLAS libraries once (threadpool_limits does it every call)
    with _blas.limit(limits=1, user_api="blas"):
        return list(_pool.map(fn, items))


@contextmanager
def small_pages(xp):
    """Within the block, NumPy gives its large new arrays no transparent-hugepage advice (it does by
    default). With the kernel's THP defrag set to `madvise`, as on many servers, a page fault under that
    advice may compact memory first: measured here, fresh 25 MB arrays took 3 times longer to fault in and
    the 16k-token encoder 10 % longer. Results do not change. LEDREF_HUGEPAGES=1 keeps NumPy's setting;
    other backends are untouched."""
    setter = getattr(getattr(np, "_core", None), "multiarray", None)
    setter = getattr(setter, "_set_madvise_hugepage", None)
    if not on_numpy(xp) or setter is None or os.environ.get("LEDREF_HUGEPAGES") == "1":
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
    Only for arrays no caller keeps."""

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
