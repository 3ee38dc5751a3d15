"""Reference for moon (metric.md §6), float64 loops from the formula."""

from __future__ import annotations

import numpy as np


def weight(label, s, t):
    """w for one element: label +-1, source positive fraction s, target positive fraction t."""
    S = {1: s, -1: 1.0 - s}
    T = {1: t, -1: 1.0 - t}
    y, ybar = int(label), -int(label)
    if T[y] >= S[y]:
        return 1.0
    return S[ybar] * T[y] / (S[y] * T[ybar])


def reference(inputs, params):
    x, y = inputs["scores"], inputs["labels"]
    n, a = x.shape
    src = inputs.get("source_pos_fraction")
    tgt = inputs.get("target_pos_fraction")
    reduction = params["reduction"]
    losses = np.zeros(n)
    grad = np.zeros_like(x)
    w = np.zeros_like(x)
    for j in range(a):
        s = float(src[j]) if src is not None else int(np.sum(y[:, j] == 1)) / n
        t = float(tgt[j]) if tgt is not None else 0.5
        for i in range(n):
            w[i, j] = weight(y[i, j], s, t)
    for i in range(n):
        d = x[i] - y[i]
        losses[i] = float(np.sum(w[i] * d * d))
        grad[i] = 2.0 * w[i] * d
    r = 1.0 if reduction in ("none", "sum") else 1.0 / n
    loss = losses if reduction == "none" else float(np.sum(losses)) * r
    return loss, {"scores": grad * r}
