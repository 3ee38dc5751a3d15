"""Reference for arcface (metric.md §7a), float64 NumPy from the formula, one row at a time.

``normalised_margin(inputs, params, target)`` is the shared §7 skeleton (x/|x|, w/|w|,
s*cos logits, target transform T on the label's cosine); cosface and combined_margin use it.
"""

from __future__ import annotations

import math

import numpy as np


def _ce(z, label):
    """CE(z, label) = logsumexp(z) - z_label and its gradient softmax(z) - e_label, without
    cancellation when the target dominates: sum_{j != y} e^(z_j - z_y) enters through log1p,
    and g_y = -sum_{j != y} p_j."""
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


def normalised_margin(inputs, params, target):
    """``target(cos) -> (T, dT/dcos)`` (dT/dcos including any clamp mask)."""
    x, w, y = inputs["features"], inputs["weight"], inputs["labels"]
    s = float(params.get("s", 64.0))
    n, d = x.shape
    nx = np.sqrt(np.sum(x * x, axis=1))
    nw = np.sqrt(np.sum(w * w, axis=1))
    xh = x / nx[:, None]
    wh = w / nw[:, None]
    losses = np.zeros(n)
    dcos = np.zeros((n, w.shape[0]))            # dl_i / dcos_ij, unreduced
    for i in range(n):
        cos = wh @ xh[i]
        t, dt = target(cos[y[i]])
        z = s * cos
        z[y[i]] = s * t
        losses[i], g = _ce(z, y[i])
        dcos[i] = s * g
        dcos[i, y[i]] *= dt
    red = params.get("reduction", "mean")
    r = 1.0 if red in ("none", "sum") else 1.0 / n
    loss = losses if red == "none" else float(np.sum(losses)) * r
    dcos *= r
    dxh = dcos @ wh
    dwh = dcos.T @ xh
    # normalisation backward: (I - u u^T) / |v| applied to each row
    gx = np.empty_like(x)
    for i in range(n):
        gx[i] = (np.eye(d) - np.outer(xh[i], xh[i])) @ dxh[i] / nx[i]
    gw = (dwh - wh * np.sum(wh * dwh, axis=1)[:, None]) / nw[:, None]
    return loss, {"features": gx, "weight": gw}


def arc_target(params):
    m = float(params.get("m", 0.5))
    eps = float(params.get("eps", 1e-7))
    easy = bool(params.get("easy_margin", False))
    straight = params.get("grad_mode", "exact") == "straight_through"

    def target(cos):
        c = min(max(cos, -1.0 + eps), 1.0 - eps)
        mask = 1.0 if -1.0 + eps <= cos <= 1.0 - eps else 0.0
        theta = math.acos(c)
        phi = math.cos(theta + m)
        if easy:
            use_phi = c > 0.0
            other = c
        else:
            use_phi = c > math.cos(math.pi - m)
            other = c - m * math.sin(m)
        if use_phi:
            t, dt = phi, math.cos(m) + math.sin(m) * c / math.sqrt(1.0 - c * c)
        else:
            t, dt = other, 1.0
        return (t, 1.0) if straight else (t, dt * mask)

    return target


def reference(inputs, params):
    return normalised_margin(inputs, params, arc_target(params))
