"""Prometheus metrics: an :class:`~lossd.core.observer.Observer` over ONE injected registry.

Nothing here registers at import time: each :class:`Metrics` owns the
``CollectorRegistry`` it is given (the App creates one per server), so two servers in
one process never share counts. Label values are bounded: ``loss`` is a canonical id,
``unknown`` or ``""`` (calls that are not about one loss, such as ListLosses); phases
outside the five known ones are ignored.

Per-call cost is kept low by caching the labelled children per label tuple (a dict
lookup instead of ``labels()`` on every call).
"""

from __future__ import annotations

import math
import platform
from typing import Callable, Iterable, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lossd.core.observer import CallRecord, Observer

# Seconds: 10 µs .. 10 s, 1-2.5-5 per decade (a 20 µs call and a 2 s call both land in
# a bucket narrower than a factor 2.5).
DEFAULT_BUCKETS: tuple[float, ...] = (
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Bytes: 64 B .. 1 GiB, a factor 4 apart.
BYTE_BUCKETS: tuple[float, ...] = tuple(float(64 * 4 ** k) for k in range(13))
PHASES = ("decode", "validate", "queue", "compute", "encode")
NO_LOSS = ""  # the loss label of calls that are not about one loss (ListLosses)


def parse_buckets(text: str) -> tuple[float, ...]:
    """Histogram upper bounds in seconds from ``"1e-5,1e-4,..."``; empty: the defaults."""
    if not text.strip():
        return DEFAULT_BUCKETS
    values = sorted({float(v) for v in text.split(",") if v.strip()})
    if not values or any(not math.isfinite(v) or v <= 0 for v in values):
        raise ValueError(f"metrics buckets must be positive finite seconds, got {text!r}")
    return tuple(values)


def build_versions() -> dict[str, str]:
    """The label values of ``lossd_build_info``."""
    import grpc
    import numba
    import numpy

    from lossd import __version__

    return {"version": __version__, "numba": numba.__version__, "numpy": numpy.__version__,
            "grpcio": grpc.__version__, "python": platform.python_version()}


class Metrics:
    """Every lossd metric on one registry; receives the transports' CallRecords."""

    def __init__(self, registry: CollectorRegistry, *, buckets: Sequence[float] = DEFAULT_BUCKETS,
                 losses: Iterable[str] | None = None, process: bool = True) -> None:
        if losses is None:
            from lossd.losses.registry import SPECS

            losses = [spec.id for spec in SPECS]
        self.registry = registry
        self._losses = frozenset(losses) | {"unknown", NO_LOSS}
        r = registry
        call = ("transport", "method", "loss", "code")
        self.request_duration = Histogram(
            "lossd_request_duration_seconds", "Whole call as the server sees it, in seconds",
            call, buckets=buckets, registry=r)
        self.requests = Counter(
            "lossd_requests_total", "Finished calls by transport, method, loss and status code", call,
            registry=r)
        self.phase_duration = Histogram(
            "lossd_phase_duration_seconds",
            "Seconds per phase of a call (decode, validate, queue, compute, encode)",
            ("phase", "loss"), buckets=buckets, registry=r)
        self.request_bytes = Histogram(
            "lossd_request_bytes", "Serialized request size in bytes", ("transport", "loss"),
            buckets=BYTE_BUCKETS, registry=r)
        self.response_bytes = Histogram(
            "lossd_response_bytes", "Serialized response size in bytes (0 for errors)",
            ("transport", "loss"), buckets=BYTE_BUCKETS, registry=r)
        self.elements = Counter(
            "lossd_elements_total", "Input elements of successfully evaluated calls", ("loss", "dtype"),
            registry=r)
        self.in_flight = Gauge(
            "lossd_requests_in_flight", "Calls being processed now", ("transport",), registry=r)
        self.ready = Gauge("lossd_ready", "1 when the server is warmed up and not draining", registry=r)
        self.jit_compile = Gauge(
            "lossd_jit_compile_seconds",
            "Warm-up seconds per loss (JIT compile or load from Numba's cache, every signature)",
            ("loss",), registry=r)
        self.build_info = Gauge("lossd_build_info", "Versions of lossd and its runtime (value 1)",
                                tuple(build_versions()), registry=r)
        self.build_info.labels(**build_versions()).set(1)
        if process:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        self._calls: dict[tuple[str, str, str, str], tuple[Callable[[float], None],
                                                            Callable[[float], None]]] = {}
        self._phases: dict[tuple[str, str], Callable[[float], None]] = {}
        self._bytes: dict[tuple[str, str], tuple[Callable[[float], None], Callable[[float], None]]] = {}
        self._elements: dict[tuple[str, str], Callable[[float], None]] = {}
        self._in_flight: dict[str, tuple[Callable[[float], None], Callable[[float], None]]] = {}
        for transport in ("grpc", "rest"):
            self._gauge(transport)

    # -- Observer --------------------------------------------------------------------

    def call_started(self, transport: str) -> None:
        self._gauge(transport)[0](1)

    def call_finished(self, record: CallRecord) -> None:
        loss = record.loss if record.loss in self._losses else "unknown"
        key = (record.transport, record.method, loss, record.code)
        pair = self._calls.get(key)
        if pair is None:
            pair = self._calls[key] = (self.request_duration.labels(*key).observe,
                                       self.requests.labels(*key).inc)
        pair[0](record.duration)
        pair[1](1)
        self._gauge(record.transport)[1](1)
        if loss == NO_LOSS:
            return
        for phase, seconds in record.phases.items():
            observe = self._phases.get((phase, loss))
            if observe is None:
                if phase not in PHASES:
                    continue
                observe = self._phases[(phase, loss)] = self.phase_duration.labels(phase, loss).observe
            observe(seconds)
        sizes = self._bytes.get((record.transport, loss))
        if sizes is None:
            sizes = self._bytes[(record.transport, loss)] = (
                self.request_bytes.labels(record.transport, loss).observe,
                self.response_bytes.labels(record.transport, loss).observe)
        sizes[0](record.request_bytes)
        sizes[1](record.response_bytes)
        if record.code == "OK" and record.elements:
            inc = self._elements.get((loss, record.dtype))
            if inc is None:
                inc = self._elements[(loss, record.dtype)] = self.elements.labels(loss, record.dtype).inc
            inc(record.elements)

    # -- lifecycle -------------------------------------------------------------------

    def set_ready(self, ready: bool) -> None:
        self.ready.set(1 if ready else 0)

    def set_warmup(self, seconds_per_loss: dict[str, float]) -> None:
        """``lossd_jit_compile_seconds`` from :func:`lossd.warmup.warm_up`'s result."""
        for loss, seconds in seconds_per_loss.items():
            self.jit_compile.labels(loss).set(seconds)

    def _gauge(self, transport: str) -> tuple[Callable[[float], None], Callable[[float], None]]:
        pair = self._in_flight.get(transport)
        if pair is None:
            child = self.in_flight.labels(transport)
            pair = self._in_flight[transport] = (child.inc, child.dec)
        return pair


class FanOut:
    """One Observer that forwards every call to several."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self.observers = tuple(observers)

    def call_started(self, transport: str) -> None:
        for observer in self.observers:
            observer.call_started(transport)

    def call_finished(self, record: CallRecord) -> None:
        for observer in self.observers:
            observer.call_finished(record)


def fan_out(observers: Sequence[Observer]) -> Observer:
    """The single observer itself, or a FanOut over several."""
    return observers[0] if len(observers) == 1 else FanOut(observers)


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The exposition body and content type: OpenMetrics when ``accept`` asks for it."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def metrics_route(registry: CollectorRegistry, path: str = "/metrics") -> Route:
    """A Starlette route serving ``registry`` (for ``build_http_app(extra_routes=...)``)."""

    async def endpoint(request: Request) -> Response:
        body, content_type = render(registry, request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})

    return Route(path, endpoint, methods=["GET"])
