"""Warm-up: compile (or load from Numba's on-disk cache) every kernel signature before
the server reports ready, by evaluating each loss's examples in both float dtypes.

The examples run through the real validation and compute path, so a request never
triggers a JIT compile. Both the serial and parallel builds of dual kernels are loaded
because signatures are eager (compiled or loaded at import).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from lossd.core.evaluate import evaluate
from lossd.losses.registry import SPECS

log = logging.getLogger("lossd.warmup")


def warm_up() -> dict[str, float]:
    """Run every loss's examples in float32 and float64; return seconds per loss id."""
    timings: dict[str, float] = {}
    for spec in SPECS:
        start = time.perf_counter()
        for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
            for inputs, params in spec.examples(dtype):
                evaluate(spec.id, inputs, params)
                evaluate(spec.id, inputs, {**params, "reduction": "none"})
        timings[spec.id] = time.perf_counter() - start
    return timings
