"""Reference for softmax_focal (metric.md §2b), float64 loops from the formula."""

from __future__ import annotations

import math

import numpy as np


def reference(inputs, params):
    z, y = inputs["logits"], inputs["labels"]
    class_alpha = inputs.get("class_alpha")
    alpha = float(params.get("alpha", 1.0))
    gamma = float(params.get("gamma", 2.0))
    reduction = params["reduction"]
    n, c = z.shape
    losses = np.zeros(n)
    grad = np.zeros_like(z)
    for i in range(n):
        m = np.max(z[i])
        log_p = z[i] - m - math.log(float(np.sum(np.exp(z[i] - m))))
        p = np.exp(log_p)
        lpy = log_p[y[i]]
        py = p[y[i]]
        u = -math.expm1(lpy)
        a = class_alpha[y[i]] if class_alpha is not None else alpha
        losses[i] = -a * u ** gamma * lpy
        first = gamma * py * u ** (gamma - 1) * lpy if u > 0 else 0.0
        bracket = first - u ** gamma
        onehot = np.zeros(c)
        onehot[y[i]] = 1.0
        diff = onehot - p
        diff[y[i]] = u
        grad[i] = a * diff * bracket
    r = 1.0 if reduction in ("none", "sum") else 1.0 / n
    loss = losses if reduction == "none" else float(np.sum(losses)) * r
    return loss, {"logits": grad * r}
