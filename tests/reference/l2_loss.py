"""Float64 reference of l2_loss (core.md §2.3): l = d^2 / 2, target optional (zeros),
default reduction sum."""

from __future__ import annotations

import numpy as np

from tests.reference.mse import reduced


def reference(inputs, params):
    x = inputs["input"]
    y = inputs.get("target")
    ell = np.empty_like(x)
    g = np.empty_like(x)
    for i in np.ndindex(x.shape):
        d = x[i] - (0.0 if y is None else y[i])
        ell[i] = 0.5 * d * d
        g[i] = d
    grads = {"input": g} if y is None else {"input": g, "target": -g}
    return reduced(ell, grads, params.get("reduction", "sum"), x.shape[0])
