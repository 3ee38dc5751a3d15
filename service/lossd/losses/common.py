"""Small helpers shared by the loss wrappers (Python side, never inside kernels)."""

from __future__ import annotations

import numpy as np

from lossd.kernels.reduction import Reduction
from lossd.spec import Call


def buffer(call: Call, shape: tuple[int, ...] | int, wanted: bool = True) -> np.ndarray:
    """An output buffer in the request's float dtype, or an empty placeholder of the
    same rank (the kernel never touches it) when ``wanted`` is false."""
    if not wanted:
        return np.empty((0,) * (1 if isinstance(shape, int) else len(shape)), call.dtype)
    return np.empty(shape, call.dtype)


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
        return unreduced.reshape(shape)
    with np.errstate(over="ignore"):  # float32 overflow is the documented +-Inf result
        return np.asarray(total * divisor_scale, dtype=np.float64).astype(call.dtype)


def grads_of(call: Call, **flat: np.ndarray) -> dict[str, np.ndarray]:
    """The requested gradients, each reshaped to its input's shape."""
    return {name: g.reshape(call.inputs[name].shape) for name, g in flat.items() if call.wants(name)}
