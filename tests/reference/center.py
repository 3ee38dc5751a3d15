"""Reference for center (metric.md §1), float64 loops from the formula.

``reference_outputs`` gives the update outputs (center_delta, centers_updated)."""

from __future__ import annotations

import numpy as np


def reference(inputs, params):
    x, y, c = inputs["features"], inputs["labels"], inputs["centers"]
    z = inputs.get("logits")
    lam = float(params.get("lambda_c", 1.0))
    reduction = params["reduction"]
    n = x.shape[0]
    u = x - c[y]                                   # x_i - c_{y_i}, row by row
    losses = 0.5 * lam * np.sum(u * u, axis=1)
    gx = lam * u
    gc = np.zeros_like(c)
    np.add.at(gc, y, -lam * u)                     # sum over the samples of each class
    gz = None
    if z is not None:
        m = np.max(z, axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.sum(np.exp(z - m), axis=1))
        losses = losses + lse - z[np.arange(n), y]
        gz = np.exp(z - lse[:, None])
        gz[np.arange(n), y] -= 1.0
    r = 1.0 if reduction in ("none", "sum") else 1.0 / n
    loss = losses if reduction == "none" else float(np.sum(losses)) * r
    grads = {"features": gx * r, "centers": gc * r}
    if z is not None:
        grads["logits"] = gz * r
    return loss, grads


def reference_outputs(inputs, params):
    x, y, c = inputs["features"], inputs["labels"], inputs["centers"]
    alpha = float(params.get("alpha", 0.5))
    delta = np.zeros_like(c)
    for j in range(c.shape[0]):
        members = [i for i in range(x.shape[0]) if y[i] == j]
        for i in members:
            delta[j] += c[j] - x[i]
        delta[j] /= 1 + len(members)
    return {"center_delta": delta, "centers_updated": c - alpha * delta}
