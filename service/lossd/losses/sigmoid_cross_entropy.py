"""sigmoid_cross_entropy: binary cross entropy of logits (PyTorch
``F.binary_cross_entropy_with_logits``; Caffe ``SigmoidCrossEntropyLoss``).

``input`` x: logits, any shape of rank >= 1 (dim 0 = batch); ``target`` y in [0, 1],
same shape; each element is an independent binary problem. Optional ``weight`` w >= 0
and ``pos_weight`` pi >= 0 (not differentiated), each broadcastable to x's shape by
NumPy rules (default 1). With softplus(z) = max(z, 0) + log1p(exp(-|z|)):

    l_i = w_i [ pi_i y_i softplus(-x_i) + (1 - y_i) softplus(x_i) ]    (shape of input)
    dR/dx_i = s w_i [ sigmoid(x_i) (pi_i y_i + 1 - y_i) - pi_i y_i ]
    dR/dy_i = s w_i [ pi_i softplus(-x_i) - softplus(x_i) ]

Without pi (pi = 1) this is w [max(x, 0) - x y + log1p(exp(-|x|))], evaluated here as a
sum of two non-negative terms (no cancellation, no overflow at |x| = 1e4). ``mean``
divides by the element count M (PyTorch); ``batchmean`` by N (Caffe's default
BATCH_SIZE normalisation); s is that factor (1 for none/sum).

The terms are evaluated in the request's float type (float32 requests: float32 math, 8
AVX2 lanes; the loss is a sum of non-negative parts and exp(-|x|) cannot overflow); the
loss sum is float64.
"""

from __future__ import annotations

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, i64, inline, prange, ro, rw
from lossd.kernels.reduction import scale
from lossd.kernels.vecmath import like, texp, tlog1p
from lossd.losses._blocks import BLOCK, block_sum, blocks, broadcast_plan, gather, sink
from lossd.losses.common import finish, grad_buffer, grads_of, loss_buffer
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec


@inline
def _sce_terms(xi, yi, wi, pi, s):  # pragma: no cover - compiled
    """(loss, dR/dx, dR/dy) of one element in the float type of its arguments, branch-free."""
    # one exp and one log1p per element: softplus(+-x) = max(+-x, 0) + log1p(t) and
    # sigmoid(x) = 1/(1 + t) (x >= 0) or t/(1 + t), all from t = exp(-|x|)
    zero, one = like(xi, 0.0), like(xi, 1.0)
    t = texp(-abs(xi))
    lt = tlog1p(t)
    sp_neg = max(-xi, zero) + lt
    sp_pos = max(xi, zero) + lt
    py = pi * yi
    value = wi * (py * sp_neg + (one - yi) * sp_pos)
    sig = (one if xi >= zero else t) / (one + t)
    return value, s * wi * (sig * (py + one - yi) - py), s * wi * (pi * sp_neg - sp_pos)


@block
def _sce_block(i0, x, y, w, wdims, wst, pw, pdims, pst, s, out, gx, gy, want_x,
               want_y):  # pragma: no cover - compiled
    """Elements [i0, i0 + BLOCK) of :func:`_sce`; returns their loss sum."""
    stop = min(i0 + BLOCK, x.size)
    wb = np.empty(BLOCK, x.dtype)
    gather(wb, w, wdims, wst, i0, stop)
    pb = np.empty(BLOCK, x.dtype)
    gather(pb, pw, pdims, pst, i0, stop)
    # block views indexed from 0 (an index from an unknown i0 defeats LLVM's bounds analysis);
    # outputs not requested get a scratch (sink): unconditional stores, no aliasing check
    xb, yb = x[i0:stop], y[i0:stop]
    ob, gxb, gyb = sink(out, i0, stop), sink(gx, i0, stop), sink(gy, i0, stop)
    sf = like(xb, s)
    for k in range(stop - i0):
        ob[k], gxb[k], gyb[k] = _sce_terms(xb[k], yb[k], wb[k], pb[k], sf)
    return block_sum(ob)


@dual(for_floats(lambda f: f64(ro(f), ro(f), ro(f), ro(i64), ro(i64), ro(f), ro(i64), ro(i64), f64,
                               rw(f), rw(f), rw(f), boolean, boolean)))
def _sce(x, y, w, wdims, wst, pw, pdims, pst, s, out, gx, gy, want_x, want_y):  # pragma: no cover
    total = 0.0
    for b in prange(blocks(x.size)):
        total += _sce_block(b * BLOCK, x, y, w, wdims, wst, pw, pdims, pst, s, out, gx, gy,
                            want_x, want_y)
    return total


def compute(call: Call) -> LossOutput:
    x = call.inputs["input"]
    y = call.inputs["target"].ravel()
    w, pw = call.get("weight"), call.get("pos_weight")
    wdims, wst = broadcast_plan(x.shape, w)
    pdims, pst = broadcast_plan(x.shape, pw)
    one = np.ones(1, call.dtype)
    w = one if w is None else w.ravel()
    pw = one if pw is None else pw.ravel()
    s = scale(call.reduction, x.size, call.n)
    out, gx, gy = loss_buffer(call, x.size), grad_buffer(call, "input"), grad_buffer(call, "target")
    total = _sce.call(x.size, x.ravel(), y, w, wdims, wst, pw, pdims, pst, s, out, gx, gy,
                      call.wants("input"), call.wants("target"))
    return LossOutput(finish(call, total, s, out, x.shape), grads_of(call, input=gx, target=gy))


def validate(call: Call) -> None:
    checks.same_shape(call, "target", "input")
    checks.values_in(call, "target", 0.0, 1.0, words="(probabilities)")
    for name in ("weight", "pos_weight"):
        checks.broadcastable(call, name, "input")
        checks.nonnegative(call, name)


def examples(dtype: np.dtype) -> list:
    x = np.array([[-2.0, 0.0, 3.0], [80.0, -80.0, 0.5]], dtype)
    y = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.2]], dtype)
    return [({"input": x, "target": y}, {}),
            ({"input": x, "target": y, "weight": np.array([0.5, 1.0, 2.0], dtype),
              "pos_weight": np.array([[2.0], [3.0]], dtype)}, {})]


SPEC = LossSpec(
    id="sigmoid_cross_entropy",
    summary="Binary cross entropy of logits (sigmoid + BCE fused, stable softplus form).",
    aliases=("binary_cross_entropy_with_logits",),
    inputs=(
        InputSpec("input", Kind.FLOAT, "any shape (N, ...)", "logits", differentiable=True),
        InputSpec("target", Kind.FLOAT, "same shape as input, values in [0, 1]",
                  "target probability", differentiable=True),
        InputSpec("weight", Kind.FLOAT, "broadcastable to input (NumPy rules, rank <= rank of input)",
                  "rescaling weight >= 0 (not differentiated)", required=False),
        InputSpec("pos_weight", Kind.FLOAT,
                  "broadcastable to input (NumPy rules; per class of NCHW input: (C, 1, 1))",
                  "weight >= 0 of the positive term (not differentiated)", required=False),
    ),
    params=(),
    loss_shape="shape of input",
    compute=compute,
    validate=validate,
    examples=examples,
)
