"""The parts of the fast path (ledref.fast), each against the reference function it replaces or against an
independent reference (math.erfc, torch, NumPy's own operations on fresh arrays). The whole fast path
against the whole reference is tests/test_fast_equals_reference.py."""

import math
import tracemalloc

import numpy as np
import pytest

import ledref
from conftest import require, to_backend
from ledref.backend import namespace, to_namespace
from ledref.fast import attention as fast_attention
from ledref.fast.functional import IN_PLACE, by_rows, exp_inplace, in_blocks, layer_norm, linear, matmul_into
from ledref.fast.runtime import Workspace, attention_chunk, small_pages
from ledref.reference import attention as reference_attention
from ledref.reference.functional import gelu

PROJECTIONS = ("query", "key", "value", "query_global", "key_global", "value_global")
TOL = 1e-10


def random_layer(rng, dim, scale=1.0):
    return {name: {"weight": rng.normal(size=(dim, dim)) * scale, "bias": rng.normal(size=dim) * scale}
            for name in PROJECTIONS}


def assert_equal_to_reference(fast, reference, tol=TOL):
    for name, a, r in zip(("output", "local_probs", "global_probs"), fast, reference, strict=True):
        if a is None or r is None:
            assert a is None and r is None, name
            continue
        a, r = ledref.to_numpy(a), ledref.to_numpy(r)
        assert a.shape == r.shape, (name, a.shape, r.shape)
        assert not np.isnan(a).any(), name
        assert np.max(np.abs(a - r), initial=0.0) <= tol, (name, np.max(np.abs(a - r)))


# ------------------------------------------------------------------ functional: products, in place, in blocks

@pytest.mark.parametrize("inner", [7, 1])
@pytest.mark.parametrize("into", ["contiguous", "strided", "none"])
def test_matmul_into_equals_standard_matmul(into, inner, backend):
    """The product into a given array (NumPy's out=, also into a strided view) equals the standard a @ b,
    also with an inner dimension of 1 (an outer product, which NumPy computes by multiplying)."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 5, inner)), rng.standard_normal((2, inner, 4))
    expected = a @ b  # NumPy's own product of fresh arrays
    xa, xb = to_backend(a, backend), to_backend(b, backend)
    xp = namespace(backend)
    out = {"contiguous": xp.zeros((2, 5, 4), dtype=xa.dtype), "strided": xp.zeros((2, 5, 9), dtype=xa.dtype)[..., 2:6],
           "none": None}[into]
    got = ledref.to_numpy(matmul_into(xa, xb, out))
    if backend in ("numpy", "array_api_strict"):  # NumPy underneath: the same operations, to the bit
        np.testing.assert_array_equal(got, expected)
    else:  # another engine's own product (its BLAS sums in its own order)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


def test_linear_and_layer_norm_in_place_against_torch(backend):
    torch = require("torch")
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(3, 5, 16)) * 4 + 1, rng.normal(size=16), rng.normal(size=16)
    expected = torch.nn.functional.layer_norm(torch.from_numpy(x), (16,), torch.from_numpy(w),
                                              torch.from_numpy(b), eps=1e-5).numpy()
    own = to_backend(x.copy(), backend)
    got = layer_norm(own, *(to_backend(a, backend) for a in (w, b)))
    np.testing.assert_allclose(ledref.to_numpy(got), expected, rtol=1e-12, atol=1e-12)
    weight = rng.normal(size=(7, 16))
    expected = torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(b[:7]))
    xp = namespace(backend)
    into = xp.zeros((3, 5, 7), dtype=xp.float64)
    got = linear(to_backend(x, backend), to_backend(weight, backend), to_backend(b[:7], backend), out=into)
    np.testing.assert_allclose(ledref.to_numpy(got), expected.numpy(), rtol=1e-12, atol=1e-12)


def test_exp_inplace_equals_standard_exp(backend):
    x = np.linspace(-80, 80, 3000).reshape(3, 1000, 1)
    expected = np.exp(x)  # NumPy's own exp, on a copy
    got = ledref.to_numpy(exp_inplace(to_backend(x.copy(), backend)))
    if backend in ("numpy", "array_api_strict"):  # NumPy underneath: the same operations, to the bit
        np.testing.assert_array_equal(got, expected)
    else:  # another engine's own exp
        np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize("rows", [1, 7, 32, 1000])
def test_in_blocks_and_by_rows_equal_one_pass(rows, backend):
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((2, 45, 6))
    whole = ledref.to_numpy(gelu(to_backend(x, backend)))
    got = ledref.to_numpy(in_blocks(gelu, to_backend(x.copy(), backend), rows=rows))
    np.testing.assert_array_equal(got, whole)
    got = ledref.to_numpy(by_rows(lambda a, b: gelu(a) * b, to_backend(x, backend), to_backend(x, backend),
                                  rows=rows))
    np.testing.assert_array_equal(got, whole * x)


@pytest.mark.parametrize("rows", [None, 4, 7, 100])
def test_by_rows_into_a_given_array(rows, backend):
    x = np.random.default_rng(4).standard_normal((2, 9, 3))
    xp = namespace(backend)
    out = xp.zeros((2, 9, 3), dtype=xp.float64)
    got = by_rows(lambda a: a * 2.0 + 1.0, to_backend(x, backend), rows=rows, out=out)
    assert got is out
    np.testing.assert_array_equal(ledref.to_numpy(out), x * 2.0 + 1.0)


def test_gelu_float32_in_place_against_math_and_the_reference():
    """NumPy's float32 GELU written over its input (IN_PLACE, what in_blocks runs): x erfc(-x/sqrt 2)/2 by
    math.erfc in float64 to float32 rounding, relative precision kept in the negative tail; and the
    reference gelu to float32 rounding."""
    x = np.concatenate([np.linspace(-14, 14, 20001), [0.0, 1e-30, -1e-30, 40.0, -40.0, -0.0]]).astype(np.float32)
    expected = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x.astype(np.float64)])
    got = in_blocks(gelu, x.copy().reshape(1, -1, 3), rows=64).reshape(-1).astype(np.float64)  # a shorter last block
    assert np.max(np.abs(got - expected) / np.maximum(np.abs(x), 1.0)) <= 2e-7
    normal = np.abs(expected) > np.finfo(np.float32).tiny * 1e3
    assert np.max(np.abs(got - expected)[normal] / np.abs(expected[normal])) <= 3e-5
    into = IN_PLACE[(gelu, "float32")]
    block = (np.random.default_rng(5).standard_normal((3, 40, 7)) * 4).astype(np.float32)
    own = block.copy()
    assert into(own, into.scratch(own)) is own
    np.testing.assert_allclose(own, gelu(block), rtol=1e-6, atol=2e-7)


# ------------------------------------------------------------------ runtime: buffers, pages

def test_workspace_hands_back_the_same_array_while_it_fits():
    xp = namespace("numpy")
    ws = Workspace()
    a = ws.array("x", xp, (3, 4), xp.float32, "cpu")
    assert ws.array("x", xp, (3, 4), xp.float32, "cpu") is a
    assert ws.array("y", xp, (3, 4), xp.float32, "cpu") is not a
    assert ws.array("x", xp, (3, 5), xp.float32, "cpu").shape == (3, 5)
    assert ws.array("x", xp, (3, 5), xp.float64, "cpu").dtype == xp.float64
    calls = []
    assert ws.value("k", lambda: calls.append(1) or 7) == 7 and ws.value("k", lambda: calls.append(1) or 8) == 7
    assert calls == [1]


def test_small_pages_is_scoped_and_can_be_kept_off(monkeypatch):
    """The hugepage advice is off only inside the block, and LEDREF_HUGEPAGES=1 leaves NumPy's own."""
    xp = namespace("numpy")
    setter = np._core.multiarray._set_madvise_hugepage
    before = setter(True)
    try:
        with small_pages(xp):
            assert setter(False) is False  # off inside
        assert setter(True) is True  # restored after
        monkeypatch.setenv("LEDREF_HUGEPAGES", "1")
        with small_pages(xp):
            assert setter(True) is True
    finally:
        setter(before)


# ------------------------------------------------------------------ attention: the band kernel's tricks

def layer_against_reference(h, mask, w, heads, weights):
    """fast.attention.self_attention and reference.attention.self_attention (dense local rule)."""
    slots = reference_attention.global_slots(mask)
    fast = fast_attention.self_attention(h, mask, slots, w, heads, output_attentions=True, **weights)
    reference = reference_attention.self_attention(h, mask, slots, w, heads, implementation="dense", **weights)
    return fast, reference


@pytest.mark.parametrize("scale, large", [(0.05, False), (3.0, True)])
@pytest.mark.parametrize("n_global", [0, 2])
def test_softmax_with_and_without_the_max_subtracted(scale, large, n_global):
    """NumPy's band kernel skips the row maximum where |q| |k| bounds every score within UNSHIFTED_BOUND.
    Both sides of the bound equal the reference, including pad rows whose whole window is pad (whose
    unshifted sum is 0) and rows that reach only global keys."""
    rng = np.random.default_rng(n_global)
    heads, dim, length, w = 2, 8, 40, 3
    weights = random_layer(rng, dim, scale)
    h = rng.normal(size=(2, length, dim))
    mask = np.ones((2, length), dtype=np.int64)
    mask[1, 20:] = 0  # pad rows 24.. see only pad keys
    mask[:, rng.choice(20, size=n_global, replace=False)] = 2
    q, k, _ = fast_attention.projections(h, heads, weights["query"], weights["key"], weights["value"])
    q_len, k_len, _ = fast_attention.norms_for_bounds(q, k, None)
    bound = fast_attention.UNSHIFTED_BOUND
    assert (float(q_len[0].max()) * float(k_len[0].max()) > bound) == large, bound
    assert_equal_to_reference(*layer_against_reference(h, mask, w, heads, weights))


@pytest.mark.parametrize("w", [20, 64])
def test_chunks_masked_by_their_triangles_equal_the_reference(w):
    """On NumPy, a chunk whose keys are all local is masked by the two triangles outside its windows alone
    (band_masks), a chunk that meets pad or global keys by its whole mask. A long input with both kinds
    (pads inside and at the end, globals) against the reference (float64)."""
    rng = np.random.default_rng(w)
    heads, dim, length = 2, 8, 7 * w + 13
    weights = random_layer(rng, dim)
    h = rng.normal(size=(2, length, dim))
    mask = np.ones((2, length), dtype=np.int64)
    mask[0, [3, length // 2]] = 2
    mask[1, 2 * w:2 * w + 5] = 0
    mask[1, length - w // 2:] = 0
    xp = namespace("numpy")
    rows, _ = attention_chunk(xp, w, heads)
    parts = {len(chunk) for chunks in fast_attention.band_masks(xp, mask, rows, w, xp.float64) for chunk in chunks}
    assert parts == {1, 2}  # whole masks, and pairs of triangles
    assert_equal_to_reference(*layer_against_reference(h, mask, w, heads, weights))


def chunk_bound(norms, s, e, lo, hi):
    """The softmax bound of one chunk from its own rows: whether queries s..e against keys lo..hi and the
    global keys might score beyond UNSHIFTED_BOUND (the longest query times the longest key)."""
    q_len, k_len, global_len = norms
    longest_key = max(float(k_len[:, lo:hi].max()), float(global_len.max()))
    return float(q_len[:, s:e].max()) * longest_key > fast_attention.UNSHIFTED_BOUND


@pytest.mark.parametrize("rows, w, length", [(16, 32, 200), (16, 20, 201), (128, 512, 2048), (7, 3, 50)])
def test_chunks_to_shift_agree_with_the_bound_of_each_chunk(rows, w, length):
    """The kernel's per-chunk decision (maxima by blocks of `rows`) against the bound of each chunk's own
    queries and keys: equal where w is a multiple of `rows`, and never unshifted where the chunk's own
    bound says shift."""
    rng = np.random.default_rng(length)
    heads = 3
    for _ in range(20):
        scale = rng.choice([0.5, 2.0, 6.0])  # products of norms around the bound of 30
        norms = tuple(np.abs(rng.normal(size=shape)) * scale * np.where(rng.random(shape) < 0.05, 4.0, 1.0)
                      for shape in ((heads, length), (heads, length), (heads, 1)))
        got = fast_attention.chunks_to_shift(norms, rows, w, length)
        own = [chunk_bound(norms, s, min(s + rows, length), max(s - w, 0), min(s + rows + w, length))
               for s in range(0, length, rows)]
        assert len(got) == len(own)
        assert all(g or not o for g, o in zip(got, own, strict=True))
        if w % rows == 0:
            assert got == own


@pytest.mark.parametrize("globals_per_row", [(1, 1), (2, 0), (3, 1)])
def test_factored_global_attention_equals_the_reference(globals_per_row, backend):
    """The global rows with the projections folded onto the queries and the probabilities equal
    reference.attention.global_attention on projected k_global and v_global (float64), unused slots and
    pad keys included."""
    from ledref.reference.attention import global_attention, global_slots, split_heads
    from ledref.reference.functional import linear as reference_linear
    rng = np.random.default_rng(sum(globals_per_row))
    b, length, dim, heads = 2, 13, 12, 3
    h = rng.normal(size=(b, length, dim))
    mask = np.ones((b, length), dtype=np.int64)
    mask[1, 10:] = 0
    for row, count in enumerate(globals_per_row):
        mask[row, rng.choice(9, size=count, replace=False)] = 2
    key_global, value_global = ({"weight": rng.normal(size=(dim, dim)), "bias": rng.normal(size=dim)}
                                for _ in range(2))
    xb = lambda a: to_backend(a, backend)  # noqa: E731
    slots = global_slots(xb(mask))
    q_global = xb(rng.normal(size=(b, heads, slots[2], dim // heads)))
    kg, vg = ({k: xb(v) for k, v in p.items()} for p in (key_global, value_global))
    k = split_heads(reference_linear(xb(h), **kg), heads)
    v = split_heads(reference_linear(xb(h), **vg), heads)
    expected_out, expected_probs = global_attention(q_global, k, v, xb(mask), slots)
    out, probs = fast_attention.factored_global_attention(xb(h), q_global, kg, vg, xb(mask), slots)
    np.testing.assert_allclose(ledref.to_numpy(probs), ledref.to_numpy(expected_probs), rtol=0, atol=1e-13)
    np.testing.assert_allclose(ledref.to_numpy(out), ledref.to_numpy(expected_out), rtol=0, atol=1e-12)


@pytest.mark.parametrize("d", [4, 6])  # sqrt(4) = 2 is folded into the query weights, sqrt(6) is not
def test_fused_projections_equal_three_linears(d, backend):
    from ledref.reference.attention import split_heads
    from ledref.reference.functional import linear as reference_linear
    rng = np.random.default_rng(d)
    heads, dim = 3, 3 * d
    weights = {k: {n: to_backend(a, backend) for n, a in v.items()} for k, v in random_layer(rng, dim).items()}
    h = to_backend(rng.normal(size=(2, 11, dim)), backend)
    q, k, v = fast_attention.projections(h, heads, weights["query"], weights["key"], weights["value"])
    expected = [split_heads(reference_linear(h, **weights[name]), heads) for name in ("query", "key", "value")]
    expected[0] = expected[0] / math.sqrt(d)
    for got, want in zip((q, k, v), expected, strict=True):
        np.testing.assert_allclose(ledref.to_numpy(got), ledref.to_numpy(want), rtol=1e-13, atol=1e-13)


def peak_bytes(fn, *args, **kwargs):
    tracemalloc.start()
    try:
        fn(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_band_memory_is_linear_in_length():
    """The fast band never builds an L x L array: its peak allocation, traced by tracemalloc (NumPy reports
    its buffers to it), stays far below one L x L matrix; the reference's dense rule, on a quarter of the
    length, does allocate L x L (so the measurement can fail)."""
    rng = np.random.default_rng(0)
    length, dim, heads, w = 4096, 8, 2, 4
    weights = to_namespace(random_layer(rng, dim), namespace("numpy"))
    h = rng.normal(size=(1, length, dim))
    mask = np.ones((1, length), dtype=np.int64)
    mask[0, [0, 2000]] = 2
    slots = reference_attention.global_slots(mask)
    one_square = length * length * 8  # one float64 L x L matrix: 134 MB
    band = peak_bytes(fast_attention.self_attention, h, mask, slots, w, heads, output_attentions=True, **weights)
    assert band < one_square / 20, band
    quarter = length // 4
    dense = peak_bytes(reference_attention.self_attention, h[:, :quarter], mask[:, :quarter],
                       reference_attention.global_slots(mask[:, :quarter]), w, heads, implementation="dense", **weights)
    assert dense > quarter * quarter * 8


@pytest.mark.parametrize("heads", [None, [1]])
def test_band_probabilities_are_made_once(heads):
    """With the probabilities asked for, the kernel allocates little more than the returned array itself:
    each kept head's band is cut from the chunks' weights straight into it (no list of chunks joined, no
    scaled copy, no second layout). Asking for one head of two costs half."""
    rng = np.random.default_rng(1)
    length, dim, n_heads, w = 4096, 8, 2, 64
    weights = to_namespace(random_layer(rng, dim), namespace("numpy"))
    h = rng.normal(size=(1, length, dim))
    mask = np.ones((1, length), dtype=np.int64)
    mask[0, [0, 2000]] = 2
    slots = reference_attention.global_slots(mask)
    without = peak_bytes(fast_attention.self_attention, h, mask, slots, w, n_heads, **weights)
    with_probs = peak_bytes(fast_attention.self_attention, h, mask, slots, w, n_heads, output_attentions=True,
                            attention_heads=heads, **weights)
    kept = n_heads if heads is None else len(heads)
    probs = kept * length * (2 + 2 * w + 1) * 8  # [1, kept, L, x + 2w + 1] float64
    assert with_probs - without < 1.15 * probs, (with_probs - without) / probs


@pytest.mark.parametrize("rows", [7, 4096])
def test_kept_heads_taken_from_a_group_of_heads(rows, backend, monkeypatch):
    """On a GPU the kernel takes every head of a row at once, in chunks of 4,096 queries: the kept heads
    are then a selection within the group. Forced here on every backend (chunks of 7 rows, or all at once),
    the kept heads' probabilities, in the order asked for, equal the reference's."""
    monkeypatch.setattr(fast_attention, "attention_chunk", lambda xp, w, heads: (rows, heads))
    rng = np.random.default_rng(rows)
    heads, dim, length, w = 3, 9, 45, 5
    weights = to_namespace(random_layer(rng, dim), namespace(backend))
    mask = np.ones((2, length), dtype=np.int64)
    mask[0, [0, 30]] = 2
    mask[1, 33:] = 0
    h, mask = to_backend(rng.normal(size=(2, length, dim)), backend), to_backend(mask, backend)
    slots = reference_attention.global_slots(mask)
    fast = fast_attention.self_attention(h, mask, slots, w, heads, output_attentions=True, attention_heads=[2, 0],
                                         **weights)
    out, local, glob = reference_attention.self_attention(h, mask, slots, w, heads, implementation="dense", **weights)
    kept = [ledref.to_numpy(a)[:, [2, 0]] for a in (local, glob)]
    assert_equal_to_reference(fast, (out, *kept))
