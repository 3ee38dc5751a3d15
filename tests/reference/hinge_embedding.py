"""Float64 reference of hinge_embedding (core.md §7.3); slope 1 at the hinge."""

from __future__ import annotations

import numpy as np

from tests.reference.mse import reduced


def reference(inputs, params):
    x, y = inputs["input"], inputs["target"]
    margin = float(params.get("margin", 1.0))
    ell = np.empty_like(x)
    g = np.empty_like(x)
    for i in np.ndindex(x.shape):
        if y[i] == 1:
            ell[i], g[i] = x[i], 1.0
        elif y[i] == -1:
            u = margin - x[i]
            ell[i], g[i] = (u, -1.0) if u >= 0 else (0.0, 0.0)
        else:
            raise ValueError("labels must be +-1")
    return reduced(ell, {"input": g}, params["reduction"], x.shape[0])
