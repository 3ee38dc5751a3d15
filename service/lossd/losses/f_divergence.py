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
from lossd.kernels import vecmath
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, i64, inline, prange, ro, rw
from lossd.kernels.reduction import Reduction, scale
from lossd.losses._softmax_rows import exp_row, row_max
from lossd.losses.common import buffer, finish
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec

DIVERGENCES = ("kl", "reverse_kl", "pearson_chi2", "neyman_chi2", "squared_hellinger",
               "jensen_shannon", "total_variation")
INPUT_KINDS = ("logits", "probs")
LOG2 = math.log(2.0)
#: rows per chunk target about this many elements (three float64 scratch rows per chunk)
_CHUNK_ELEMENTS = 4096


# Per-element terms (t, q dt/dq), q dt/dq formed without Inf * 0; lp = log p (-Inf at p = 0,
# selected away). Branch-free (every formula is evaluated and selected on p > 0) so that the
# loop of _row_terms over classes vectorises.


@inline
def _kl(p, q, lq, lp):  # pragma: no cover - compiled
    return (p * (lp - lq) if p > 0.0 else 0.0), -p


@inline
def _reverse_kl(p, q, lq, lp):  # pragma: no cover - compiled (p > 0 is validated)
    r = lq - lp
    return q * r, q * (r + 1.0)


@inline
def _pearson_chi2(p, q, lq, lp):  # pragma: no cover - compiled
    iq = vecmath.exp(-lq)
    u = p * iq
    pos = p > 0.0
    return ((p - q) * (p - q) * iq if pos else q), (q - p * u if pos else q)


@inline
def _neyman_chi2(p, q, lq, lp):  # pragma: no cover - compiled (p > 0 is validated)
    d = 2.0 * (q - p) / p
    return (q - p) * (q - p) / p, q * d


@inline
def _squared_hellinger(p, q, lq, lp):  # pragma: no cover - compiled
    sq_direct = math.sqrt(q)
    sq_log = vecmath.exp(0.5 * lq)
    sq = sq_direct if q >= 1e-300 else sq_log
    sp = math.sqrt(p)
    pos = p > 0.0
    return ((sp - sq) * (sp - sq) if pos else q), (q - sp * sq if pos else q)


@inline
def _jensen_shannon(p, q, lq, lp):  # pragma: no cover - compiled
    lm = vecmath.log(0.5 * (p + q))
    d = 0.5 * (lq - lm)
    t = 0.5 * (p * (lp - lm) + q * (lq - lm))
    pos = p > 0.0
    return (t if pos else 0.5 * LOG2 * q), (q * d if pos else 0.5 * LOG2 * q)


@inline
def _total_variation(p, q, lq, lp):  # pragma: no cover - compiled
    d = 0.5 if q > p else (-0.5 if q < p else 0.0)  # sign(0) = 0
    return 0.5 * abs(p - q), q * d


@inline
def _row_terms(term, p, n, k, q, lq, h):  # pragma: no cover - compiled
    """h[c] = q_c dt/dq_c of the row; returns (sum_c t, sum_c h[c])."""
    value = 0.0
    hsum = 0.0
    for c in range(q.size):
        pc = np.float64(p[n, c, k])
        t, qd = term(pc, q[c], lq[c], vecmath.log(pc))
        value += t
        h[c] = qd
        hsum += qd
    return value, hsum


@block
def _fdiv_rows(lo, hi, z, p, div, logits, s, out, gz, want):  # pragma: no cover - compiled
    """Rows [lo, hi), per position: q and log q into float64 rows (logits: max, exp and sum
    vectorised over classes, q = e / se, log q = z - lse; probs: log q), then one branch-free
    pass of the divergence's terms for the loss and q dt/dq, then the gradient."""
    _, n_cls, n_pos = z.shape
    keep = out.size > 0
    q = np.empty(n_cls)
    lq = np.empty(n_cls)
    h = np.empty(n_cls)  # q_c dt/dq_c
    acc = 0.0
    for n in range(lo, hi):
        for k in range(n_pos):
            if logits:
                m = row_max(z, n, k)
                se = exp_row(z, n, k, m, q, 0, -1)
                lse = m + vecmath.log(se)
                inv = 1.0 / se
                for c in range(n_cls):
                    q[c] *= inv
                    lq[c] = np.float64(z[n, c, k]) - lse
            else:
                for c in range(n_cls):
                    q[c] = np.float64(z[n, c, k])
                    lq[c] = vecmath.log(q[c])
            if div == 0:  # one specialised loop per divergence (the loops vectorise)
                value, hsum = _row_terms(_kl, p, n, k, q, lq, h)
            elif div == 1:
                value, hsum = _row_terms(_reverse_kl, p, n, k, q, lq, h)
            elif div == 2:
                value, hsum = _row_terms(_pearson_chi2, p, n, k, q, lq, h)
            elif div == 3:
                value, hsum = _row_terms(_neyman_chi2, p, n, k, q, lq, h)
            elif div == 4:
                value, hsum = _row_terms(_squared_hellinger, p, n, k, q, lq, h)
            elif div == 5:
                value, hsum = _row_terms(_jensen_shannon, p, n, k, q, lq, h)
            else:
                value, hsum = _row_terms(_total_variation, p, n, k, q, lq, h)
            acc += value
            if keep:
                out[n, k] = value
            if want:
                if logits:  # dR/dz_c = s (h_c - q_c sum_j h_j)
                    for c in range(n_cls):
                        gz[n, c, k] = s * (h[c] - q[c] * hsum)
                else:
                    for c in range(n_cls):
                        pc = np.float64(p[n, c, k])
                        gz[n, c, k] = s * (-pc / q[c] if div == 0 else h[c] / q[c])
    return acc


@dual(for_floats(lambda f: f64(ro(f, 3), ro(f, 3), i64, boolean, f64, rw(f, 2), rw(f, 3), boolean)))
def _fdiv(z, p, div, logits, s, out, gz, want):  # pragma: no cover - compiled
    """Chunks of rows (about _CHUNK_ELEMENTS elements each; scratch allocated per chunk, not
    per row: 2 threads contended on malloc) through the compiled, not inlined, row body."""
    n_rows, n_cls, n_pos = z.shape
    per = max(1, _CHUNK_ELEMENTS // (n_cls * n_pos))
    total = 0.0
    for chunk in prange((n_rows + per - 1) // per):
        total += _fdiv_rows(chunk * per, min(n_rows, (chunk + 1) * per), z, p, div, logits, s, out, gz,
                            want)
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
