"""Reference for cosface (metric.md §7b): T = cos - m, T' = 1, no clamp (float64 NumPy)."""

from __future__ import annotations

from tests.reference.arcface import normalised_margin


def reference(inputs, params):
    m = float(params.get("m", 0.35))
    return normalised_margin(inputs, params, lambda cos: (cos - m, 1.0))
