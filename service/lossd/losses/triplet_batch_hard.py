"""triplet_batch_hard: batch-hard triplet loss (Hermans, Beyer, Leibe 2017).

``embeddings`` x (N, D) float (differentiable); ``labels`` (N,) int, any values.

    D_ij = ||x_i - x_j||_2  (or its square with squared = true), from the difference vector
    d+_i = max_{j != i, y_j = y_i} D_ij,   d-_i = min_{j: y_j != y_i} D_ij
    z_i  = margin + d+_i - d-_i,   l_i = max(0, z_i)  or  softplus(z_i) (soft)    (shape (N,))

An anchor without a positive or without a negative is invalid: l_i = 0. ``mean`` divides
by the number V of valid anchors, ``batchmean`` by N; V = 0 gives loss 0 and all-zero
gradients under every reduction. The gradient flows through the arg-max / arg-min pairs
only (first index on ties), with c_i = r [z_i >= 0] (hinge, slope 1 at 0) or r sigmoid(z_i):

    g(i, j) = (x_i - x_j) / D_ij  (0 at D_ij = 0),   or 2 (x_i - x_j) when squared
    dR/dx_i += c_i (g(i, p_i) - g(i, n_i)),  dR/dx_{p_i} -= c_i g(i, p_i),  dR/dx_{n_i} += c_i g(i, n_i)

Mining runs in parallel over anchors with distances computed on the fly (O(N^2 D) work,
O(N D) memory); the scatter of the three contributions per anchor runs serially into a
float64 buffer (O(N D)), so no two threads add into the same row.
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import boolean, dual, f64, for_floats, i64, prange, ro, rw
from lossd.kernels.reduction import Reduction
from lossd.kernels.stable import sigmoid, softplus
from lossd.losses.common import buffer, finish, grads_of, loss_buffer
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec


@dual(for_floats(lambda f: f64(ro(f, 2), ro(i64), f64, boolean, boolean, i64, rw(f), rw(i64), rw(f, 2),
                               boolean)))
def _batch_hard(x, y, margin, soft, squared, reduction, out, valid, gx, want):  # pragma: no cover - compiled
    n, dim = x.shape
    keep = out.size > 0
    pos = np.empty(n, np.int64)
    neg = np.empty(n, np.int64)
    dpos = np.empty(n)
    dneg = np.empty(n)
    coef = np.zeros(n)
    total = 0.0
    count = 0
    for i in prange(n):
        best_p = -1.0
        best_n = np.inf
        ip = -1
        ineg = -1
        for j in range(n):
            if j == i:
                continue
            d2 = 0.0
            for k in range(dim):
                u = np.float64(x[i, k]) - np.float64(x[j, k])
                d2 += u * u
            d = d2 if squared else math.sqrt(d2)
            if y[j] == y[i]:
                if d > best_p:
                    best_p = d
                    ip = j
            elif d < best_n:
                best_n = d
                ineg = j
        pos[i] = ip
        neg[i] = ineg
        dpos[i] = best_p
        dneg[i] = best_n
        value = 0.0
        ok = ip >= 0 and ineg >= 0
        if ok:
            z = margin + best_p - best_n
            if soft:
                value = softplus(z)
                coef[i] = sigmoid(z)
            else:
                value = max(z, 0.0)
                coef[i] = 1.0 if z >= 0.0 else 0.0
            count += 1
        valid[i] = 1 if ok else 0
        total += value
        if keep:
            out[i] = value
    if want:
        r = 1.0
        if reduction == 2:
            r = 1.0 / count if count > 0 else 0.0
        elif reduction == 3:
            r = 1.0 / n
        acc = np.zeros((n, dim))
        for i in range(n):
            c = coef[i]
            if c == 0.0:
                continue
            ip = pos[i]
            ineg = neg[i]
            sp = 0.0 if (not squared and dpos[i] == 0.0) else (2.0 if squared else 1.0 / dpos[i])
            sn = 0.0 if (not squared and dneg[i] == 0.0) else (2.0 if squared else 1.0 / dneg[i])
            for k in range(dim):
                xi = np.float64(x[i, k])
                up = c * sp * (xi - np.float64(x[ip, k]))
                un = c * sn * (xi - np.float64(x[ineg, k]))
                acc[i, k] += up - un
                acc[ip, k] -= up
                acc[ineg, k] += un
        for i in prange(n):
            for k in range(dim):
                gx[i, k] = r * acc[i, k]
    return total


def compute(call: Call) -> LossOutput:
    x, y = call.inputs["embeddings"], call.inputs["labels"]
    n = x.shape[0]
    prm = call.params
    out = loss_buffer(call, n)
    valid = np.empty(n, np.int64)
    gx = buffer(call, x.shape, call.wants("embeddings"))
    # the parallel build pays off on the O(N^2 D) mining work
    total = _batch_hard.call(n * x.size, x, y, prm["margin"], prm["soft"], prm["squared"],
                             int(call.reduction), out, valid, gx, call.wants("embeddings"))
    count = int(np.count_nonzero(valid))
    s = 1.0
    if call.reduction is Reduction.MEAN:
        s = 1.0 / count if count else 0.0
    elif call.reduction is Reduction.BATCHMEAN:
        s = 1.0 / n
    return LossOutput(finish(call, total, s, out, (n,)), grads_of(call, embeddings=gx))


def validate(call: Call) -> None:
    checks.rank(call, "embeddings", 2, "(N, D)")
    checks.shape_is(call, "labels", (call.n,), "(N,)")


def examples(dtype: np.dtype) -> list:
    x = np.array([[0.5, -1.0], [0.0, 0.3], [1.0, 1.0], [0.2, 0.1]], dtype)
    y = np.array([1, 0, 1, 0])
    return [({"embeddings": x, "labels": y}, {}), ({"embeddings": x, "labels": y}, {"soft": True})]


SPEC = LossSpec(
    id="triplet_batch_hard",
    summary="Batch-hard triplet loss: hardest positive and hardest negative per anchor.",
    inputs=(
        InputSpec("embeddings", Kind.FLOAT, "(N, D)", "embeddings", differentiable=True),
        InputSpec("labels", Kind.INTEGER, "(N,)", "identity labels (any integer values)"),
    ),
    params=(
        ParamSpec("margin", float, 0.3, "margin (also used by the soft variant)", minimum=0.0),
        ParamSpec("soft", bool, False, "softplus(z) instead of max(0, z)"),
        ParamSpec("squared", bool, False, "squared Euclidean distances"),
    ),
    loss_shape="(N,)",
    compute=compute,
    validate=validate,
    examples=examples,
)
