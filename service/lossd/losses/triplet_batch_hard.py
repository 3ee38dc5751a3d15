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

Mining (exact, O(N^2 D) BLAS work, O(N D) otherwise). The Gram matrix G = x x^T (one
BLAS syrk in the request dtype, in row blocks of at most GRAM_ELEMENTS entries when N is
large) only *filters* candidates: with s_j = ||x_j||^2 (float64), e_ij = s_j - 2 G_ij
equals D_ij^2 - s_i up to |err| <= gamma_D (s_i + s_j), gamma_D = D u / (1 - D u) (u the
unit roundoff of the Gram's dtype, any summation order). Per anchor, every candidate whose
e is within the band tol_i = 2.2 (D + 2) u (s_i + max s) of the best e gets its distance
recomputed in float64 from the difference vector, and the hardest pair is chosen among
those exact values (first index on ties). A candidate outside the band is strictly worse
than the band's best in exact arithmetic, so the choice is the one of the all-pairs float64
computation, and D_ij of the chosen pairs are exact float64. Where products could overflow
the Gram's dtype, the Gram is float64, of x scaled by 2^-k.
Anchors run in parallel; the O(N D) scatter of the three contributions per anchor runs
serially into a float64 buffer.
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, i64, kernel, prange, ro, rw
from lossd.kernels.reduction import Reduction
from lossd.kernels.stable import sigmoid, softplus
from lossd.losses.common import buffer, finish, grads_of
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec

#: entries of one row block of the Gram matrix (the whole matrix up to N = 4096: one syrk)
GRAM_ELEMENTS = 1 << 24
#: anchors per parallel task of the mining kernel: about this many Gram entries
_CHUNK_ELEMENTS = 4096


@kernel(for_floats(lambda f: f64(ro(f, 2), i64, i64, boolean)))
def _distance(x, i, j, squared):  # pragma: no cover - compiled
    """||x_i - x_j|| (or its square) accumulated in float64 from the difference vector."""
    d2 = 0.0
    for k in range(x.shape[1]):
        u = np.float64(x[i, k]) - np.float64(x[j, k])
        d2 += u * u
    return d2 if squared else math.sqrt(d2)


@block
def _mine_rows(lo, hi, gram, x, y, sq, row0, band, top, squared, pos, neg, dpos,
               dneg):  # pragma: no cover - compiled
    """Hardest positive / negative of the anchors of Gram rows [lo, hi) (see the docstring);
    writes entries row0 + lo .. row0 + hi - 1 of pos, neg, dpos, dneg only."""
    n = gram.shape[1]
    for b in range(lo, hi):
        i = row0 + b
        yi = y[i]
        best_p = -np.inf
        best_n = np.inf
        for j in range(n):
            e = sq[j] - 2.0 * np.float64(gram[b, j])
            if y[j] == yi:
                if j != i and e > best_p:
                    best_p = e
            elif e < best_n:
                best_n = e
        tol = band * (sq[i] + top)
        lo = best_p - tol
        hi = best_n + tol
        ip = -1
        ineg = -1
        dp = -1.0
        dn = np.inf
        for j in range(n):
            e = sq[j] - 2.0 * np.float64(gram[b, j])
            if y[j] == yi:
                if j != i and e >= lo:
                    d = _distance(x, i, j, squared)
                    if d > dp:
                        dp = d
                        ip = j
            elif e <= hi:
                d = _distance(x, i, j, squared)
                if d < dn:
                    dn = d
                    ineg = j
        pos[i] = ip
        neg[i] = ineg
        dpos[i] = dp
        dneg[i] = dn


@dual(for_floats(lambda f: f64(ro(f, 2), ro(f, 2), ro(i64), ro(f64), i64, f64, f64, boolean, rw(i64), rw(i64),
                               rw(f64), rw(f64))))
def _mine(gram, x, y, sq, row0, band, top, squared, pos, neg, dpos, dneg):  # pragma: no cover - compiled
    """Hardest positive / negative of anchors row0.. from their Gram rows: chunks of whole rows
    (about _CHUNK_ELEMENTS Gram entries), each a call of _mine_rows."""
    rows, n = gram.shape
    per = max(1, _CHUNK_ELEMENTS // max(1, n))
    for chunk in prange((rows + per - 1) // per):
        _mine_rows(chunk * per, min(rows, (chunk + 1) * per), gram, x, y, sq, row0, band, top, squared, pos,
                   neg, dpos, dneg)
    return 0.0


@kernel(for_floats(lambda f: f64(ro(f, 2), ro(i64), ro(i64), ro(f64), ro(f64), f64, boolean, boolean, i64,
                                 rw(f64), rw(f, 2), boolean)))
def _loss(x, pos, neg, dpos, dneg, margin, soft, squared, reduction, out, gx, want):  # pragma: no cover
    """Per-anchor losses into out (float64, length N), their sum, and the scattered gradient."""
    n, dim = x.shape
    coef = np.zeros(n)
    total = 0.0
    count = 0
    for i in range(n):
        value = 0.0
        if pos[i] >= 0 and neg[i] >= 0:
            z = margin + dpos[i] - dneg[i]
            if soft:
                value = softplus(z)
                coef[i] = sigmoid(z)
            else:
                value = max(z, 0.0)
                coef[i] = 1.0 if z >= 0.0 else 0.0
            count += 1
        out[i] = value
        total += value
    if want:
        r = 1.0
        if reduction == 2:
            r = 1.0 / count if count > 0 else 0.0
        elif reduction == 3:
            r = 1.0 / n
        acc = np.zeros((n, dim))
        for i in range(n):
            c = coef[i] * r
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
        for i in range(n):
            for k in range(dim):
                gx[i, k] = acc[i, k]
    return total


def _mine_all(x: np.ndarray, y: np.ndarray, squared: bool) -> tuple[np.ndarray, ...]:
    """(pos, neg, dpos, dneg): hardest pair indices (-1: none) and their exact distances."""
    n, dim = x.shape
    sq = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    info = np.finfo(x.dtype)
    top = float(sq.max(initial=0.0))
    xg = x
    if top >= float(info.max) / 16:
        # products could overflow in the Gram's dtype: a float64 Gram of x scaled by a power
        # of two (s scaled alike); the exact distances still come from x, now float64
        x = x.astype(np.float64)
        shift = 2.0 ** -(math.frexp(top)[1] // 2)
        xg = x * shift
        sq = sq * (shift * shift)
        top = float(sq.max())
        info = np.finfo(np.float64)
    # error of s_j - 2 G_ij: gamma_D (s_i + s_j) per candidate, twice for a pair; the absolute
    # term covers products that underflow in the Gram's dtype (Python floats: float64)
    band = 2.2 * (dim + 2) * float(info.eps) / 2
    top += float(info.tiny) * 4 * dim
    pos, neg = np.empty(n, np.int64), np.empty(n, np.int64)
    dpos, dneg = np.empty(n), np.empty(n)
    block = max(1, min(n, GRAM_ELEMENTS // n))
    for row0 in range(0, n, block):
        gram = xg @ xg.T if block == n else xg[row0:row0 + block] @ xg.T
        _mine.call(gram.size, gram, x, y, sq, row0, band, top, squared, pos, neg, dpos, dneg)
    return pos, neg, dpos, dneg


def compute(call: Call) -> LossOutput:
    x, y = call.inputs["embeddings"], call.inputs["labels"]
    n = x.shape[0]
    prm = call.params
    want = call.wants("embeddings")
    pos, neg, dpos, dneg = _mine_all(x, np.asarray(y, np.int64), prm["squared"])
    values = np.empty(n)
    gx = buffer(call, x.shape, want)
    total = _loss(x, pos, neg, dpos, dneg, prm["margin"], prm["soft"], prm["squared"], int(call.reduction),
                  values, gx, want)
    count = int(np.count_nonzero((pos >= 0) & (neg >= 0)))
    s = 1.0
    if call.reduction is Reduction.MEAN:
        s = 1.0 / count if count else 0.0
    elif call.reduction is Reduction.BATCHMEAN:
        s = 1.0 / n
    return LossOutput(finish(call, total, s, values.astype(call.dtype), (n,)), grads_of(call, embeddings=gx))


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
