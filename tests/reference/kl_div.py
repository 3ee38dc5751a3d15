"""Reference for kl_div (core.md §5.1), float64 NumPy from the formula.

p: l = p (log p - x) (0 at p = 0), dx = -s p, dt = s (log p + 1 - x) (-Inf at p = 0);
log p = t: l = e^t (t - x), dx = -s e^t, dt = s e^t (t - x + 1).
"""

from __future__ import annotations

import numpy as np


def reference(inputs, params):
    x = np.asarray(inputs["input"], np.float64)
    t = np.asarray(inputs["target"], np.float64)
    reduction = params["reduction"]
    s = {"none": 1.0, "sum": 1.0, "mean": 1.0 / x.size, "batchmean": 1.0 / x.shape[0]}[reduction]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if params.get("log_target", False):
            p = np.exp(t)
            d = t - x
            loss = np.where(d == 0, 0.0, p * d)
            gt = np.where(d == -1.0, 0.0, s * p * (d + 1.0))
        else:
            p = t
            pos = t > 0
            lp = np.log(np.where(pos, t, 1.0))
            loss = np.where(pos, t * (lp - x), 0.0)
            gt = np.where(pos, s * (lp + 1.0 - x), -np.inf)
    value = loss if reduction == "none" else loss.sum() * s
    return value, {"input": -s * p, "target": gt}
