"""moon: MOON mixed-objective loss for facial attributes (Rudd, Guenther, Boult 2016).

``scores`` (N, A) float (raw, no sigmoid); ``labels`` (N, A) in {-1, +1};
``source_pos_fraction`` s (A,) in [0, 1] (optional; default: the fraction of +1 per
attribute in the batch); ``target_pos_fraction`` t (A,) in (0, 1) (optional; default 0.5).
S_j(+1) = s_j, S_j(-1) = 1 - s_j, T likewise from t. For label y (ybar = -y):

    w_ij = 1                                          if T_j(y) >= S_j(y)
    w_ij = S_j(ybar) T_j(y) / (S_j(y) T_j(ybar))      otherwise (majority label, < 1)
    l_i  = sum_j w_ij (scores_ij - y_ij)^2                                    (shape (N,))
    dR/dscores_ij = 2 r w_ij (scores_ij - y_ij)      (r = 1 none/sum, 1/N mean/batchmean)

The fractions are never differentiated. Per attribute the two weights are computed once
(batch fractions by a parallel count over attributes), then one pass over the rows.
"""

from __future__ import annotations

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, i64, prange, ro, rw
from lossd.kernels.reduction import scale
from lossd.losses._rowblocks import row_blocks, rows_per_block
from lossd.losses.common import buffer, finish, grads_of, loss_buffer
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec


@block
def _moon_weights(j, y, src, has_src, tgt, w_pos, w_neg):  # pragma: no cover - compiled
    """w_pos[j], w_neg[j] of attribute j (its source rate counted over the rows when not given)."""
    n = y.shape[0]
    if has_src:
        s = np.float64(src[j])
    else:
        count = 0
        for i in range(n):
            if y[i, j] > 0:
                count += 1
        s = count / n
    t = np.float64(tgt[j])
    # positives: S(+) = s, T(+) = t; negatives: S(-) = 1 - s, T(-) = 1 - t
    w_pos[j] = 1.0 if t >= s else (1.0 - s) * t / (s * (1.0 - t))
    w_neg[j] = 1.0 if 1.0 - t >= 1.0 - s else s * (1.0 - t) / ((1.0 - s) * t)


@block
def _moon_rows(i0, i1, x, y, w_pos, w_neg, r, out, gx, want):  # pragma: no cover - compiled
    """Rows [i0, i1) of :func:`_moon`."""
    a = x.shape[1]
    keep = out.size > 0
    total = 0.0
    for i in range(i0, i1):
        value = 0.0
        for j in range(a):
            w = w_pos[j] if y[i, j] > 0 else w_neg[j]
            d = np.float64(x[i, j]) - np.float64(y[i, j])
            value += w * d * d
            if want:
                gx[i, j] = 2.0 * r * w * d
        total += value
        if keep:
            out[i] = value
    return total


@dual(for_floats(lambda f: f64(ro(f, 2), ro(i64, 2), ro(f), boolean, ro(f), f64, rw(f), rw(f, 2), boolean)))
def _moon(x, y, src, has_src, tgt, r, out, gx, want):  # pragma: no cover - compiled
    """Each prange iteration writes only its own attribute's weights or its own rows."""
    n, a = x.shape
    w_pos = np.empty(a)
    w_neg = np.empty(a)
    for j in prange(a):
        _moon_weights(j, y, src, has_src, tgt, w_pos, w_neg)
    per = rows_per_block(a)
    total = 0.0
    for b in prange(row_blocks(n, per)):
        i0 = b * per
        total += _moon_rows(i0, min(n, i0 + per), x, y, w_pos, w_neg, r, out, gx, want)
    return total


def compute(call: Call) -> LossOutput:
    x, y = call.inputs["scores"], call.inputs["labels"]
    n, a = x.shape
    src = call.get("source_pos_fraction")
    has_src = src is not None
    if not has_src:
        src = np.empty(0, call.dtype)
    tgt = call.get("target_pos_fraction")
    if tgt is None:
        tgt = np.full(a, 0.5, call.dtype)
    r = scale(call.reduction, n, n)
    out = loss_buffer(call, n)
    gx = buffer(call, x.shape, call.wants("scores"))
    total = _moon.call(x.size, x, y, src, has_src, tgt, r, out, gx, call.wants("scores"))
    return LossOutput(finish(call, total, r, out, (n,)), grads_of(call, scores=gx))


def validate(call: Call) -> None:
    checks.rank(call, "scores", 2, "(N, A)")
    a = call.inputs["scores"].shape[1]
    checks.same_shape(call, "labels", "scores")
    y = call.inputs["labels"]
    bad = (y != 1) & (y != -1)
    if bad.any():
        where = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), y.shape))
        raise checks.input_error("labels", f"expected values exactly -1 or +1 (convert {{0, 1}} labels "
                                           f"first), got {int(y[where])} at index {where}")
    checks.shape_is(call, "source_pos_fraction", (a,), "(A,)")
    checks.shape_is(call, "target_pos_fraction", (a,), "(A,)")
    checks.values_in(call, "source_pos_fraction", 0.0, 1.0)
    checks.values_in(call, "target_pos_fraction", 0.0, 1.0, lo_open=True, hi_open=True)


def examples(dtype: np.dtype) -> list:
    x = np.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]], dtype)
    y = np.array([[1, -1, 1], [1, 1, -1]])
    frac = np.array([0.2, 0.5, 0.9], dtype)
    return [({"scores": x, "labels": y}, {}),
            ({"scores": x, "labels": y, "source_pos_fraction": frac,
              "target_pos_fraction": frac[::-1].copy()}, {})]


SPEC = LossSpec(
    id="moon",
    summary="MOON: per-attribute squared error to +-1 labels, majority label down-weighted to a "
            "target balance.",
    inputs=(
        InputSpec("scores", Kind.FLOAT, "(N, A)", "raw attribute scores", differentiable=True),
        InputSpec("labels", Kind.INTEGER, "(N, A)", "attribute labels: int32/int64, exactly -1 or +1"),
        InputSpec("source_pos_fraction", Kind.FLOAT, "(A,)", "fraction of +1 per attribute in [0, 1] "
                  "(not differentiated); default: measured on the batch", required=False),
        InputSpec("target_pos_fraction", Kind.FLOAT, "(A,)", "desired fraction of +1 per attribute in "
                  "(0, 1) (not differentiated); default 0.5", required=False),
    ),
    params=(),
    loss_shape="(N,)",
    compute=compute,
    validate=validate,
    examples=examples,
)
