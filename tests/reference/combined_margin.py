"""Reference for combined_margin (metric.md §7c), float64 NumPy from the formula:
T = cos(m1 theta + m2) - m3, theta = acos(clamp(cos, -1 + eps, 1 - eps)),
T' = m1 sin(m1 theta + m2) / sin(theta) inside the clamp interval, 0 outside."""

from __future__ import annotations

import math

from tests.reference.arcface import normalised_margin


def reference(inputs, params):
    m1 = float(params.get("m1", 1.0))
    m2 = float(params.get("m2", 0.3))
    m3 = float(params.get("m3", 0.2))
    eps = float(params.get("eps", 1e-7))

    def target(cos):
        c = min(max(cos, -1.0 + eps), 1.0 - eps)
        theta = math.acos(c)
        t = math.cos(m1 * theta + m2) - m3
        inside = -1.0 + eps <= cos <= 1.0 - eps
        dt = m1 * math.sin(m1 * theta + m2) / math.sin(theta) if inside else 0.0
        return t, dt

    return normalised_margin(inputs, params, target)
