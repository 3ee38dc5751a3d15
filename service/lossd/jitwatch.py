"""Debug aid: count Numba compilations (``--jit-report`` / ``LOSSD_JIT_REPORT=1``).

Numba fires a ``numba:compile`` event for every real compilation (loading a signature
from the on-disk cache is not one). With the setting on, the server counts them from
start-up, remembers how many happened before it became ready, and at shutdown prints::

    lossd numba compilations: warm-up 0, after ready 0 (signatures 140 -> 276, deferred parallel 136)

"warm-up" counts the eager signatures compiled rather than loaded from the on-disk
cache while the kernels were imported and warmed up (Numba's per-dispatcher cache-miss
statistics; imports happen before the listener exists). When the warm-up compiled a cold
cache in worker processes, the line ends with ``; in J compile worker processes before: K``
(their compilations; the server itself then loads everything from the cache). A compilation after ready
means some request path compiled code; the perf test asserts there is none. Signatures
added after ready are the parallel builds loaded just after it (``deferred parallel``,
loaded from the cache, not compiled: see :func:`lossd.warmup.load_parallel_builds`). Off by
default: the listener costs a lock per compilation and nothing per request.
"""

from __future__ import annotations

import threading

from numba.core import event


class CompileCounter(event.Listener):
    """Counts ``numba:compile`` events and names what compiled after :meth:`mark_ready`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.at_ready: int | None = None
        self.startup = 0
        self.signatures_at_ready = 0
        self.late: list[str] = []

    def on_start(self, ev: event.Event) -> None:
        pass

    def on_end(self, ev: event.Event) -> None:
        with self._lock:
            self.count += 1
            if self.at_ready is not None and len(self.late) < 20:
                data = ev.data or {}
                self.late.append(f"{data.get('dispatcher')}{data.get('args', '')}")

    def mark_ready(self) -> None:
        from lossd.kernels.jit import DISPATCHERS, compiled_signature_count

        misses = sum(sum(d.stats.cache_misses.values()) for d in DISPATCHERS)
        with self._lock:
            self.startup = max(self.count, misses)
            self.at_ready = self.count
            self.signatures_at_ready = compiled_signature_count()

    def report(self) -> str:
        from lossd import precompile
        from lossd.kernels.jit import compiled_signature_count, deferred_signatures_loaded

        with self._lock:
            ready = self.count if self.at_ready is None else self.at_ready
            after = self.count - ready
            line = (f"lossd numba compilations: warm-up {max(ready, self.startup)}, after ready {after} "
                    f"(signatures {self.signatures_at_ready} -> {compiled_signature_count()}, "
                    f"deferred parallel {deferred_signatures_loaded()})")
            if precompile.LAST.jobs:
                line += (f"; in {precompile.LAST.jobs} compile worker processes before: "
                         f"{precompile.LAST.compilations}")
            if self.late:
                line += " late: " + "; ".join(self.late)
            return line


def install() -> CompileCounter:
    """Register a counter for every Numba compilation from now on."""
    counter = CompileCounter()
    event.register("numba:compile", counter)
    return counter
