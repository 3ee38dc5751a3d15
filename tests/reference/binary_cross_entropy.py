"""Reference for binary_cross_entropy (core.md §3.1), float64 NumPy from the formula.

l = -w [y L(x) + (1 - y) L(1 - x)], L(u) = max(log u, -100);
dR/dx = s w (x - y) / max(x (1 - x), 1e-12); dR/dy = s w [L(1 - x) - L(x)].
"""

from __future__ import annotations

import numpy as np


def _clamped_log(u: np.ndarray, complement: bool = False) -> np.ndarray:
    """max(log u, -100), or max(log(1 - u), -100) evaluated as log1p(-u)."""
    out = np.full(u.shape, -100.0)
    pos = u < 1 if complement else u > 0
    logs = np.log1p(-u[pos]) if complement else np.log(u[pos])
    out[pos] = np.maximum(logs, -100.0)
    return out


def reference(inputs, params):
    x = np.asarray(inputs["input"], np.float64)
    y = np.asarray(inputs["target"], np.float64)
    w = np.broadcast_to(np.asarray(inputs.get("weight", np.ones(1)), np.float64), x.shape)
    lx = _clamped_log(x)
    l1x = _clamped_log(x, complement=True)
    loss = -w * (y * lx + (1.0 - y) * l1x)
    reduction = params["reduction"]
    s = {"none": 1.0, "sum": 1.0, "mean": 1.0 / x.size, "batchmean": 1.0 / x.shape[0]}[reduction]
    value = loss if reduction == "none" else loss.sum() * s
    grads = {
        "input": s * w * (x - y) / np.maximum(x * (1.0 - x), 1e-12),
        "target": s * w * (l1x - lx),
    }
    return value, grads
