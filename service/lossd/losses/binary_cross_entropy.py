"""binary_cross_entropy: log loss on probabilities (PyTorch ``F.binary_cross_entropy``).

``input`` x in [0, 1] and ``target`` y in [0, 1]: identical shapes of any rank >= 1.
``weight`` w >= 0 (optional, not differentiated): broadcastable to x's shape by NumPy
rules (rank <= rank of x; default 1). With L(u) = max(log u, -100):

    l_i = -w_i [ y_i L(x_i) + (1 - y_i) L(1 - x_i) ]              (shape of input)
    dR/dx_i = s w_i (x_i - y_i) / max(x_i (1 - x_i), 1e-12)      (PyTorch's backward, also
                                                                   where the clamp is active)
    dR/dy_i = s w_i [ L(1 - x_i) - L(x_i) ]                       (finite: +-100 at x in {0, 1})

log(1 - x) is evaluated as log1p(-x). dR/dy = s w log((1 - x)/x) cancels near x = 1/2:
there, with d = 1 - 2x (exact), it is 2 atanh(d) = 2 (d + d^3/3 + d^5/5 + d^7/7) for
|d| < 1/8 (float32) or 1/500 (float64), where the omitted terms are below the precision.
``mean`` divides by the element count M, ``batchmean`` by N; s is that factor (1 for
none/sum).

The terms are evaluated in the request's float type (float32 requests: float32 math, 8
AVX2 lanes; every term is a sum of non-negative parts, and no float32 intermediate
overflows: logs of [0, 1] and the 1e-12 clamp are in range); the loss sum is float64.
The broadcast weight is read in vectorisable runs (:mod:`lossd.losses._blocks`); the
logs are :mod:`lossd.kernels.vecmath`'s branch-free ones (log(0) = -Inf, clamped to -100).
"""

from __future__ import annotations

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, i64, inline, prange, ro, rw
from lossd.kernels.reduction import scale
from lossd.kernels.vecmath import like, pick, tlog, tlog1p
from lossd.losses._blocks import BLOCK, block_sum, blocks, broadcast_plan, gather, sink
from lossd.losses.common import finish, grad_buffer, grads_of, loss_buffer
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec


@inline
def _bce_terms(xi, yi, wi, s):  # pragma: no cover - compiled
    """(loss, dR/dx, dR/dy) of one element in the float type of its arguments, branch-free
    (log(0) = log1p(-1) = -Inf -> -100)."""
    one = like(xi, 1.0)
    lx = max(tlog(xi), like(xi, -100.0))
    l1x = max(tlog1p(-xi), like(xi, -100.0))
    value = -wi * (yi * lx + (one - yi) * l1x)
    g_x = s * wi * (xi - yi) / max(xi * (one - xi), like(xi, 1e-12))
    d = one - (xi + xi)
    d2 = d * d
    atanh2 = (d + d) * (one + d2 * (like(xi, 1.0 / 3.0) + d2 * (like(xi, 0.2) + d2 * like(xi, 1.0 / 7.0))))
    g_y = s * wi * (atanh2 if abs(d) < pick(xi, 0.125, 0.002) else l1x - lx)
    return value, g_x, g_y


@block
def _bce_block(i0, x, y, w, wdims, wst, s, out, gx, gy, want_x, want_y):  # pragma: no cover - compiled
    """Elements [i0, i0 + BLOCK) of :func:`_bce`; returns their loss sum."""
    stop = min(i0 + BLOCK, x.size)
    wb = np.empty(BLOCK, x.dtype)
    gather(wb, w, wdims, wst, i0, stop)
    # block views indexed from 0 (an index from an unknown i0 defeats LLVM's bounds analysis);
    # outputs not requested get a scratch (sink): unconditional stores, no aliasing check
    xb, yb = x[i0:stop], y[i0:stop]
    ob, gxb, gyb = sink(out, i0, stop), sink(gx, i0, stop), sink(gy, i0, stop)
    sf = like(xb, s)
    for k in range(stop - i0):
        ob[k], gxb[k], gyb[k] = _bce_terms(xb[k], yb[k], wb[k], sf)
    return block_sum(ob)


@dual(for_floats(lambda f: f64(ro(f), ro(f), ro(f), ro(i64), ro(i64), f64, rw(f), rw(f), rw(f),
                               boolean, boolean)))
def _bce(x, y, w, wdims, wst, s, out, gx, gy, want_x, want_y):  # pragma: no cover - compiled
    total = 0.0
    for b in prange(blocks(x.size)):
        total += _bce_block(b * BLOCK, x, y, w, wdims, wst, s, out, gx, gy, want_x, want_y)
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
