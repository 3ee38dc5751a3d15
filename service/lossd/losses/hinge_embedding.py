"""hinge_embedding: hinge embedding loss (PyTorch ``F.hinge_embedding_loss``).

``input`` x (typically a distance) and ``target`` y in {-1, +1} (int32/int64 or the
request's float dtype; never differentiated), identical shapes of any rank >= 1.

    l_i = x_i                        if y_i = +1
    l_i = max(0, margin - x_i)       if y_i = -1                        (shape of input)
    dR/dx_i = s (y_i = +1);  -s if margin - x_i >= 0 else 0 (y_i = -1; slope 1 at the hinge, README §7)

``mean`` divides by M, ``batchmean`` by N. Labels other than -1/+1 are rejected.
"""

from __future__ import annotations

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import boolean, dual, f64, for_floats, prange, ro, rw
from lossd.losses import _elementwise
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec


@dual(for_floats(lambda f: f64(ro(f), ro(f), f64, f64, rw(f), rw(f), boolean)))
def _hinge_embedding(x, y, margin, s, out, gx, want_x):  # pragma: no cover - compiled
    keep = out.size > 0
    total = 0.0
    for i in prange(x.size):
        xi = np.float64(x[i])
        if y[i] > 0:
            v = xi
            g = s
        else:
            u = margin - xi
            if u >= 0.0:
                v = u
                g = -s
            else:
                v = 0.0
                g = 0.0
        total += v
        if keep:
            out[i] = v
        if want_x:
            gx[i] = g
    return total


def compute(call: Call) -> LossOutput:
    return _elementwise.run(call, _hinge_embedding, ("input",), ("target",), (call.params["margin"],))


def validate(call: Call) -> None:
    checks.same_shape(call, "target", "input")


def examples(dtype: np.dtype) -> list:
    x = np.linspace(0, 2, 6, dtype=dtype).reshape(2, 3)
    return [({"input": x, "target": np.array([[1, -1, 1], [-1, 1, -1]])}, {})]


SPEC = LossSpec(
    id="hinge_embedding",
    summary="Hinge embedding loss: x for similar pairs (+1), max(0, margin - x) for dissimilar (-1).",
    aliases=("hinge_embedding_loss",),
    inputs=(
        InputSpec("input", Kind.FLOAT, "any shape (N, ...)", "distance (or score)", differentiable=True),
        InputSpec("target", Kind.SIGN, "same shape as input",
                  "+1 (similar) or -1 (dissimilar); int or the request float dtype"),
    ),
    params=(
        ParamSpec("margin", float, 1.0, "hinge margin for the -1 pairs", range="any real"),
    ),
    loss_shape="shape of input",
    compute=compute,
    validate=validate,
    examples=examples,
)
