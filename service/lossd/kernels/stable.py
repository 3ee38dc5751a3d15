"""Numerically stable scalar building blocks, inlined into kernels (float64 math).

* softplus(z) = log(1 + e^z) = max(z, 0) + log1p(exp(-|z|))
* sigmoid(x) = 1/(1 + e^-x) for x >= 0, e^x/(1 + e^x) for x < 0 (one exp of -|x|, a select)
* log_sigmoid(x) = -softplus(-x)

exp and log1p are :mod:`lossd.kernels.vecmath`'s branch-free versions, so loops calling
these helpers vectorise.

Editing this module (or vecmath) does not invalidate Numba's cache of the kernels that
inline it: run ``make clean-cache`` afterwards.
"""

from __future__ import annotations

from lossd.kernels import vecmath
from lossd.kernels.jit import inline


@inline
def softplus(z: float) -> float:
    """log(1 + exp(z)) without overflow and with full relative precision."""
    return max(z, 0.0) + vecmath.log1p(vecmath.exp(-abs(z)))


@inline
def sigmoid(x: float) -> float:
    """The logistic function, evaluated on the side where exp cannot overflow."""
    e = vecmath.exp(-abs(x))
    return (1.0 if x >= 0.0 else e) / (1.0 + e)
