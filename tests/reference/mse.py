"""Float64 reference of mse (core.md §2.1), written from the formula; shares no code
with lossd. ``reduced`` (README §4) is also used by the other regression references."""

from __future__ import annotations

import numpy as np


def reduced(ell, grads_of_sum, reduction, n):
    """Reduce the unreduced losses ``ell`` and scale the gradients of sum(ell) by the
    factor of README §4: 1 (none, sum), 1/M (mean, M = ell.size) or 1/N (batchmean)."""
    ell = np.asarray(ell, dtype=np.float64)
    if reduction == "none":
        return ell, grads_of_sum
    total = 0.0
    for value in ell.reshape(-1):
        total += value
    factor = {"sum": 1.0, "mean": 1.0 / ell.size, "batchmean": 1.0 / n}[reduction]
    return total * factor, {name: g * factor for name, g in grads_of_sum.items()}


def reference(inputs, params):
    x, y = inputs["input"], inputs["target"]
    ell = np.empty_like(x)
    gx = np.empty_like(x)
    for i in np.ndindex(x.shape):
        d = x[i] - y[i]
        ell[i] = d * d
        gx[i] = 2.0 * d
    return reduced(ell, {"input": gx, "target": -gx}, params["reduction"], x.shape[0])
