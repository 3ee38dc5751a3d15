"""Float64 reference of soft_margin (core.md §7.4): log(1 + exp(-y x)) via logaddexp,
gradient -y / (1 + exp(y x)) written with tanh."""

from __future__ import annotations

import numpy as np

from tests.reference.mse import reduced


def reference(inputs, params):
    x, y = inputs["input"], inputs["target"]
    ell = np.empty_like(x)
    g = np.empty_like(x)
    for i in np.ndindex(x.shape):
        z = -y[i] * x[i]
        ell[i] = np.logaddexp(0.0, z)
        g[i] = -y[i] * 0.5 * (1.0 + np.tanh(0.5 * z))
    return reduced(ell, {"input": g}, params["reduction"], x.shape[0])
