"""Reference for sigmoid_cross_entropy (core.md §4.3), float64 NumPy from the formula.

l = w [pi y softplus(-x) + (1 - y) softplus(x)];
dR/dx = s w [sigmoid(x) (pi y + 1 - y) - pi y]; dR/dy = s w [pi softplus(-x) - softplus(x)].
"""

from __future__ import annotations

import numpy as np


def _softplus(z):
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def reference(inputs, params):
    x = np.asarray(inputs["input"], np.float64)
    y = np.asarray(inputs["target"], np.float64)
    w = np.broadcast_to(np.asarray(inputs.get("weight", np.ones(1)), np.float64), x.shape)
    pi = np.broadcast_to(np.asarray(inputs.get("pos_weight", np.ones(1)), np.float64), x.shape)
    loss = w * (pi * y * _softplus(-x) + (1.0 - y) * _softplus(x))
    reduction = params["reduction"]
    s = {"none": 1.0, "sum": 1.0, "mean": 1.0 / x.size, "batchmean": 1.0 / x.shape[0]}[reduction]
    value = loss if reduction == "none" else loss.sum() * s
    grads = {
        "input": s * w * (_sigmoid(x) * (pi * y + 1.0 - y) - pi * y),
        "target": s * w * (pi * _softplus(-x) - _softplus(x)),
    }
    return value, grads
