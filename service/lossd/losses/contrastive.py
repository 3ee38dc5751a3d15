"""contrastive: contrastive loss of pairs (Hadsell, Chopra, LeCun 2006; Caffe's layer).

``x1``, ``x2``: (N, D) float; ``label``: (N,) int in {0, 1}, **1 = similar pair**.

    delta_i = x1_i - x2_i,   d_i = ||delta_i||_2
    l_i = 1/2 [ y_i d_i^2 + (1 - y_i) max(0, margin - d_i)^2 ]             (shape (N,))

Gradients (r = 1 for none/sum, 1/N for mean/batchmean):

    similar:     dR/dx1_i = r delta_i
    dissimilar:  dR/dx1_i = -r (margin - d_i) delta_i / d_i   if 0 < d_i < margin, else 0
    dR/dx2_i = -dR/dx1_i

At d_i = 0 for a dissimilar pair the gradient is 0 (README §7). The distance comes from
the difference vector, accumulated in float64.
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, i64, prange, ro, rw
from lossd.kernels.reduction import scale
from lossd.losses._rowblocks import row_blocks, rows_per_block
from lossd.losses.common import buffer, finish, grads_of, loss_buffer
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec


@block
def _contrastive_rows(i0, i1, x1, x2, y, margin, r, out, g1, g2, want1, want2):  # pragma: no cover - compiled
    """Rows [i0, i1) of :func:`_contrastive`."""
    dim = x1.shape[1]
    keep = out.size > 0
    total = 0.0
    for i in range(i0, i1):
        d2 = 0.0
        for k in range(dim):
            u = np.float64(x1[i, k]) - np.float64(x2[i, k])
            d2 += u * u
        if y[i] == 1:
            value = 0.5 * d2
            coef = r
        else:
            d = math.sqrt(d2)
            gap = margin - d
            if gap > 0.0:
                value = 0.5 * gap * gap
                coef = -r * gap / d if d > 0.0 else 0.0
            else:
                value = 0.0
                coef = 0.0
        total += value
        if keep:
            out[i] = value
        if want1 or want2:
            for k in range(dim):
                g = coef * (np.float64(x1[i, k]) - np.float64(x2[i, k]))
                if want1:
                    g1[i, k] = g
                if want2:
                    g2[i, k] = -g
    return total


@dual(for_floats(lambda f: f64(ro(f, 2), ro(f, 2), ro(i64), f64, f64, rw(f), rw(f, 2), rw(f, 2),
                               boolean, boolean)))
def _contrastive(x1, x2, y, margin, r, out, g1, g2, want1, want2):  # pragma: no cover - compiled
    n, dim = x1.shape
    per = rows_per_block(dim)
    total = 0.0
    for b in prange(row_blocks(n, per)):
        i0 = b * per
        total += _contrastive_rows(i0, min(n, i0 + per), x1, x2, y, margin, r, out, g1, g2, want1, want2)
    return total


def compute(call: Call) -> LossOutput:
    x1, x2, y = call.inputs["x1"], call.inputs["x2"], call.inputs["label"]
    n = x1.shape[0]
    r = scale(call.reduction, n, n)
    out = loss_buffer(call, n)
    g1 = buffer(call, x1.shape, call.wants("x1"))
    g2 = buffer(call, x2.shape, call.wants("x2"))
    total = _contrastive.call(x1.size, x1, x2, y, call.params["margin"], r, out, g1, g2,
                              call.wants("x1"), call.wants("x2"))
    return LossOutput(finish(call, total, r, out, (n,)), grads_of(call, x1=g1, x2=g2))


def validate(call: Call) -> None:
    checks.rank(call, "x1", 2, "(N, D)")
    checks.same_shape(call, "x2", "x1")
    checks.shape_is(call, "label", (call.n,), "(N,)")


def examples(dtype: np.dtype) -> list:
    x1 = np.array([[0.1, 0.2], [0.5, -0.3], [1.0, 1.0]], dtype)
    x2 = np.array([[0.0, 0.4], [0.2, 0.1], [-1.0, 0.5]], dtype)
    return [({"x1": x1, "x2": x2, "label": np.array([1, 0, 0])}, {})]


SPEC = LossSpec(
    id="contrastive",
    summary="Contrastive loss: 1/2 [y d^2 + (1 - y) max(0, margin - d)^2], label 1 = similar.",
    inputs=(
        InputSpec("x1", Kind.FLOAT, "(N, D)", "first embedding of each pair", differentiable=True),
        InputSpec("x2", Kind.FLOAT, "(N, D)", "second embedding of each pair", differentiable=True),
        InputSpec("label", Kind.BINARY, "(N,)", "1 = similar pair, 0 = dissimilar pair"),
    ),
    params=(
        ParamSpec("margin", float, 1.0, "distance below which dissimilar pairs are penalised",
                  minimum=0.0, exclusive_minimum=True),
    ),
    loss_shape="(N,)",
    compute=compute,
    validate=validate,
    examples=examples,
)
