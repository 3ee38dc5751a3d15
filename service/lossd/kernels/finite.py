"""Finiteness of a float array in one vectorised pass (request validation).

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

from lossd.kernels.jit import dual, i32, i64, prange, ro

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
