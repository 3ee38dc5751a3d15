"""Reference for npair (metric.md §9a), float64 loops from the formula (one row of S at a time)."""

from __future__ import annotations

import math

import numpy as np


def reference(inputs, params):
    a, p = inputs["anchors"], inputs["positives"]
    labels = inputs.get("labels")
    lam = float(params.get("reg_lambda", 0.002))
    reduction = params["reduction"]
    n = a.shape[0]
    y = np.arange(n) if labels is None else labels
    losses = np.zeros(n)
    ga = np.zeros_like(a)
    gp = np.zeros_like(p)
    for i in range(n):
        s = p @ a[i]                                    # S_i = a_i . p_j for every j
        m = float(np.max(s))
        log_soft = s - m - math.log(float(np.sum(np.exp(s - m))))
        t = (y == y[i]).astype(np.float64)
        t /= t.sum()
        losses[i] = -float(np.sum(t * log_soft)) + 0.25 * lam * (float(a[i] @ a[i]) + float(p[i] @ p[i]))
        g = np.exp(log_soft) - t
        ga[i] = g @ p + 0.5 * lam * a[i]
        gp += np.outer(g, a[i])
        gp[i] += 0.5 * lam * p[i]
    r = 1.0 if reduction in ("none", "sum") else 1.0 / n
    loss = losses if reduction == "none" else float(np.sum(losses)) * r
    return loss, {"anchors": ga * r, "positives": gp * r}
