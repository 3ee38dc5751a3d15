"""soft_margin: two-class logistic loss (PyTorch ``F.soft_margin_loss``).

``input`` x (scores) and ``target`` y in {-1, +1} (int32/int64 or the request's float
dtype; never differentiated), identical shapes of any rank >= 1.

    l_i = softplus(-y_i x_i) = log(1 + exp(-y_i x_i))                  (shape of input)
    dR/dx_i = -s y_i sigmoid(-y_i x_i)

Evaluated stably (README §8): exact for every finite x, where PyTorch's literal
log(1 + exp(.)) returns +Inf once exp overflows. ``mean`` divides by M, ``batchmean`` by N.
The terms are evaluated in the request's float type (float32: 8 AVX2 lanes; the loss is
non-negative and exp(-|z|) cannot overflow); the loss sum is float64.
"""

from __future__ import annotations

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, inline, prange, ro, rw
from lossd.kernels.vecmath import like, texp, tlog1p
from lossd.losses import _elementwise
from lossd.losses._blocks import BLOCK, block_sum, blocks, sink
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec


@inline
def _terms(xi, yi, s):  # pragma: no cover - compiled
    """(loss, dR/dx) of one element in the float type of its arguments: softplus(z) and
    sigmoid(z), z = -y x, share t = exp(-|z|)."""
    zero, one = like(xi, 0.0), like(xi, 1.0)
    z = -yi * xi
    t = texp(-abs(z))
    return max(z, zero) + tlog1p(t), -s * yi * ((one if z >= zero else t) / (one + t))


@block
def _soft_margin_block(i0, x, y, s, out, gx, want_x):  # pragma: no cover - compiled
    """Elements [i0, i0 + BLOCK) of :func:`_soft_margin`; returns their loss sum."""
    stop = min(i0 + BLOCK, x.size)
    # outputs not requested get a scratch (sink): unconditional stores, no aliasing check
    xb, yb, ob, gxb = x[i0:stop], y[i0:stop], sink(out, i0, stop), sink(gx, i0, stop)
    sf = like(xb, s)
    for k in range(stop - i0):
        ob[k], gxb[k] = _terms(xb[k], yb[k], sf)
    return block_sum(ob)


@dual(for_floats(lambda f: f64(ro(f), ro(f), f64, rw(f), rw(f), boolean)))
def _soft_margin(x, y, s, out, gx, want_x):  # pragma: no cover - compiled
    total = 0.0
    for b in prange(blocks(x.size)):
        total += _soft_margin_block(b * BLOCK, x, y, s, out, gx, want_x)
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
