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
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, prange, ro, rw
from lossd.losses import _elementwise
from lossd.losses._blocks import BLOCK, blocks, sink
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec


@block
def _margin_ranking_block(i0, x1, x2, y, margin, s, out, g1, g2):  # pragma: no cover
    """Elements [i0, i0 + BLOCK) of :func:`_margin_ranking` (unrequested outputs: a sink)."""
    stop = min(i0 + BLOCK, x1.size)
    ab, bb, yb = x1[i0:stop], x2[i0:stop], y[i0:stop]
    ob, g1b, g2b = sink(out, i0, stop), sink(g1, i0, stop), sink(g2, i0, stop)
    total = 0.0
    for k in range(stop - i0):
        yk = np.float64(yb[k])
        u = -yk * (np.float64(ab[k]) - np.float64(bb[k])) + margin
        active = u >= 0.0
        v = u if active else 0.0
        g = s * yk if active else 0.0
        total += v
        ob[k] = v
        g1b[k] = -g
        g2b[k] = g
    return total


@dual(for_floats(lambda f: f64(ro(f), ro(f), ro(f), f64, f64, rw(f), rw(f), rw(f), boolean, boolean)))
def _margin_ranking(x1, x2, y, margin, s, out, g1, g2, want_1, want_2):  # pragma: no cover - compiled
    total = 0.0
    for b in prange(blocks(x1.size)):
        total += _margin_ranking_block(b * BLOCK, x1, x2, y, margin, s, out, g1, g2)
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
