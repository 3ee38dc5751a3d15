"""sigmoid_focal: binary / multi-label focal loss (torchvision ``sigmoid_focal_loss``).

``logits`` x: float, any shape; ``targets`` t: same shape, float in [0, 1] (not
differentiated). With p = sigmoid(x), elementwise:

    CE  = max(x, 0) - x t + log1p(exp(-|x|))
    q   = 1 - p_t = (1 - t) sigmoid(x) + t sigmoid(-x)
    a_t = alpha t + (1 - alpha)(1 - t)   (alpha >= 0),   1 (alpha < 0: weighting disabled)
    l   = a_t q^gamma CE                                            (shape of logits)

Gradient (r = 1 for none/sum, 1/M for mean over all M elements, 1/N for batchmean):

    dR/dx = r a_t [ gamma q^(gamma-1) (1 - 2t) p(1-p) CE + q^gamma (p - t) ]
          = r a_t q^gamma [ gamma (1 - 2t) (p(1-p)/q) CE + (p - t) ]

The second, singularity-free form is evaluated: p(1-p)/q <= 1 (= 1 - q for binary t),
and the term is 0 where q = 0 (saturated binary targets). p - t = (1 - t) sigmoid(x)
- t sigmoid(-x) and p(1-p) = sigmoid(x) sigmoid(-x) keep full precision for large |x|.
q^gamma is q q for the default gamma = 2 and exp(gamma log q) otherwise (vecmath; relative
error about |gamma log q| 2^-53, and 0 at q = 0), so the element loop vectorises.

The terms are evaluated in the request's float type (float32: 8 AVX2 lanes, q^gamma then
has a relative error about |gamma log q| 2^-24; the loss is non-negative and no float32
intermediate overflows: exp(-|x|) <= 1, q <= 1); the loss sum is float64.
"""

from __future__ import annotations

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, inline, prange, ro, rw
from lossd.kernels.reduction import scale
from lossd.kernels.vecmath import like, texp, tlog, tlog1p
from lossd.losses._blocks import BLOCK, block_sum, blocks, sink
from lossd.losses.common import finish, grad_buffer, grads_of, loss_buffer
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec


@inline
def _terms(xi, ti, alpha, gamma, r, square):  # pragma: no cover - compiled
    """(loss, dR/dx) of one element in the float type of its arguments, branch-free;
    ``square`` (a literal at the call site): gamma == 2, q^gamma = q q, else
    q^gamma = exp(gamma log q) (q = 0 -> 0, gamma = 0 -> 1)."""
    zero, one = like(xi, 0.0), like(xi, 1.0)
    e = texp(-abs(xi))
    big = one / (one + e)  # sigmoid(|x|)
    small = e * big  # sigmoid(-|x|)
    sp = big if xi >= zero else small
    sn = small if xi >= zero else big
    ce = max(xi, zero) - xi * ti + tlog1p(e)
    q = (one - ti) * sp + ti * sn
    at = alpha * ti + (one - alpha) * (one - ti) if alpha >= zero else one
    if square:
        qg = q * q
    else:
        qg = texp(gamma * tlog(q)) if gamma != zero else one
    pmt = (one - ti) * sp - ti * sn
    focus = gamma * (one - (ti + ti)) * (sp * sn / q) * ce if q > zero and gamma != zero else zero
    return at * qg * ce, r * at * qg * (focus + pmt)


@inline
def _run(xb, tb, ob, gxb, alpha, gamma, r, square):  # pragma: no cover - compiled
    """One block's element loop (unconditional stores: ``ob``/``gxb`` are sinks) in the float
    type of ``xb``; returns the float64 loss sum."""
    af, gf, rf = like(xb, alpha), like(xb, gamma), like(xb, r)
    for k in range(xb.size):
        ob[k], gxb[k] = _terms(xb[k], tb[k], af, gf, rf, square)
    return block_sum(ob)


@block
def _focal_block(i0, x, t, alpha, gamma, r, out, gx, want):  # pragma: no cover - compiled
    """Elements [i0, i0 + BLOCK) of :func:`_focal`: one loop specialised for the default
    gamma = 2 (no exp/log for the power), one for any other gamma."""
    stop = min(i0 + BLOCK, x.size)
    xb, tb, ob, gxb = x[i0:stop], t[i0:stop], sink(out, i0, stop), sink(gx, i0, stop)
    if gamma == 2.0:
        return _run(xb, tb, ob, gxb, alpha, gamma, r, True)
    return _run(xb, tb, ob, gxb, alpha, gamma, r, False)


@dual(for_floats(lambda f: f64(ro(f), ro(f), f64, f64, f64, rw(f), rw(f), boolean)))
def _focal(x, t, alpha, gamma, r, out, gx, want):  # pragma: no cover - compiled
    total = 0.0
    for b in prange(blocks(x.size)):
        total += _focal_block(b * BLOCK, x, t, alpha, gamma, r, out, gx, want)
    return total


def compute(call: Call) -> LossOutput:
    x = call.inputs["logits"]
    t = call.inputs["targets"]
    r = scale(call.reduction, x.size, call.n)
    out = loss_buffer(call, x.size)
    gx = grad_buffer(call, "logits")
    total = _focal.call(x.size, x.ravel(), t.ravel(), call.params["alpha"], call.params["gamma"], r,
                        out, gx, call.wants("logits"))
    return LossOutput(finish(call, total, r, out, x.shape), grads_of(call, logits=gx))


def validate(call: Call) -> None:
    checks.same_shape(call, "targets", "logits")
    checks.values_in(call, "targets", 0.0, 1.0, words="(probability targets)")


def examples(dtype: np.dtype) -> list:
    x = np.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]], dtype)
    t = np.array([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0]], dtype)
    return [({"logits": x, "targets": t}, {})]


SPEC = LossSpec(
    id="sigmoid_focal",
    summary="Sigmoid focal loss a_t (1 - p_t)^gamma BCE(logits, targets), elementwise.",
    aliases=("focal_loss",),
    inputs=(
        InputSpec("logits", Kind.FLOAT, "any shape (N, ...)", "logits", differentiable=True),
        InputSpec("targets", Kind.FLOAT, "same shape as logits",
                  "targets in [0, 1] (soft targets allowed; not differentiated)"),
    ),
    params=(
        ParamSpec("alpha", float, 0.25, "weight of the positive class; a negative value disables "
                  "the alpha weighting", maximum=1.0, range="real in [0, 1], or negative to disable"),
        ParamSpec("gamma", float, 2.0, "focusing exponent", minimum=0.0),
    ),
    loss_shape="shape of logits",
    compute=compute,
    validate=validate,
    examples=examples,
)
