"""binary_cross_entropy: log loss on probabilities (PyTorch ``F.binary_cross_entropy``).

``input`` x in [0, 1] and ``target`` y in [0, 1]: identical shapes of any rank >= 1.
``weight`` w >= 0 (optional, not differentiated): broadcastable to x's shape by NumPy
rules (rank <= rank of x; default 1). With L(u) = max(log u, -100):

    l_i = -w_i [ y_i L(x_i) + (1 - y_i) L(1 - x_i) ]              (shape of input)
    dR/dx_i = s w_i (x_i - y_i) / max(x_i (1 - x_i), 1e-12)      (PyTorch's backward, also
                                                                   where the clamp is active)
    dR/dy_i = s w_i [ L(1 - x_i) - L(x_i) ]                       (finite: +-100 at x in {0, 1})

log(1 - x) is evaluated as log1p(-x). ``mean`` divides by the element count M,
``batchmean`` by N; s is that factor (1 for none/sum).

The broadcast operand is read through per-dimension element strides (0 on broadcast
dimensions) over the collapsed shape of x: :func:`broadcast_plan` and
:func:`bcast_index` (also used by ``sigmoid_cross_entropy``).
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import boolean, dual, f64, for_floats, i64, inline, prange, ro, rw
from lossd.kernels.reduction import scale
from lossd.losses.common import finish, grad_buffer, grads_of, loss_buffer
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec


def broadcast_plan(shape: tuple[int, ...], operand: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(dims, strides): ``shape`` collapsed, and ``operand``'s element stride on each
    collapsed dimension (0 where it is broadcast). ``operand=None`` means a (1,) array."""
    rank = len(shape)
    oshape = (1,) if operand is None else operand.shape
    oshape = (1,) * (rank - len(oshape)) + tuple(oshape)
    dims: list[int] = []
    strides: list[int] = []
    acc = 1
    for d in range(rank - 1, -1, -1):
        size = int(shape[d])
        stride = acc if oshape[d] == size and size != 1 else 0
        acc *= oshape[d]
        if size == 1:
            continue
        if dims and strides[-1] * dims[-1] == stride:
            dims[-1] *= size
        else:
            dims.append(size)
            strides.append(stride)
    if not dims:
        dims, strides = [1], [0]
    return np.array(dims[::-1], np.int64), np.array(strides[::-1], np.int64)


@inline
def bcast_index(i, dims, strides):  # pragma: no cover - compiled
    """The element of a broadcast operand that flat index ``i`` of the full shape reads."""
    if dims.size == 1:  # one collapsed dim (dims[0] == full size > i): i % size == i, no division
        return i * strides[0]
    j = 0
    rem = i
    for d in range(dims.size - 1, -1, -1):
        size = dims[d]
        j += (rem % size) * strides[d]
        rem //= size
    return j


@dual(for_floats(lambda f: f64(ro(f), ro(f), ro(f), ro(i64), ro(i64), f64, rw(f), rw(f), rw(f),
                               boolean, boolean)))
def _bce(x, y, w, wdims, wst, s, out, gx, gy, want_x, want_y):  # pragma: no cover - compiled
    keep = out.size > 0
    total = 0.0
    for i in prange(x.size):
        xi = np.float64(x[i])
        yi = np.float64(y[i])
        wi = np.float64(w[bcast_index(i, wdims, wst)])
        lx = max(math.log(xi), -100.0) if xi > 0.0 else -100.0
        l1x = max(math.log1p(-xi), -100.0) if xi < 1.0 else -100.0
        value = -wi * (yi * lx + (1.0 - yi) * l1x)
        total += value
        if keep:
            out[i] = value
        if want_x:
            gx[i] = s * wi * (xi - yi) / max(xi * (1.0 - xi), 1e-12)
        if want_y:
            gy[i] = s * wi * (l1x - lx)
    return total


def compute(call: Call) -> LossOutput:
    x = call.inputs["input"]
    y = call.inputs["target"].ravel()
    w = call.get("weight")
    wdims, wst = broadcast_plan(x.shape, w)
    w = np.ones(1, call.dtype) if w is None else w.ravel()
    s = scale(call.reduction, x.size, call.n)
    out, gx, gy = loss_buffer(call, x.size), grad_buffer(call, "input"), grad_buffer(call, "target")
    total = _bce.call(x.size, x.ravel(), y, w, wdims, wst, s, out, gx, gy,
                      call.wants("input"), call.wants("target"))
    return LossOutput(finish(call, total, s, out, x.shape), grads_of(call, input=gx, target=gy))


def validate(call: Call) -> None:
    checks.same_shape(call, "target", "input")
    checks.values_in(call, "input", 0.0, 1.0, words="(probabilities)")
    checks.values_in(call, "target", 0.0, 1.0, words="(probabilities)")
    checks.broadcastable(call, "weight", "input")
    checks.nonnegative(call, "weight")


def examples(dtype: np.dtype) -> list:
    x = np.array([[0.0, 0.3, 0.9], [1.0, 0.5, 0.2]], dtype)
    y = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.2]], dtype)
    return [({"input": x, "target": y}, {}),
            ({"input": x, "target": y, "weight": np.array([0.5, 1.0, 2.0], dtype)}, {})]


SPEC = LossSpec(
    id="binary_cross_entropy",
    summary="Binary cross entropy of probabilities, logs clamped at -100 (PyTorch BCE).",
    inputs=(
        InputSpec("input", Kind.FLOAT, "any shape (N, ...), values in [0, 1]",
                  "predicted probability of class 1", differentiable=True),
        InputSpec("target", Kind.FLOAT, "same shape as input, values in [0, 1]",
                  "target probability", differentiable=True),
        InputSpec("weight", Kind.FLOAT, "broadcastable to input (NumPy rules, rank <= rank of input)",
                  "rescaling weight >= 0 (not differentiated)", required=False),
    ),
    params=(),
    loss_shape="shape of input",
    compute=compute,
    validate=validate,
    examples=examples,
)
