"""Small helpers shared by the loss wrappers (Python side, never inside kernels)."""

from __future__ import annotations

import math

import numpy as np

from lossd.kernels.reduction import Reduction
from lossd.losses._pool import POOL
from lossd.spec import Call

FLOAT32 = np.dtype(np.float32)
#: float64 values at or beyond this magnitude round to +-Inf in float32 (max + half an ulp).
FLOAT32_OVERFLOW = 2.0**128 * (1.0 - 2.0**-25)


_PLACEHOLDERS: dict[tuple[np.dtype, int], np.ndarray] = {}


def buffer(call: Call, shape: tuple[int, ...] | int, wanted: bool = True) -> np.ndarray:
    """An output buffer in the request's float dtype, or an empty placeholder of the
    same rank (the kernel never touches it) when ``wanted`` is false.

    Placeholders have no elements, so one shared array per (dtype, rank) serves every call.
    """
    if not wanted:
        return placeholder(call.dtype, 1 if isinstance(shape, int) else len(shape))
    return POOL.empty(shape, call.dtype)


def placeholder(dtype: np.dtype, ndim: int) -> np.ndarray:
    """The shared empty array of ``dtype`` and rank ``ndim`` (an unused kernel argument)."""
    key = (dtype, ndim)
    empty = _PLACEHOLDERS.get(key)
    if empty is None:
        empty = _PLACEHOLDERS.setdefault(key, np.empty((0,) * ndim, dtype))
    return empty


def grad_buffer(call: Call, name: str) -> np.ndarray:
    """A flat gradient buffer for input ``name`` (size 0 when not requested)."""
    return buffer(call, call.inputs[name].size, call.wants(name))


def loss_buffer(call: Call, size: int) -> np.ndarray:
    """A flat buffer for the unreduced loss (size 0 unless reduction is none)."""
    return buffer(call, size, call.reduction is Reduction.NONE)


def finish(call: Call, total: float, divisor_scale: float, unreduced: np.ndarray,
           shape: tuple[int, ...]) -> np.ndarray:
    """The loss tensor: ``unreduced`` reshaped for none, else the 0-d ``total * scale``
    computed in float64 and rounded once to the request dtype."""
    if call.reduction is Reduction.NONE:
        return unreduced if unreduced.shape == shape else unreduced.reshape(shape)
    value = float(total) * divisor_scale
    if abs(value) >= FLOAT32_OVERFLOW and call.dtype == FLOAT32:  # the cheap test first
        value = math.copysign(math.inf, value)  # the documented +-Inf, without a cast warning
    return np.array(value, call.dtype)


def grads_of(call: Call, **flat: np.ndarray) -> dict[str, np.ndarray]:
    """The requested gradients, each reshaped to its input's shape."""
    return {name: g.reshape(call.inputs[name].shape) for name, g in flat.items() if call.wants(name)}
