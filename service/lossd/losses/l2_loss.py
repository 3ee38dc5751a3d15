"""l2_loss: half the squared L2 norm of the error (TensorFlow ``tf.nn.l2_loss(x - y)``).

    d_i = x_i - y_i  (y = 0 when target is absent),   l_i = d_i^2 / 2   (shape of input)
    dR/dx_i = s d_i,  dR/dy_i = -s d_i

``input`` x and optional ``target`` y: floating, identical shapes of any rank >= 1.
The default reduction is ``sum``, so the default result is ``tf.nn.l2_loss(x - y)``;
``mean`` divides by the element count M, ``batchmean`` by N; s is that factor.
"""

from __future__ import annotations

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, prange, ro, rw
from lossd.losses import _elementwise
from lossd.losses._blocks import BLOCK, blocks, sink
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec


@block
def _l2_loss_block(i0, x, z, c, s, out, gx, gy):  # pragma: no cover - compiled
    """Elements [i0, i0 + BLOCK) of :func:`_l2_loss`: d_k = x_k - c z_k (unrequested
    outputs: a scratch sink)."""
    stop = min(i0 + BLOCK, x.size)
    xb, zb = x[i0:stop], z[i0:stop]
    ob, gxb, gyb = sink(out, i0, stop), sink(gx, i0, stop), sink(gy, i0, stop)
    total = 0.0
    for k in range(stop - i0):
        d = np.float64(xb[k]) - c * np.float64(zb[k])
        v = 0.5 * d * d
        total += v
        g = s * d
        ob[k] = v
        gxb[k] = g
        gyb[k] = -g
    return total


@dual(for_floats(lambda f: f64(ro(f), ro(f), f64, rw(f), rw(f), rw(f), boolean, boolean)))
def _l2_loss(x, y, s, out, gx, gy, want_x, want_y):  # pragma: no cover - compiled
    """d_i = x_i - c z_i with z = y, c = 1 when the target is given; without it z is x again
    and c = 0 (x is finite, so c z_i = +-0 exactly). One branch-free loop either way: a
    branch on "target given" around the load of y_i kept the loop from vectorising (2x)."""
    has_y = y.size > 0
    z = y if has_y else x
    c = 1.0 if has_y else 0.0
    total = 0.0
    for b in prange(blocks(x.size)):
        total += _l2_loss_block(b * BLOCK, x, z, c, s, out, gx, gy)
    return total


def compute(call: Call) -> LossOutput:
    return _elementwise.run(call, _l2_loss, ("input", "target"))


def validate(call: Call) -> None:
    checks.same_shape(call, "target", "input")


def examples(dtype: np.dtype) -> list:
    x = np.linspace(-1, 1, 6, dtype=dtype).reshape(2, 3)
    return [({"input": x, "target": x[::-1].copy()}, {}), ({"input": x}, {})]


SPEC = LossSpec(
    id="l2_loss",
    summary="Half the squared L2 norm of the error: l = (input - target)^2 / 2, reduced by sum.",
    inputs=(
        InputSpec("input", Kind.FLOAT, "any shape (N, ...)", "prediction", differentiable=True),
        InputSpec("target", Kind.FLOAT, "same shape as input", "reference value (zeros when absent)",
                  differentiable=True, required=False),
    ),
    params=(),
    loss_shape="shape of input",
    compute=compute,
    validate=validate,
    examples=examples,
    default_reduction="sum",
)
