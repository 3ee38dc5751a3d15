"""Reference for softmax_cross_entropy (core.md §4.1), float64 NumPy from the formula.

lq = log_softmax(z, 1), q = exp(lq), S_w = sum_c w_c, eps = label_smoothing.
Index targets: l = (1 - eps) w_y (-lq_y) + (eps / C) sum_c w_c (-lq_c) (0 if ignored);
dz = s [(1 - eps) w_y (q - onehot_y) + (eps / C)(S_w q - w)]; mean: s = 1 / W,
W = sum of w_y over kept positions (W = 0: NaN loss, zero gradients).
Probability targets: p' = (1 - eps) p + eps / C, l = -sum_c w_c p'_c lq_c,
dz = s [q sum_j w_j p'_j - w p'], dp = -s (1 - eps) w lq; mean: s = 1 / P.
"""

from __future__ import annotations

import numpy as np


def reference(inputs, params):
    z = np.asarray(inputs["input"], np.float64)
    n, classes = z.shape[:2]
    z3 = z.reshape(n, classes, -1)
    target = np.asarray(inputs["target"])
    w = np.asarray(inputs.get("weight", np.ones(classes)), np.float64)
    eps = float(params.get("label_smoothing", 0.0))
    reduction = params["reduction"]
    m = z3.max(axis=1, keepdims=True)
    lq = z3 - m - np.log(np.exp(z3 - m).sum(axis=1, keepdims=True))
    q = np.exp(lq)
    wc = w[None, :, None]
    if target.dtype.kind in "iu":
        ignore = params.get("ignore_index", -100)
        y = target.reshape(n, -1)
        kept = y != ignore
        ys = np.where(kept, y, 0)
        onehot = (np.arange(classes)[None, :, None] == ys[:, None, :]).astype(np.float64)
        wy = w[ys] * kept
        loss = (1 - eps) * wy * -(lq * onehot).sum(axis=1) + eps / classes * (wc * -lq).sum(axis=1) * kept
        grad = (1 - eps) * wy[:, None, :] * (q - onehot) + eps / classes * (w.sum() * q - wc)
        grad = grad * kept[:, None, :]
        if reduction == "mean":
            total_weight = wy.sum()
            if total_weight == 0.0:
                return np.nan, {"input": np.zeros(z.shape)}
            s = 1.0 / total_weight
        else:
            s = 1.0 / n if reduction == "batchmean" else 1.0
        grads = {"input": (s * grad).reshape(z.shape)}
    else:
        p = np.asarray(target, np.float64).reshape(z3.shape)
        ps = (1 - eps) * p + eps / classes
        loss = -(wc * ps * lq).sum(axis=1)
        s = {"none": 1.0, "sum": 1.0, "mean": 1.0 / loss.size, "batchmean": 1.0 / n}[reduction]
        grad_z = q * (wc * ps).sum(axis=1, keepdims=True) - wc * ps
        grad_p = -(1 - eps) * wc * lq
        grads = {"input": (s * grad_z).reshape(z.shape), "target": (s * grad_p).reshape(z.shape)}
    value = loss.reshape((n, *z.shape[2:])) if reduction == "none" else loss.sum() * s
    return value, grads
