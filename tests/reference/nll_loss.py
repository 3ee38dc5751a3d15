"""Reference for nll_loss (core.md §4.2), float64 NumPy loops from the formula.

l_i = -w[y_i] x[i, y_i] (0 if ignored); mean = sum l / W, W = sum of w[y_i] over kept
positions; W = 0: NaN loss, zero gradient; dR/dx[i, c] = -s w[y_i] [c = y_i].
"""

from __future__ import annotations

import numpy as np


def reference(inputs, params):
    x = np.asarray(inputs["input"], np.float64)
    n, classes = x.shape[:2]
    x3 = x.reshape(n, classes, -1)
    y = np.asarray(inputs["target"]).reshape(n, -1)
    w = np.asarray(inputs.get("weight", np.ones(classes)), np.float64)
    ignore = params.get("ignore_index", -100)
    loss = np.zeros(y.shape)
    gx = np.zeros(x3.shape)
    weight_total = 0.0
    for i in range(n):
        for k in range(y.shape[1]):
            label = int(y[i, k])
            if label == ignore:
                continue
            loss[i, k] = -w[label] * x3[i, label, k]
            gx[i, label, k] = -w[label]
            weight_total += w[label]
    reduction = params["reduction"]
    if reduction == "mean":
        if weight_total == 0.0:
            return np.nan, {"input": np.zeros(x.shape)}
        s = 1.0 / weight_total
    else:
        s = 1.0 / n if reduction == "batchmean" else 1.0
    value = loss.reshape((n, *x.shape[2:])) if reduction == "none" else loss.sum() * s
    return value, {"input": (s * gx).reshape(x.shape)}
