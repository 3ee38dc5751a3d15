"""mse: mean squared error (PyTorch ``F.mse_loss``).

    d_i = x_i - y_i,   l_i = d_i^2                       (shape of input)
    dR/dx_i = 2 s d_i,  dR/dy_i = -2 s d_i

``input`` x and ``target`` y: floating, identical shapes of any rank >= 1. ``mean``
divides by the element count M, ``batchmean`` by N; s is that factor (1 for none/sum).
"""

from __future__ import annotations

import numpy as np

from lossd.kernels.jit import block, boolean, dual, f64, for_floats, prange, ro, rw
from lossd.losses import _elementwise
from lossd.losses._blocks import BLOCK, blocks, sink
from lossd.spec import Call, LossOutput, LossSpec


@block
def _mse_block(i0, x, y, s, out, gx, gy):  # pragma: no cover - compiled
    """Elements [i0, i0 + BLOCK) of :func:`_mse` (unrequested outputs: a scratch sink)."""
    stop = min(i0 + BLOCK, x.size)
    xb, yb = x[i0:stop], y[i0:stop]
    ob, gxb, gyb = sink(out, i0, stop), sink(gx, i0, stop), sink(gy, i0, stop)
    total = 0.0
    for k in range(stop - i0):
        d = np.float64(xb[k]) - np.float64(yb[k])
        v = d * d
        total += v
        g = 2.0 * s * d
        ob[k] = v
        gxb[k] = g
        gyb[k] = -g
    return total


@dual(for_floats(lambda f: f64(ro(f), ro(f), f64, rw(f), rw(f), rw(f), boolean, boolean)))
def _mse(x, y, s, out, gx, gy, want_x, want_y):  # pragma: no cover - compiled
    total = 0.0
    for b in prange(blocks(x.size)):
        total += _mse_block(b * BLOCK, x, y, s, out, gx, gy)
    return total


def compute(call: Call) -> LossOutput:
    return _elementwise.run(call, _mse, ("input", "target"))


SPEC = LossSpec(
    id="mse",
    summary="Mean squared error: l = (input - target)^2 elementwise.",
    aliases=("mse_loss",),
    inputs=_elementwise.PAIR_INPUTS,
    params=(),
    loss_shape="shape of input",
    compute=compute,
    validate=_elementwise.validate_pair,
    examples=_elementwise.pair_examples,
)
