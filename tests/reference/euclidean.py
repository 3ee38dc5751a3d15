"""Float64 reference of euclidean (core.md §2.3, Caffe EuclideanLoss): l_n = ||d_n||^2 / 2."""

from __future__ import annotations

import numpy as np

from tests.reference.mse import reduced


def reference(inputs, params):
    x, y = inputs["input"], inputs["target"]
    n = x.shape[0]
    d = (x - y).reshape(n, -1)
    ell = np.array([0.5 * float(np.dot(d[r], d[r])) for r in range(n)])
    g = d.reshape(x.shape)
    return reduced(ell, {"input": g, "target": -g}, params["reduction"], n)
