"""Float64 reference of l1 (core.md §2.2) from the formula; sign(0) = 0."""

from __future__ import annotations

import numpy as np

from tests.reference.mse import reduced


def reference(inputs, params):
    x, y = inputs["input"], inputs["target"]
    ell = np.empty_like(x)
    g = np.empty_like(x)
    for i in np.ndindex(x.shape):
        d = x[i] - y[i]
        ell[i] = abs(d)
        g[i] = 1.0 if d > 0 else (-1.0 if d < 0 else 0.0)
    return reduced(ell, {"input": g, "target": -g}, params["reduction"], x.shape[0])
