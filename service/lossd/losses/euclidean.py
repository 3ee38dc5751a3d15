"""euclidean: Caffe ``EuclideanLoss``, half the squared distance per sample.

    d_n = x_n - y_n,   l_n = sum_j d_{n,j}^2 / 2                      (shape (N,))
    dR/dx = s d,  dR/dy = -s d

``input`` x and ``target`` y: floating, identical shapes (N, ...) of rank >= 1. ``mean``
(the default) and ``batchmean`` divide by N, giving Caffe's sum_n ||d_n||^2 / (2N).
"""

from __future__ import annotations

import numpy as np

from lossd.kernels.jit import block, boolean, dual, f64, for_floats, prange, ro, rw
from lossd.losses import _elementwise
from lossd.losses._rowblocks import row_blocks, rows_per_block
from lossd.spec import Call, LossOutput, LossSpec


@block
def _euclidean_rows(r0, r1, x, y, s, out, gx, gy, want_x, want_y):  # pragma: no cover - compiled
    """Rows [r0, r1) of :func:`_euclidean`."""
    cols = x.shape[1]
    keep = out.size > 0
    total = 0.0
    for r in range(r0, r1):
        ss = 0.0
        for j in range(cols):
            d = np.float64(x[r, j]) - np.float64(y[r, j])
            ss += d * d
            if want_x:
                gx[r, j] = s * d
            if want_y:
                gy[r, j] = -s * d
        total += 0.5 * ss
        if keep:
            out[r] = 0.5 * ss
    return total


@dual(for_floats(lambda f: f64(ro(f, 2), ro(f, 2), f64, rw(f), rw(f, 2), rw(f, 2), boolean, boolean)))
def _euclidean(x, y, s, out, gx, gy, want_x, want_y):  # pragma: no cover - compiled
    rows, cols = x.shape
    per = rows_per_block(cols)
    total = 0.0
    for b in prange(row_blocks(rows, per)):
        r0 = b * per
        total += _euclidean_rows(r0, min(rows, r0 + per), x, y, s, out, gx, gy, want_x, want_y)
    return total


def compute(call: Call) -> LossOutput:
    return _elementwise.run(call, _euclidean, ("input", "target"), rows=True)


SPEC = LossSpec(
    id="euclidean",
    summary="Caffe EuclideanLoss: l_n = ||input_n - target_n||^2 / 2 per sample; mean = sum / N.",
    inputs=_elementwise.PAIR_INPUTS,
    params=(),
    loss_shape="(N,)",
    compute=compute,
    validate=_elementwise.validate_pair,
    examples=_elementwise.pair_examples,
)
