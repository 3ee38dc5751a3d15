"""Reference for sigmoid_focal (metric.md §2a), float64 NumPy from the formula
(elementwise, vectorised), with the unfactored gradient of the spec."""

from __future__ import annotations

import numpy as np


def _sigmoid(x):
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def reference(inputs, params):
    x, t = inputs["logits"], inputs["targets"]
    alpha = float(params.get("alpha", 0.25))
    gamma = float(params.get("gamma", 2.0))
    reduction = params["reduction"]
    p = _sigmoid(x)
    one_minus_p = _sigmoid(-x)
    ce = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    p_t = p * t + one_minus_p * (1 - t)
    q = one_minus_p * t + p * (1 - t)               # 1 - p_t without cancellation
    a_t = alpha * t + (1 - alpha) * (1 - t) if alpha >= 0 else np.ones_like(x)
    losses = a_t * q ** gamma * ce
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where(q > 0, gamma * q ** (gamma - 1) * (1 - 2 * t) * p * one_minus_p * ce, 0.0)
    p_minus_t = p * (1 - t) - one_minus_p * t        # p - t, exact also when p rounds to 1
    grad = a_t * (first + q ** gamma * p_minus_t)
    assert np.allclose(1 - p_t, q, atol=1e-12)
    if reduction == "none":
        return losses, {"logits": grad}
    r = {"sum": 1.0, "mean": 1.0 / x.size, "batchmean": 1.0 / x.shape[0]}[reduction]
    return float(np.sum(losses)) * r, {"logits": grad * r}
