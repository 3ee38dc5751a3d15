"""Reference for sphereface (metric.md §3b): l_softmax with w/|w| in place of w, and the weight
gradient through the normalisation (float64 NumPy, from the formula)."""

from __future__ import annotations

from tests.reference.l_softmax import large_margin

DEFAULTS = {"lambda_base": 1000.0, "lambda_gamma": 0.12, "lambda_power": 1.0, "lambda_min": 5.0}


def reference(inputs, params):
    return large_margin(inputs, params, True, DEFAULTS)
