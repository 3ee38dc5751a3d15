"""smooth_l1: Fast R-CNN smooth L1 loss (PyTorch ``F.smooth_l1_loss``).

    d_i = x_i - y_i
    l_i = 0.5 d_i^2 / beta     if |d_i| < beta,   else |d_i| - 0.5 beta   (shape of input)
    dR/dx_i = s d_i / beta inside, s sign(d_i) outside;  dR/dy_i = -dR/dx_i

``input`` x and ``target`` y: floating, identical shapes of any rank >= 1. ``beta`` >= 0;
beta = 0 is exactly ``l1`` (value and gradient, sign(0) = 0). The pieces join with equal
value and slope at |d| = beta. ``mean`` divides by M, ``batchmean`` by N.
"""

from __future__ import annotations

import numpy as np

from lossd.kernels.jit import block, boolean, dual, f64, for_floats, prange, ro, rw
from lossd.losses import _elementwise
from lossd.losses._blocks import BLOCK, blocks, sink
from lossd.spec import Call, LossOutput, LossSpec, ParamSpec


@block
def _smooth_l1_block(i0, x, y, beta, s, out, gx, gy):  # pragma: no cover - compiled
    """Elements [i0, i0 + BLOCK) of :func:`_smooth_l1` (unrequested outputs: a scratch sink)."""
    stop = min(i0 + BLOCK, x.size)
    xb, yb = x[i0:stop], y[i0:stop]
    ob, gxb, gyb = sink(out, i0, stop), sink(gx, i0, stop), sink(gy, i0, stop)
    total = 0.0
    for k in range(stop - i0):
        d = np.float64(xb[k]) - np.float64(yb[k])
        a = abs(d)
        if a < beta:
            v = 0.5 * d * d / beta
            g = s * d / beta
        else:
            v = a - 0.5 * beta
            g = s if d > 0.0 else (-s if d < 0.0 else 0.0)
        total += v
        ob[k] = v
        gxb[k] = g
        gyb[k] = -g
    return total


@dual(for_floats(lambda f: f64(ro(f), ro(f), f64, f64, rw(f), rw(f), rw(f), boolean, boolean)))
def _smooth_l1(x, y, beta, s, out, gx, gy, want_x, want_y):  # pragma: no cover - compiled
    total = 0.0
    for b in prange(blocks(x.size)):
        total += _smooth_l1_block(b * BLOCK, x, y, beta, s, out, gx, gy)
    return total


def compute(call: Call) -> LossOutput:
    return _elementwise.run(call, _smooth_l1, ("input", "target"), params=(call.params["beta"],))


SPEC = LossSpec(
    id="smooth_l1",
    summary="Smooth L1 (Fast R-CNN): quadratic 0.5 d^2 / beta for |d| < beta, else |d| - beta / 2.",
    aliases=("smooth_l1_loss",),
    inputs=_elementwise.PAIR_INPUTS,
    params=(
        ParamSpec("beta", float, 1.0, "width of the quadratic zone; 0 gives l1", minimum=0.0),
    ),
    loss_shape="shape of input",
    compute=compute,
    validate=_elementwise.validate_pair,
    examples=_elementwise.pair_examples,
)
