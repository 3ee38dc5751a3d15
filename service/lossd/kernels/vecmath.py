"""Vectorisable float64 exp, log and log1p for kernels (branch-free, no library calls).

Numba here has no SVML: ``math.exp``/``math.log`` in a loop are scalar libm calls and
stop LLVM's loop vectoriser. These functions use only arithmetic, comparisons/selects,
``floor`` and integer<->float bit casts, so a loop calling them vectorises (AVX2:
``<4 x double>``). Inlined into kernels through :func:`lossd.kernels.jit.inline`.

exp(x), Cody-Waite reduction + Taylor polynomial:
    x is clamped to [-746, 710] (NaN is returned unchanged by a final select);
    k = floor(x / ln 2 + 1/2), r = fma(-k, ln2_lo, fma(-k, ln2_hi, x)), |r| <= ln(2)/2
    (ln2_hi + ln2_lo = ln 2 to 2^-85; the first fma is exact);
    e^r = 1 + r + r^2/2! + ... + r^13/13! by Horner (truncation r^14/14! < 4e-18 relative);
    e^x = (e^r 2^k1) 2^k2 with k1 = floor(k/2), k2 = k - k1: e^r 2^k1 by an integer add to
    the exponent field (stays normal), 2^k2 a normal power of two built from bits, so the
    only rounding is the final multiplication: correct scaling into the subnormal range,
    +Inf for x > 709.78, 0 for x <= -746.
    Measured error <= 1 ulp against glibc (tests/kernels/test_vecmath.py).

log(x), fdlibm's method without branches:
    subnormal x is first scaled by 2^54; x = 2^k m with m in [sqrt(2)/2, sqrt(2)) taken
    from the bits (musl's offset trick: k = (bits(x) - bits(sqrt(2)/2)) >> 52);
    f = m - 1 (exact), s = f / (2 + f), log(m) = f - f^2/2 + s (f^2/2 + R(s^2)) with
    fdlibm's degree-14 minimax R (|error| < 2^-58.45); log x = k ln2_hi + (log(m) + k ln2_lo).
    Special values by selects: log(0) = -Inf, log(x < 0) = NaN, log(+Inf) = +Inf, NaN -> NaN.
    Measured error <= 2 ulp (1 ulp away from powers of two).

log1p(x) = log(1 + x) without forming 1 + x inexactly:
    k is taken from the bits of u = fl(1 + x) as in log (k in [-53, 1024] for x > -1);
    f = fma(x, 2^-k, 2^-k - 1) is m - 1 for 1 + x = 2^k m: exact for k <= 0 (Sterbenz),
    one rounding of relative size 2^-53 for k > 0, where the k ln 2 term dominates; for
    k >= 60, f = m(u) - 1 from the bits of u (1 + x = u to 2^-60). The same core as log
    then gives k ln 2 + log(1 + f). For small |x|, k = 0 and f = x exactly, so
    log1p(x) ~ x to full precision. log1p(-1) = -Inf, x < -1 -> NaN, +Inf -> +Inf,
    NaN -> NaN. Measured error <= 2 ulp (1 ulp away from powers of two).

The formulas are written so that the kernels' fastmath flags (reassoc, contract, nsz,
arcp; no nnan/ninf) cannot break them: the steps whose rounding matters (Cody-Waite
reduction, the exact f of log1p, the final k ln2_hi addition) are ``llvm.fma`` calls,
which reassociation does not split or merge (a plain k*hi + k*lo would be folded into
k*(hi + lo) and lose 1e-15 at |x| = 30); the 2^k scaling adds to the exponent field
instead of multiplying two powers of two (which reassociation could combine into an
overflowing 2^1024); NaN/Inf are handled by ordered comparisons and selects. ``llvm.fma``
needs a CPU with FMA (x86-64 since Haswell/Piledriver) to be a single instruction.

Generic forms for kernels compiled for both float types (one name, no extra compilation):
``texp``, ``tlog``, ``tlog1p`` evaluate in the argument's float type (float32 argument:
:mod:`lossd.kernels.vecmath32`, 8 AVX2 lanes; anything else: the float64 functions here);
``like(ref, value)`` is ``value`` in the float type of ``ref`` (a float scalar or array),
for constants in code written once for both types (a Python float literal is float64 and
would promote float32 arithmetic); ``pick(ref, v32, v64)`` chooses a type-dependent
constant (e.g. a series cut-off) the same way.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from lossd.kernels import vecmath32
from lossd.kernels.jit import FASTMATH, inline

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 rounded to 32 significant bits
LN2_LO = 1.90821492927058770002e-10  # ln 2 - LN2_HI
EXP_LO = -746.0  # exp(x) rounds to 0 below -745.13
EXP_HI = 710.0  # exp(x) overflows above 709.78
SQRT_HALF_BITS = 0x3FE6A09E667F3BCD  # bits of sqrt(2)/2
MANTISSA = (1 << 52) - 1
TWO54 = 18014398509481984.0
TINY = 2.2250738585072014e-308  # smallest normal float64

# fdlibm e_log.c: R(z) = Lg1 z + ... + Lg7 z^7 approximates (log((1+s)/(1-s)) - 2s)/s - ...
LG1 = 6.666666666666735130e-01
LG2 = 3.999999999940941908e-01
LG3 = 2.857142874366239149e-01
LG4 = 2.222219843214978396e-01
LG5 = 1.818357216161805012e-01
LG6 = 1.531383769920937332e-01
LG7 = 1.479819860511658591e-01


@intrinsic
def i64_as_f64(typingctx, bits):  # pragma: no cover - compile time
    """The float64 whose IEEE-754 bit pattern is the int64 ``bits`` (LLVM bitcast)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def f64_as_i64(typingctx, value):  # pragma: no cover - compile time
    """The IEEE-754 bit pattern of the float64 ``value`` as an int64 (LLVM bitcast)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def fma(typingctx, a, b, c):  # pragma: no cover - compile time
    """a * b + c with one rounding (``llvm.fma.f64``, no fast-math flags: reassociation
    cannot split or merge it, which keeps Cody-Waite reductions exact)."""
    def codegen(context, builder, signature, args):
        dbl = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [dbl], ir.FunctionType(dbl, [dbl] * 3))
        return builder.call(fn, args)
    return types.float64(types.float64, types.float64, types.float64), codegen


@inline
def pow2(k):  # pragma: no cover - compiled
    """2^k for an int64 k in [-1022, 1023] (exact; built from the exponent bits)."""
    return i64_as_f64((k + 1023) << 52)


@inline
def exp(x):  # pragma: no cover - compiled
    """e^x in float64, <= 2 ulp; exp(-Inf) = 0, exp(+Inf) = +Inf, NaN -> NaN."""
    xc = x if x > EXP_LO else EXP_LO  # NaN -> EXP_LO, selected away at the end
    xc = xc if xc < EXP_HI else EXP_HI
    kf = np.floor(xc * LOG2E + 0.5)
    r = fma(kf, -LN2_LO, fma(kf, -LN2_HI, xc))
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = 1.0 + (r + r * r * p)
    k = np.int64(kf)
    k1 = k >> 1
    # p 2^k1 by adding k1 to p's exponent field (p in [0.7, 1.5]: stays normal), then one
    # rounding multiplication by 2^(k - k1); no product of the two powers (could overflow)
    y = i64_as_f64(f64_as_i64(p) + (k1 << 52)) * pow2(k - k1)
    return y if x == x else x


@inline
def _log_core(f, kf):  # pragma: no cover - compiled
    """kf ln 2 + log(1 + f) for f in about [sqrt(2)/2 - 1, sqrt(2) - 1] (fdlibm)."""
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (LG2 + w * (LG4 + w * LG6))
    t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)))
    hfsq = 0.5 * f * f
    return fma(kf, LN2_HI, (f - hfsq) + fma(s, hfsq + t1 + t2, kf * LN2_LO))


@inline
def log(x):  # pragma: no cover - compiled
    """Natural log in float64, <= 1 ulp; log(0) = -Inf, log(x < 0) = NaN, log(+Inf) = +Inf."""
    sub = x < TINY
    xs = x * TWO54 if sub else x
    bits = f64_as_i64(xs)
    t = bits - SQRT_HALF_BITS
    k = t >> 52
    m = i64_as_f64(bits - (k << 52))
    kf = float(k) - (54.0 if sub else 0.0)
    y = _log_core(m - 1.0, kf)
    y = y if x < math.inf else x  # +Inf, NaN
    return y if x > 0.0 else (-math.inf if x == 0.0 else math.nan)


@inline
def log1p(x):  # pragma: no cover - compiled
    """log(1 + x) in float64, <= 1 ulp; log1p(-1) = -Inf, x < -1 -> NaN, +Inf -> +Inf."""
    u = 1.0 + x
    bits = f64_as_i64(u)
    k = (bits - SQRT_HALF_BITS) >> 52
    # k in [-53, 1024] for x > -1; k_c keeps 2^k_c and 2^-k_c normal (u = 0, Inf or NaN: any
    # finite value, selected away below). Beyond 2^60, 1 + x = u to within 2^-60 relative.
    k_c = min(max(k, -60), 60)
    scale = pow2(-k_c)
    f = fma(x, scale, scale - 1.0)  # = (1 + x) 2^-k - 1, exact for k <= 0
    f = f if k < 60 else i64_as_f64(bits - (k << 52)) - 1.0
    y = _log_core(f, float(k))
    y = y if x < math.inf else x
    return y if x > -1.0 else (-math.inf if x == -1.0 else math.nan)



#: the generic forms are compiled as small functions with the kernels' options and inlined by
#: LLVM (not Numba-IR inlined: that re-typed every call site and doubled the compile time of
#: the losses using them: BCE 16.4 -> 9.7 CPU s cold, same vector code)
OVERLOAD_OPTIONS = {"fastmath": set(FASTMATH), "error_model": "numpy"}


def is_float32(ref: types.Type) -> bool:
    """Whether ``ref`` (a Numba type: float scalar or array) is float32."""
    return getattr(ref, "dtype", ref) == types.float32


def texp(x):  # pragma: no cover - stub, compiled through the overload below
    """e^x in the float type of x (float32: vecmath32.exp; else exp)."""
    raise NotImplementedError("texp is for compiled kernels")


def tlog(x):  # pragma: no cover - stub
    """log x in the float type of x (float32: vecmath32.log; else log)."""
    raise NotImplementedError("tlog is for compiled kernels")


def tlog1p(x):  # pragma: no cover - stub
    """log(1 + x) in the float type of x (float32: vecmath32.log1p; else log1p)."""
    raise NotImplementedError("tlog1p is for compiled kernels")


def like(ref, value):  # pragma: no cover - stub
    """``value`` converted to the float type of ``ref`` (a float scalar or array)."""
    raise NotImplementedError("like is for compiled kernels")


def pick(ref, v32, v64):  # pragma: no cover - stub
    """``v32`` (as float32) when ``ref`` is float32 (scalar or array), else ``v64`` (float64)."""
    raise NotImplementedError("pick is for compiled kernels")


@overload(texp, jit_options=OVERLOAD_OPTIONS)
def _texp(x):  # pragma: no cover - compile time
    return (lambda x: vecmath32.exp(x)) if is_float32(x) else (lambda x: exp(x))


@overload(tlog, jit_options=OVERLOAD_OPTIONS)
def _tlog(x):  # pragma: no cover - compile time
    return (lambda x: vecmath32.log(x)) if is_float32(x) else (lambda x: log(x))


@overload(tlog1p, jit_options=OVERLOAD_OPTIONS)
def _tlog1p(x):  # pragma: no cover - compile time
    return (lambda x: vecmath32.log1p(x)) if is_float32(x) else (lambda x: log1p(x))


@overload(like, jit_options=OVERLOAD_OPTIONS)
def _like(ref, value):  # pragma: no cover - compile time
    if is_float32(ref):
        return lambda ref, value: np.float32(value)
    return lambda ref, value: np.float64(value)


@overload(pick, jit_options=OVERLOAD_OPTIONS)
def _pick(ref, v32, v64):  # pragma: no cover - compile time
    if is_float32(ref):
        return lambda ref, v32, v64: np.float32(v32)
    return lambda ref, v32, v64: np.float64(v64)
