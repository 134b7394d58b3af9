"""Band layout of sliding-window attention, and the two reshapes that move between it and blocks.

With one-sided window w, query i sees keys i-w .. i+w. The band holds row i's scores in 2w+1 columns:
column c is key j = i + c - w, so column w is the token itself. Columns whose key falls outside the
sequence exist (they keep every row the same width) and are masked. With dilation r, column c is key
i + r(c - w): each residue class mod r (rows s, s+r, ...) is an ordinary band over its own subsequence.

The band is computed block by block: queries are cut into blocks of w, and block b (queries
bw .. bw+w-1) needs exactly the keys (b-1)w .. (b+2)w-1, a (w, 3w) score matrix. In that matrix, query
row r meets its band at columns r .. r+2w: a diagonal strip. `diagonals` cuts the strip out,
`undiagonals` puts it back; neither needs gathers, only a reshape of a flat buffer whose rows are one
element longer than the matrix's, so that each row starts one column later.
"""

from array_api_compat import array_namespace, device


def diagonals(x, width):
    """out[..., r, c] = x[..., r, r + c] for c < width <= m - n + 1.   [..., n, m] -> [..., n, width]"""
    xp = array_namespace(x)
    *lead, n, m = x.shape
    assert width <= m - n + 1, (width, n, m)
    flat = xp.reshape(x, (*lead, n * m))
    flat = xp.concat([flat, xp.zeros((*lead, n), dtype=x.dtype, device=device(x))], axis=-1)
    return xp.reshape(flat, (*lead, n, m + 1))[..., :width]  # row r starts r elements later


def undiagonals(band, m):
    """The inverse of `diagonals`: out[..., r, r + c] = band[..., r, c], zero elsewhere.
    [..., n, width] -> [..., n, m]"""
    xp = array_namespace(band)
    *lead, n, width = band.shape
    assert width <= m - n + 1, (width, n, m)
    pad = xp.zeros((*lead, n, m + 1 - width), dtype=band.dtype, device=device(band))
    flat = xp.reshape(xp.concat([band, pad], axis=-1), (*lead, n * (m + 1)))[..., :n * m]
    return xp.reshape(flat, (*lead, n, m))


def query_blocks(x, w):
    """Rows cut into blocks of w, the last one zero-filled.   [..., L, d] -> [..., nb, w, d]"""
    xp = array_namespace(x)
    *lead, length, d = x.shape
    nb = -(-length // w)  # blocks of w rows, the last one partly filler
    fill = xp.zeros((*lead, nb * w - length, d), dtype=x.dtype, device=device(x))
    return xp.reshape(xp.concat([x, fill], axis=-2), (*lead, nb, w, d))


def key_blocks(x, w):
    """For query block b, the 3w rows (b-1)w .. (b+2)w-1, zero-filled outside.   [..., L, d] -> [..., nb, 3w, d]"""
    xp = array_namespace(x)
    *lead, length, d = x.shape
    nb = -(-length // w)
    front = xp.zeros((*lead, w, d), dtype=x.dtype, device=device(x))
    back = xp.zeros((*lead, (nb + 1) * w - length, d), dtype=x.dtype, device=device(x))
    blocks = xp.reshape(xp.concat([front, x, back], axis=-2), (*lead, nb + 2, w, d))
    return xp.concat([blocks[..., :nb, :, :], blocks[..., 1:nb + 1, :, :], blocks[..., 2:, :, :]], axis=-2)


def residue_classes(x, r):
    """Rows split by position mod r, zero-filled: class s holds rows s, s+r, ...   [..., L, d] -> [..., r, L/r, d]"""
    return array_namespace(x).moveaxis(query_blocks(x, r), -2, -3)  # row m r + s is [m, s] of the blocks


def merge_classes(x, length):
    """The inverse of residue_classes.   [..., r, L/r, d] -> [..., L, d]"""
    xp = array_namespace(x)
    return xp.reshape(xp.moveaxis(x, -3, -2), (*x.shape[:-3], -1, x.shape[-1]))[..., :length, :]


def band_scores(q, k, w, r=1):
    """S[..., i, c] = q_i . k_{i+r(c-w)} (0 where the key is outside).   [..., L, d] x2 -> [..., L, 2w+1]"""
    xp = array_namespace(q)
    length = q.shape[-2]
    if r > 1:
        return merge_classes(band_scores(residue_classes(q, r), residue_classes(k, r), w), length)
    s = query_blocks(q, w) @ xp.matrix_transpose(key_blocks(k, w))  # [..., nb, w, 3w]
    band = diagonals(s, 2 * w + 1)  # [..., nb, w, 2w+1]
    return xp.reshape(band, (*band.shape[:-3], -1, 2 * w + 1))[..., :length, :]


def band_matmul(p, v, w, r=1):
    """out_i = sum_c p[i, c] v_{i+r(c-w)}: the band times the values.   [..., L, 2w+1], [..., L, d] -> [..., L, d]"""
    xp = array_namespace(p)
    length = p.shape[-2]
    if r > 1:
        return merge_classes(band_matmul(residue_classes(p, r), residue_classes(v, r), w), length)
    blocks = undiagonals(query_blocks(p, w), 3 * w)  # [..., nb, w, 3w]
    out = blocks @ key_blocks(v, w)  # [..., nb, w, d]
    return xp.reshape(out, (*out.shape[:-3], -1, out.shape[-1]))[..., :length, :]


def band_of_keys(key_flags, w, r=1):
    """B[..., i, c] = key_flags[..., i + r(c - w)], False outside the sequence.   [..., L] -> [..., L, 2w+1]"""
    xp = array_namespace(key_flags)
    length = key_flags.shape[-1]
    if r > 1:
        return merge_classes(band_of_keys(residue_classes(key_flags[..., None], r)[..., 0], w), length)
    keys = xp.matrix_transpose(key_blocks(key_flags[..., None], w))  # [..., nb, 1, 3w]
    keys = xp.broadcast_to(keys, (*keys.shape[:-2], w, 3 * w))  # [..., nb, w, 3w]
    band = diagonals(keys, 2 * w + 1)
    return xp.reshape(band, (*band.shape[:-3], -1, 2 * w + 1))[..., :length, :]


def band_from_dense(a, w, r=1):
    """Cut the band out of a dense (query, key) matrix.   [..., L, L] -> [..., L, 2w+1]"""
    xp = array_namespace(a)
    *lead, n, m = a.shape
    if r > 1:  # class s of the rows meets class s of the columns
        a = xp.matrix_transpose(residue_classes(xp.matrix_transpose(residue_classes(a, r)), r))  # [..., r, r, L/r, L/r]
        return merge_classes(xp.stack([band_from_dense(a[..., s, s, :, :], w) for s in range(r)], axis=-3), n)
    side = xp.zeros((*lead, n, w), dtype=a.dtype, device=device(a))
    return diagonals(xp.concat([side, a, side], axis=-1), 2 * w + 1)  # padded column i + c is key i + c - w
