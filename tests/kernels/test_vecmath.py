"""Accuracy, special values and vectorisation of lossd.kernels.vecmath (exp, log, log1p).

The functions are called through small test kernels compiled with lossd's own options
(jit.kernel: the kernels' fastmath flags), over dense grids, random points across each
domain and special values, and compared with NumPy's float64 ufuncs (glibc, < 1 ulp).
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from lossd.kernels import jit, vecmath
from lossd.kernels.jit import f64, kernel, ro, rw, void

MAX_ULP = 2.0  # measured max: 1 ulp for exp/log/log1p away from powers of two, 2 next to them


@kernel([void(ro(f), rw(f64), rw(f64), rw(f64)) for f in jit.FLOAT_TYPES])
def _evaluate(x, e, lg, l1p):  # pragma: no cover - compiled
    for i in range(x.size):
        xi = np.float64(x[i])
        e[i] = vecmath.exp(xi)
        lg[i] = vecmath.log(xi)
        l1p[i] = vecmath.log1p(xi)


def _ours(x: np.ndarray) -> dict[str, np.ndarray]:
    e, lg, l1p = (np.empty(x.size) for _ in range(3))
    _evaluate(x, e, lg, l1p)
    return {"exp": e, "log": lg, "log1p": l1p}


def _reference(name: str, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return getattr(np, name)(x.astype(np.float64))


def _ulp_error(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|got - ref| in units of the spacing at ref (0 where identical, incl. Inf; Inf where one
    side is non-finite and the other is not, or NaN where only one side is NaN)."""
    same = (got == ref) | (np.isnan(got) & np.isnan(ref))
    with np.errstate(all="ignore"):
        err = np.abs(got - ref) / np.spacing(np.abs(ref))
    err = np.where(np.isnan(err), np.inf, err)
    return np.where(same, 0.0, err)


def _check(x: np.ndarray, names=("exp", "log", "log1p")) -> None:
    ours = _ours(x)
    for name in names:
        err = _ulp_error(ours[name], _reference(name, x))
        worst = int(np.argmax(err))
        assert err[worst] <= MAX_ULP, (name, x[worst], ours[name][worst], err[worst])


RNG = np.random.default_rng(20261129)


@pytest.mark.parametrize("lo, hi", [(-746.0, 711.0), (-40.0, 40.0), (-1.0, 1.0), (-1e-6, 1e-6),
                                    (700.0, 709.8), (-745.2, -700.0)])
def test_exp_dense_grid_and_random(lo: float, hi: float) -> None:
    _check(np.linspace(lo, hi, 200_001), ("exp",))
    _check(RNG.uniform(lo, hi, 200_000), ("exp",))


def test_exp_near_integer_multiples_of_ln2() -> None:
    k = np.arange(-1074, 1024, dtype=np.float64)
    x = np.concatenate([k * np.log(2.0) + d for d in (0.0, 1e-12, -1e-12, 0.3465, -0.3465)])
    _check(x[(x > -746) & (x < 709.78)], ("exp",))


def test_log_and_log1p_over_all_magnitudes() -> None:
    # log-uniform positive values from the smallest subnormal to the largest finite
    x = np.exp(RNG.uniform(-744.4, 709.78, 400_000))
    _check(x)
    bits = RNG.integers(1, 0x7FF0000000000000, 400_000, dtype=np.int64)  # every positive finite
    _check(bits.view(np.float64), ("log", "log1p"))
    _check(np.logspace(-320, 308, 100_001), ("log", "log1p"))


@pytest.mark.parametrize("lo, hi", [(-1.0, 1.0), (0.5, 2.0), (-0.4, 0.5), (1e-9, 1e-3)])
def test_log1p_and_log_dense_grid(lo: float, hi: float) -> None:
    x = np.linspace(lo, hi, 200_001)
    _check(x[x > -1.0], ("log1p",))
    _check(x[x > 0.0], ("log",))


def test_log1p_near_minus_one_and_tiny() -> None:
    _check(-1.0 + np.exp(RNG.uniform(-36.7, 0.0, 200_000)), ("log1p",))
    tiny = np.exp(RNG.uniform(-744, -10, 100_000))
    _check(np.concatenate([tiny, -tiny]), ("log1p",))


def test_powers_of_two_and_neighbours() -> None:
    p = np.ldexp(1.0, np.arange(-1074, 1024))
    x = np.concatenate([p, np.nextafter(p, 0.0), np.nextafter(p, np.inf)])
    x = x[np.isfinite(x) & (x > 0)]
    _check(x, ("log", "log1p"))
    _check(np.concatenate([x - 1.0, -x[x < 1.0]]), ("log1p",))


def _spot_check(ours: dict, specials: np.ndarray, overflow: float, underflow: float, tiny: float) -> None:
    """Exact results at the special points of ``specials`` (its dtype): exp's limits and
    the first argument that over/underflows, log/log1p's poles and zeros, NaN for the
    arguments below their domain (-tiny, just below -1) and for NaN itself."""
    dt = specials.dtype.type
    spot = {"exp": {-np.inf: 0.0, np.inf: np.inf, overflow: np.inf, underflow: 0.0, 0.0: 1.0},
            "log": {0.0: -np.inf, np.inf: np.inf, 1.0: 0.0},
            "log1p": {-1.0: -np.inf, np.inf: np.inf, 0.0: 0.0}}
    for name, cases in spot.items():
        for x, want in cases.items():
            assert ours[name][np.flatnonzero(specials == dt(x))[0]] == want, (name, x)
    below = np.nextafter(dt(-1), dt(-2))
    for name, bad in (("log", -1.0), ("log", -tiny), ("log1p", -2.0), ("log1p", below)):
        assert np.isnan(ours[name][np.flatnonzero(specials == dt(bad))[0]]), (name, bad)
    nan = np.flatnonzero(np.isnan(specials))[0]
    assert all(np.isnan(ours[name][nan]) for name in ours)


SPECIALS = np.array([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-310,
                     2.2250738585072014e-308, np.finfo(np.float64).max, -np.finfo(np.float64).max,
                     709.78, 709.79, 710.0, 1e4, -745.13, -745.14, -746.0, -1e4, 1e-20, -1e-20,
                     -1.0 + 2.0**-53, np.nextafter(-1.0, -2.0), 2.0**53, 2.0**60, 2.0**61])


def test_special_values_match_numpy_exactly_or_within_ulp() -> None:
    _check(SPECIALS)
    _spot_check(_ours(SPECIALS), SPECIALS, overflow=710.0, underflow=-746.0, tiny=5e-324)


def test_float32_inputs() -> None:
    x32 = np.concatenate([RNG.uniform(-104, 89, 100_000), np.exp(RNG.uniform(-103, 88, 100_000)),
                          RNG.uniform(-1, 1, 100_000)]).astype(np.float32)
    x32 = np.concatenate([x32, SPECIALS.astype(np.float32)])
    _check(x32)


def _vector_ir(body) -> str:
    """LLVM IR of ``body`` compiled fresh (a cached dispatcher keeps no IR) with lossd's options."""
    fn = numba.njit([f64(ro(f)) for f in jit.FLOAT_TYPES], fastmath=set(jit.FASTMATH),
                    error_model="numpy")(body)
    return "\n".join(fn.inspect_llvm(sig) for sig in fn.signatures)


def _sum_exp(x):  # pragma: no cover - compiled
    t = 0.0
    for i in range(x.size):
        t += vecmath.exp(np.float64(x[i]))
    return t


def _sum_logs(x):  # pragma: no cover - compiled
    t = 0.0
    for i in range(x.size):
        xi = np.float64(x[i])
        t += vecmath.log(xi) + vecmath.log1p(xi)
    return t


@pytest.mark.parametrize("body", [_sum_exp, _sum_logs])
def test_loops_vectorise(body) -> None:
    ir = _vector_ir(body)
    assert "<4 x double>" in ir
    for scalar in ("@exp", "@log", "@llvm.exp.", "@llvm.log."):  # no scalar libm call left
        assert scalar not in ir


# ---- float32: vecmath32 through the generic texp/tlog/tlog1p (float32 math, 8 lanes) ----

MAX_ULP32 = 2.0  # measured max over these tests: exp 1.24, log 0.83, log1p 1.48 float32 ulp


@kernel([void(ro(f), rw(f), rw(f), rw(f)) for f in jit.FLOAT_TYPES])
def _evaluate_typed(x, e, lg, l1p):  # pragma: no cover - compiled
    for i in range(x.size):
        e[i] = vecmath.texp(x[i])
        lg[i] = vecmath.tlog(x[i])
        l1p[i] = vecmath.tlog1p(x[i])


def _ours_typed(x: np.ndarray) -> dict[str, np.ndarray]:
    e, lg, l1p = (np.empty_like(x) for _ in range(3))
    _evaluate_typed(x, e, lg, l1p)
    return {"exp": e, "log": lg, "log1p": l1p}


def _ulp32_error(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|got - ref| (ref: the float64 value) in float32 spacings at ref; 0 where got equals ref
    rounded to float32 (incl. Inf and overflow to Inf), Inf/NaN mismatches as in _ulp_error."""
    with np.errstate(all="ignore"):
        r32 = ref.astype(np.float32)
        same = (got == r32) | (np.isnan(got) & np.isnan(ref))
        err = np.abs(got.astype(np.float64) - ref) / np.spacing(np.abs(r32)).astype(np.float64)
    err = np.where(np.isnan(err), np.inf, err)
    return np.where(same, 0.0, err)


def _check32(x, names=("exp", "log", "log1p")) -> None:
    x = np.asarray(x, np.float32)
    ours = _ours_typed(x)
    for name in names:
        got = ours[name]
        assert got.dtype == np.float32
        err = _ulp32_error(got, _reference(name, x))
        worst = int(np.argmax(err))
        assert err[worst] <= MAX_ULP32, (name, x[worst], got[worst], err[worst])


def test_float32_every_exponent_class_from_random_bits() -> None:
    # uniformly random bit patterns: every sign, exponent (subnormals, Inf, NaN included)
    _check32(RNG.integers(0, 1 << 32, 1 << 21, dtype=np.uint64).astype(np.uint32).view(np.float32))


@pytest.mark.parametrize("lo, hi", [(-104.0, 89.0), (-20.0, 20.0), (-1.0, 1.0), (-1e-4, 1e-4),
                                    (85.0, 88.8), (-104.0, -85.0)])
def test_float32_exp_dense_grid(lo: float, hi: float) -> None:
    _check32(np.linspace(lo, hi, 400_001, dtype=np.float32), ("exp",))


def test_float32_exp_near_multiples_of_ln2_and_edges() -> None:
    k = np.arange(-150, 129, dtype=np.float64)
    x = np.concatenate([k * np.log(2.0) + d for d in (0.0, 1e-6, -1e-6, 0.3465, -0.3465)])
    _check32(x[(x > -104) & (x < 88.8)], ("exp",))
    edges = np.float32([88.72283, 88.72284, 88.7229, 89.0, 1e4, -103.97, -103.98, -104.0, -1e4])
    ours = _ours_typed(edges)["exp"]
    assert np.all(ours[edges > 88.7229] == np.inf) and np.all(ours[edges <= -103.98] == 0.0)
    _check32(edges, ("exp",))


@pytest.mark.parametrize("lo, hi", [(-1.0, 1.0), (0.5, 2.0), (-0.3, 0.42), (1e-9, 1e-3), (1.0, 1e6)])
def test_float32_log_and_log1p_dense_grid(lo: float, hi: float) -> None:
    x = np.linspace(lo, hi, 400_001, dtype=np.float32)
    _check32(x[x > -1.0], ("log1p",))
    _check32(x[x > 0.0], ("log",))


def test_float32_powers_of_two_subnormals_and_minus_one() -> None:
    p = np.ldexp(np.float32(1.0), np.arange(-149, 128)).astype(np.float32)
    x = np.concatenate([p, np.nextafter(p, np.float32(0)), np.nextafter(p, np.float32(np.inf))])
    x = x[np.isfinite(x) & (x > 0)]
    _check32(x, ("log", "log1p"))
    _check32(np.concatenate([x - np.float32(1.0), -x[x < 1.0]]), ("log1p",))
    near = np.float32(-1.0) + np.exp(RNG.uniform(-16.6, 0.0, 100_000)).astype(np.float32)
    _check32(near[near > -1.0], ("log1p",))
    tiny = np.exp(RNG.uniform(-103, -10, 100_000)).astype(np.float32)  # incl. subnormals
    _check32(np.concatenate([tiny, -tiny]), ("log1p", "log"))
    ours = _ours_typed(tiny[tiny < 1e-30])
    assert np.array_equal(ours["log1p"], tiny[tiny < 1e-30])  # log1p(x) = x for tiny x


SPECIALS32 = np.array([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40,
                       1.17549435e-38, 3.4028235e38, -3.4028235e38, 88.72, 88.73, -103.9, -104.5,
                       1e-20, -1e-20, np.float32(-1.0) + np.float32(2.0**-24),
                       np.nextafter(np.float32(-1), -2), 2.0**24, 2.0**30, 2.0**31], np.float32)


def test_float32_special_values() -> None:
    _check32(SPECIALS32)
    _spot_check(_ours_typed(SPECIALS32), SPECIALS32, overflow=88.73, underflow=-104.5, tiny=1e-45)


def test_float64_through_the_generic_names_is_the_float64_code() -> None:
    x = np.concatenate([RNG.uniform(-700, 700, 10_000), np.exp(RNG.uniform(-700, 700, 10_000)), SPECIALS])
    typed, plain = _ours_typed(x), _ours(x)
    for name in typed:
        assert np.array_equal(typed[name], plain[name], equal_nan=True), name


@kernel([void(ro(f), rw(f), rw(f)) for f in jit.FLOAT_TYPES])
def _constants(x, a, b):  # pragma: no cover - compiled
    for i in range(x.size):
        a[i] = x[i] * vecmath.like(x, 0.1) + vecmath.like(x[i], 1.0)
        b[i] = vecmath.pick(x[i], 0.25, 0.5)


def test_like_and_pick_follow_the_argument_type() -> None:
    for dtype, cut in ((np.float32, 0.25), (np.float64, 0.5)):
        x = np.arange(4, dtype=dtype)
        a, b = np.empty_like(x), np.empty_like(x)
        _constants(x, a, b)
        assert np.array_equal(a, x * dtype(0.1) + dtype(1.0)) and np.all(b == cut)


def _store_typed(x, out):  # pragma: no cover - compiled
    for i in range(x.size):
        xi = x[i]
        out[i] = vecmath.texp(xi) + vecmath.tlog(xi) + vecmath.tlog1p(xi)


def test_float32_loop_vectorises_over_8_lanes() -> None:
    # a store loop: 8 float32 lanes (a float64 accumulator in the same loop makes LLVM pick 4)
    f32 = jit.FLOAT_TYPES[0]
    fn = numba.njit([void(ro(f32), rw(f32))], fastmath=set(jit.FASTMATH), error_model="numpy")(_store_typed)
    ir = fn.inspect_llvm(fn.signatures[0])
    assert "<8 x float>" in ir and "double" not in ir
    for scalar in ("@exp", "@log", "@llvm.exp.", "@llvm.log."):
        assert scalar not in ir
