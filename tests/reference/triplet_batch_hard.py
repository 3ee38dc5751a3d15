"""Reference for triplet_batch_hard (metric.md §5b), float64 loops from the formula."""

from __future__ import annotations

import math

import numpy as np


def _softplus(z):
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def reference(inputs, params):
    x, y = inputs["embeddings"], inputs["labels"]
    margin = float(params.get("margin", 0.3))
    soft = bool(params.get("soft", False))
    squared = bool(params.get("squared", False))
    reduction = params["reduction"]
    n = x.shape[0]
    losses = np.zeros(n)
    grad = np.zeros_like(x)

    def dist_grad(i, j):
        u = x[i] - x[j]
        d2 = float(np.sum(u * u))
        if squared:
            return d2, 2.0 * u
        d = math.sqrt(d2)
        return d, (u / d if d > 0 else np.zeros_like(u))

    diff = x[:, None, :] - x[None, :, :]                  # D_ij from difference vectors
    dists = np.sum(diff * diff, axis=2)
    if not squared:
        dists = np.sqrt(dists)
    same = y[:, None] == y[None, :]
    is_pos = same & ~np.eye(n, dtype=bool)
    is_neg = ~same
    hardest_pos = np.argmax(np.where(is_pos, dists, -np.inf), axis=1)     # first index on ties
    hardest_neg = np.argmin(np.where(is_neg, dists, np.inf), axis=1)
    valid = 0
    for i in range(n):
        if not is_pos[i].any() or not is_neg[i].any():
            continue
        valid += 1
        p, q = int(hardest_pos[i]), int(hardest_neg[i])
        d_p, g_p = dist_grad(i, p)
        d_n, g_n = dist_grad(i, q)
        z = margin + d_p - d_n
        if soft:
            losses[i] = _softplus(z)
            c = 1.0 / (1.0 + math.exp(-z))
        else:
            losses[i] = max(z, 0.0)
            c = 1.0 if z >= 0 else 0.0
        grad[i] += c * (g_p - g_n)
        grad[p] -= c * g_p
        grad[q] += c * g_n
    if reduction == "none":
        return losses, {"embeddings": grad}
    r = {"sum": 1.0, "mean": 1.0 / valid if valid else 0.0, "batchmean": 1.0 / n}[reduction]
    return float(np.sum(losses)) * r, {"embeddings": grad * r}
