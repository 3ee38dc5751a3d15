"""soft_margin: two-class logistic loss (PyTorch ``F.soft_margin_loss``).

``input`` x (scores) and ``target`` y in {-1, +1} (int32/int64 or the request's float
dtype; never differentiated), identical shapes of any rank >= 1.

    l_i = softplus(-y_i x_i) = log(1 + exp(-y_i x_i))                  (shape of input)
    dR/dx_i = -s y_i sigmoid(-y_i x_i)

Evaluated stably (README §8): exact for every finite x, where PyTorch's literal
log(1 + exp(.)) returns +Inf once exp overflows. ``mean`` divides by M, ``batchmean`` by N.
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import boolean, dual, f64, for_floats, prange, ro, rw
from lossd.losses import _elementwise
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec


@dual(for_floats(lambda f: f64(ro(f), ro(f), f64, rw(f), rw(f), boolean)))
def _soft_margin(x, y, s, out, gx, want_x):  # pragma: no cover - compiled
    keep = out.size > 0
    total = 0.0
    for i in prange(x.size):
        yi = np.float64(y[i])
        z = -yi * np.float64(x[i])
        # softplus(z) and sigmoid(z) share t = exp(-|z|): one exp per element
        t = math.exp(-abs(z))
        v = max(z, 0.0) + math.log1p(t)
        total += v
        if keep:
            out[i] = v
        if want_x:
            gx[i] = -s * yi * ((1.0 if z >= 0.0 else t) / (1.0 + t))
    return total


def compute(call: Call) -> LossOutput:
    return _elementwise.run(call, _soft_margin, ("input",), ("target",))


def validate(call: Call) -> None:
    checks.same_shape(call, "target", "input")


def examples(dtype: np.dtype) -> list:
    x = np.linspace(-2, 2, 6, dtype=dtype).reshape(2, 3)
    return [({"input": x, "target": np.array([[1, -1, 1], [-1, 1, -1]])}, {})]


SPEC = LossSpec(
    id="soft_margin",
    summary="Soft margin loss: softplus(-target * input) elementwise, target in {-1, +1}.",
    aliases=("soft_margin_loss",),
    inputs=(
        InputSpec("input", Kind.FLOAT, "any shape (N, ...)", "score", differentiable=True),
        InputSpec("target", Kind.SIGN, "same shape as input", "+1 or -1; int or the request float dtype"),
    ),
    params=(),
    loss_shape="shape of input",
    compute=compute,
    validate=validate,
    examples=examples,
)
