"""Warm-up: compile (or load from Numba's on-disk cache) every kernel signature before
the server reports ready.

Loss modules compile their eager signatures when imported. When the on-disk cache is cold
(an empty ``NUMBA_CACHE_DIR``, an edited kernel or helper), :func:`warm_up` first compiles
the cold modules in worker processes, one per core (:mod:`lossd.precompile`; a warm cache
starts no process). It then loads the registry module by module (timing each: the JIT or
cache-load cost per loss), then evaluates each loss's examples in both float dtypes through the real
validation and compute path, so no request ever triggers a compile.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from lossd import precompile
from lossd.core.evaluate import evaluate
from lossd.kernels import jitcache
from lossd.losses import registry

log = logging.getLogger("lossd.warmup")


def warm_up() -> dict[str, float]:
    """Load every loss and run its examples; return seconds per loss id."""
    timings: dict[str, float] = {}
    compiled = precompile.compile_cold().seconds  # dotted module name -> seconds in a worker

    def loaded(loss_id: str, seconds: float) -> None:
        timings[loss_id] = seconds + compiled.get(precompile.PACKAGE + loss_id, 0.0)
        log.debug("kernels loaded", extra={"loss": loss_id, "seconds": round(seconds, 4)})

    specs = registry.load(loaded)
    for spec in specs:
        start = time.perf_counter()
        for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
            for inputs, params in spec.examples(dtype):
                evaluate(spec.id, inputs, params)
                evaluate(spec.id, inputs, {**params, "reduction": "none"})
        timings[spec.id] = timings.get(spec.id, 0.0) + time.perf_counter() - start
    jitcache.mark_modules(precompile.targets())
    slowest = sorted(timings.items(), key=lambda kv: -kv[1])[:3]
    log.info("kernels ready", extra={"losses": len(timings),
                                     "seconds": round(sum(timings.values()), 3),
                                     "slowest": {k: round(v, 3) for k, v in slowest}})
    return timings
