"""Float64 reference of soft_margin (core.md §7.4): log(1 + exp(-y x)) via logaddexp,
gradient -y sigmoid(-y x) = -y exp(-logaddexp(0, y x))."""

from __future__ import annotations

import numpy as np

from tests.reference.mse import reduced


def reference(inputs, params):
    x, y = inputs["input"], inputs["target"]
    z = -y * x                                   # elementwise over the whole array
    ell = np.logaddexp(0.0, z)
    g = -y * np.exp(-np.logaddexp(0.0, -z))     # -y sigmoid(z), sigmoid(z) = 1 / (1 + exp(-z))
    return reduced(ell, {"input": g}, params["reduction"], x.shape[0])
