"""kernels/finite.py: the exponent-bit finiteness check of request validation, both
builds, both float types, every special value, at every position of a vector (first,
middle and last block of a vector of several blocks)."""

from __future__ import annotations

import numpy as np
import pytest

from lossd.kernels import finite, jit


@pytest.fixture(params=["serial", "parallel"])
def build(request, monkeypatch):
    monkeypatch.setattr(jit, "PARALLEL_THRESHOLD", 0 if request.param == "parallel" else 1 << 62)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_extremes_pass(build, dtype):
    info = np.finfo(dtype)
    a = np.array([0.0, -0.0, info.max, -info.max, info.tiny, -info.tiny, info.smallest_subnormal,
                  -info.smallest_subnormal, 1.0, -1.0, info.eps], dtype)
    assert finite.all_finite(a)
    assert finite.all_finite(np.full((3, 5, 7), info.max, dtype))  # a plain sum would overflow


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, -np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("size", [1, 7, 64, 1001, 2 * finite.BLOCK + 3])  # the last: 3 blocks
def test_any_non_finite_value_fails(build, dtype, bad, size):
    for where in sorted({0, size // 2, size - 1}):
        a = np.linspace(-1e3, 1e3, size).astype(dtype)
        a[where] = bad
        assert not finite.all_finite(a)
        a.flags.writeable = False
        assert not finite.all_finite(a.reshape(1, size))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_payloads_fail(build, dtype):
    bits = np.dtype(dtype).itemsize * 8
    ints = {32: (np.uint32, [0x7F800001, 0xFFC00001, 0x7FFFFFFF]),
            64: (np.uint64, [0x7FF0000000000001, 0xFFF8000000000001, 0x7FFFFFFFFFFFFFFF])}[bits]
    for pattern in ints[1]:
        a = np.zeros(9, ints[0])
        a[4] = pattern
        assert not finite.all_finite(a.view(dtype))


def test_eager_signatures_only():
    for build_ in (finite._max_exponent.serial, finite._max_exponent.parallel):
        assert len(build_.signatures) == 2


def test_range_signatures_eager_only():
    for build_ in (finite._count_outside.serial, finite._count_outside.parallel):
        assert len(build_.signatures) == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 7, 64, 1001, 2 * finite.BLOCK + 3])
def test_any_outside_matches_numpy(build, dtype, size):
    """The verdict of NumPy's ``(a < lo) | (a > hi)`` (open ends: <= / >=) at every
    position, for values at, just inside and just outside each end, signed zeros, NaN."""
    rng = np.random.default_rng(size)
    for lo, hi in ((0.0, 1.0), (0.0, np.inf), (-2.5, 0.1)):
        lo_t, hi_t = dtype(lo), dtype(hi)
        probes = [lo_t, hi_t, np.nextafter(lo_t, dtype(-np.inf)), np.nextafter(hi_t, dtype(np.inf)),
                  np.nextafter(lo_t, hi_t), -0.0, 0.0, np.nan, np.finfo(dtype).max]
        for value in probes:
            for where in sorted({0, size // 2, size - 1}):
                a = rng.uniform(max(lo, -1e3), min(hi, 1e3), size).astype(dtype)
                a = np.clip(a, np.nextafter(lo_t, hi_t), np.nextafter(hi_t, lo_t))
                a[where] = value
                a.flags.writeable = False
                for lo_open in (False, True):
                    for hi_open in (False, True):
                        expect = bool(((a <= lo if lo_open else a < lo)
                                       | (a >= hi if hi_open else a > hi)).any())
                        assert finite.any_outside(a, lo, hi, lo_open, hi_open) == expect, (value, where)
                        assert finite.any_outside(a.reshape(1, size), lo, hi, lo_open, hi_open) == expect
