"""Row passes shared by the softmax-family kernels, written so that LLVM vectorises them.

A row is ``z_c = z[n, c, k]``, c < C, of a C-contiguous (N, C, K) array (stride K along
the class axis; LLVM versions the loops on K = 1). Inside the loops there are no library
calls and no data-dependent branches, only arithmetic and selects (vecmath.exp/log/log1p):

    row_max(z, n, k)                m = max_c z_c, exact, through the order-preserving int64
                                    key(x) = bits(x) ^ ((bits(x) >> 63) & 0x7FF..F) (a float
                                    max reduction does not vectorise without nnan)
    exp_row(z, n, k, m, t, o, skip) t[o + c] = exp(z_c - m) in t's type (float64, or float32
                                    for float32 z: 8 lanes); returns the float64 sum
                                    over c != skip (skip < 0: the whole sum), so that
                                    1 - softmax_skip = rest / (e_skip + rest) has no cancellation
    nll_from_rest(em1, rest, mz)    lse - z_y = mz + log(e_y + rest) with mz = m - z_y,
                                    as mz + log1p(em1 + rest), em1 = e_y - 1: when z_y is the max
                                    (mz = 0, e_y = 1, the p_y -> 1 case) the result keeps full
                                    relative accuracy; otherwise rest >= 1 (it holds exp(0)) and
                                    nothing cancels. em1 must come from an array written in an
                                    earlier pass: fastmath reassociation would otherwise turn
                                    (e_y - 1) + rest into (e_y + rest) - 1

(Measured: one fused exp-and-sum pass per row beats a flat exp over a whole chunk of rows,
1.1x at C = 10 and 1.5x at C = 1000, in an in-process A/B.)
"""

from __future__ import annotations

import numpy as np
from numba.extending import overload

from lossd.kernels import vecmath
from lossd.kernels.jit import inline

_LOW_BITS = 0x7FFFFFFFFFFFFFFF


@inline
def _key(x):  # pragma: no cover - compiled
    """An int64 that orders like the float64 x (finite x)."""
    bits = vecmath.f64_as_i64(x)
    return bits ^ ((bits >> 63) & _LOW_BITS)


@inline
def row_max(z, n, k):  # pragma: no cover - compiled
    """max_c z[n, c, k] in float64 (finite inputs; validation rejects NaN and Inf)."""
    best = _key(np.float64(z[n, 0, k]))
    for c in range(1, z.shape[1]):
        best = max(best, _key(np.float64(z[n, c, k])))
    return vecmath.i64_as_f64(best ^ ((best >> 63) & _LOW_BITS))


def exp_row(z, n, k, m, t, off, skip):  # pragma: no cover - stub, compiled through the overload
    """t[off + c] = exp(z[n, c, k] - m) for every c, in t's float type; returns the float64
    sum over c != skip.

    A float32 scratch (for float32 logits) makes the exp loop 8 float32 lanes wide
    (vecmath32.exp, <= 1.24 ulp) instead of 4 float64 ones: 2.2x faster at C = 1000. Its
    argument z_c - m is then rounded once to float32 (an IEEE subtraction, as exact as the
    float64 difference rounded), a relative error of at most |z_c - m| 2^-24 in e_c, i.e. an
    absolute one of at most max_d |d| e^d 2^-24 < 2.2e-8 of the largest e_c = 1: far inside
    the float32 tolerance (rtol 1e-4, atol 1e-6 S). Its sum runs in a separate float64 loop
    (a float64 accumulator in the exp loop would make it 4 lanes wide again). A float64
    scratch keeps the fused exp-and-sum loop (the separate loop measured 0-16% slower there).
    """
    raise NotImplementedError("exp_row is for compiled kernels")


@inline
def _exp_row_fused(z, n, k, m, t, off, skip):  # pragma: no cover - compiled
    """exp_row for a float64 scratch: exp and sum in one loop."""
    total = 0.0
    for c in range(z.shape[1]):
        v = vecmath.exp(np.float64(z[n, c, k]) - m)
        t[off + c] = v
        total += 0.0 if c == skip else v
    return total


@inline
def _exp_row_narrow(z, n, k, m, t, off, skip):  # pragma: no cover - compiled
    """exp_row for a float32 scratch: the float32 exp loop, then the float64 sum."""
    for c in range(z.shape[1]):
        t[off + c] = vecmath.texp(z[n, c, k] - vecmath.like(t, m))
    total = 0.0
    for c in range(z.shape[1]):
        total += 0.0 if c == skip else np.float64(t[off + c])
    return total


@overload(exp_row, jit_options=vecmath.OVERLOAD_OPTIONS)
def _exp_row(z, n, k, m, t, off, skip):  # pragma: no cover - compile time
    impl = _exp_row_narrow if vecmath.is_float32(t) else _exp_row_fused
    return lambda z, n, k, m, t, off, skip: impl(z, n, k, m, t, off, skip)


@inline
def nll_from_rest(em1, rest, mz):  # pragma: no cover - compiled
    """-log softmax_y = mz + log1p(em1 + rest); em1 = e_y - 1 loaded from memory (see above)."""
    return mz + vecmath.log1p(em1 + rest)
