"""The band implementation never builds an L x L array: its peak allocation, traced by tracemalloc
(NumPy reports its buffers to it), stays far below one L x L matrix."""

import tracemalloc

import numpy as np

from ledref.attention import band_self_attention, dense_self_attention, global_slots

PROJECTIONS = ("query", "key", "value", "query_global", "key_global", "value_global")


def peak_bytes(fn, *args, **kwargs):
    tracemalloc.start()
    try:
        fn(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_band_memory_is_linear_in_length():
    rng = np.random.default_rng(0)
    length, dim, heads, w = 4096, 8, 2, 4
    weights = {name: {"weight": rng.normal(size=(dim, dim)), "bias": rng.normal(size=dim)} for name in PROJECTIONS}
    h = rng.normal(size=(1, length, dim))
    mask = np.ones((1, length), dtype=np.int64)
    mask[0, [0, 2000]] = 2
    slots = global_slots(mask)
    one_square = length * length * 8  # one float64 L x L matrix: 134 MB
    band = peak_bytes(band_self_attention, h, mask, slots, w, heads, output_attentions=True, **weights)
    assert band < one_square / 20, band
    # the dense reference, on a quarter of the length, does allocate L x L (the check can fail)
    quarter = length // 4
    dense = peak_bytes(dense_self_attention, h[:, :quarter], mask[:, :quarter], global_slots(mask[:, :quarter]),
                       w, heads, **weights)
    assert dense > quarter * quarter * 8
