"""margin_ranking: margin ranking loss (PyTorch ``F.margin_ranking_loss``).

``input1`` x1, ``input2`` x2 and ``target`` y in {-1, +1} (int32/int64 or the request's
float dtype; never differentiated), all of the same shape of any rank >= 1 (usually (N,);
no broadcasting).

    u_i = -y_i (x1_i - x2_i) + margin,   l_i = max(0, u_i)           (shape of input1)
    where u_i >= 0: dR/dx1_i = -s y_i, dR/dx2_i = s y_i; else 0 (slope 1 at u = 0, README §7)

``margin`` is any finite real. ``mean`` divides by M, ``batchmean`` by N.
"""

from __future__ import annotations

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import boolean, dual, f64, for_floats, prange, ro, rw
from lossd.losses import _elementwise
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec


@dual(for_floats(lambda f: f64(ro(f), ro(f), ro(f), f64, f64, rw(f), rw(f), rw(f), boolean, boolean)))
def _margin_ranking(x1, x2, y, margin, s, out, g1, g2, want_1, want_2):  # pragma: no cover - compiled
    keep = out.size > 0
    total = 0.0
    for i in prange(x1.size):
        yi = np.float64(y[i])
        u = -yi * (np.float64(x1[i]) - np.float64(x2[i])) + margin
        g = 0.0
        v = 0.0
        if u >= 0.0:
            v = u
            g = s * yi
        total += v
        if keep:
            out[i] = v
        if want_1:
            g1[i] = -g
        if want_2:
            g2[i] = g
    return total


def compute(call: Call) -> LossOutput:
    return _elementwise.run(call, _margin_ranking, ("input1", "input2"), ("target",),
                            (call.params["margin"],))


def validate(call: Call) -> None:
    checks.same_shape(call, "input2", "input1")
    checks.same_shape(call, "target", "input1")


def examples(dtype: np.dtype) -> list:
    x1 = np.linspace(-1, 1, 4, dtype=dtype)
    x2 = np.array([0.5, 0.0, -0.5, 1.0], dtype)
    return [({"input1": x1, "input2": x2, "target": np.array([1, -1, 1, -1])}, {"margin": 0.1})]


SPEC = LossSpec(
    id="margin_ranking",
    summary="Margin ranking loss: max(0, -target * (input1 - input2) + margin) elementwise.",
    aliases=("margin_ranking_loss",),
    inputs=(
        InputSpec("input1", Kind.FLOAT, "any shape (N, ...)", "first score", differentiable=True),
        InputSpec("input2", Kind.FLOAT, "same shape as input1", "second score", differentiable=True),
        InputSpec("target", Kind.SIGN, "same shape as input1",
                  "+1 (input1 should rank higher) or -1; int or the request float dtype"),
    ),
    params=(
        ParamSpec("margin", float, 0.0, "margin by which the preferred input should win",
                  range="any real"),
    ),
    loss_shape="shape of input1",
    compute=compute,
    validate=validate,
    examples=examples,
)
