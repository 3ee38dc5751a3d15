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

import math

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import boolean, dual, f64, for_floats, prange, ro, rw
from lossd.kernels.reduction import Reduction, scale
from lossd.losses.common import buffer, finish
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec


@dual(for_floats(lambda f: f64(ro(f, 3), ro(f, 3), f64, rw(f, 2), rw(f, 3), rw(f, 3), boolean, boolean)))
def _cce(q, p, s, out, gq, gp, want_q, want_p):  # pragma: no cover - compiled
    n_rows, n_cls, n_pos = q.shape
    keep = out.size > 0
    total = 0.0
    for n in prange(n_rows):
        for k in range(n_pos):
            value = 0.0
            for c in range(n_cls):
                qc = np.float64(q[n, c, k])
                pc = np.float64(p[n, c, k])
                lq = max(math.log(qc), -100.0) if qc > 0.0 else -100.0
                if pc != 0.0:
                    value -= pc * lq
                if want_q:
                    gq[n, c, k] = -s * pc / max(qc, 1e-12)
                if want_p:
                    gp[n, c, k] = -s * lq
            total += value
            if keep:
                out[n, k] = value
    return total


def compute(call: Call) -> LossOutput:
    shape = call.inputs["input"].shape
    q = call.inputs["input"].reshape(shape[0], shape[1], -1)
    p = call.inputs["target"].reshape(q.shape)
    n, _, positions = q.shape
    s = scale(call.reduction, n * positions, n)
    want_q, want_p = call.wants("input"), call.wants("target")
    out = buffer(call, (n, positions), call.reduction is Reduction.NONE)
    gq, gp = buffer(call, q.shape, want_q), buffer(call, q.shape, want_p)
    total = _cce.call(q.size, q, p, s, out, gq, gp, want_q, want_p)
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
