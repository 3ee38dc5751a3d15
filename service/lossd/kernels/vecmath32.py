"""Vectorisable float32 exp, log and log1p for kernels (branch-free, no library calls).

The float32 counterparts of :mod:`lossd.kernels.vecmath` (same method, same special
values), computed entirely in float32 so a loop calling them vectorises over 8 lanes
(AVX2: ``<8 x float>``), twice the float64 width. Kernels reach them through the generic
``vecmath.texp/tlog/tlog1p``, which pick these for a float32 argument. Every constant is a
``np.float32`` global (a Python float literal would promote the arithmetic to float64)
and the integer exponent work is done in 32-bit LLVM intrinsics (Numba's own integer
arithmetic widens to int64, which halves the vector width).

exp(x), Cody-Waite reduction + Cephes' expf polynomial:
    x is clamped to [-104, 89] (NaN is returned unchanged by a final select);
    k = floor(x log2(e) + 1/2), r = fma(k, C2, fma(-k, C1, x)) with C1 = 0.693359375
    (exact in 9 bits) and C1 - C2 = ln 2 to float32 precision, |r| <= ln(2)/2;
    e^r = 1 + r + r^2 P(r), P of degree 5 (Cephes expf, relative error < 1 ulp);
    e^x = (e^r 2^k1) 2^k2 with k1 = k >> 1, k2 = k - k1 (both halves normal), so the only
    rounding of the scaling is the final multiplication: correct gradual underflow into
    the subnormals, +Inf above 88.72, 0 below -103.97.

log(x), Cephes' logf without branches:
    subnormal x is first scaled by 2^25; x = 2^k m with m in [sqrt(2)/2, sqrt(2)) from the
    bits (k = (bits(x) - bits(sqrt(2)/2)) >> 23); f = m - 1 (exact);
    log(1 + f) = f - f^2/2 + f^3 Q(f), Q of degree 8 (Cephes logf; no division);
    log x = k C1 + (log(1 + f) + k C2). Special values by selects: log(0) = -Inf,
    log(x < 0) = NaN, log(+Inf) = +Inf, NaN -> NaN.

log1p(x), as vecmath.log1p: k from the bits of u = fl(1 + x),
    f = fma(x, 2^-k, 2^-k - 1) = (1 + x) 2^-k - 1, exact for k <= 0 (so log1p(x) ~ x to
    full precision for small |x|, subnormals included), one rounding for k > 0; for
    k >= 30, f = m(u) - 1 (1 + x = u to 2^-30). log1p(-1) = -Inf, x < -1 -> NaN,
    +Inf -> +Inf, NaN -> NaN.

Accuracy (tests/kernels/test_vecmath.py, against float64 libm on float32 arguments, in
units of the float32 spacing at the exact value): exp <= 1 ulp, log and log1p <= 2 ulp
(MAX_ULP32 there). The steps whose rounding matters are ``llvm.fma`` calls or done inside
the intrinsics, so the kernels' fastmath flags (reassoc, contract) cannot split them.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from lossd.kernels.jit import inline

F32 = np.float32
ONE = F32(1.0)
HALF = F32(0.5)
ZERO = F32(0.0)
INF = F32(np.inf)
NAN = F32(np.nan)
LOG2E = F32(1.44269504088896341)
C1 = F32(0.693359375)  # ln 2 = C1 - C2: C1 has 9 significant bits (k C1 exact for |k| < 2^15)
C2 = F32(2.12194440e-4)
EXP_LO = F32(-104.0)  # exp(x) rounds to 0 below -103.97
EXP_HI = F32(89.0)  # exp(x) overflows above 88.72
TINY = F32(1.17549435e-38)  # smallest normal float32
TWO25 = F32(33554432.0)
K25 = F32(25.0)
K30 = F32(30.0)
SQRT_HALF_BITS = 0x3F3504F3  # bits of sqrt(2)/2 in float32
# Cephes expf: e^r = 1 + r + r^2 (P0 r^5 + ... + P5)
P0, P1, P2 = F32(1.9875691500e-4), F32(1.3981999507e-3), F32(8.3334519073e-3)
P3, P4, P5 = F32(4.1665795894e-2), F32(1.6666665459e-1), F32(5.0000001201e-1)
# Cephes logf: log(1 + f) = f - f^2/2 + f^3 (Q0 f^8 + ... + Q8)
Q0, Q1, Q2 = F32(7.0376836292e-2), F32(-1.1514610310e-1), F32(1.1676998740e-1)
Q3, Q4, Q5 = F32(-1.2420140846e-1), F32(1.4249322787e-1), F32(-1.6668057665e-1)
Q6, Q7, Q8 = F32(2.0000714765e-1), F32(-2.4999993993e-1), F32(3.3333331174e-1)

_F = ir.FloatType()
_I = ir.IntType(32)


def _const(value: int) -> ir.Constant:
    return ir.Constant(_I, value)


def _pow2_bits(builder: ir.IRBuilder, k: ir.Value) -> ir.Value:
    """The float 2^k for an i32 k in [-126, 127] (exponent field k + 127)."""
    return builder.bitcast(builder.shl(builder.add(k, _const(127)), _const(23)), _F)


def _log_exponent(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """The i32 k with x = 2^k m, m in [sqrt(2)/2, sqrt(2)) (x positive normal)."""
    return builder.ashr(builder.sub(builder.bitcast(x, _I), _const(SQRT_HALF_BITS)), _const(23))


@intrinsic
def fma(typingctx, a, b, c):  # pragma: no cover - compile time
    """a * b + c in float32 with one rounding (``llvm.fma.f32``, no fast-math flags)."""
    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.fma", [_F], ir.FunctionType(_F, [_F] * 3))
        return builder.call(fn, args)
    return types.float32(types.float32, types.float32, types.float32), codegen


@intrinsic
def scale2(typingctx, p, kf):  # pragma: no cover - compile time
    """p 2^k for p in [0.5, 2) and an integral kf = k in [-150, 128]: k >> 1 added to p's
    exponent field, then one rounding multiplication by 2^(k - (k >> 1)) (both normal)."""
    def codegen(context, builder, signature, args):
        k = builder.fptosi(args[1], _I)
        k1 = builder.ashr(k, _const(1))
        high = builder.add(builder.bitcast(args[0], _I), builder.shl(k1, _const(23)))
        return builder.fmul(builder.bitcast(high, _F), _pow2_bits(builder, builder.sub(k, k1)))
    return types.float32(types.float32, types.float32), codegen


@intrinsic
def pow2(typingctx, kf):  # pragma: no cover - compile time
    """2^k for an integral float32 kf = k in [-126, 127] (exact; built from bits)."""
    def codegen(context, builder, signature, args):
        return _pow2_bits(builder, builder.fptosi(args[0], _I))
    return types.float32(types.float32), codegen


@intrinsic
def log_exponent(typingctx, x):  # pragma: no cover - compile time
    """k (as float32) with x = 2^k m, m in [sqrt(2)/2, sqrt(2)), for a positive normal x."""
    def codegen(context, builder, signature, args):
        return builder.sitofp(_log_exponent(builder, args[0]), _F)
    return types.float32(types.float32), codegen


@intrinsic
def log_mantissa(typingctx, x):  # pragma: no cover - compile time
    """m in [sqrt(2)/2, sqrt(2)) with x = 2^k m, for a positive normal x (exact)."""
    def codegen(context, builder, signature, args):
        bits = builder.bitcast(args[0], _I)
        k = _log_exponent(builder, args[0])
        return builder.bitcast(builder.sub(bits, builder.shl(k, _const(23))), _F)
    return types.float32(types.float32), codegen


@inline
def exp(x):  # pragma: no cover - compiled
    """e^x in float32, <= 1 ulp; exp(-Inf) = 0, exp(+Inf) = +Inf, NaN -> NaN."""
    xc = x if x > EXP_LO else EXP_LO  # NaN -> EXP_LO, selected away at the end
    xc = xc if xc < EXP_HI else EXP_HI
    kf = np.floor(xc * LOG2E + HALF)
    r = fma(kf, C2, fma(-kf, C1, xc))
    p = P0 * r + P1
    p = p * r + P2
    p = p * r + P3
    p = p * r + P4
    p = p * r + P5
    p = ONE + (r + r * r * p)
    y = scale2(p, kf)
    return y if x == x else x


@inline
def _log_core(f, kf):  # pragma: no cover - compiled
    """kf ln 2 + log(1 + f) for f in about [sqrt(2)/2 - 1, sqrt(2) - 1] (Cephes logf)."""
    z = f * f
    q = Q0 * f + Q1
    q = q * f + Q2
    q = q * f + Q3
    q = q * f + Q4
    q = q * f + Q5
    q = q * f + Q6
    q = q * f + Q7
    q = q * f + Q8
    return fma(kf, C1, f + fma(-kf, C2, q * f * z - HALF * z))


@inline
def log(x):  # pragma: no cover - compiled
    """Natural log in float32, <= 2 ulp; log(0) = -Inf, log(x < 0) = NaN, log(+Inf) = +Inf."""
    sub = x < TINY
    xs = x * TWO25 if sub else x
    kf = log_exponent(xs) - (K25 if sub else ZERO)
    y = _log_core(log_mantissa(xs) - ONE, kf)
    y = y if x < INF else x  # +Inf, NaN
    return y if x > ZERO else (-INF if x == ZERO else NAN)


@inline
def log1p(x):  # pragma: no cover - compiled
    """log(1 + x) in float32, <= 2 ulp; log1p(-1) = -Inf, x < -1 -> NaN, +Inf -> +Inf."""
    u = ONE + x
    kf = log_exponent(u)
    # k in [-24, 128] for x > -1; k_c keeps 2^-k_c normal (u = 0, Inf or NaN: any finite
    # value, selected away below). Beyond 2^30, 1 + x = u to within 2^-30 relative.
    kc = min(max(kf, -K30), K30)
    scale = pow2(-kc)
    f = fma(x, scale, scale - ONE)  # = (1 + x) 2^-k - 1, exact for k <= 0
    f = f if kf < K30 else log_mantissa(u) - ONE
    y = _log_core(f, kf)
    y = y if x < INF else x
    return y if x > -ONE else (-INF if x == -ONE else NAN)
