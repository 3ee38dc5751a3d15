"""Reference for tv (core.md §6), float64 NumPy from the formula (scatter-add gradient)."""

from __future__ import annotations

import numpy as np


def reference(inputs, params):
    x = np.asarray(inputs["input"], np.float64)
    variant = params.get("variant", "l1")
    beta = float(params.get("beta", 1.0))
    n = x.shape[0]
    g = np.zeros(x.shape)
    if variant in ("l1", "squared"):
        a = x[:, :, 1:, :] - x[:, :, :-1, :]
        b = x[:, :, :, 1:] - x[:, :, :, :-1]
        if variant == "l1":
            per = np.abs(a).sum(axis=(1, 2, 3)) + np.abs(b).sum(axis=(1, 2, 3))
            da, db = np.sign(a), np.sign(b)
        else:
            per = (a ** 2).sum(axis=(1, 2, 3)) + (b ** 2).sum(axis=(1, 2, 3))
            da, db = 2 * a, 2 * b
        g[:, :, 1:, :] += da
        g[:, :, :-1, :] -= da
        g[:, :, :, 1:] += db
        g[:, :, :, :-1] -= db
    else:
        a = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
        b = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
        r = a ** 2 + b ** 2
        per = (r ** (beta / 2)).sum(axis=(1, 2, 3))
        pos = r > 0
        kappa = np.zeros(r.shape)
        kappa[pos] = beta * r[pos] ** (beta / 2 - 1)
        g[:, :, 1:, :-1] += kappa * a
        g[:, :, :-1, 1:] += kappa * b
        g[:, :, :-1, :-1] -= kappa * (a + b)
    reduction = params["reduction"]
    s = 1.0 / n if reduction in ("mean", "batchmean") else 1.0
    value = per if reduction == "none" else per.sum() * s
    return value, {"input": s * g}
