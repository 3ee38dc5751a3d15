"""triplet_margin: triplet margin loss (PyTorch ``F.triplet_margin_loss``; FaceNet form).

``anchor`` a, ``positive`` p, ``negative`` n: (N, D) float, all differentiable.

    dist(u, v) = ||u - v + eps||_p               (squared = false; torch pairwise_distance)
    dist(u, v) = ||u - v||_2^2                   (squared = true, requires p = 2; eps unused)
    d_ap = dist(a, p),  d_an = dist(a, n);  swap: d_an <- d_pn = dist(p, n) if d_pn < d_an
    l_i = max(0, margin + d_ap - d_an)                                           (shape (N,))

Gradients (r = 1 for none/sum, 1/N for mean/batchmean), for active samples
(margin + d_ap - d_an >= 0, slope 1 at 0), with grad(delta)_k = sign(delta_k)
(|delta_k| / ||delta||_p)^(p-1) (0 at delta = 0; p = 1: sign, sign(0) = 0; squared: 2 delta):

    d_an chosen:  dR/da = r [g(a,p) - g(a,n)],  dR/dp = -r g(a,p),            dR/dn = r g(a,n)
    d_pn chosen:  dR/da = r g(a,p),            dR/dp = -r [g(a,p) + g(p,n)],  dR/dn = r g(p,n)

On a tie d_pn = d_an the anchor-negative distance is kept. General p is evaluated with the
difference vector scaled by its largest component (no overflow of |delta|^p); sums in float64.
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels.jit import block, boolean, dual, f64, for_floats, i64, inline, prange, ro, rw
from lossd.kernels.reduction import scale
from lossd.losses._rowblocks import row_blocks, rows_per_block
from lossd.losses.common import buffer, finish, grads_of, loss_buffer
from lossd.spec import Call, InputSpec, Kind, LossOutput, LossSpec, ParamSpec

# distance modes
_SQUARED, _L1, _L2, _LP = 0, 1, 2, 3


@inline
def _dist(u, v, i, eps, p, mode):  # pragma: no cover - compiled
    """dist(u_i, v_i) in float64."""
    dim = u.shape[1]
    if mode == 0:
        s = 0.0
        for k in range(dim):
            t = np.float64(u[i, k]) - np.float64(v[i, k])
            s += t * t
        return s
    if mode == 1:
        s = 0.0
        for k in range(dim):
            s += abs(np.float64(u[i, k]) - np.float64(v[i, k]) + eps)
        return s
    if mode == 2:
        s = 0.0
        for k in range(dim):
            t = np.float64(u[i, k]) - np.float64(v[i, k]) + eps
            s += t * t
        return math.sqrt(s)
    big = 0.0
    for k in range(dim):
        big = max(big, abs(np.float64(u[i, k]) - np.float64(v[i, k]) + eps))
    if big == 0.0:
        return 0.0
    s = 0.0
    for k in range(dim):
        s += (abs(np.float64(u[i, k]) - np.float64(v[i, k]) + eps) / big) ** p
    return big * s ** (1.0 / p)


@inline
def _dgrad(u, v, i, k, d, eps, p, mode):  # pragma: no cover - compiled
    """d dist(u_i, v_i) / d u_ik in float64 (0 at a zero difference)."""
    if mode == 0:
        return 2.0 * (np.float64(u[i, k]) - np.float64(v[i, k]))
    t = np.float64(u[i, k]) - np.float64(v[i, k]) + eps
    if mode == 1:
        return 1.0 if t > 0.0 else (-1.0 if t < 0.0 else 0.0)
    if d == 0.0:
        return 0.0
    if mode == 2:
        return t / d
    g = (abs(t) / d) ** (p - 1.0)
    return g if t > 0.0 else (-g if t < 0.0 else 0.0)


@inline
def _slope(d, mode):  # pragma: no cover - compiled
    """f of the linear gradient g_k = f (u_k - v_k + e): 2 (squared), 1/d (L2; 0 at d = 0)."""
    if mode == 0:
        return 2.0
    return 1.0 / d if d > 0.0 else 0.0


@block
def _triplet_rows(i0, i1, a, pos, neg, margin, p, eps, mode, swap, r, out, ga, gp, gn,
                  want_a, want_p, want_n):  # pragma: no cover - compiled
    """Rows [i0, i1) of :func:`_triplet`."""
    dim = a.shape[1]
    keep = out.size > 0
    total = 0.0
    for i in range(i0, i1):
        d_ap = _dist(a, pos, i, eps, p, mode)
        d_an = _dist(a, neg, i, eps, p, mode)
        use_pn = False
        d_pn = 0.0
        if swap:
            d_pn = _dist(pos, neg, i, eps, p, mode)
            use_pn = d_pn < d_an
        d_neg = d_pn if use_pn else d_an
        z = margin + d_ap - d_neg
        active = z >= 0.0
        value = z if active else 0.0
        total += value
        if keep:
            out[i] = value
        wanted = want_a or want_p or want_n
        c = r if active else 0.0
        if wanted and (not active or mode == 0 or mode == 2):
            # Linear gradients g(u, v)_k = f (u_k - v_k + e): f = 1/d, e = eps (L2), f = 2,
            # e = 0 (squared), f = 0 (inactive row). A branch-free loop that vectorises,
            # with one reciprocal per row instead of a division per element.
            e = 0.0 if mode == 0 else eps
            f_ap = _slope(d_ap, mode) if active else 0.0
            f_x = _slope(d_neg, mode) if active else 0.0
            u = pos if use_pn else a  # d_pn = dist(pos, neg), d_an = dist(a, neg)
            in_a = 0.0 if use_pn else 1.0  # g_x enters dR/da (d_an) or dR/dp (d_pn)
            for k in range(dim):
                g_ap = f_ap * (np.float64(a[i, k]) - np.float64(pos[i, k]) + e)
                g_x = f_x * (np.float64(u[i, k]) - np.float64(neg[i, k]) + e)
                if want_a:
                    ga[i, k] = c * (g_ap - in_a * g_x)
                if want_p:
                    gp[i, k] = -c * (g_ap + (1.0 - in_a) * g_x)
                if want_n:
                    gn[i, k] = c * g_x
        elif wanted:  # an active row, p = 1 or general p
            for k in range(dim):
                g_ap = _dgrad(a, pos, i, k, d_ap, eps, p, mode)
                if use_pn:
                    g_x = _dgrad(pos, neg, i, k, d_pn, eps, p, mode)
                    if want_a:
                        ga[i, k] = c * g_ap
                    if want_p:
                        gp[i, k] = -c * (g_ap + g_x)
                else:
                    g_x = _dgrad(a, neg, i, k, d_an, eps, p, mode)
                    if want_a:
                        ga[i, k] = c * (g_ap - g_x)
                    if want_p:
                        gp[i, k] = -c * g_ap
                if want_n:
                    gn[i, k] = c * g_x
    return total




@dual(for_floats(lambda f: f64(ro(f, 2), ro(f, 2), ro(f, 2), f64, f64, f64, i64, boolean, f64, rw(f),
                               rw(f, 2), rw(f, 2), rw(f, 2), boolean, boolean, boolean)))
def _triplet(a, pos, neg, margin, p, eps, mode, swap, r, out, ga, gp, gn,
             want_a, want_p, want_n):  # pragma: no cover - compiled
    n, dim = a.shape
    per = rows_per_block(dim)
    total = 0.0
    for b in prange(row_blocks(n, per)):
        i0 = b * per
        total += _triplet_rows(i0, min(n, i0 + per), a, pos, neg, margin, p, eps, mode, swap, r, out,
                               ga, gp, gn, want_a, want_p, want_n)
    return total


def _mode(params: dict) -> int:
    if params["squared"]:
        return _SQUARED
    if params["p"] == 1.0:
        return _L1
    if params["p"] == 2.0:
        return _L2
    return _LP


def compute(call: Call) -> LossOutput:
    a, pos, neg = call.inputs["anchor"], call.inputs["positive"], call.inputs["negative"]
    prm = call.params
    n = a.shape[0]
    r = scale(call.reduction, n, n)
    out = loss_buffer(call, n)
    ga, gp, gn = (buffer(call, a.shape, call.wants(k)) for k in ("anchor", "positive", "negative"))
    total = _triplet.call(a.size, a, pos, neg, prm["margin"], prm["p"], prm["eps"], _mode(prm),
                          prm["swap"], r, out, ga, gp, gn, call.wants("anchor"), call.wants("positive"),
                          call.wants("negative"))
    return LossOutput(finish(call, total, r, out, (n,)),
                      grads_of(call, anchor=ga, positive=gp, negative=gn))


def validate(call: Call) -> None:
    checks.rank(call, "anchor", 2, "(N, D)")
    checks.same_shape(call, "positive", "anchor")
    checks.same_shape(call, "negative", "anchor")
    if call.params["squared"] and call.params["p"] != 2.0:
        raise checks.param_error("squared", f"squared = true requires p = 2, got p = {call.params['p']:g}")


def examples(dtype: np.dtype) -> list:
    a = np.array([[0.1, 0.2, 0.0], [0.5, -0.3, 1.0]], dtype)
    p = np.array([[0.0, 0.4, 0.1], [0.2, 0.1, 0.3]], dtype)
    n = np.array([[0.3, 0.1, -0.2], [-1.0, 0.5, 0.2]], dtype)
    x = {"anchor": a, "positive": p, "negative": n}
    return [(x, {}), (x, {"swap": True, "p": 1.0}), (x, {"p": 3.0}), (x, {"squared": True})]


SPEC = LossSpec(
    id="triplet_margin",
    summary="Triplet margin loss max(0, margin + d(a, p) - d(a, n)) with p-norm distances.",
    aliases=("triplet_margin_loss",),
    inputs=(
        InputSpec("anchor", Kind.FLOAT, "(N, D)", "anchor embeddings", differentiable=True),
        InputSpec("positive", Kind.FLOAT, "(N, D)", "positive embeddings", differentiable=True),
        InputSpec("negative", Kind.FLOAT, "(N, D)", "negative embeddings", differentiable=True),
    ),
    params=(
        ParamSpec("margin", float, 1.0, "margin between the positive and negative distances",
                  minimum=0.0, exclusive_minimum=True),
        ParamSpec("p", float, 2.0, "norm degree of the distance", minimum=1.0),
        ParamSpec("eps", float, 1e-6, "added to every component of the difference (torch "
                  "pairwise_distance); unused with squared", minimum=0.0),
        ParamSpec("swap", bool, False, "distance swap: use dist(positive, negative) when smaller"),
        ParamSpec("squared", bool, False, "FaceNet: squared Euclidean distance (requires p = 2)"),
    ),
    loss_shape="(N,)",
    compute=compute,
    validate=validate,
    examples=examples,
)
