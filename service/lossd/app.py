"""Composition root: builds the data plane, the gRPC server (LossService, health,
reflection) and the HTTP server in one asyncio event loop, warms up, and shuts down
gracefully.

Lifecycle: listen (health NOT_SERVING, /readyz 503) -> warm up every kernel -> SERVING
-> on SIGTERM/SIGINT: NOT_SERVING and /readyz 503 at once, keep serving for
``drain_delay`` seconds (balancers notice), then refuse new calls (UNAVAILABLE), let
in-flight calls finish within ``grace`` seconds, close HTTP, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from concurrent.futures import Future
from typing import Any, Iterator

import grpc
import grpc.aio
import uvicorn
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from lossd import warmup
from lossd.core.dataplane import DataPlane
from lossd.grpc.servicer import LossServicer, generic_handler
from lossd.http.app import build_http_app
from lossd.logs import RequestLog
from lossd.metrics import Metrics, fan_out, metrics_route, parse_buckets
from lossd.rest import EXCEPTION_HANDLERS as REST_EXCEPTION_HANDLERS
from lossd.rest import rest_routes
from lossd.security import (
    TokenInterceptor,
    TokenMiddleware,
    auth_token,
    grpc_server_credentials,
    uvicorn_tls_options,
)
from lossd.settings import MIB, Settings
from lossd.v2.grpc import inference_handler
from lossd.v2.rest import v2_routes

log = logging.getLogger("lossd.app")
SERVICE_NAME = "lossd.v1.LossService"


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handlers: the App owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class App:
    """One lossd server process (both transports over one DataPlane)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.plane = DataPlane(settings)
        self.metrics: Metrics | None = None
        if settings.metrics:  # one registry per App: never the global one
            self.metrics = Metrics(CollectorRegistry(), buckets=parse_buckets(settings.metrics_buckets))
        self.plane.observer = fan_out([o for o in (self.metrics, RequestLog()) if o is not None])
        self.health = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
        self.grpc_server: grpc.aio.Server | None = None
        self.http_server: _EmbeddedUvicorn | None = None
        self._http_task: asyncio.Task | None = None
        self.grpc_port = 0
        self.http_port = 0
        self.metrics_port = 0  # 0: no separate metrics listener
        self._metrics_server: _EmbeddedUvicorn | None = None
        self._metrics_task: asyncio.Task | None = None
        self.warmup_seconds = 0.0
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        """Listen on both ports (not ready yet)."""
        s = self.settings
        token = auth_token(s)
        server = grpc.aio.server(interceptors=[TokenInterceptor(token)] if token else [], options=[
            ("grpc.max_receive_message_length", s.max_message_bytes + 64 * MIB),
            ("grpc.max_send_message_length", max(s.max_message_bytes, 256 * MIB)),
            ("grpc.so_reuseport", 0),
        ])
        server.add_generic_rpc_handlers((generic_handler(LossServicer(self.plane)),
                                         inference_handler(self.plane)))  # KServe V2
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME), server)
        for name in ("", SERVICE_NAME):
            await self._set_health(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        credentials = grpc_server_credentials(s)
        address = _address(s.host, s.grpc_port)
        self.grpc_port = (server.add_secure_port(address, credentials) if credentials
                          else server.add_insecure_port(address))
        await server.start()
        self.grpc_server = server
        routes = [metrics_route(self.metrics.registry)] if self.metrics else []
        routes += rest_routes(self.plane)
        routes += v2_routes(self.plane)  # Open Inference Protocol (KServe V2)
        http_app = build_http_app(self.plane, extra_routes=routes,
                                  exception_handlers=REST_EXCEPTION_HANDLERS)
        if token:
            http_app = TokenMiddleware(http_app, token, s.metrics_auth)
        config = uvicorn.Config(http_app, host=s.host, port=s.http_port, log_level="warning",
                                lifespan="off", access_log=False, **uvicorn_tls_options(s))
        self.http_server = _EmbeddedUvicorn(config)
        self._http_task = asyncio.create_task(self.http_server.serve())
        while not self.http_server.started:
            if self._http_task.done():
                self._http_task.result()  # raises the bind error
                raise RuntimeError("HTTP server stopped during start-up")
            await asyncio.sleep(0.01)
        self.http_port = self.http_server.servers[0].sockets[0].getsockname()[1]
        if self.metrics is not None and s.metrics_port >= 0:
            metrics_app: Any = Starlette(routes=[metrics_route(self.metrics.registry)])
            if token and s.metrics_auth:  # the same protection as /metrics on the HTTP port
                metrics_app = TokenMiddleware(metrics_app, token, True)
            self._metrics_server = _EmbeddedUvicorn(uvicorn.Config(
                metrics_app, host=s.host, port=s.metrics_port, log_level="warning", lifespan="off",
                access_log=False, **uvicorn_tls_options(s)))
            self._metrics_task = asyncio.create_task(self._metrics_server.serve())
            while not self._metrics_server.started:
                if self._metrics_task.done():
                    self._metrics_task.result()  # raises the bind error
                    raise RuntimeError("metrics server stopped during start-up")
                await asyncio.sleep(0.01)
            self.metrics_port = self._metrics_server.servers[0].sockets[0].getsockname()[1]
        log.info("listening", extra={"grpc_port": self.grpc_port, "http_port": self.http_port,
                                     "metrics_port": self.metrics_port or None})

    async def warm_up(self, warming: Future[tuple[dict[str, float], float]] | None = None) -> None:
        """Compile every kernel signature (or wait for ``warming``, a warm-up started
        earlier by :func:`lossd.warmup.start`), then report SERVING."""
        if self.settings.warmup:
            if warming is None:
                warming = warmup.start()
            timings, self.warmup_seconds = await asyncio.wrap_future(warming)
            log.info("warm-up done", extra={"seconds": round(self.warmup_seconds, 3),
                                            "losses": len(timings)})
            if self.metrics is not None:
                self.metrics.set_warmup(timings)
        self.plane.ready = True
        if self.metrics is not None:
            self.metrics.set_ready(True)
        for name in ("", SERVICE_NAME):
            await self._set_health(name, health_pb2.HealthCheckResponse.SERVING)

    async def _set_health(self, name: str, status: Any) -> None:
        result = self.health.set(name, status)
        if asyncio.iscoroutine(result):
            await result

    async def stop(self, grace: float | None = None) -> None:
        """Graceful shutdown: NOT_SERVING, refuse new calls, drain in-flight calls."""
        if self._stopped.is_set():
            return
        grace = self.settings.grace if grace is None else grace
        log.info("shutting down", extra={"grace_seconds": grace})
        self.plane.draining = True
        if self.metrics is not None:
            self.metrics.set_ready(False)
        for name in ("", SERVICE_NAME):
            await self._set_health(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.settings.drain_delay > 0:
            await asyncio.sleep(self.settings.drain_delay)
        self.plane.refusing = True  # new calls on either transport: UNAVAILABLE / 503
        # Let admitted calls finish while the gRPC server still runs: stopping it refuses
        # new calls with CANCELLED, not the UNAVAILABLE a client retries elsewhere.
        end = time.monotonic() + grace
        while self.plane.admission.in_flight and time.monotonic() < end:
            await asyncio.sleep(0.01)
        # a short linger: calls already on the wire get UNAVAILABLE rather than being cut off
        await asyncio.sleep(max(0.0, min(0.25, end - time.monotonic())))
        if self.grpc_server is not None:
            await self.grpc_server.stop(max(0.0, end - time.monotonic()))
        if self.http_server is not None:
            self.http_server.should_exit = True
        if self._metrics_server is not None:
            self._metrics_server.should_exit = True
        if self._http_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._http_task, timeout=grace + 1)
        if self._metrics_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._metrics_task, timeout=grace + 1)
        self.plane.close()
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


async def serve(settings: Settings, announce: Any = print,
                warming: Future[tuple[dict[str, float], float]] | None = None) -> int:
    """Run a server until SIGTERM/SIGINT; return the exit status. ``warming``: the warm-up,
    when the caller started it before importing this module (``lossd serve`` does)."""
    app = App(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(app.stop()))
    started = time.perf_counter()
    counter = None
    if settings.jit_report:
        from lossd import jitwatch

        counter = jitwatch.install()
    await app.start()
    announce(f"lossd grpc listening on {_address(settings.host, app.grpc_port)}")
    announce(f"lossd http listening on {_address(settings.host, app.http_port)}")
    if app.metrics_port:
        announce(f"lossd metrics listening on {_address(settings.host, app.metrics_port)}")
    await app.warm_up(warming)
    if counter is not None:
        counter.mark_ready()
    announce(f"lossd ready in {time.perf_counter() - started:.2f}s "
             f"(warm-up {app.warmup_seconds:.2f}s)")
    await app.wait_stopped()
    if counter is not None:
        announce(counter.report())
    announce("lossd stopped")
    return 0
