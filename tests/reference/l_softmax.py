"""Reference for l_softmax (metric.md §3a), float64 NumPy from the formula, one row at a time.

T_m and T_m' = m U_{m-1} come from numpy.polynomial.Chebyshev (not the recurrence the service
uses); the gradients are the spec's dG/dx and dG/dw_y written out. ``large_margin`` is shared
with the sphereface reference (weight rows normalised, gradient through the normalisation).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import Chebyshev

DEFAULTS = {"lambda_base": 1000.0, "lambda_gamma": 2.5e-5, "lambda_power": 35.0, "lambda_min": 0.0}


def schedule_lambda(params, defaults):
    if params.get("iteration") is None:
        return float(params.get("lambda_") or 0.0)
    p = {**defaults, **{k: v for k, v in params.items() if k in defaults}}
    lam = p["lambda_base"] * (1.0 + p["lambda_gamma"] * params["iteration"]) ** (-p["lambda_power"])
    return max(lam, p["lambda_min"])


def psi_and_slope(c, m):
    """psi(c) = (-1)^k T_m(c) - 2k and dpsi/dc, k = min(floor(m acos(c)/pi), m - 1)."""
    theta = math.acos(min(max(c, -1.0), 1.0))
    k = min(math.floor(m * theta / math.pi), m - 1)
    t = Chebyshev.basis(m)
    sign = (-1.0) ** k
    return sign * t(c) - 2.0 * k, sign * t.deriv()(c)


def _ce(z, label):
    zy = z[label]
    others = np.delete(z, label)
    mx = max(zy, np.max(others)) if others.size else zy
    rest = np.sum(np.exp(others - mx))
    se = math.exp(zy - mx) + rest
    loss = math.log1p(rest) if mx == zy else (mx - zy) + math.log(se)
    g = np.exp(z - mx) / se
    g[label] = 0.0
    g[label] = -np.sum(g)
    return loss, g


def large_margin(inputs, params, normalise_w, defaults):
    x, w0, y = inputs["features"], inputs["weight"], inputs["labels"]
    m = int(params.get("margin", 4))
    lam = schedule_lambda(params, defaults)
    nw0 = np.sqrt(np.sum(w0 * w0, axis=1))
    w = w0 / nw0[:, None] if normalise_w else w0
    n = x.shape[0]
    losses = np.zeros(n)
    gx = np.zeros_like(x)
    gw = np.zeros_like(w)                   # gradient w.r.t. w (the normalised rows for sphereface)
    gmat = np.zeros((n, w.shape[0]))
    for i in range(n):
        xi, yi = x[i], y[i]
        nx, nw = math.sqrt(xi @ xi), math.sqrt(w[yi] @ w[yi])
        d = w @ xi
        c = d[yi] / (nx * nw)
        psi, dpsi = psi_and_slope(c, m)
        f = d.copy()
        f[yi] = (lam * d[yi] + nx * nw * psi) / (1.0 + lam)
        losses[i], g = _ce(f, yi)
        dg_dx = dpsi * w[yi] + (nw / nx) * (psi - c * dpsi) * xi
        dg_dw = dpsi * xi + (nx / nw) * (psi - c * dpsi) * w[yi]
        gy = g[yi]
        g[yi] = 0.0
        gx[i] = g @ w + gy * (lam * w[yi] + dg_dx) / (1.0 + lam)
        gmat[i] = g                         # non-target logits: dR/dw_j += g_ij x_i
        gw[yi] += gy * (lam * xi + dg_dw) / (1.0 + lam)
    gw += gmat.T @ x
    red = params.get("reduction", "mean")
    r = 1.0 if red in ("none", "sum") else 1.0 / n
    loss = losses if red == "none" else float(np.sum(losses)) * r
    gx *= r
    gw *= r
    if normalise_w:
        for j in range(w.shape[0]):
            gw[j] = (np.eye(w.shape[1]) - np.outer(w[j], w[j])) @ gw[j] / nw0[j]
    return loss, {"features": gx, "weight": gw}


def reference(inputs, params):
    return large_margin(inputs, params, False, DEFAULTS)
