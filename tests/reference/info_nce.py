"""Reference for info_nce (metric.md §9b), float64 loops from the formula (one query at a time)."""

from __future__ import annotations

import math

import numpy as np


def reference(inputs, params):
    tau = float(params.get("temperature", 0.1))
    normalize = bool(params.get("normalize", True))
    names = [k for k in ("query", "positive_key", "negative_keys") if k in inputs]
    raw = {k: inputs[k] for k in names}
    unit = {}
    for k in names:
        if normalize:
            norms = np.sqrt(np.sum(raw[k] ** 2, axis=1))
            unit[k] = raw[k] / norms[:, None]
        else:
            unit[k] = raw[k]
    q, keys, neg = unit["query"], unit["positive_key"], unit.get("negative_keys")
    reduction = params["reduction"]
    n = q.shape[0]
    losses = np.zeros(n)
    g = {k: np.zeros_like(unit[k]) for k in names}          # gradients w.r.t. the (unit) rows
    for i in range(n):
        if neg is None:
            cands = keys
            target = i
        else:
            cands = np.vstack([keys[i:i + 1], neg])
            target = 0
        logits = cands @ q[i] / tau
        m = float(np.max(logits))
        lse = m + math.log(float(np.sum(np.exp(logits - m))))
        losses[i] = lse - logits[target]
        d = np.exp(logits - lse)
        d[target] -= 1.0
        d /= tau
        g["query"][i] += d @ cands
        if neg is None:
            g["positive_key"] += np.outer(d, q[i])
        else:
            g["positive_key"][i] += d[0] * q[i]
            g["negative_keys"] += np.outer(d[1:], q[i])
    if normalize:
        for k in names:
            norms = np.sqrt(np.sum(raw[k] ** 2, axis=1))
            for j in range(raw[k].shape[0]):
                u = unit[k][j]
                g[k][j] = (g[k][j] - u * float(u @ g[k][j])) / norms[j]
    r = 1.0 if reduction in ("none", "sum") else 1.0 / n
    loss = losses if reduction == "none" else float(np.sum(losses)) * r
    return loss, {k: v * r for k, v in g.items()}
