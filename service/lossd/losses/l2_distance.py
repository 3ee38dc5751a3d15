"""l2_distance: Euclidean norm of the error per sample (``torch.linalg.vector_norm(x - y)``
over every non-batch dimension).

    d_n = x_n - y_n,   l_n = ||d_n||_2 = sqrt(sum_j d_{n,j}^2)        (shape (N,))
    dR/dx_{n,j} = s d_{n,j} / l_n,  dR/dy_{n,j} = -s d_{n,j} / l_n,   0 where l_n = 0 (README §7)

``input`` x and ``target`` y: floating, identical shapes (N, ...) of rank >= 1 (for rank 1
each sample is a single value and l_n = |d_n|). ``mean`` and ``batchmean`` divide by N.
The squares are summed in float64; a row whose sum of squares overflows or falls below
1e-280 is recomputed scaled by the power of two of max_j |d_{n,j}| (exact scaling), so the
norm neither overflows nor loses precision to underflow unless the norm itself does.
"""

from __future__ import annotations

import math

import numpy as np

from lossd.kernels.jit import block, boolean, dual, f64, for_floats, prange, ro, rw
from lossd.losses import _elementwise
from lossd.losses._rowblocks import row_blocks, rows_per_block
from lossd.spec import Call, LossOutput, LossSpec


@block
def _l2_distance_rows(r0, r1, x, y, s, out, gx, gy, want_x, want_y):  # pragma: no cover - compiled
    """Rows [r0, r1) of :func:`_l2_distance`."""
    cols = x.shape[1]
    keep = out.size > 0
    total = 0.0
    for r in range(r0, r1):
        ss = 0.0
        for j in range(cols):
            d = np.float64(x[r, j]) - np.float64(y[r, j])
            ss += d * d
        if ss < 1e-280 or ss > 1.7e308:
            a = 0.0
            for j in range(cols):
                a = max(a, abs(np.float64(x[r, j]) - np.float64(y[r, j])))
            norm = a
            if a > 0.0 and a < np.inf:
                e = math.frexp(a)[1]
                t = 0.0
                for j in range(cols):
                    q = math.ldexp(np.float64(x[r, j]) - np.float64(y[r, j]), -e)
                    t += q * q
                norm = math.ldexp(math.sqrt(t), e)
        else:
            norm = math.sqrt(ss)
        total += norm
        if keep:
            out[r] = norm
        if want_x or want_y:
            for j in range(cols):
                g = 0.0
                if norm > 0.0:
                    g = s * ((np.float64(x[r, j]) - np.float64(y[r, j])) / norm)
                if want_x:
                    gx[r, j] = g
                if want_y:
                    gy[r, j] = -g
    return total


@dual(for_floats(lambda f: f64(ro(f, 2), ro(f, 2), f64, rw(f), rw(f, 2), rw(f, 2), boolean, boolean)))
def _l2_distance(x, y, s, out, gx, gy, want_x, want_y):  # pragma: no cover - compiled
    rows, cols = x.shape
    per = rows_per_block(cols)
    total = 0.0
    for b in prange(row_blocks(rows, per)):
        r0 = b * per
        total += _l2_distance_rows(r0, min(rows, r0 + per), x, y, s, out, gx, gy, want_x, want_y)
    return total


def compute(call: Call) -> LossOutput:
    return _elementwise.run(call, _l2_distance, ("input", "target"), rows=True)


SPEC = LossSpec(
    id="l2_distance",
    summary="Euclidean distance per sample: l_n = ||input_n - target_n||_2 (not squared).",
    inputs=_elementwise.PAIR_INPUTS,
    params=(),
    loss_shape="(N,)",
    compute=compute,
    validate=_elementwise.validate_pair,
    examples=_elementwise.pair_examples,
)
