"""info_nce: InfoNCE with unpaired negatives (RElbers/info-nce-pytorch).

``query`` q (N, D), ``positive_key`` k (N, D), ``negative_keys`` n (M, D), optional; all
float and differentiable. With ``normalize`` every row is replaced by x / ||x|| (rows with
norm <= 1e-12 are rejected). tau = ``temperature``.

    without negatives: logits_i = [q_i . k_1, ..., q_i . k_N] / tau,     target i
    with negatives:    logits_i = [q_i . k_i, q_i . n_1, ..., q_i . n_M] / tau,  target 0
    l_i = CE(logits_i, target_i)                                              (shape (N,))

Gradients (r = 1 for none/sum, 1/N for mean/batchmean), G = softmax(logits) - onehot:

    without negatives:  dR/dq = r G k / tau,   dR/dk = r G^T q / tau
    with negatives:     dR/dq_i = r (G_i0 k_i + sum_m G_im n_m) / tau,
                        dR/dk_i = r G_i0 q_i / tau,   dR/dn = r G_{:,1:}^T q / tau

then, with ``normalize``, the row-normalisation backward dx = (dx^ - x^ (x^ . dx^)) / ||x||.
Products are float64 BLAS products on float64 copies (float64 accumulation; copies, unit rows
and the rounded gradients each in one pass: ``_float64_rows``), in row blocks
(memory O(block * (N or M+1))); a kernel (``_logit_rows``) turns each block of logits into
CE values and r G / tau.
"""

from __future__ import annotations

import numpy as np

from lossd.core import checks
from lossd.kernels.reduction import Reduction, scale
from lossd.losses._float64_rows import combine, widen
from lossd.losses._logit_rows import softmax_xent
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec

#: elements of one block of logits
BLOCK_ELEMENTS = 1 << 21
#: rows with an L2 norm at or below this are rejected when normalising (F.normalize's eps)
NORM_FLOOR = 1e-12


def _product_into(out: np.ndarray, a: np.ndarray, b: np.ndarray, first: bool) -> None:
    """out = a @ b on the first row block, out += a @ b after it."""
    if first:
        np.matmul(a, b, out=out)
    else:
        out += a @ b


def compute(call: Call) -> LossOutput:
    names = [k for k in ("query", "positive_key", "negative_keys") if k in call.inputs]
    unit = call.params["normalize"]
    x, norms = {}, {}
    for k in names:
        x[k], norms[k] = widen(call.inputs[k], unit)
    q, keys = x["query"], x["positive_key"]
    neg = x.get("negative_keys")
    n = q.shape[0]
    inv_tau = 1.0 / call.params["temperature"]
    r = scale(call.reduction, n, n)
    g = {k: np.empty(x[k].shape) for k in names if call.wants(k)}
    ce = np.empty(n)
    width = n if neg is None else neg.shape[0] + 1
    block = max(1, BLOCK_ELEMENTS // width)
    target = np.arange(n, dtype=np.int64) if neg is None else np.zeros(n, np.int64)
    columns = np.arange(width, dtype=np.int64)
    ones = np.ones(n)
    for row0 in range(0, n, block):
        rows = slice(row0, min(n, row0 + block))
        qb = q[rows]
        if neg is None:
            z = qb @ keys.T
        else:
            z = np.empty((qb.shape[0], width))
            z[:, 0] = np.einsum("ij,ij->i", qb, keys[rows])
            np.matmul(qb, neg.T, out=z[:, 1:])
        z *= inv_tau
        # z -> dR/dlogits times d logits / d dot
        softmax_xent.call(z.size, z, target[rows], columns, ones[rows], r * inv_tau, ce[rows])
        if neg is None:
            if "query" in g:
                np.matmul(z, keys, out=g["query"][rows])
            if "positive_key" in g:
                _product_into(g["positive_key"], z.T, qb, row0 == 0)
        else:
            if "query" in g:
                np.matmul(z[:, 1:], neg, out=g["query"][rows])
                g["query"][rows] += z[:, :1] * keys[rows]
            if "positive_key" in g:
                np.multiply(z[:, :1], qb, out=g["positive_key"][rows])
            if "negative_keys" in g:
                _product_into(g["negative_keys"], z[:, 1:].T, qb, row0 == 0)
    if call.reduction is Reduction.NONE:
        loss = ce.astype(call.dtype)
    else:
        loss = np.asarray(float(np.sum(ce)) * r).astype(call.dtype)
    if unit:  # row-normalisation backward: (g - xh (xh . g)) / ||x||
        grads = {k: combine(v, 1.0 / norms[k], x[k], -np.einsum("ij,ij->i", x[k], v) / norms[k], call.dtype)
                 for k, v in g.items()}
    else:
        grads = {k: v.astype(call.dtype) for k, v in g.items()}
    return LossOutput(loss, grads)


def validate(call: Call) -> None:
    checks.rank(call, "query", 2, "(N, D)")
    checks.same_shape(call, "positive_key", "query")
    checks.rank(call, "negative_keys", 2, "(M, D)")
    neg = call.get("negative_keys")
    if neg is not None:
        checks.shape_is(call, "negative_keys", (neg.shape[0], call.inputs["query"].shape[1]),
                        "(M, D) with the D of query")
    if call.params["normalize"]:
        for name in ("query", "positive_key", "negative_keys"):
            a = call.get(name)
            if a is None:
                continue
            norm = np.sqrt(np.einsum("ij,ij->i", a, a, dtype=np.float64))
            bad = norm <= NORM_FLOOR
            if bad.any():
                row = int(np.argmax(bad))
                raise checks.input_error(name, f"row {row} has L2 norm {norm[row]:.3g} <= 1e-12 and "
                                               f"cannot be normalised (normalize = true)")


def examples(dtype: np.dtype) -> list:
    q = np.array([[0.5, -1.0], [0.0, 0.3], [1.0, 1.0]], dtype)
    k = np.array([[0.4, -0.8], [0.1, 0.2], [0.9, 1.2]], dtype)
    neg = np.array([[1.0, 0.0], [-0.5, 0.5]], dtype)
    return [({"query": q, "positive_key": k}, {}),
            ({"query": q, "positive_key": k, "negative_keys": neg}, {"normalize": False})]


SPEC = LossSpec(
    id="info_nce",
    summary="InfoNCE: cross entropy of the positive key against the other positives or against "
            "unpaired negative keys.",
    inputs=(
        InputSpec("query", Kind.FLOAT, "(N, D)", "queries", differentiable=True),
        InputSpec("positive_key", Kind.FLOAT, "(N, D)", "the positive key of each query",
                  differentiable=True),
        InputSpec("negative_keys", Kind.FLOAT, "(M, D)", "negative keys shared by all queries; absent: "
                  "the other queries' positives are the negatives", differentiable=True, required=False),
    ),
    params=(
        ParamSpec("temperature", float, 0.1, "logit temperature tau", minimum=0.0, exclusive_minimum=True),
        ParamSpec("normalize", bool, True, "L2-normalise every row first (zero rows are rejected)"),
    ),
    loss_shape="(N,)",
    compute=compute,
    validate=validate,
    examples=examples,
)
