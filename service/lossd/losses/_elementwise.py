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
from lossd.kernels.reduction import Reduction, scale
from lossd.losses._pool import POOL
from lossd.losses.common import buffer, finish, placeholder
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


def _view(a: np.ndarray | None, dtype: np.dtype, rows: bool) -> np.ndarray:
    """``a`` as a 1-D view, or as ``(N, K)`` rows; an empty placeholder when absent."""
    if a is None:
        return placeholder(dtype, 2 if rows else 1)
    if rows:
        return a if a.ndim == 2 else a.reshape(a.shape[0], -1)
    return a if a.ndim == 1 else a.reshape(-1)


def flat(call: Call, name: str, rows: bool = False) -> np.ndarray:
    """Input ``name`` as a 1-D view, or as ``(N, K)`` rows; empty when absent."""
    return _view(call.get(name), call.dtype, rows)


def grad_buffers(call: Call, arrays: Sequence[np.ndarray], names: Sequence[str]) -> list[np.ndarray]:
    """One gradient buffer per name, shaped like its (flattened) array; size 0 unless wanted."""
    return [buffer(call, a.shape, call.wants(name)) for a, name in zip(arrays, names)]


def shaped_grads(call: Call, names: Sequence[str], bufs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """The requested gradients, each reshaped to its input's shape."""
    out = {}
    wanted, inputs = call.grads, call.inputs
    for name, g in zip(names, bufs):
        if name in wanted:
            shape = inputs[name].shape
            out[name] = g if g.shape == shape else g.reshape(shape)
    return out


def run(call: Call, kern: Dual, diff: Sequence[str], data: Sequence[str] = (),
        params: Sequence[Any] = (), rows: bool = False) -> LossOutput:
    """Run ``kern`` with the calling convention of this module and build the LossOutput.

    ``rows=True``: the loss has one entry per sample (shape ``(N,)``; ``mean`` = sum/N).
    This is the per-call path of every small request (a few microseconds of Python in
    all): one loop over the names, no reshape when an input already has the kernel's rank,
    small buffers straight from ``np.empty`` (by element
    count when 1-D: a shape tuple costs NumPy a conversion).
    """
    inputs, wanted, dtype = call.inputs, call.grads, call.dtype
    primary = inputs[diff[0]]
    shape = primary.shape
    n = shape[0]
    size = primary.size
    count = n if rows else size
    reduction = call.reduction
    s = scale(reduction, count, n)
    ndim = 2 if rows else 1
    pooled = POOL.min_bytes // dtype.itemsize  # smaller buffers: a plain np.empty (int size if 1-D)
    args, bufs, wants = [], [], []
    for name in diff:
        a = inputs.get(name)
        if a is None:
            a = placeholder(dtype, ndim)
        elif a.ndim != ndim:
            a = a.reshape(a.shape[0], -1) if rows else a.reshape(-1)
        args.append(a)
        if name in wanted:
            wants.append(True)
            k = a.size
            bufs.append(POOL.empty(a.shape, dtype, k) if k >= pooled
                        else np.empty(a.shape if rows else k, dtype))
        else:
            wants.append(False)
            bufs.append(placeholder(dtype, ndim))
    for name in data:
        args.append(_view(inputs.get(name), dtype, False))
    out = POOL.empty(count, dtype) if reduction is Reduction.NONE else placeholder(dtype, 1)
    total = kern.pick(size)(*args, *params, s, out, *bufs, *wants)
    grads = {}
    for name, g, w in zip(diff, bufs, wants):
        if w:
            grad_shape = inputs[name].shape
            grads[name] = g if g.shape == grad_shape else g.reshape(grad_shape)
    return LossOutput(finish(call, total, s, out, (n,) if rows else shape), grads)
