"""Numerically stable scalar building blocks, inlined into kernels (float64 math).

* softplus(z) = log(1 + e^z) = max(z, 0) + log1p(exp(-|z|))
* sigmoid(x) = 1/(1 + e^-x) for x >= 0, e^x/(1 + e^x) for x < 0
* log_sigmoid(x) = -softplus(-x)

Editing this module does not invalidate Numba's cache of the kernels that inline it:
run ``make clean-cache`` afterwards.
"""

from __future__ import annotations

import math

from lossd.kernels.jit import inline


@inline
def softplus(z: float) -> float:
    """log(1 + exp(z)) without overflow and with full relative precision."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@inline
def sigmoid(x: float) -> float:
    """The logistic function, evaluated on the side where exp cannot overflow."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)
