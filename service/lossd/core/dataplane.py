"""The transport-neutral core both transports call: admission, validation and compute
in a worker thread (kernels release the GIL), with per-phase timings.

A transport decodes its wire format into NumPy arrays and Python scalars, awaits
:meth:`DataPlane.evaluate`, and encodes the :class:`EvaluateResult`. It never sees a
kernel; the core never sees a wire message.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from lossd.core import memory
from lossd.core.admission import Admission
from lossd.core.evaluate import run
from lossd.core.observer import NullObserver, Observer
from lossd.core.validation import prepare
from lossd.losses._pool import POOL
from lossd.losses.registry import canonical_id
from lossd.settings import Settings
from lossd_client.errors import Cancelled, DeadlineExceeded, Unavailable
from lossd_client.result import EvaluateResult

_NEVER = threading.Event()  # "abandoned" flag of inline calls: they cannot be abandoned midway
#: requests of at least this many bytes are "large": memory before speed (see _work_held).
LARGE_BYTES = 16 << 20
_DTYPE_NAMES: dict[Any, str] = {}  # dtype -> name (``dtype.name`` takes microseconds a call)


def dtype_name(dtype: Any) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = dtype.name
    return name


@dataclass
class Timings:
    """Seconds spent per phase of one call (filled as the call proceeds)."""

    phases: dict[str, float] = field(default_factory=dict)
    loss_id: str = ""
    dtype: str = ""
    elements: int = 0
    request_id: str = ""
    response_bytes: int = 0  # size of the serialized response message, when the transport wrote it


class DataPlane:
    """Evaluations for every transport: one executor, one admission limit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.executor = ThreadPoolExecutor(settings.worker_count, thread_name_prefix="lossd-compute")
        self.admission = Admission(settings.max_in_flight, settings.max_queued_bytes)
        self.observer: Observer = NullObserver()
        self.ready = False
        self.draining = False  # set on SIGTERM: readiness fails, calls are still served
        self.refusing = False  # set after the drain delay: new calls get UNAVAILABLE

    @staticmethod
    def new_request_id(given: str = "") -> str:
        """``given`` (at most 128 characters) or 32 random hex digits (as ``uuid4().hex``,
        a tenth of its cost)."""
        return given[:128] if given else os.urandom(16).hex()

    async def evaluate(self, loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any],
                       grads: Iterable[str] | None, *, request_id: str, nbytes: int,
                       timings: Timings, deadline: float | None = None) -> EvaluateResult:
        """Validate and compute one request; raises typed LossdErrors.

        ``deadline`` is a ``time.monotonic()`` instant after which the call is not computed.
        """
        timings.loss_id = canonical_id(loss) or "unknown"
        if not self.ready:
            raise Unavailable("server is warming up (compiling kernels); retry shortly")
        if self.refusing:
            raise Unavailable("server is shutting down; retry on another replica")
        queued = time.perf_counter()
        release = self.admission.acquire(nbytes)
        if nbytes <= self.settings.inline_bytes:
            # Small requests: validation and a serial kernel take microseconds, less than
            # the two thread hand-offs an executor round trip costs.
            try:
                return self._work(loss, inputs, params, grads, request_id, timings, deadline, queued,
                                  _NEVER)
            finally:
                release()
        loop = asyncio.get_running_loop()
        abandoned = threading.Event()  # set when the caller went away (cancel or deadline)
        # The result comes back through ``held``, not as the future's result: asyncio's
        # wrapper and the executor's future form a reference cycle that would keep the
        # result (the gradients) alive until the cyclic GC runs, past the response copies.
        held: list[EvaluateResult] = []
        try:
            future = self.executor.submit(self._work_held, held, nbytes >= LARGE_BYTES, loss, inputs,
                                          params, grads, request_id, timings, deadline, queued,
                                          abandoned)
        except BaseException:
            release()
            raise

        def done(_: Any) -> None:  # in the worker (or, if cancelled while queued, this) thread
            try:
                loop.call_soon_threadsafe(release)
            except RuntimeError:  # the loop is closed: the process is exiting
                pass

        # The slot is held until the worker is done with the call: a call cancelled while
        # queued is dropped from the executor (frees its slot at once, never computed); one
        # cancelled while computing keeps its slot until the kernel returns.
        future.add_done_callback(done)
        try:
            await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            abandoned.set()
            raise
        return held.pop()

    def _work_held(self, held: list[EvaluateResult], large: bool, *args: Any) -> None:
        """:meth:`_work` in an executor thread; after a ``large`` request, its output buffers
        leave the buffer pool (so they are freed once the response is written, before the
        transport copies it) and freed heap pages go back to the OS (the request's transport
        buffers): the peak RSS of a large call stays near 3x its payload, not 5x."""
        result = self._work(*args)
        if large:
            POOL.forget([result.loss, *result.grads.values(), *result.outputs.values()])
            memory.trim()
        held.append(result)

    def _work(self, loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any],
              grads: Iterable[str] | None, request_id: str, timings: Timings,
              deadline: float | None, queued: float, abandoned: threading.Event) -> EvaluateResult:
        start = time.perf_counter()
        timings.phases["queue"] = start - queued
        if deadline is not None and time.monotonic() >= deadline:
            raise DeadlineExceeded("the call's deadline passed before it was computed")
        if abandoned.is_set():
            raise Cancelled("the call was cancelled before it was computed")
        try:
            call = prepare(loss, inputs, params, grads, request_id, self.settings.max_elements)
        finally:
            timings.phases["validate"] = time.perf_counter() - start
        if deadline is not None and time.monotonic() >= deadline:
            raise DeadlineExceeded("the call's deadline passed before it was computed")
        if abandoned.is_set():
            raise Cancelled("the call was cancelled before it was computed")
        timings.loss_id = call.spec.id
        timings.dtype = dtype_name(call.dtype)
        timings.elements = sum(a.size for a in call.inputs.values())
        begin = time.perf_counter()
        try:
            return run(call)
        finally:
            timings.phases["compute"] = time.perf_counter() - begin

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

