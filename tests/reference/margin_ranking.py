"""Float64 reference of margin_ranking (core.md §7.6); slope of the active branch at 0."""

from __future__ import annotations

import numpy as np

from tests.reference.mse import reduced


def reference(inputs, params):
    x1, x2, y = inputs["input1"], inputs["input2"], inputs["target"]
    margin = float(params.get("margin", 0.0))
    ell = np.empty_like(x1)
    g1 = np.empty_like(x1)
    for i in np.ndindex(x1.shape):
        u = -y[i] * (x1[i] - x2[i]) + margin
        ell[i], g1[i] = (u, -y[i]) if u >= 0 else (0.0, 0.0)
    return reduced(ell, {"input1": g1, "input2": -g1}, params["reduction"], x1.shape[0])
