"""Wrapper-side plumbing shared by the elementwise and per-sample regression losses.

Each loss module keeps its own Numba kernel (kernels cannot be shared with on-disk
caching) and calls :func:`run`, which fixes one kernel calling convention::

    total = kernel(*diff, *data, *params, s, out, *grad_buffers, *wants)

* ``diff``: the differentiable inputs, flattened to 1-D (``rows=False``) or viewed as
  ``(N, K)`` rows (``rows=True``, per-sample losses of shape ``(N,)``). An absent
  optional input (``l2_loss.target``) arrives as an empty array of the same rank.
* ``data``: the non-differentiable inputs (targets, labels), always flattened to 1-D.
* ``s``: the reduction factor (README §4): 1, 1/M (M = element count, or N for rows),
  or 1/N.
* ``out``: the unreduced loss, size 0 unless ``reduction = none``.
* one gradient buffer per ``diff`` input (size 0 when that gradient is not requested),
  then one boolean "wanted" flag per ``diff`` input.

The kernel returns the float64 sum of the unreduced losses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import Dual
from lossd.kernels.reduction import scale
from lossd.losses.common import buffer, finish, loss_buffer
from lossd.spec import Call, InputSpec, Kind, LossOutput

#: the prediction/target pair of the regression losses: identical shapes, both differentiable.
PAIR_INPUTS = (
    InputSpec("input", Kind.FLOAT, "any shape (N, ...)", "prediction", differentiable=True),
    InputSpec("target", Kind.FLOAT, "same shape as input", "reference value", differentiable=True),
)


def validate_pair(call: Call) -> None:
    """``target`` has exactly the shape of ``input`` (no broadcasting)."""
    checks.same_shape(call, "target", "input")


def pair_examples(dtype: np.dtype) -> list:
    """Warm-up example of a prediction/target loss: differences from -2.5 to 2.5, so both
    pieces of the piecewise losses (smooth_l1, huber) run."""
    x = np.linspace(-2, 2, 6, dtype=dtype).reshape(2, 3)
    return [({"input": x, "target": (x[::-1] * 0.25).copy()}, {})]


def flat(call: Call, name: str, rows: bool = False) -> np.ndarray:
    """Input ``name`` as a 1-D view, or as ``(N, K)`` rows; empty when absent."""
    a = call.get(name)
    if a is None:
        return np.empty((0, 0) if rows else 0, call.dtype)
    return a.reshape(a.shape[0], -1) if rows else a.reshape(-1)


def grad_buffers(call: Call, arrays: Sequence[np.ndarray], names: Sequence[str]) -> list[np.ndarray]:
    """One gradient buffer per name, shaped like its (flattened) array; size 0 unless wanted."""
    return [buffer(call, a.shape, call.wants(name)) for a, name in zip(arrays, names)]


def shaped_grads(call: Call, names: Sequence[str], bufs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """The requested gradients, each reshaped to its input's shape."""
    out = {}
    for name, g in zip(names, bufs):
        if call.wants(name):
            shape = call.inputs[name].shape
            out[name] = g if g.shape == shape else g.reshape(shape)
    return out


def run(call: Call, kern: Dual, diff: Sequence[str], data: Sequence[str] = (),
        params: Sequence[Any] = (), rows: bool = False) -> LossOutput:
    """Run ``kern`` with the calling convention of this module and build the LossOutput.

    ``rows=True``: the loss has one entry per sample (shape ``(N,)``; ``mean`` = sum/N).
    """
    primary = call.inputs[diff[0]]
    n = call.n
    count = n if rows else primary.size
    s = scale(call.reduction, count, n)
    arrays = [flat(call, name, rows) for name in diff]
    extra = [flat(call, name) for name in data]
    out = loss_buffer(call, count)
    grads = grad_buffers(call, arrays, diff)
    wants = [call.wants(name) for name in diff]
    total = kern.call(primary.size, *arrays, *extra, *params, s, out, *grads, *wants)
    shape = (n,) if rows else primary.shape
    return LossOutput(finish(call, total, s, out, shape), shaped_grads(call, diff, grads))
