"""Reference for categorical_cross_entropy (core.md §3.2), float64 NumPy from the formula.

l_i = -sum_c p_c L(q_c), L(u) = max(log u, -100), p = 0 terms are 0;
dR/dq = -s p / max(q, 1e-12); dR/dp = -s L(q).
"""

from __future__ import annotations

import numpy as np


def reference(inputs, params):
    q = np.asarray(inputs["input"], np.float64)
    p = np.asarray(inputs["target"], np.float64)
    lq = np.full(q.shape, -100.0)
    lq[q > 0] = np.maximum(np.log(q[q > 0]), -100.0)
    terms = np.zeros(q.shape)
    terms[p != 0] = -p[p != 0] * lq[p != 0]
    loss = terms.sum(axis=1)
    reduction = params["reduction"]
    s = {"none": 1.0, "sum": 1.0, "mean": 1.0 / loss.size, "batchmean": 1.0 / q.shape[0]}[reduction]
    value = loss if reduction == "none" else loss.sum() * s
    return value, {"input": -s * p / np.maximum(q, 1e-12), "target": -s * lq}
