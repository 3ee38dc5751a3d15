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

from lossd.kernels.jit import FLOAT_TYPES, block, boolean, dual, i32, i64, prange, ro

#: elements per call of a block body (a prange iteration)
BLOCK = 1 << 14

#: float dtype -> (integer view dtype, exponent mask)
_BITS = {np.dtype(np.float32): (np.dtype(np.int32), 0x7F800000),
         np.dtype(np.float64): (np.dtype(np.int64), 0x7FF0000000000000)}


@block
def _max_exponent_block(i0, bits, mask):  # pragma: no cover - compiled
    """max of bits[i] & mask over elements [i0, i0 + BLOCK)."""
    chunk = bits[i0:min(i0 + BLOCK, bits.size)]
    m = 0
    for k in range(chunk.size):
        m = max(m, chunk[k] & mask)
    return m


@dual([i64(ro(i32), i64), i64(ro(i64), i64)])
def _max_exponent(bits, mask):  # pragma: no cover - compiled
    m = 0
    for b in prange((bits.size + BLOCK - 1) // BLOCK):
        m = max(m, _max_exponent_block(b * BLOCK, bits, mask))
    return m


def all_finite(a: np.ndarray) -> bool:
    """True when no value of the C-contiguous float32/float64 array ``a`` is NaN or +-Inf."""
    view, mask = _BITS[a.dtype]
    bits = (a if a.ndim == 1 else a.reshape(-1)).view(view)
    return _max_exponent.call(a.size, bits, mask) < mask


@block
def _count_outside_block(i0, a, lo, hi, lo_open, hi_open):  # pragma: no cover - compiled
    """How many of elements [i0, i0 + BLOCK) lie outside the interval."""
    chunk = a[i0:min(i0 + BLOCK, a.size)]
    n = 0
    for k in range(chunk.size):
        x = chunk[k]
        n += (x < lo) | (x > hi) | ((x == lo) & lo_open) | ((x == hi) & hi_open)
    return n


@dual([i64(ro(f), f, f, boolean, boolean) for f in FLOAT_TYPES])
def _count_outside(a, lo, hi, lo_open, hi_open):  # pragma: no cover - compiled
    n = 0
    for b in prange((a.size + BLOCK - 1) // BLOCK):
        n += _count_outside_block(b * BLOCK, a, lo, hi, lo_open, hi_open)
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
