"""The paper's variants in the reference: dilated windows (one dilation for every head, or one per head) and
autoregressive windows. Both forms of the reference (the L x L rule, "dense", and the band, "band_matrix")
equal a dense rule written here with loops over (query, key), float64, to 1e-10, for random shapes, masks,
global sets, dilations and windows; and the band layout puts key i + r(c - w) in column c."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ledref
from conftest import to_backend
from ledref.reference.attention import global_slots, longformer_attention, take_positions

TOL = 1e-10


def rule(q, k, v, qg, kg, vg, mask, w, dilation, autoregressive):
    """The dense rule, one (query, key) pair at a time: a local query i attends to the local keys
    i + r o (o = -w..w, o <= 0 when autoregressive) and to every global key; a global query to every
    non-pad key with the global projections; pad rows are 0. Returns (out, weights [B, H, L, L])."""
    b, h, length, _ = q.shape
    weights = np.zeros((b, h, length, length))
    for bi in range(b):
        for hi in range(h):
            r = dilation[hi]
            for i in range(length):
                if mask[bi, i] == 0:
                    continue
                if mask[bi, i] == 2:
                    keys = [j for j in range(length) if mask[bi, j] != 0]
                    scores = np.array([qg[bi, hi, i] @ kg[bi, hi, j] for j in keys])
                else:
                    offsets = range(-w, 1 if autoregressive else w + 1)
                    local = [i + r * o for o in offsets if 0 <= i + r * o < length and mask[bi, i + r * o] == 1]
                    keys = sorted(set(local) | {j for j in range(length) if mask[bi, j] == 2})
                    scores = np.array([q[bi, hi, i] @ k[bi, hi, j] for j in keys])
                e = np.exp(scores - scores.max())
                weights[bi, hi, i, keys] = e / e.sum()
    out = np.zeros_like(q)
    for bi in range(b):
        for hi in range(h):
            for i in range(length):
                values = vg if mask[bi, i] == 2 else v
                out[bi, hi, i] = weights[bi, hi, i] @ values[bi, hi]
    return out, weights


@st.composite
def variant_case(draw):
    heads = draw(st.integers(1, 3))
    per_head = draw(st.booleans())
    dilation = (tuple(draw(st.integers(1, 4)) for _ in range(heads)) if per_head else draw(st.integers(1, 4)))
    return dict(b=draw(st.integers(1, 2)), heads=heads, d=draw(st.integers(1, 4)), length=draw(st.integers(1, 30)),
                w=draw(st.integers(1, 6)), dilation=dilation, autoregressive=draw(st.booleans()),
                p_global=draw(st.sampled_from([0.0, 0.1, 0.4])), p_pad=draw(st.sampled_from([0.0, 0.3])),
                seed=draw(st.integers(0, 2**32 - 1)))


def inputs(case):
    rng = np.random.default_rng(case["seed"])
    shape = (case["b"], case["heads"], case["length"], case["d"])
    mask = np.where(rng.random(shape[::2]) < case["p_pad"], 0,
                    np.where(rng.random(shape[::2]) < case["p_global"], 2, 1))
    return [rng.normal(size=shape) for _ in range(6)], mask


def run(tensors, mask, case, implementation, backend):
    q, k, v, qg, kg, vg = (to_backend(t, backend) for t in tensors)
    mask = to_backend(mask, backend)
    slots = global_slots(mask)
    q_global = take_positions(qg, slots[0], 1) if slots[2] else None
    return longformer_attention(q, k, v, q_global, kg, vg, mask, slots, case["w"], implementation,
                                dilation=case["dilation"], autoregressive=case["autoregressive"]), slots


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=variant_case())
def test_both_forms_equal_the_dense_rule(case, backend):
    tensors, mask = inputs(case)
    dilation = case["dilation"] if isinstance(case["dilation"], tuple) else (case["dilation"],) * case["heads"]
    want_out, weights = rule(*tensors, mask, case["w"], dilation, case["autoregressive"])
    w, length = case["w"], case["length"]
    for implementation in ("dense", "band_matrix"):
        (out, local_probs, global_probs), (positions, used, x) = run(tensors, mask, case, implementation, backend)
        out, local_probs, positions, used = (ledref.to_numpy(a) for a in (out, local_probs, positions, used))
        assert np.max(np.abs(out - want_out), initial=0.0) <= TOL, implementation
        # the layout: global columns first, then column x + c holds key i + r (c - w), local keys only
        assert local_probs.shape == (case["b"], case["heads"], length, x + 2 * w + 1)
        want = np.zeros_like(local_probs)
        for bi in range(case["b"]):
            for hi in range(case["heads"]):
                for i in np.flatnonzero(mask[bi] == 1):
                    for g in range(x):
                        if used[bi, g]:
                            want[bi, hi, i, g] = weights[bi, hi, i, int(positions[bi, g])]
                    for c in range(2 * w + 1):
                        j = i + dilation[hi] * (c - w)
                        if 0 <= j < length and mask[bi, j] == 1:
                            want[bi, hi, i, x + c] = weights[bi, hi, i, j]
        assert np.max(np.abs(local_probs - want), initial=0.0) <= TOL, implementation
        if case["autoregressive"]:
            assert not local_probs[..., x + w + 1:].any()
        if x:
            glob = ledref.to_numpy(global_probs)
            for bi in range(case["b"]):
                for g in range(int(used[bi].sum())):
                    row = weights[bi, :, int(positions[bi, g]), :]  # [H, L]
                    assert np.max(np.abs(glob[bi, :, :, g] - row)) <= TOL


def test_dilation_one_and_no_autoregression_is_longformer_consistency(backend):
    """A consistency check (the reference against itself): dilation 1 (as an int or per head) and
    autoregressive=False give the plain window, to the bit."""
    case = dict(b=2, heads=3, d=4, length=23, w=3, p_global=0.2, p_pad=0.2, seed=5, dilation=1,
                autoregressive=False)
    tensors, mask = inputs(case)
    plain, _ = run(tensors, mask, case, "band_matrix", backend)
    per_head, _ = run(tensors, mask, {**case, "dilation": (1, 1, 1)}, "band_matrix", backend)
    for a, b in zip(plain, per_head, strict=True):
        assert np.array_equal(ledref.to_numpy(a), ledref.to_numpy(b))


def test_a_dilated_window_reaches_further_with_the_same_columns():
    """Query 10, w = 2, dilation 3: keys 4, 7, 10, 13, 16 in columns 0..4; autoregressive: 4, 7, 10."""
    case = dict(b=1, heads=1, d=2, length=20, w=2, p_global=0.0, p_pad=0.0, seed=1, dilation=3,
                autoregressive=False)
    tensors, mask = inputs(case)
    (_, probs, _), _ = run(tensors, mask, case, "band_matrix", "numpy")
    _, weights = rule(*tensors, mask, 2, (3,), False)
    assert np.flatnonzero(weights[0, 0, 10]).tolist() == [4, 7, 10, 13, 16]
    assert np.allclose(probs[0, 0, 10], weights[0, 0, 10, [4, 7, 10, 13, 16]], atol=0, rtol=1e-12)
    (_, probs, _), _ = run(tensors, mask, {**case, "autoregressive": True}, "dense", "numpy")
    _, weights = rule(*tensors, mask, 2, (3,), True)
    assert np.flatnonzero(weights[0, 0, 10]).tolist() == [4, 7, 10]
    assert np.allclose(probs[0, 0, 10, :3], weights[0, 0, 10, [4, 7, 10]], atol=0, rtol=1e-12)
    assert not probs[0, 0, 10, 3:].any()
