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
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, prange, ro, rw
from lossd.losses import _elementwise
from lossd.losses._blocks import BLOCK, blocks, sink
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec


@block
def _hinge_embedding_block(i0, x, y, margin, s, out, gx):  # pragma: no cover - compiled
    """Elements [i0, i0 + BLOCK) of :func:`_hinge_embedding` (unrequested outputs: a
    scratch sink)."""
    stop = min(i0 + BLOCK, x.size)
    xb, yb = x[i0:stop], y[i0:stop]
    ob, gxb = sink(out, i0, stop), sink(gx, i0, stop)
    total = 0.0
    for k in range(stop - i0):
        xi = np.float64(xb[k])
        u = margin - xi
        hinge = u >= 0.0
        positive = yb[k] > 0
        v = xi if positive else (u if hinge else 0.0)
        g = s if positive else (-s if hinge else 0.0)
        total += v
        ob[k] = v
        gxb[k] = g
    return total


@dual(for_floats(lambda f: f64(ro(f), ro(f), f64, f64, rw(f), rw(f), boolean)))
def _hinge_embedding(x, y, margin, s, out, gx, want_x):  # pragma: no cover - compiled
    total = 0.0
    for b in prange(blocks(x.size)):
        total += _hinge_embedding_block(b * BLOCK, x, y, margin, s, out, gx)
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
