"""Admission control: bounded in-flight evaluations and bounded admitted request bytes.

Beyond either limit a new call fails at once with RESOURCE_EXHAUSTED (429 on REST);
nothing waits in an unbounded queue. A slot is held for as long as a worker thread may
still work on the call: a call cancelled while queued frees it at once, a call cancelled
while its kernel runs frees it when the kernel returns (kernels cannot be interrupted),
so the limit bounds the work really going on.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from lossd_client.errors import ResourceExhausted


class Admission:
    """Counts admitted calls and their bytes. Used from the event loop thread only."""

    def __init__(self, max_in_flight: int, max_bytes: int) -> None:
        self.max_in_flight = max_in_flight
        self.max_bytes = max_bytes
        self.in_flight = 0
        self.bytes = 0

    @contextmanager
    def slot(self, nbytes: int) -> Iterator[None]:
        """Hold one slot for a call of ``nbytes`` request bytes, or raise ResourceExhausted."""
        release = self.acquire(nbytes)
        try:
            yield
        finally:
            release()

    def acquire(self, nbytes: int) -> Callable[[], None]:
        """Take one slot for ``nbytes`` request bytes (or raise ResourceExhausted at once);
        return the function that gives it back (idempotent)."""
        if self.in_flight >= self.max_in_flight:
            raise ResourceExhausted(f"server is at its limit of {self.max_in_flight} concurrent "
                                    f"evaluations (--max-in-flight); retry later")
        if self.in_flight and self.bytes + nbytes > self.max_bytes:
            raise ResourceExhausted(f"admitted requests would hold {self.bytes + nbytes} bytes, over "
                                    f"the limit of {self.max_bytes} (--max-queued-bytes); retry later")
        self.in_flight += 1
        self.bytes += nbytes
        held = [True]

        def release() -> None:
            if held[0]:
                held[0] = False
                self.in_flight -= 1
                self.bytes -= nbytes
        return release
