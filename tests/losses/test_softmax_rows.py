"""losses/_softmax_rows (the row passes of the softmax-family kernels) and the vectorisation
of the kernels built on them.

row_max must be exact (an int64-keyed max) for both float types, any sign, zeros, huge and
tiny values, strided rows; nll_from_rest must keep full relative accuracy as p_y -> 1 and
stay right when e_y underflows. The kernels are recompiled fresh (cached code keeps no
assembly): packed double FMAs on ymm registers (the vecmath polynomials) and no scalar
libm exp/log/log1p/pow call may remain.
"""

from __future__ import annotations

import importlib
import re

import numba
import numpy as np
import pytest

from lossd.kernels import jit
from lossd.losses._softmax_rows import exp_row, nll_from_rest, row_max

OPTIONS = dict(fastmath=set(jit.FASTMATH), error_model="numpy", nogil=True)


@numba.njit(**OPTIONS)
def _maxes(z):  # pragma: no cover - compiled
    out = np.empty((z.shape[0], z.shape[2]))
    for n in range(z.shape[0]):
        for k in range(z.shape[2]):
            out[n, k] = row_max(z, n, k)
    return out


@numba.njit(**OPTIONS)
def _softmax_nll(z, y):  # pragma: no cover - compiled
    """-log softmax(z_n)[y_n] per row of an (N, C, 1) array, through the kernels' passes."""
    n_rows, n_cls, _ = z.shape
    st = np.empty((3, n_rows))
    e = np.empty(n_cls)
    for n in range(n_rows):
        m = row_max(z, n, 0)
        st[1, n] = exp_row(z, n, 0, m, e, 0, y[n])
        st[0, n] = e[y[n]] - 1.0
        st[2, n] = m - z[n, y[n], 0]
    out = np.empty(n_rows)
    for n in range(n_rows):
        out[n] = nll_from_rest(st[0, n], st[1, n], st[2, n])
    return out


@numba.njit(**OPTIONS)
def _exp_rows(z, t):  # pragma: no cover - compiled
    """exp_row over every row of an (N, C, 1) array into t (N * C, its own float type), and
    the sums over c != 0."""
    n_rows, n_cls, _ = z.shape
    sums = np.empty(n_rows)
    for n in range(n_rows):
        sums[n] = exp_row(z, n, 0, row_max(z, n, 0), t, n * n_cls, 0)
    return sums


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_row_in_the_scratch_type(dtype):
    """e_c = exp(z_c - m) within |z_c - m| 2^-24 + 2 ulp relative (float32 scratch: the rounded
    argument and vecmath32.exp; float64: |z_c - m| 2^-53 + 4 ulp), absolute 2.2e-8 at most, and rest summed in
    float64: logits near 0 and offset by 1e4, spread down to e^-110 (float32 subnormals and 0)."""
    rng = np.random.default_rng(7)
    z = np.concatenate([rng.normal(0, 30, (40, 33)), 1e4 + rng.normal(0, 30, (40, 33)),
                        -3e3 + np.linspace(-110, 0, 33)[None, :].repeat(4, 0)]).astype(dtype)
    t = np.empty(z.size, dtype)
    sums = _exp_rows(z[:, :, None], t)
    zl = z.astype(np.longdouble)
    want = np.exp(zl - zl.max(1, keepdims=True)).astype(np.float64)
    got = t.reshape(z.shape).astype(np.float64)
    d = np.abs(z.astype(np.float64) - z.astype(np.float64).max(1, keepdims=True))
    tiny = np.finfo(dtype).tiny
    if dtype == np.float32:
        bound = want * (d * 2.0 ** -24 + 2 * 2.0 ** -23) + 2 * np.finfo(np.float32).smallest_subnormal
    else:  # likewise with the argument rounded to float64
        bound = want * (d * 2.0 ** -53 + 4 * 2.0 ** -52) + tiny
    assert np.all(np.abs(got - want) <= bound), np.max(np.abs(got - want) - bound)
    assert np.max(np.abs(got - want)) <= 2.2e-8
    np.testing.assert_allclose(sums, got[:, 1:].sum(1), rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 3])
def test_row_max_is_exact(dtype, k):
    rng = np.random.default_rng(5)
    big = np.finfo(dtype).max
    tiny = np.finfo(dtype).smallest_subnormal
    rows = [rng.normal(0, 3, 37), -np.abs(rng.normal(0, 3, 37)), np.abs(rng.normal(0, 3, 37)),
            np.array([-0.0, 0.0, -0.0]), np.array([0.0, -tiny, -0.0]), np.array([-big, -1.0, -big]),
            np.array([big, -big, 1.0]), np.array([tiny, 0.0, -tiny]), np.array([-5.0]),
            np.full(9, -2.5)]
    for row in rows:
        z = np.repeat(row.astype(dtype)[None, :, None], k, axis=2)
        z[..., 1:] = z[..., 1:] / 2  # a different row per position k
        got = _maxes(np.ascontiguousarray(z))
        want = z.astype(np.float64).max(axis=1)
        np.testing.assert_array_equal(got, want)


def test_nll_from_rest_relative_accuracy():
    rng = np.random.default_rng(11)
    cases = []
    for gap in (0.0, 1e-12, 1e-3, 1.0, 20.0, 40.0, 700.0, 800.0):  # z_y - max of the others
        z = rng.normal(0, 1, (6, 7))
        y = rng.integers(0, 7, 6)
        others = np.where(np.arange(7)[None, :] == y[:, None], -np.inf, z).max(1)
        z[np.arange(6), y] = others + gap
        cases.append((z, y))
        cases.append((-z, y))  # the label far below the max: e_y underflows for large gaps
    for z, y in cases:
        got = _softmax_nll(z[:, :, None], y)
        # -log softmax_y = log1p(sum_{c != y} exp(z_c - z_y)), in extended precision
        zl = z.astype(np.longdouble)
        d = np.exp(zl - zl[np.arange(len(y)), y][:, None])
        d[np.arange(len(y)), y] = 0
        want = np.log1p(d.sum(1)).astype(np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


#: kernels whose float32 build keeps exp(z - m) in a float32 scratch (see exp_row, exp_cols)
F32_EXP_ROWS = ("_ce_index", "_ce_index_cols", "_ce_prob", "_ce_prob_cols", "_softmax_focal",
                "_softmax_focal_cols")
KERNELS = [("softmax_cross_entropy", "_ce_index"), ("softmax_cross_entropy", "_ce_index_cols"),
           ("softmax_cross_entropy", "_ce_prob"), ("softmax_cross_entropy", "_ce_prob_cols"),
           ("softmax_focal", "_softmax_focal"), ("softmax_focal", "_softmax_focal_cols"),
           ("categorical_cross_entropy", "_cce"),
           ("f_divergence", "_fdiv"), ("_margin", "_margin_rows")]


def _float32_build(obj):
    """(compiled function, its float32 signature, or its first): a Dual's serial build, or a
    block as the imported kernels compiled it."""
    serial = getattr(obj, "serial", obj)
    for sig in serial.signatures:
        if any(getattr(t, "dtype", None) == numba.float32 and getattr(t, "ndim", 0) == 3 for t in sig):
            return serial, sig
    return serial, serial.signatures[0]


@pytest.mark.parametrize("module_name,kernel", KERNELS)
def test_kernels_are_vectorised(module_name, kernel):
    module = importlib.import_module(f"lossd.losses.{module_name}")
    serial, sig = _float32_build(getattr(module, kernel))
    fresh = numba.njit([sig], **OPTIONS)(serial.py_func)
    asm = fresh.inspect_asm(fresh.signatures[0])
    packed = re.findall(r"vfn?m(?:add|sub)\d+pd\s+[^\n]*%ymm", asm)
    assert len(packed) >= 4, f"{kernel}: no vectorised polynomial"
    if module_name != "_margin":  # the face kernel keeps per-row scalar log/log1p/expm1/acos
        assert not re.search(r"\$(exp|log|log1p|expm1|pow)\b", asm), f"{kernel}: scalar libm call left"
    if kernel in F32_EXP_ROWS:  # float32 logits: exp_row's exp runs 8 float32 lanes wide
        assert any(getattr(t, "dtype", None) == numba.float32 for t in sig)
        single = re.findall(r"vfn?m(?:add|sub)\d+ps\s+[^\n]*%ymm", asm)
        assert len(single) >= 4, f"{kernel}: exp_row's float32 exp is not vectorised 8 lanes wide"
