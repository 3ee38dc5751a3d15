"""kl_div: pointwise KL divergence in PyTorch's ``F.kl_div`` convention.

``input`` x = log q (any shape of rank >= 1); ``target`` t of the same shape: p when
``log_target`` is false (p >= 0), log p when it is true. The target plays P in KL(P||Q).

    log_target = false:  l_i = p_i (log p_i - x_i) for p_i > 0, 0 for p_i = 0
                         dR/dx_i = -s p_i
                         dR/dt_i = s (log p_i + 1 - x_i) for p_i > 0, -Inf at p_i = 0
    log_target = true:   l_i = e^{t_i} (t_i - x_i)
                         dR/dx_i = -s e^{t_i},  dR/dt_i = s e^{t_i} (t_i - x_i + 1)

``mean`` divides by the element count M (PyTorch's ``mean``, not the KL value);
``batchmean`` by N (the per-sample KL when dim 1 holds the distribution); s is that
factor. A product e^t * 0 whose factor e^t overflowed is taken as its limit 0 (never NaN).
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels import vecmath
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, inline, prange, ro, rw
from lossd.kernels.reduction import scale
from lossd.losses._blocks import BLOCK, blocks, sink
from lossd.losses.common import finish, grad_buffer, grads_of, loss_buffer
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec


@inline
def _terms(xi, ti, s, log_target):  # pragma: no cover - compiled
    """(loss, dR/dx, dR/dt) of one element, branch-free; ``log_target`` is a literal at the
    call site (one exp or one log per element)."""
    if log_target:
        p = vecmath.exp(ti)
        d = ti - xi
        value = p * d if d != 0.0 else 0.0
        g_t = s * p * (d + 1.0) if d != -1.0 else 0.0
    else:
        positive = ti > 0.0
        lp = vecmath.log(ti)
        p = ti if positive else 0.0
        value = ti * (lp - xi) if positive else 0.0
        g_t = s * (lp + 1.0 - xi) if positive else -np.inf
    return value, -s * p, g_t


@inline
def _run(xb, tb, s, ob, gxb, gtb, log_target):  # pragma: no cover - compiled
    """One block's element loop (unconditional stores: the outputs are sinks); returns the
    loss sum."""
    total = 0.0
    for k in range(xb.size):
        value, g_x, g_t = _terms(np.float64(xb[k]), np.float64(tb[k]), s, log_target)
        total += value
        ob[k] = value
        gxb[k] = g_x
        gtb[k] = g_t
    return total


@block
def _kl_block(i0, x, t, log_target, s, out, gx, gt, want_x, want_t):  # pragma: no cover - compiled
    """Elements [i0, i0 + BLOCK) of :func:`_kl`, one loop per ``log_target``."""
    stop = min(i0 + BLOCK, x.size)
    xb, tb = x[i0:stop], t[i0:stop]
    ob, gxb, gtb = sink(out, i0, stop), sink(gx, i0, stop), sink(gt, i0, stop)
    if log_target:
        return _run(xb, tb, s, ob, gxb, gtb, True)
    return _run(xb, tb, s, ob, gxb, gtb, False)


@dual(for_floats(lambda f: f64(ro(f), ro(f), boolean, f64, rw(f), rw(f), rw(f), boolean, boolean)))
def _kl(x, t, log_target, s, out, gx, gt, want_x, want_t):  # pragma: no cover - compiled
    total = 0.0
    for b in prange(blocks(x.size)):
        total += _kl_block(b * BLOCK, x, t, log_target, s, out, gx, gt, want_x, want_t)
    return total


def compute(call: Call) -> LossOutput:
    x = call.inputs["input"]
    t = call.inputs["target"].ravel()
    s = scale(call.reduction, x.size, call.n)
    out, gx, gt = loss_buffer(call, x.size), grad_buffer(call, "input"), grad_buffer(call, "target")
    total = _kl.call(x.size, x.ravel(), t, call.params["log_target"], s, out, gx, gt,
                     call.wants("input"), call.wants("target"))
    return LossOutput(finish(call, total, s, out, x.shape), grads_of(call, input=gx, target=gt))


def validate(call: Call) -> None:
    checks.same_shape(call, "target", "input")
    if not call.params["log_target"]:
        checks.values_in(call, "target", 0.0, math.inf, words="(probabilities p with log_target = false)")


def examples(dtype: np.dtype) -> list:
    x = np.log(np.array([[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]], dtype))
    p = np.array([[0.0, 0.5, 0.5], [0.2, 0.2, 0.6]], dtype)
    return [({"input": x, "target": p}, {}),
            ({"input": x, "target": x[::-1].copy()}, {"log_target": True})]


SPEC = LossSpec(
    id="kl_div",
    summary="Pointwise KL divergence p (log p - log q) with log-probability input (PyTorch kl_div).",
    inputs=(
        InputSpec("input", Kind.FLOAT, "any shape (N, ...)", "log q, log-probabilities of the model",
                  differentiable=True),
        InputSpec("target", Kind.FLOAT, "same shape as input",
                  "p (>= 0), or log p when log_target is true", differentiable=True),
    ),
    params=(
        ParamSpec("log_target", bool, False, "target holds log p instead of p"),
    ),
    loss_shape="shape of input",
    compute=compute,
    validate=validate,
    examples=examples,
)
