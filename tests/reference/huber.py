"""Float64 reference of huber (core.md §2.4): 0.5 d^2 inside |d| < delta,
delta (|d| - delta / 2) outside; gradient clamp(d, -delta, delta)."""

from __future__ import annotations

import numpy as np

from tests.reference.mse import reduced


def reference(inputs, params):
    x, y = inputs["input"], inputs["target"]
    delta = float(params.get("delta", 1.0))
    ell = np.empty_like(x)
    g = np.empty_like(x)
    for i in np.ndindex(x.shape):
        d = x[i] - y[i]
        ell[i] = 0.5 * d * d if abs(d) < delta else delta * (abs(d) - 0.5 * delta)
        g[i] = min(max(d, -delta), delta)
    return reduced(ell, {"input": g, "target": -g}, params["reduction"], x.shape[0])
