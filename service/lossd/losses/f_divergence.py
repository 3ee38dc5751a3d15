"""f_divergence: D_f(P||Q) = sum_c q_c f(p_c / q_c) per position (f-GAN, Nowozin et al. 2016).

``input``: logits z of Q (``input_kind = "logits"``, Q = softmax(z, dim 1)) or the
probabilities q themselves (``"probs"``, entries in (0, 1]); (N, C, d1..dk).
``target``: P, probabilities in [0, 1] of the same shape (not differentiated; sums not
checked). Per element t(p, q) = q f(p/q), per position l_i = sum_c t(p_ic, q_ic):

    divergence          t(p, q)                              dt/dq                 t at p = 0
    kl                  p log(p/q)                           -p/q                  0
    reverse_kl          q log(q/p)                           log(q/p) + 1          rejected
    pearson_chi2        (p - q)^2 / q                        1 - p^2/q^2           q
    neyman_chi2         (q - p)^2 / p                        2 (q - p)/p           rejected
    squared_hellinger   (sqrt p - sqrt q)^2                  1 - sqrt(p/q)         q
    jensen_shannon      (p log(2p/(p+q)) + q log(2q/(p+q)))/2  log(2q/(p+q))/2     q log(2)/2
    total_variation     |p - q| / 2                          sign(q - p)/2, 0 at p = q

Gradient, g = s dt/dq: probs: dR/dq = g; logits: dR/dz_c = q_c (g_c - sum_j q_j g_j),
evaluated as h_c - q_c sum_j h_j with h = q g formed stably (kl: h = -s p), so that an
underflowed q never produces Inf * 0. With logits, log q = z - logsumexp(z) is always
finite; pearson_chi2 uses (p - q)^2 exp(-log q) and is +Inf when q underflows (p > 0).
``l`` has shape (N, d1..dk); ``mean`` divides by P, ``batchmean`` by N.
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import boolean, dual, f64, for_floats, i64, inline, prange, ro, rw
from lossd.kernels.reduction import Reduction, scale
from lossd.losses.common import buffer, finish
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec

DIVERGENCES = ("kl", "reverse_kl", "pearson_chi2", "neyman_chi2", "squared_hellinger",
               "jensen_shannon", "total_variation")
INPUT_KINDS = ("logits", "probs")
LOG2 = math.log(2.0)


@inline
def _term(div, p, q, lq):  # pragma: no cover - compiled
    """(t, dt/dq, q dt/dq) of one element; q dt/dq formed without Inf * 0."""
    if div == 0:  # kl
        t = p * (math.log(p) - lq) if p > 0.0 else 0.0
        return t, -p / q, -p
    if div == 1:  # reverse_kl (p > 0 is validated)
        r = lq - math.log(p)
        return q * r, r + 1.0, q * (r + 1.0)
    if div == 2:  # pearson_chi2
        if p > 0.0:
            iq = math.exp(-lq)
            u = p * iq
            return (p - q) * (p - q) * iq, 1.0 - u * u, q - p * u
        return q, 1.0, q
    if div == 3:  # neyman_chi2 (p > 0 is validated)
        d = 2.0 * (q - p) / p
        return (q - p) * (q - p) / p, d, q * d
    if div == 4:  # squared_hellinger
        sq = math.sqrt(q) if q >= 1e-300 else math.exp(0.5 * lq)
        sp = math.sqrt(p)
        if p > 0.0:
            return (sp - sq) * (sp - sq), 1.0 - sp / sq, q - sp * sq
        return q, 1.0, q
    if div == 5:  # jensen_shannon
        if p > 0.0:
            lm = math.log(0.5 * (p + q))
            d = 0.5 * (lq - lm)
            return 0.5 * (p * (math.log(p) - lm) + q * (lq - lm)), d, q * d
        return 0.5 * LOG2 * q, 0.5 * LOG2, 0.5 * LOG2 * q
    # total_variation: sign(0) = 0
    d = 0.5 if q > p else (-0.5 if q < p else 0.0)
    return 0.5 * abs(p - q), d, q * d


@dual(for_floats(lambda f: f64(ro(f, 3), ro(f, 3), i64, boolean, f64, rw(f, 2), rw(f, 3), boolean)))
def _fdiv(z, p, div, logits, s, out, gz, want):  # pragma: no cover - compiled
    n_rows, n_cls, n_pos = z.shape
    keep = out.size > 0
    total = 0.0
    for n in prange(n_rows):
        h = np.empty(2 * n_cls)  # h[c]: s * q_c * d_c; h[n_cls + c]: q_c (logits: no 3rd exp)
        for k in range(n_pos):
            lse = 0.0
            if logits:
                m = -np.inf
                for c in range(n_cls):
                    m = max(m, np.float64(z[n, c, k]))
                se = 0.0
                for c in range(n_cls):
                    se += math.exp(np.float64(z[n, c, k]) - m)
                lse = m + math.log(se)
            value = 0.0
            hsum = 0.0
            for c in range(n_cls):
                pc = np.float64(p[n, c, k])
                if logits:
                    lq = np.float64(z[n, c, k]) - lse
                    q = math.exp(lq)
                else:
                    q = np.float64(z[n, c, k])
                    lq = math.log(q)
                t, d, qd = _term(div, pc, q, lq)
                value += t
                if want:
                    if logits:
                        h[c] = s * qd
                        h[n_cls + c] = q
                        hsum += s * qd
                    else:
                        gz[n, c, k] = s * d
            total += value
            if keep:
                out[n, k] = value
            if want and logits:
                for c in range(n_cls):
                    gz[n, c, k] = h[c] - h[n_cls + c] * hsum
    return total


def compute(call: Call) -> LossOutput:
    shape = call.inputs["input"].shape
    z = call.inputs["input"].reshape(shape[0], shape[1], -1)
    p = call.inputs["target"].reshape(z.shape)
    n, _, positions = z.shape
    s = scale(call.reduction, n * positions, n)
    want = call.wants("input")
    out = buffer(call, (n, positions), call.reduction is Reduction.NONE)
    gz = buffer(call, z.shape, want)
    total = _fdiv.call(z.size, z, p, DIVERGENCES.index(call.params["divergence"]),
                       call.params["input_kind"] == "logits", s, out, gz, want)
    return LossOutput(finish(call, total, s, out, (n, *shape[2:])),
                      {"input": gz.reshape(shape)} if want else {})


def validate(call: Call) -> None:
    checks.min_rank(call, "input", 2, "(N, C, d1..dk)")
    checks.same_shape(call, "target", "input")
    checks.values_in(call, "target", 0.0, 1.0, words="(probabilities of P)")
    divergence = call.params["divergence"]
    if divergence in ("reverse_kl", "neyman_chi2"):
        p = call.inputs["target"]
        zero = p == 0.0
        if zero.any():
            where = tuple(int(i) for i in np.unravel_index(int(np.argmax(zero)), p.shape))
            raise checks.input_error("target", f"divergence {divergence} is infinite where p = 0; "
                                               f"expected p > 0, got 0 at index {where}")
    if call.params["input_kind"] == "probs":
        checks.values_in(call, "input", 0.0, 1.0, lo_open=True,
                         words="(probabilities of Q with input_kind = probs)")


def examples(dtype: np.dtype) -> list:
    z = np.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]], dtype)
    q = np.array([[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]], dtype)
    p = np.array([[0.1, 0.4, 0.5], [0.3, 0.3, 0.4]], dtype)
    return [({"input": z, "target": p}, {"divergence": d}) for d in DIVERGENCES] + \
        [({"input": q, "target": p}, {"divergence": d, "input_kind": "probs"}) for d in DIVERGENCES]


SPEC = LossSpec(
    id="f_divergence",
    summary="f-divergence D_f(P||Q) per position between a target distribution and the model's.",
    inputs=(
        InputSpec("input", Kind.FLOAT, "(N, C, d1..dk)",
                  "Q: logits (input_kind = logits) or probabilities in (0, 1] (probs); dim 1",
                  differentiable=True),
        InputSpec("target", Kind.FLOAT, "same shape as input, values in [0, 1]",
                  "P: reference probabilities along dim 1 (not differentiated)"),
    ),
    params=(
        ParamSpec("divergence", str, "kl", "the generator f (jensen_shannon is bounded by log 2, "
                  "total_variation by 1, squared_hellinger by 2)", choices=DIVERGENCES),
        ParamSpec("input_kind", str, "logits", "whether input holds logits of Q (softmax along dim 1) "
                  "or Q itself", choices=INPUT_KINDS),
    ),
    loss_shape="(N, d1..dk)",
    compute=compute,
    validate=validate,
    examples=examples,
)
