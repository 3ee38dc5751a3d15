"""npair: multi-class N-pair loss (Sohn 2016), TensorFlow ``npairs_loss`` form.

``anchors`` a (N, D), ``positives`` p (N, D): float, differentiable; ``labels`` (N,) int,
optional (any values; absent: every pair is its own class).

    S = a p^T                                      (dot products, no normalisation)
    T_ij = [y_i = y_j] / #{k : y_k = y_i}          (T = I without labels)
    l_i = -sum_j T_ij log softmax(S_i)_j + 1/4 reg_lambda (||a_i||^2 + ||p_i||^2)   (shape (N,))

Gradients (r = 1 for none/sum, 1/N for mean/batchmean), G = softmax(S) - T row-wise:

    dR/da = r (G p + 1/2 reg_lambda a),     dR/dp = r (G^T a + 1/2 reg_lambda p)

The products are float64 BLAS matrix products on float64 copies (float64 accumulation),
done in row blocks so that memory stays O(block * N); a kernel turns each block of S
into its cross entropies and G (log-sum-exp per row).
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import dual, f64, i64, prange, ro, rw
from lossd.kernels.reduction import Reduction, scale
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec

#: elements of one block of S (rows * N)
BLOCK_ELEMENTS = 1 << 21


@dual([f64(rw(f64, 2), ro(i64), ro(f64), i64, rw(f64))])
def _npair_rows(s, group, inv_count, row0, xent):  # pragma: no cover - compiled
    """Rows row0.. of S (in place -> G = softmax - T); xent[row] = -sum_j T_ij log softmax_j."""
    rows, n = s.shape
    total = 0.0
    for b in prange(rows):
        i = row0 + b
        m = -np.inf
        for j in range(n):
            m = max(m, s[b, j])
        gi = group[i]
        w = inv_count[i]
        se = 0.0
        ts = 0.0
        for j in range(n):
            v = s[b, j]
            if group[j] == gi:
                ts += v
            e = math.exp(v - m)
            s[b, j] = e
            se += e
        lse = m + math.log(se)
        inv = 1.0 / se
        for j in range(n):
            g = s[b, j] * inv
            if group[j] == gi:
                g -= w
            s[b, j] = g
        value = lse - w * ts
        xent[i] = value
        total += value
    return total


def compute(call: Call) -> LossOutput:
    a = call.inputs["anchors"].astype(np.float64)
    p = call.inputs["positives"].astype(np.float64)
    n = a.shape[0]
    lam = call.params["reg_lambda"]
    labels = call.get("labels")
    if labels is None:
        group = np.arange(n, dtype=np.int64)
        inv_count = np.ones(n)
    else:
        _, group, counts = np.unique(labels, return_inverse=True, return_counts=True)
        group = group.astype(np.int64).reshape(n)
        inv_count = 1.0 / counts[group]
    r = scale(call.reduction, n, n)
    want_a, want_p = call.wants("anchors"), call.wants("positives")
    ga = np.empty_like(a) if want_a else None
    gp = np.zeros_like(p) if want_p else None
    xent = np.empty(n)
    block = max(1, BLOCK_ELEMENTS // n)
    for row0 in range(0, n, block):
        rows = slice(row0, min(n, row0 + block))
        s = a[rows] @ p.T
        _npair_rows.call(s.size, s, group, inv_count, row0, xent)
        if want_a:
            ga[rows] = s @ p
        if want_p:
            gp += s.T @ a[rows]
    losses = xent + 0.25 * lam * (np.einsum("ij,ij->i", a, a) + np.einsum("ij,ij->i", p, p))
    if call.reduction is Reduction.NONE:
        loss = losses.astype(call.dtype)
    else:
        loss = np.asarray(float(np.sum(losses)) * r).astype(call.dtype)
    grads = {}
    if want_a:
        grads["anchors"] = (r * (ga + 0.5 * lam * a)).astype(call.dtype)
    if want_p:
        grads["positives"] = (r * (gp + 0.5 * lam * p)).astype(call.dtype)
    return LossOutput(loss, grads)


def validate(call: Call) -> None:
    checks.rank(call, "anchors", 2, "(N, D)")
    checks.same_shape(call, "positives", "anchors")
    checks.shape_is(call, "labels", (call.n,), "(N,)")


def examples(dtype: np.dtype) -> list:
    a = np.array([[0.5, -1.0], [0.0, 0.3], [1.0, 1.0]], dtype)
    p = np.array([[0.4, -0.8], [0.1, 0.2], [0.9, 1.2]], dtype)
    return [({"anchors": a, "positives": p}, {}),
            ({"anchors": a, "positives": p, "labels": np.array([1, 2, 1])}, {})]


SPEC = LossSpec(
    id="npair",
    summary="Multi-class N-pair loss: softmax cross entropy over anchor-positive dot products plus "
            "L2 regularisation.",
    inputs=(
        InputSpec("anchors", Kind.FLOAT, "(N, D)", "anchor embeddings", differentiable=True),
        InputSpec("positives", Kind.FLOAT, "(N, D)", "positive embeddings", differentiable=True),
        InputSpec("labels", Kind.INTEGER, "(N,)", "class of each pair (any integers); absent: every "
                  "pair is its own class", required=False),
    ),
    params=(
        ParamSpec("reg_lambda", float, 0.002, "L2 regularisation weight", minimum=0.0),
    ),
    loss_shape="(N,)",
    compute=compute,
    validate=validate,
    examples=examples,
)
