"""Float64 reference of cosine_embedding (core.md §7.5), eps = float32(1e-12)."""

from __future__ import annotations

import math

import numpy as np

from tests.reference.mse import reduced

EPS = float(np.float32(1e-12))


def reference(inputs, params):
    a, b, y = inputs["input1"], inputs["input2"], inputs["target"]
    margin = float(params.get("margin", 0.0))
    n = a.shape[0]
    ell = np.empty(n)
    ga = np.empty_like(a)
    gb = np.empty_like(b)
    for r in range(n):
        s_a = float(np.sum(a[r] * a[r])) + EPS
        s_b = float(np.sum(b[r] * b[r])) + EPS
        den = math.sqrt(s_a * s_b)
        c = float(np.sum(a[r] * b[r])) / den
        if y[r] == 1:
            ell[r], k = 1.0 - c, -1.0
        else:
            ell[r], k = (c - margin, 1.0) if c - margin >= 0 else (0.0, 0.0)
        ga[r] = k * (b[r] / den - c * a[r] / s_a)
        gb[r] = k * (a[r] / den - c * b[r] / s_b)
    return reduced(ell, {"input1": ga, "input2": gb}, params["reduction"], n)
