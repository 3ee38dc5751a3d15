"""Float64 reference of l2_distance (core.md §2.3): per-sample Euclidean norm of d,
gradient d / norm, 0 for a zero row. Rows are handled one by one (vectorised per row)."""

from __future__ import annotations

import math

import numpy as np

from tests.reference.mse import reduced


def reference(inputs, params):
    x, y = inputs["input"], inputs["target"]
    n = x.shape[0]
    d = (x - y).reshape(n, -1)
    ell = np.empty(n)
    g = np.zeros_like(d)
    for r in range(n):
        big = np.max(np.abs(d[r]))
        norm = 0.0 if big == 0.0 else big * math.sqrt(float(np.sum((d[r] / big) ** 2)))
        ell[r] = norm
        if norm > 0.0:
            g[r] = d[r] / norm
    g = g.reshape(x.shape)
    return reduced(ell, {"input": g, "target": -g}, params["reduction"], n)
