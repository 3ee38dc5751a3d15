"""Warm-up: compile (or load from Numba's on-disk cache) every kernel signature before
the server reports ready.

Loss modules compile their eager signatures when imported. When the on-disk cache is cold
(an empty ``NUMBA_CACHE_DIR``, an edited kernel or helper), :func:`warm_up` first compiles
the cold modules in worker processes, one per core (:mod:`lossd.precompile`; a warm cache
starts no process). It then loads the registry module by module (timing each: the JIT or
cache-load cost per loss), then evaluates each loss's examples in both float dtypes through the real
validation and compute path, so no request ever triggers a compile.

:func:`start` runs it in a background thread from the very start of ``lossd serve``: this
module imports nothing heavy itself, so the kernels load (LLVM work, mostly outside the
GIL) while the main thread imports and starts the transports. The server reports ready
only once that thread has loaded the serial builds: on a warm cache the parallel builds
(half the load) follow in the same thread just after ready, and until each kernel's is
loaded its serial build serves every size.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import Future
from typing import Iterator

log = logging.getLogger("lossd.warmup")


def start(defer_parallel: bool = False) -> Future[tuple[dict[str, float], float]]:
    """:func:`warm_up` in a new daemon thread: a future of (its timings, its seconds).

    With ``defer_parallel`` (``lossd serve``) the future resolves once the serial builds
    are loaded and warmed up, and the thread goes on to :func:`load_parallel_builds`."""
    future: Future[tuple[dict[str, float], float]] = Future()
    future.set_running_or_notify_cancel()  # running: cancelling an awaiting task leaves it be

    def target() -> None:
        begin = time.perf_counter()
        try:
            timings = warm_up(defer_parallel)
        except BaseException as exc:  # noqa: BLE001 - re-raised by whoever awaits the future
            future.set_exception(exc)
        else:
            future.set_result((timings, time.perf_counter() - begin))
            if defer_parallel:
                load_parallel_builds()

    threading.Thread(target=target, name="lossd-warm-up", daemon=True).start()
    return future


@contextlib.contextmanager
def llvm_lock_events_off() -> Iterator[None]:
    """Numba's ``numba:llvm_lock`` events off while the kernels load: Numba broadcasts two
    Python events around every one of the ~20000 llvmlite calls of loading ~130 cached
    signatures (about a tenth of the load's CPU time); they only feed the LLVM-lock timer
    in the metadata of a compilation. The callbacks are swapped out under llvmlite's own
    lock (no LLVM call is in progress) and put back afterwards; without that private
    attribute (another llvmlite), nothing changes."""
    import numba.core.base  # noqa: F401 - registers Numba's callbacks (before the swap)
    from llvmlite.binding import ffi

    lock = getattr(ffi.lib, "_lock", None)
    saved = getattr(lock, "_cblist", None)
    if not isinstance(saved, list):
        yield
        return
    with lock._lock:
        lock._cblist = []
    try:
        yield
    finally:
        with lock._lock:
            lock._cblist = saved + [cb for cb in lock._cblist if cb not in saved]


def load_parallel_builds() -> None:
    """Load the parallel builds :func:`warm_up` deferred (see
    :func:`lossd.kernels.jit.defer_parallel_builds`) and start Numba's thread pool, so the
    first large request does not start it (without a threading layer nothing loads, see
    :func:`lossd.kernels.jit.parallel_available`). A failure is logged: the serial builds go
    on serving every size."""
    import numba

    from lossd.kernels import jit

    begin = time.perf_counter()
    try:
        with llvm_lock_events_off():
            count = jit.load_deferred_parallel_builds()
        threads = numba.get_num_threads() if jit.parallel_available() else 1
    except Exception:
        log.exception("parallel builds failed to load; the serial builds serve every size")
        return
    log.info("parallel builds loaded", extra={"signatures": count, "threads": threads,
                                              "seconds": round(time.perf_counter() - begin, 3)})


def warm_up(defer_parallel: bool = False) -> dict[str, float]:
    """Load every loss and run its examples; return seconds per loss id. With
    ``defer_parallel`` and a warm cache, the loss kernels' parallel builds are left for
    :func:`load_parallel_builds` (a cold cache compiled in this process compiles them all:
    no compile after ready)."""
    with llvm_lock_events_off():
        return _warm_up(defer_parallel)


def _warm_up(defer_parallel: bool) -> dict[str, float]:
    import numpy as np

    from lossd import precompile
    from lossd.core.evaluate import evaluate
    from lossd.kernels import jit, jitcache
    from lossd.losses import registry

    timings: dict[str, float] = {}
    compiled = precompile.compile_cold().seconds  # dotted module name -> seconds in a worker
    if defer_parallel and not precompile.cold():
        jit.defer_parallel_builds()

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
