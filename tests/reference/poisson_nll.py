"""Float64 reference of poisson_nll (core.md §7.1); target is not differentiated."""

from __future__ import annotations

import math

import numpy as np

from tests.reference.mse import reduced


def reference(inputs, params):
    x, y = inputs["input"], inputs["target"]
    log_input = params.get("log_input", True)
    full = params.get("full", False)
    eps = float(params.get("eps", 1e-8))
    ell = np.empty_like(x)
    g = np.empty_like(x)
    for i in np.ndindex(x.shape):
        if log_input:
            rate = math.exp(x[i]) if x[i] < 709.0 else math.inf
            ell[i] = rate - y[i] * x[i]
            g[i] = rate - y[i]
        else:
            ell[i] = x[i] - y[i] * math.log(x[i] + eps)
            g[i] = 1.0 - y[i] / (x[i] + eps)
        if full and y[i] > 1.0:
            ell[i] += y[i] * math.log(y[i]) - y[i] + 0.5 * math.log(2.0 * math.pi * y[i])
    return reduced(ell, {"input": g}, params["reduction"], x.shape[0])
