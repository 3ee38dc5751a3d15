"""cosine_embedding: cosine embedding loss (PyTorch ``F.cosine_embedding_loss``).

``input1`` a and ``input2`` b: floating (N, D); ``target`` y: (N,) in {-1, +1}
(int32/int64 or the request's float dtype; never differentiated). ``margin`` mu in [-1, 1].

    S_n = sum_j a_nj^2 + eps,  T_n = sum_j b_nj^2 + eps,  c_n = sum_j a_nj b_nj / sqrt(S_n T_n)
    l_n = 1 - c_n  (y = +1);   max(0, c_n - mu)  (y = -1)                    (shape (N,))
    dc/da = b / sqrt(S T) - c a / S,   dc/db = a / sqrt(S T) - c b / T
    dR/da = s k dc/da, dR/db = s k dc/db;  k = -1 (y = +1); k = 1 if c - mu >= 0 else 0 (y = -1)

eps is torch's constant 1e-12 rounded to float32 (9.99999996e-13 in float64). Zero
vectors are accepted: c = 0 and the gradient is large but finite. ``mean`` and
``batchmean`` divide by N. Sums are accumulated in float64.
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, prange, ro, rw
from lossd.losses import _elementwise
from lossd.losses._rowblocks import row_blocks, rows_per_block
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec

EPS = float(np.float32(1e-12))


@block
def _cosine_embedding_rows(r0, r1, a, b, y, margin, s, out, ga, gb, want_a,
                           want_b):  # pragma: no cover - compiled
    """Rows [r0, r1) of :func:`_cosine_embedding`."""
    cols = a.shape[1]
    keep = out.size > 0
    total = 0.0
    for r in range(r0, r1):
        saa = 0.0
        sbb = 0.0
        sab = 0.0
        for j in range(cols):
            aj = np.float64(a[r, j])
            bj = np.float64(b[r, j])
            saa += aj * aj
            sbb += bj * bj
            sab += aj * bj
        saa += EPS
        sbb += EPS
        den = math.sqrt(saa) * math.sqrt(sbb)
        c = sab / den
        if y[r] > 0:
            v = 1.0 - c
            k = -s
        elif c - margin >= 0.0:
            v = c - margin
            k = s
        else:
            v = 0.0
            k = 0.0
        total += v
        if keep:
            out[r] = v
        if want_a or want_b:
            for j in range(cols):
                aj = np.float64(a[r, j])
                bj = np.float64(b[r, j])
                if want_a:
                    ga[r, j] = k * (bj / den - c * aj / saa)
                if want_b:
                    gb[r, j] = k * (aj / den - c * bj / sbb)
    return total


@dual(for_floats(lambda f: f64(ro(f, 2), ro(f, 2), ro(f), f64, f64, rw(f), rw(f, 2), rw(f, 2),
                               boolean, boolean)))
def _cosine_embedding(a, b, y, margin, s, out, ga, gb, want_a, want_b):  # pragma: no cover - compiled
    rows, cols = a.shape
    per = rows_per_block(cols)
    total = 0.0
    for i in prange(row_blocks(rows, per)):
        r0 = i * per
        total += _cosine_embedding_rows(r0, min(rows, r0 + per), a, b, y, margin, s, out, ga, gb,
                                        want_a, want_b)
    return total


def compute(call: Call) -> LossOutput:
    return _elementwise.run(call, _cosine_embedding, ("input1", "input2"), ("target",),
                            (call.params["margin"],), rows=True)


def validate(call: Call) -> None:
    checks.rank(call, "input1", 2, "(N, D)")
    checks.same_shape(call, "input2", "input1")
    checks.shape_is(call, "target", call.inputs["input1"].shape[:1], "(N,)")


def examples(dtype: np.dtype) -> list:
    a = np.linspace(-1, 1, 6, dtype=dtype).reshape(2, 3)
    return [({"input1": a, "input2": a[::-1].copy(), "target": np.array([1, -1])}, {})]


SPEC = LossSpec(
    id="cosine_embedding",
    summary="Cosine embedding loss: 1 - cos for similar pairs, max(0, cos - margin) for dissimilar.",
    aliases=("cosine_embedding_loss",),
    inputs=(
        InputSpec("input1", Kind.FLOAT, "(N, D)", "first embeddings", differentiable=True),
        InputSpec("input2", Kind.FLOAT, "(N, D)", "second embeddings", differentiable=True),
        InputSpec("target", Kind.SIGN, "(N,)", "+1 (similar) or -1 (dissimilar); int or the request "
                  "float dtype"),
    ),
    params=(
        ParamSpec("margin", float, 0.0, "cosine margin for the -1 pairs", minimum=-1.0, maximum=1.0),
    ),
    loss_shape="(N,)",
    compute=compute,
    validate=validate,
    examples=examples,
)
