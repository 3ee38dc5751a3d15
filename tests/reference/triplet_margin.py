"""Reference for triplet_margin (metric.md §5a), float64 loops from the formula."""

from __future__ import annotations

import numpy as np


def _dist_and_grad(u, v, p, eps, squared):
    """dist(u, v) and its gradient with respect to u."""
    if squared:
        delta = u - v
        return float(np.sum(delta * delta)), 2.0 * delta
    delta = u - v + eps
    d = float(np.sum(np.abs(delta) ** p) ** (1.0 / p))
    if p == 1.0:
        return d, np.sign(delta)
    if d == 0.0:
        return d, np.zeros_like(delta)
    return d, np.sign(delta) * np.abs(delta) ** (p - 1.0) / d ** (p - 1.0)


def reference(inputs, params):
    a, pos, neg = inputs["anchor"], inputs["positive"], inputs["negative"]
    margin = float(params.get("margin", 1.0))
    p = float(params.get("p", 2.0))
    eps = float(params.get("eps", 1e-6))
    swap = bool(params.get("swap", False))
    squared = bool(params.get("squared", False))
    reduction = params["reduction"]
    n = a.shape[0]
    losses = np.zeros(n)
    ga, gp, gn = np.zeros_like(a), np.zeros_like(a), np.zeros_like(a)
    for i in range(n):
        d_ap, g_ap = _dist_and_grad(a[i], pos[i], p, eps, squared)
        d_an, g_an = _dist_and_grad(a[i], neg[i], p, eps, squared)
        use_pn = False
        if swap:
            d_pn, g_pn = _dist_and_grad(pos[i], neg[i], p, eps, squared)
            use_pn = d_pn < d_an
        z = margin + d_ap - (d_pn if use_pn else d_an)
        if z < 0:
            continue
        losses[i] = z
        if use_pn:
            ga[i] = g_ap
            gp[i] = -g_ap - g_pn
            gn[i] = g_pn
        else:
            ga[i] = g_ap - g_an
            gp[i] = -g_ap
            gn[i] = g_an
    r = 1.0 if reduction in ("none", "sum") else 1.0 / n
    loss = losses if reduction == "none" else float(np.sum(losses)) * r
    return loss, {"anchor": ga * r, "positive": gp * r, "negative": gn * r}
