"""The band layout helpers against explicit loops over (query, column)."""

import numpy as np
import pytest

import ledref
from conftest import to_backend
from ledref.reference.band import band_from_dense, band_matmul, band_of_keys, band_scores, diagonals, undiagonals


@pytest.mark.parametrize("n, m, width", [(1, 1, 1), (3, 9, 7), (4, 12, 9), (5, 7, 3), (2, 6, 1)])
def test_diagonals_and_inverse(n, m, width, backend):
    x = np.random.default_rng(0).normal(size=(2, n, m))
    expected = np.zeros((2, n, width))
    for r in range(n):
        for c in range(width):
            expected[:, r, c] = x[:, r, r + c]
    got = ledref.to_numpy(diagonals(to_backend(x, backend), width))
    np.testing.assert_array_equal(got, expected)
    back = ledref.to_numpy(undiagonals(to_backend(expected, backend), m))
    strip = np.zeros_like(x)
    for r in range(n):
        strip[:, r, r:r + width] = x[:, r, r:r + width]
    np.testing.assert_array_equal(back, strip)


@pytest.mark.parametrize("length, w", [(1, 1), (5, 1), (7, 3), (8, 4), (10, 4), (3, 8)])
def test_band_scores_matmul_and_key_flags(length, w, backend):
    rng = np.random.default_rng(length * 10 + w)
    q, k, v = rng.normal(size=(3, 2, length, 5))
    p = rng.normal(size=(2, length, 2 * w + 1))
    flags = rng.random((2, length)) < 0.6
    scores = np.zeros((2, length, 2 * w + 1))
    out = np.zeros((2, length, 5))
    key_flags = np.zeros((2, length, 2 * w + 1), dtype=bool)
    for i in range(length):
        for c in range(2 * w + 1):
            j = i + c - w
            if 0 <= j < length:
                scores[:, i, c] = np.sum(q[:, i] * k[:, j], axis=-1)
                out[:, i] += p[:, i, c, None] * v[:, j]
                key_flags[:, i, c] = flags[:, j]
    np.testing.assert_allclose(ledref.to_numpy(band_scores(to_backend(q, backend), to_backend(k, backend), w)),
                               scores, atol=1e-12)
    np.testing.assert_allclose(ledref.to_numpy(band_matmul(to_backend(p, backend), to_backend(v, backend), w)),
                               out, atol=1e-12)
    np.testing.assert_array_equal(ledref.to_numpy(band_of_keys(to_backend(flags, backend), w)), key_flags)
    dense = rng.normal(size=(2, length, length))
    cut = np.zeros((2, length, 2 * w + 1))
    for i in range(length):
        for c in range(2 * w + 1):
            if 0 <= i + c - w < length:
                cut[:, i, c] = dense[:, i, i + c - w]
    np.testing.assert_array_equal(ledref.to_numpy(band_from_dense(to_backend(dense, backend), w)), cut)
