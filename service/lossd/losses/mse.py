"""mse: mean squared error (PyTorch ``F.mse_loss``).

    d_i = x_i - y_i,   l_i = d_i^2                       (shape of input)
    dR/dx_i = 2 s d_i,  dR/dy_i = -2 s d_i

``input`` x and ``target`` y: floating, identical shapes of any rank >= 1. ``mean``
divides by the element count M, ``batchmean`` by N; s is that factor (1 for none/sum).
"""

from __future__ import annotations

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import boolean, dual, f64, for_floats, prange, ro, rw
from lossd.kernels.reduction import scale
from lossd.losses.common import finish, grad_buffer, grads_of, loss_buffer
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec


@dual(for_floats(lambda f: f64(ro(f), ro(f), f64, rw(f), rw(f), rw(f), boolean, boolean)))
def _mse(x, y, s, out, gx, gy, want_x, want_y):  # pragma: no cover - compiled
    keep = out.size > 0
    total = 0.0
    for i in prange(x.size):
        d = np.float64(x[i]) - np.float64(y[i])
        total += d * d
        if keep:
            out[i] = d * d
        g = 2.0 * s * d
        if want_x:
            gx[i] = g
        if want_y:
            gy[i] = -g
    return total


def compute(call: Call) -> LossOutput:
    x = call.inputs["input"].ravel()
    y = call.inputs["target"].ravel()
    s = scale(call.reduction, x.size, call.n)
    out, gx, gy = loss_buffer(call, x.size), grad_buffer(call, "input"), grad_buffer(call, "target")
    total = _mse.call(x.size, x, y, s, out, gx, gy, call.wants("input"), call.wants("target"))
    return LossOutput(finish(call, total, s, out, call.inputs["input"].shape),
                      grads_of(call, input=gx, target=gy))


def validate(call: Call) -> None:
    checks.same_shape(call, "target", "input")


def examples(dtype: np.dtype) -> list:
    x = np.linspace(-1, 1, 6, dtype=dtype).reshape(2, 3)
    return [({"input": x, "target": x[::-1].copy()}, {})]


SPEC = LossSpec(
    id="mse",
    summary="Mean squared error: l = (input - target)^2 elementwise.",
    aliases=("mse_loss",),
    inputs=(
        InputSpec("input", Kind.FLOAT, "any shape (N, ...)", "prediction", differentiable=True),
        InputSpec("target", Kind.FLOAT, "same shape as input", "reference value", differentiable=True),
    ),
    params=(),
    loss_shape="shape of input",
    compute=compute,
    validate=validate,
    examples=examples,
)
