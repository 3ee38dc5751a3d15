"""Float64 reference of smooth_l1 (core.md §2.4): 0.5 d^2 / beta inside |d| < beta,
|d| - beta / 2 outside; beta = 0 is l1 with sign(0) = 0."""

from __future__ import annotations

import numpy as np

from tests.reference.mse import reduced


def reference(inputs, params):
    x, y = inputs["input"], inputs["target"]
    beta = float(params.get("beta", 1.0))
    ell = np.empty_like(x)
    g = np.empty_like(x)
    for i in np.ndindex(x.shape):
        d = x[i] - y[i]
        if abs(d) < beta:
            ell[i] = 0.5 * d * d / beta
            g[i] = d / beta
        else:
            ell[i] = abs(d) - 0.5 * beta
            g[i] = np.sign(d)
    return reduced(ell, {"input": g, "target": -g}, params["reduction"], x.shape[0])
