"""Column passes of the softmax-family kernels: a chunk of positions transposed into a
(C, P) scratch, so that the max, exp and sum passes run along positions, P of them per
class, instead of along one row of C classes.

With few classes (C = 10 fills one and a quarter 8-lane vector) the row passes of
:mod:`lossd.losses._softmax_rows` spend most of their time in loop set-up and remainders,
and with a spatial axis (K > 1) a row is strided by K. Measured on float32 logits, one
thread, kernel with the logits' gradient, rows -> columns:

    softmax_cross_entropy, index targets  (327680, 2) 19.4 -> 7.1 ms, (65536, 10) 5.9 -> 3.3 ms,
                                          (20480, 32) 2.9 -> 2.4 ms, (10240, 64) 2.1 -> 2.8 ms,
                                          (16, 10, 4096) 11.4 -> 3.2 ms, (4, 21, 16384) 24.4 -> 5.8 ms
    softmax_cross_entropy, probabilities  (65536, 10) 7.7 -> 3.0 ms, (20480, 32) 4.7 -> 5.1 ms,
                                          (16, 10, 4096) 14.8 -> 3.5 ms
    softmax_focal                         (65536, 10) 8.1 -> 5.4 ms, (10240, 64) 2.7 -> 3.4 ms

so each kernel picks its layout by C and K (softmax_cross_entropy.by_columns). The
kernels' results are the same either way (their float64 sums agree to 1e-12).

A chunk is ``cnt <= P`` positions ``j`` of an (N, C, K) array, either

* rows ``n0 + j`` when K = 1 (the class axis is contiguous: rows are copied one by one), or
* positions ``k0 + j`` of row ``n0`` when K > 1 (contiguous along ``j`` for each class).

    chunk_count(z)                      chunks of the whole array
    chunk_span(chunk, z)                (n0, k0, cnt) of one chunk
    copy_in(z, n0, k0, cnt, zt)         zt[c, j] = z_c(j)
    gather(z, n0, k0, cnt, zt, m)       copy_in; m[j] = max_c z_c(j) (exact, z's type)
    exp_cols(zt, m, cnt)                zt[c, j] = exp(zt[c, j] - m[j]) in zt's type, in place
                                        (vecmath.texp: 8 float32 lanes or 4 float64 ones;
                                        the argument rounding is that of exp_row, see there)
    rest_cols(zt, lab, cnt, rest)       rest[j] = float64 sum over c != lab[j] of zt[c, j]
                                        (lab[j] < 0: the whole sum)
    put_scaled(g, n0, k0, cnt, zt, f, sub)
                                        g_c(j) = f[j] zt[c, j] - sub[c] (float64, rounded
                                        once), written back in z's layout (f = 1, sub = 0:
                                        a plain copy of a (C, P) scratch)
    put(g, n0, k0, j, c, value)         g_c(j) = value (one entry)
"""

from __future__ import annotations

import numpy as np

from lossd.kernels import vecmath
from lossd.kernels.jit import block, inline

#: positions per chunk: a (C, P) scratch of C = 10 float32 logits is 10 KiB (L1)
P = 256


@block
def chunk_count(z):  # pragma: no cover - compiled
    """Number of chunks of the (N, C, K) array z."""
    n_rows, n_pos = z.shape[0], z.shape[2]
    if n_pos == 1:
        return (n_rows + P - 1) // P
    return n_rows * ((n_pos + P - 1) // P)


@inline
def chunk_span(chunk, z):  # pragma: no cover - compiled
    """(n0, k0, cnt) of chunk number ``chunk`` of z."""
    n_rows, n_pos = z.shape[0], z.shape[2]
    if n_pos == 1:
        n0 = chunk * P
        return n0, 0, min(P, n_rows - n0)
    per = (n_pos + P - 1) // P
    k0 = (chunk % per) * P
    return chunk // per, k0, min(P, n_pos - k0)


@block
def copy_in(z, n0, k0, cnt, zt):  # pragma: no cover - compiled
    """zt[c, j] = z at position j, class c."""
    n_cls = z.shape[1]
    if z.shape[2] == 1:
        for j in range(cnt):
            for c in range(n_cls):
                zt[c, j] = z[n0 + j, c, 0]
    else:
        for c in range(n_cls):
            for j in range(cnt):
                zt[c, j] = z[n0, c, k0 + j]


@block
def gather(z, n0, k0, cnt, zt, m):  # pragma: no cover - compiled
    """copy_in; m[j] = max over c of zt[c, j] (validated, finite logits)."""
    copy_in(z, n0, k0, cnt, zt)
    for j in range(cnt):
        m[j] = zt[0, j]
    for c in range(1, z.shape[1]):
        for j in range(cnt):
            v = zt[c, j]
            m[j] = v if v > m[j] else m[j]


@block
def exp_cols(zt, m, cnt):  # pragma: no cover - compiled
    """zt[c, j] = exp(zt[c, j] - m[j]) for j < cnt, in zt's float type, in place (a separate
    output array made LLVM keep this loop scalar: it cannot rule out a partial overlap)."""
    for c in range(zt.shape[0]):
        for j in range(cnt):
            zt[c, j] = vecmath.texp(zt[c, j] - m[j])


@block
def rest_cols(zt, lab, cnt, rest):  # pragma: no cover - compiled
    """rest[j] = sum over c != lab[j] of zt[c, j], accumulated in float64."""
    for j in range(cnt):
        rest[j] = 0.0
    for c in range(zt.shape[0]):
        for j in range(cnt):
            rest[j] += 0.0 if lab[j] == c else np.float64(zt[c, j])


@block
def put_scaled(g, n0, k0, cnt, zt, f, sub):  # pragma: no cover - compiled
    """g at position j, class c = f[j] * zt[c, j] - sub[c], for j < cnt."""
    n_cls = zt.shape[0]
    if g.shape[2] == 1:
        for j in range(cnt):
            for c in range(n_cls):
                g[n0 + j, c, 0] = f[j] * np.float64(zt[c, j]) - sub[c]
    else:
        for c in range(n_cls):
            for j in range(cnt):
                g[n0, c, k0 + j] = f[j] * np.float64(zt[c, j]) - sub[c]


@inline
def put(g, n0, k0, j, c, value):  # pragma: no cover - compiled
    """g at position j, class c of the chunk at (n0, k0) (an (N, C, K) array)."""
    if g.shape[2] == 1:
        g[n0 + j, c, 0] = value
    else:
        g[n0, c, k0 + j] = value
