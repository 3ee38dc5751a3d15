"""Reference for contrastive (metric.md §4), float64 loops from the formula."""

from __future__ import annotations

import math

import numpy as np


def reference(inputs, params):
    x1, x2, y = inputs["x1"], inputs["x2"], inputs["label"]
    margin = float(params.get("margin", 1.0))
    reduction = params["reduction"]
    n = x1.shape[0]
    losses = np.zeros(n)
    g1 = np.zeros_like(x1)
    for i in range(n):
        delta = x1[i] - x2[i]
        d = math.sqrt(float(np.sum(delta * delta)))
        if y[i] == 1:
            losses[i] = 0.5 * d * d
            g1[i] = delta
        else:
            losses[i] = 0.5 * max(0.0, margin - d) ** 2
            if 0.0 < d < margin:
                g1[i] = -(margin - d) * delta / d
    r = 1.0 if reduction in ("none", "sum") else 1.0 / n
    loss = losses if reduction == "none" else float(np.sum(losses)) * r
    return loss, {"x1": g1 * r, "x2": -g1 * r}
