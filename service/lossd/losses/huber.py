"""huber: Huber loss (PyTorch ``F.huber_loss``).

    d_i = x_i - y_i
    l_i = 0.5 d_i^2     if |d_i| < delta,   else delta (|d_i| - 0.5 delta)   (shape of input)
    dR/dx_i = s clamp(d_i, -delta, delta),  dR/dy_i = -dR/dx_i

``input`` x and ``target`` y: floating, identical shapes of any rank >= 1. ``delta`` > 0.
huber_delta(d) = delta * smooth_l1_{beta=delta}(d). ``mean`` divides by M, ``batchmean`` by N.
"""

from __future__ import annotations

import numpy as np

from lossd.kernels.jit import block, boolean, dual, f64, for_floats, prange, ro, rw
from lossd.losses import _elementwise
from lossd.losses._blocks import BLOCK, blocks, sink
from lossd.spec import Call, LossOutput, LossSpec, ParamSpec


@block
def _huber_block(i0, x, y, delta, s, out, gx, gy):  # pragma: no cover - compiled
    """Elements [i0, i0 + BLOCK) of :func:`_huber` (unrequested outputs: a scratch sink)."""
    stop = min(i0 + BLOCK, x.size)
    xb, yb = x[i0:stop], y[i0:stop]
    ob, gxb, gyb = sink(out, i0, stop), sink(gx, i0, stop), sink(gy, i0, stop)
    total = 0.0
    for k in range(stop - i0):
        d = np.float64(xb[k]) - np.float64(yb[k])
        a = abs(d)
        if a < delta:
            v = 0.5 * d * d
            g = s * d
        else:
            v = delta * (a - 0.5 * delta)
            g = s * delta if d > 0.0 else -s * delta
        total += v
        ob[k] = v
        gxb[k] = g
        gyb[k] = -g
    return total


@dual(for_floats(lambda f: f64(ro(f), ro(f), f64, f64, rw(f), rw(f), rw(f), boolean, boolean)))
def _huber(x, y, delta, s, out, gx, gy, want_x, want_y):  # pragma: no cover - compiled
    total = 0.0
    for b in prange(blocks(x.size)):
        total += _huber_block(b * BLOCK, x, y, delta, s, out, gx, gy)
    return total


def compute(call: Call) -> LossOutput:
    return _elementwise.run(call, _huber, ("input", "target"), params=(call.params["delta"],))


SPEC = LossSpec(
    id="huber",
    summary="Huber loss: 0.5 d^2 for |d| < delta, else delta (|d| - delta / 2).",
    aliases=("huber_loss",),
    inputs=_elementwise.PAIR_INPUTS,
    params=(
        ParamSpec("delta", float, 1.0, "threshold between the quadratic and linear pieces",
                  minimum=0.0, exclusive_minimum=True),
    ),
    loss_shape="shape of input",
    compute=compute,
    validate=_elementwise.validate_pair,
    examples=_elementwise.pair_examples,
)
