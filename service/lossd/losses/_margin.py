"""Shared machinery of the classifier-margin losses (metric.md §3 and §7):
``l_softmax``, ``sphereface``, ``arcface``, ``cosface`` and ``combined_margin``.

Inputs: ``features`` x [N, D], ``weight`` w [C, D] (both differentiable), ``labels`` y [N].
Every loss here is ``l_i = CE(z_i, y_i)`` over logits built from the raw products
``P = x w^T`` (one BLAS GEMM, float64) and the row norms ``a_i = |x_i|``, ``b_j = |w_j|``:

    Q_ij = u_i v_j P_ij     with u = 1/a (x normalised) or 1, v = 1/b (w normalised) or 1
    z_ij = k Q_ij           (j != y_i; k = s for the normalised-softmax family, else 1)
    c_i  = P_iy / (a_i b_y) (the true cosine of the target class)
    z_iy = k mag_i T(c_i),  mag_i = (u_i a_i)(v_y b_y)       (mag = 1 when both sides are normalised)

``T`` is the loss's target transform of the cosine (``kind`` below). With g = softmax(z) - e_y and
the reduction factor r, one fused per-row kernel computes the loss, and in place of P the matrix

    G''_ij = u_i v_j dR/dQ_ij,   dR/dQ_ij = r k g_ij (j != y),  dR/dQ_iy = r k g_iy T'(c)
    h_i    = r k g_iy (T(c) - c T'(c))          (dR/d|x_i| / b_y-side factor: the radial term)

Then two more GEMMs, H = G'' w (N x D) and K = G''^T x (C x D), and the norm backward:

    x normalised:  dR/dx_i = H_i - xh_i (xh_i . H_i)         (= (I - xh xh^T)/|x| dR/dxh)
    x raw:         dR/dx_i = H_i + h_i (v_y b_y) xh_i
    w normalised:  dR/dw_j = K_j - wh_j (wh_j . K_j)
    w raw:         dR/dw_j = K_j + (sum_{i: y_i = j} h_i u_i a_i) wh_j

P/G'' is the only N x C temporary (float64, overwritten in place). Dot products and norms are
accumulated in float64 (README §3): float32 requests are widened to float64 before the GEMMs
and every result is rounded once.
"""

from __future__ import annotations

import math

import numpy as np

from lossd.core import checks
from lossd.kernels import vecmath
from lossd.kernels.jit import block, boolean, dual, f64, i64, inline, prange, ro, rw
from lossd.kernels.reduction import Reduction, scale
from lossd.losses._softmax_rows import row_max
from lossd.losses.common import finish
from lossd.spec import Call, InputSpec, Kind, LossOutput

#: target transforms (``kind``) and their parameter vectors ``prm``
CHEBYSHEV = 0   # l_softmax / sphereface: prm = (margin m, lambda)
ARC = 1         # arcface: prm = (m, easy_margin 0/1, eps, straight_through 0/1)
COS = 2         # cosface: prm = (m,)
COMBINED = 3    # combined_margin: prm = (m1, m2, m3, eps)

#: rows whose L2 norm is at most this are rejected (metric.md §0.3, F.normalize's eps)
MIN_NORM = 1e-12
#: rows per parallel task of the row kernel: about this many entries of P
_CHUNK_ELEMENTS = 4096


@inline
def _chebyshev(c, m):  # pragma: no cover - compiled
    """(T_m(c), U_{m-1}(c)) by the three-term recurrences, m >= 1."""
    t_prev, t = 1.0, c          # T_0, T_1
    u_prev, u = 0.0, 1.0        # U_{-1}, U_0
    for _ in range(m - 1):
        t_prev, t = t, 2.0 * c * t - t_prev
        u_prev, u = u, 2.0 * c * u - u_prev
    return t, u


@inline
def _target(kind, prm, c):  # pragma: no cover - compiled
    """(T(c), T'(c)) of the target transform; T' includes the clamp mask."""
    if kind == CHEBYSHEV:
        m = int(prm[0])
        lam = prm[1]
        theta = math.acos(min(max(c, -1.0), 1.0))
        k = min(math.floor(m * theta / math.pi), m - 1)
        t, u = _chebyshev(c, m)
        sign = 1.0 - 2.0 * (k % 2)
        psi = sign * t - 2.0 * k
        dpsi = sign * m * u
        return (lam * c + psi) / (1.0 + lam), (lam + dpsi) / (1.0 + lam)
    if kind == COS:
        return c - prm[0], 1.0
    eps = prm[3] if kind == COMBINED else prm[2]
    lo = -1.0 + eps
    hi = 1.0 - eps
    inside = lo <= c <= hi
    cc = min(max(c, lo), hi)
    sine = math.sqrt((1.0 - cc) * (1.0 + cc))
    if kind == COMBINED:
        m1, m2, m3 = prm[0], prm[1], prm[2]
        angle = m1 * math.acos(cc) + m2
        value = math.cos(angle) - m3
        slope = m1 * math.sin(angle) / sine
    else:
        m = prm[0]
        cos_m, sin_m = math.cos(m), math.sin(m)
        if prm[1] != 0.0:
            margin_branch = cc > 0.0
            fallback = cc
        else:
            margin_branch = cc > -cos_m          # cos(pi - m)
            fallback = cc - m * sin_m
        if margin_branch:
            value = cc * cos_m - sine * sin_m
            slope = cos_m + sin_m * cc / sine
        else:
            value = fallback
            slope = 1.0
        if prm[3] != 0.0:                        # straight_through: T' := 1, no mask
            return value, 1.0
    return value, slope if inside else 0.0


@block
def _margin_block(lo, hi, p, y, u, v, a, b, kind, prm, k, r, out, h, want):  # pragma: no cover - compiled
    """Rows [lo, hi): logits from P (in place), log-sum-exp, loss into out, and G'' in place of
    P and h (writes those rows only); returns the sum of the losses."""
    n_cls = p.shape[1]
    rows = p.reshape(p.shape[0], n_cls, 1)
    total = 0.0
    for i in range(lo, hi):
        label = y[i]
        ui = u[i]
        c = p[i, label] / (a[i] * b[label])
        t, dt = _target(kind, prm, c)
        mag = (ui * a[i]) * (v[label] * b[label])
        zy = k * mag * t
        # branch-free, vectorised passes: logits in place (the target's entry set after),
        # int-keyed max, exp with the sum over j != y as a select
        ku = k * ui
        for j in range(n_cls):
            p[i, j] = ku * v[j] * p[i, j]
        p[i, label] = zy
        mx = row_max(rows, i, 0)
        rest = 0.0                                          # sum of exp(z_j - max), j != y
        for j in range(n_cls):
            e = vecmath.exp(p[i, j] - mx)
            p[i, j] = e
            rest += 0.0 if j == label else e
        se = p[i, label] + rest
        # l = lse - z_y without cancellation: log1p(rest) when the target is the max
        loss = math.log1p(rest) if zy == mx else (mx - zy) + math.log(se)
        total += loss
        out[i] = loss
        if want:
            f = r * k * ui / se
            for j in range(n_cls):
                p[i, j] *= f * v[j]
            gy = math.expm1(-loss)                          # g_iy = p_y - 1, exact near p_y = 1
            p[i, label] = r * k * ui * v[label] * gy * dt
            h[i] = r * k * gy * (t - c * dt)
    return total


@dual([f64(rw(f64, 2), ro(i64), ro(f64), ro(f64), ro(f64), ro(f64), i64, ro(f64), f64, f64,
           rw(f64), rw(f64), boolean)])
def _margin_rows(p, y, u, v, a, b, kind, prm, k, r, out, h, want):  # pragma: no cover - compiled
    """Per row: logits from P (in place), log-sum-exp, loss, and G'' in place of P; chunks of
    whole rows (about _CHUNK_ELEMENTS entries of P), each a call of _margin_block."""
    n_rows, n_cls = p.shape
    per = max(1, _CHUNK_ELEMENTS // max(1, n_cls))
    total = 0.0
    for chunk in prange((n_rows + per - 1) // per):
        total += _margin_block(chunk * per, min(n_rows, (chunk + 1) * per), p, y, u, v, a, b, kind, prm, k,
                               r, out, h, want)
    return total


def row_norms(a: np.ndarray) -> np.ndarray:
    """float64 L2 norms of the rows of a 2-D array (float64 accumulation)."""
    return np.sqrt(np.einsum("ij,ij->i", a, a, dtype=np.float64))


def _project(g: np.ndarray, rows: np.ndarray, inv: np.ndarray, radial: np.ndarray | None) -> np.ndarray:
    """In place, per row with unit = rows * inv: g - unit (unit . g) (normalised side), or
    g + radial * unit (raw side). No normalised copy of ``rows`` is made."""
    coef = -np.einsum("ij,ij->i", rows, g) * inv * inv if radial is None else radial * inv
    g += coef[:, None] * rows
    return g


def compute(call: Call, kind: int, prm: tuple[float, ...], k: float, norm_x: bool,
            norm_w: bool) -> LossOutput:
    """Loss and requested gradients of a classifier-margin loss (see the module docstring)."""
    x = np.asarray(call.inputs["features"], np.float64)
    w = np.asarray(call.inputs["weight"], np.float64)
    y = call.inputs["labels"]
    n, classes = x.shape[0], w.shape[0]
    a, b = row_norms(x), row_norms(w)
    u = 1.0 / a if norm_x else np.ones(n)
    v = 1.0 / b if norm_w else np.ones(classes)
    r = scale(call.reduction, n, n)
    want_x, want_w = call.wants("features"), call.wants("weight")
    want = want_x or want_w
    p = x @ w.T                                   # the one N x C buffer: P, then G''
    out, h = np.empty(n), np.zeros(n)
    total = _margin_rows.call(p.size, p, y, u, v, a, b, kind, np.asarray(prm, np.float64),
                              k, r, out, h, want)
    loss = finish(call, total, r, out.astype(call.dtype), (n,))
    grads = {}
    if want_x:
        radial = None if norm_x else h * (v * b)[y]
        grads["features"] = _project(p @ w, x, 1.0 / a, radial).astype(call.dtype, copy=False)
    if want_w:
        radial = None if norm_w else np.bincount(y, h * (u * a), minlength=classes)
        grads["weight"] = _project(p.T @ x, w, 1.0 / b, radial).astype(call.dtype, copy=False)
    return LossOutput(loss, grads)


def validate(call: Call) -> None:
    """Shapes, label range and the zero-norm rule shared by the five losses."""
    checks.rank(call, "features", 2, "(N, D)")
    checks.rank(call, "weight", 2, "(C, D)")
    x, w = call.inputs["features"], call.inputs["weight"]
    if w.shape[1] != x.shape[1]:
        raise checks.input_error("weight", f"expected shape (C, {x.shape[1]}) (D of features), "
                                           f"got {checks.shape_str(w.shape)}")
    checks.shape_is(call, "labels", (x.shape[0],), "(N,)")
    checks.labels_in_range(call, "labels", w.shape[0])
    for name, arr in (("features", x), ("weight", w)):
        small = row_norms(arr) <= MIN_NORM
        if small.any():
            row = int(np.argmax(small))
            raise checks.input_error(name, f"row {row} has L2 norm <= {MIN_NORM:g}; rows are "
                                           f"normalised and must be nonzero")


INPUTS = (
    InputSpec("features", Kind.FLOAT, "(N, D)", "embeddings, one row per sample (rows with "
              "L2 norm <= 1e-12 are rejected)", differentiable=True),
    InputSpec("weight", Kind.FLOAT, "(C, D)", "classifier matrix, one row per class, no bias "
              "(differentiable; rows with L2 norm <= 1e-12 are rejected)", differentiable=True),
    InputSpec("labels", Kind.INDEX, "(N,)", "class index in [0, C) of each sample"),
)
LOSS_SHAPE = "(N,)"


def examples(dtype: np.dtype, params: list[dict]) -> list:
    """Small requests that run the kernel with each params set (both builds compile eagerly)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4)).astype(dtype)
    w = rng.standard_normal((5, 4)).astype(dtype)
    out = []
    for prm in params:
        out.append(({"features": x, "weight": w, "labels": np.array([0, 4, 2])}, prm))
    return out


__all__ = ["ARC", "CHEBYSHEV", "COMBINED", "COS", "INPUTS", "LOSS_SHAPE", "Reduction", "compute",
           "examples", "validate"]
