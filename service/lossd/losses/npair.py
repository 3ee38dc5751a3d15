"""npair: multi-class N-pair loss (Sohn 2016), TensorFlow ``npairs_loss`` form.

``anchors`` a (N, D), ``positives`` p (N, D): float, differentiable; ``labels`` (N,) int,
optional (any values; absent: every pair is its own class).

    S = a p^T                                      (dot products, no normalisation)
    T_ij = [y_i = y_j] / #{k : y_k = y_i}          (T = I without labels)
    l_i = -sum_j T_ij log softmax(S_i)_j + 1/4 reg_lambda (||a_i||^2 + ||p_i||^2)   (shape (N,))

Gradients (r = 1 for none/sum, 1/N for mean/batchmean), G = softmax(S) - T row-wise:

    dR/da = r (G p + 1/2 reg_lambda a),     dR/dp = r (G^T a + 1/2 reg_lambda p)

The products are float64 BLAS matrix products on float64 copies (float64 accumulation,
copies, norms and the rounded gradients each in one pass: ``_float64_rows``),
done in row blocks so that memory stays O(block * N); a kernel (``_logit_rows``) turns
each block of S into its cross entropies and r G (log-sum-exp per row).
"""

from __future__ import annotations

import numpy as np

from lossd.core import checks
from lossd.kernels.reduction import Reduction, scale
from lossd.losses._float64_rows import combine, widen
from lossd.losses._logit_rows import softmax_xent
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec

#: elements of one block of S (rows * N)
BLOCK_ELEMENTS = 1 << 21


def compute(call: Call) -> LossOutput:
    a, norm_a = widen(call.inputs["anchors"])
    p, norm_p = widen(call.inputs["positives"])
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
    ga = np.empty(a.shape) if want_a else None
    gp = np.empty(p.shape) if want_p else None
    xent = np.empty(n)
    block = max(1, BLOCK_ELEMENTS // n)
    for row0 in range(0, n, block):
        rows = slice(row0, min(n, row0 + block))
        s = a[rows] @ p.T
        softmax_xent.call(s.size, s, group[rows], group, inv_count[rows], r, xent[rows])  # s -> r G
        if want_a:
            np.matmul(s, p, out=ga[rows])
        if want_p:
            if row0 == 0:
                np.matmul(s.T, a[rows], out=gp)
            else:
                gp += s.T @ a[rows]
    losses = xent + 0.25 * lam * (norm_a * norm_a + norm_p * norm_p)
    if call.reduction is Reduction.NONE:
        loss = losses.astype(call.dtype)
    else:
        loss = np.asarray(float(np.sum(losses)) * r).astype(call.dtype)
    grads = {}
    if want_a:
        grads["anchors"] = combine(ga, 1.0, a, 0.5 * lam * r, call.dtype)
    if want_p:
        grads["positives"] = combine(gp, 1.0, p, 0.5 * lam * r, call.dtype)
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
