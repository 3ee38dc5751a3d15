"""Softmax cross entropy over the rows of a float64 logit matrix from a GEMM, in place: the row
kernel of ``npair`` and ``info_nce``.

Row b of z (width W) has a row class rc_b and a weight w_b; column j has a column class cc_j.
The target distribution is T_bj = w_b [cc_j = rc_b] (npair: the classes are the label groups
and w_b = 1 / group size; info_nce: one column per row, w_b = 1). With m_b = max_j z_bj and
se_b = sum_j exp(z_bj - m_b):

    xent_b = m_b + log se_b - w_b sum_{j: cc_j = rc_b} z_bj      (= -sum_j T_bj log softmax_bj
                                                                  when the row of T sums to 1)
    z_bj  <- scale (softmax_bj - T_bj)                           (dR/dz for scale = reduction factor)

The passes over a row are branch-free (selects and vecmath.exp), so LLVM vectorises them.
"""

from __future__ import annotations

from lossd.kernels import vecmath
from lossd.kernels.jit import block, dual, f64, i64, prange, ro, rw
from lossd.losses._softmax_rows import row_max

#: rows per parallel task: about this many logits
_CHUNK_ELEMENTS = 4096


@block
def _xent_block(lo, hi, z, row_cls, col_cls, weight, scale, xent):  # pragma: no cover - compiled
    """Rows [lo, hi) of z (see the module docstring); returns the sum of their xent."""
    width = z.shape[1]
    rows = z.reshape(z.shape[0], width, 1)
    total = 0.0
    for b in range(lo, hi):
        m = row_max(rows, b, 0)
        cls = row_cls[b]
        se = 0.0
        ts = 0.0
        for j in range(width):
            v = z[b, j]
            ts += v if col_cls[j] == cls else 0.0
            e = vecmath.exp(v - m)
            z[b, j] = e
            se += e
        value = m + vecmath.log(se) - weight[b] * ts
        f = scale / se
        g = scale * weight[b]
        for j in range(width):
            z[b, j] = z[b, j] * f - (g if col_cls[j] == cls else 0.0)
        xent[b] = value
        total += value
    return total


@dual([f64(rw(f64, 2), ro(i64), ro(i64), ro(f64), f64, rw(f64))])
def softmax_xent(z, row_cls, col_cls, weight, scale, xent):  # pragma: no cover - compiled
    """z (R, W) in place -> scale (softmax - T); xent (R,) the cross entropies; returns their
    sum. Chunks of whole rows (about _CHUNK_ELEMENTS logits), each a call of _xent_block."""
    n_rows, width = z.shape
    per = max(1, _CHUNK_ELEMENTS // max(1, width))
    total = 0.0
    for chunk in prange((n_rows + per - 1) // per):
        total += _xent_block(chunk * per, min(n_rows, (chunk + 1) * per), z, row_cls, col_cls, weight, scale,
                             xent)
    return total
