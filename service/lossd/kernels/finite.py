"""Finiteness and interval checks of a float array, each one vectorised pass (request
validation).

A float is NaN or +-Inf exactly when all its exponent bits are set. Viewing the values
as integers of the same width::

    m = max_i (bits(a_i) & E)        finite everywhere  <=>  m < E

with E the exponent mask (0x7F800000 for float32, 0x7FF0000000000000 for float64;
``bits & E`` is non-negative, so a signed max works). Integer arithmetic: no fastmath
rewrite can fold it away (a float formulation such as ``sum(a_i - a_i)`` is folded to 0
under ``reassoc``), it cannot overflow, it needs no ``np.errstate``, and the max
reduction vectorises.
"""

from __future__ import annotations

import numpy as np

from lossd.kernels.jit import FLOAT_TYPES, boolean, dual, i32, i64, prange, ro

#: float dtype -> (integer view dtype, exponent mask)
_BITS = {np.dtype(np.float32): (np.dtype(np.int32), 0x7F800000),
         np.dtype(np.float64): (np.dtype(np.int64), 0x7FF0000000000000)}


@dual([i64(ro(i32), i64), i64(ro(i64), i64)])
def _max_exponent(bits, mask):  # pragma: no cover - compiled
    m = 0
    for i in prange(bits.size):
        m = max(m, bits[i] & mask)
    return m


def all_finite(a: np.ndarray) -> bool:
    """True when no value of the C-contiguous float32/float64 array ``a`` is NaN or +-Inf."""
    view, mask = _BITS[a.dtype]
    bits = (a if a.ndim == 1 else a.reshape(-1)).view(view)
    return _max_exponent.call(a.size, bits, mask) < mask


@dual([i64(ro(f), f, f, boolean, boolean) for f in FLOAT_TYPES])
def _count_outside(a, lo, hi, lo_open, hi_open):  # pragma: no cover - compiled
    n = 0
    for i in prange(a.size):
        x = a[i]
        n += (x < lo) | (x > hi) | ((x == lo) & lo_open) | ((x == hi) & hi_open)
    return n


def any_outside(a: np.ndarray, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> bool:
    """True when a value of the C-contiguous float32/float64 array ``a`` lies outside the
    interval from ``lo`` to ``hi`` (open at an end when ``lo_open`` / ``hi_open``), the
    bounds rounded to ``a``'s dtype as NumPy compares (NaN counts as inside: finiteness
    is checked first). One vectorised pass, no temporaries (NumPy's ``(a < lo) | (a > hi)``
    writes three boolean arrays and reads them again)."""
    t = a.dtype.type
    flat = a if a.ndim == 1 else a.reshape(-1)
    return _count_outside.pick(a.size)(flat, t(lo), t(hi), lo_open, hi_open) > 0
