"""kernels/finite.py: the exponent-bit finiteness check of request validation, both
builds, both float types, every special value, at every position of a vector."""

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
@pytest.mark.parametrize("size", [1, 7, 64, 1001])
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
