"""categorical_cross_entropy: cross entropy H(P, Q) between two distributions given as
probabilities.

``input`` q (predicted) and ``target`` p (reference): (N, C, d1..dk), values in [0, 1],
distribution along dim 1 (row sums not checked). With L(u) = max(log u, -100), per
position i:

    l_i = -sum_c p_{i,c} L(q_{i,c})          (terms with p = 0 contribute 0, also at q = 0)
    dR/dq_{i,c} = -s p_{i,c} / max(q_{i,c}, 1e-12)     (0 when p = 0)
    dR/dp_{i,c} = -s L(q_{i,c})

``l`` has shape (N, d1..dk); ``mean`` divides by the number of positions P,
``batchmean`` by N; s is that factor (1 for none/sum).
"""

from __future__ import annotations

import numpy as np

from lossd.core import checks
from lossd.kernels import vecmath
from lossd.kernels.jit import block, dual, f64, for_floats, i64, prange, ro, rw
from lossd.kernels.reduction import Reduction, scale
from lossd.losses._blocks import sink
from lossd.losses.common import buffer, finish
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec

#: elements per chunk: the chunk's float64 scratch of L(q) stays in the L1/L2 cache
_CHUNK_ELEMENTS = 2048


@block
def _cce_rows(lo, hi, q, p, n_cls, n_pos, s, out, gq, gp):  # pragma: no cover - compiled
    """Flat elements [lo, hi) (whole rows), through block views indexed from 0 (an index
    from an unknown lo defeats LLVM's bounds analysis and the vectoriser): one vectorised
    pass for L(q) into a float64 scratch, the sum of p L(q) and both gradients (one that is
    not requested goes to a scratch: _blocks.sink), then the per-position losses for
    reduction none; returns the sum."""
    qb = q[lo:hi]
    pb = p[lo:hi]
    gqb = sink(gq, lo, hi)
    gpb = sink(gp, lo, hi)
    lq = np.empty(hi - lo)
    acc = 0.0
    for j in range(hi - lo):
        qj = np.float64(qb[j])
        pj = np.float64(pb[j])
        v = max(vecmath.log(qj), -100.0)  # log 0 = -Inf -> -100
        lq[j] = v
        acc -= pj * v                      # p = 0 adds 0: v is finite
        gqb[j] = -s * pj / max(qj, 1e-12)
        gpb[j] = -s * v
    if out.size > 0:
        row = n_cls * n_pos
        for n in range((hi - lo) // row):
            for k in range(n_pos):
                value = 0.0
                for c in range(n_cls):
                    i = n * row + c * n_pos + k
                    value -= np.float64(pb[i]) * lq[i]
                out[lo // row * n_pos + n * n_pos + k] = value
    return acc


@dual(for_floats(lambda f: f64(ro(f), ro(f), i64, i64, f64, rw(f), rw(f), rw(f))))
def _cce(q, p, n_cls, n_pos, s, out, gq, gp):  # pragma: no cover - compiled
    """q, p: the flat (N, C, K) arrays; out: flat (N, K); gq, gp: flat, size 0 when not
    requested. Chunks of whole rows of about _CHUNK_ELEMENTS elements."""
    row = n_cls * n_pos
    n_rows = q.size // row
    per = max(1, _CHUNK_ELEMENTS // row)
    total = 0.0
    for chunk in prange((n_rows + per - 1) // per):
        total += _cce_rows(chunk * per * row, min(n_rows, (chunk + 1) * per) * row, q, p, n_cls, n_pos, s,
                           out, gq, gp)
    return total


def compute(call: Call) -> LossOutput:
    shape = call.inputs["input"].shape
    n, classes = shape[0], shape[1]
    positions = call.inputs["input"].size // max(1, n * classes)
    s = scale(call.reduction, n * positions, n)
    want_q, want_p = call.wants("input"), call.wants("target")
    size = call.inputs["input"].size
    out = buffer(call, n * positions, call.reduction is Reduction.NONE)
    gq, gp = buffer(call, size, want_q), buffer(call, size, want_p)
    total = _cce.call(size, call.inputs["input"].reshape(-1), call.inputs["target"].reshape(-1), classes,
                      positions, s, out, gq, gp)
    grads = {}
    if want_q:
        grads["input"] = gq.reshape(shape)
    if want_p:
        grads["target"] = gp.reshape(shape)
    return LossOutput(finish(call, total, s, out, (n, *shape[2:])), grads)


def validate(call: Call) -> None:
    checks.min_rank(call, "input", 2, "(N, C, d1..dk)")
    checks.same_shape(call, "target", "input")
    checks.values_in(call, "input", 0.0, 1.0, words="(probabilities)")
    checks.values_in(call, "target", 0.0, 1.0, words="(probabilities)")


def examples(dtype: np.dtype) -> list:
    q = np.array([[0.2, 0.0, 0.8], [0.5, 0.25, 0.25]], dtype)
    p = np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]], dtype)
    return [({"input": q, "target": p}, {})]


SPEC = LossSpec(
    id="categorical_cross_entropy",
    summary="Cross entropy -sum_c p_c log q_c between probability distributions (log clamped at -100).",
    inputs=(
        InputSpec("input", Kind.FLOAT, "(N, C, d1..dk), values in [0, 1]",
                  "predicted distribution q along dim 1", differentiable=True),
        InputSpec("target", Kind.FLOAT, "same shape as input, values in [0, 1]",
                  "reference distribution p along dim 1", differentiable=True),
    ),
    params=(),
    loss_shape="(N, d1..dk)",
    compute=compute,
    validate=validate,
    examples=examples,
)
