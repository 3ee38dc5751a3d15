"""In-process lossd servers for the observability tests: App objects in the test's event loop,
talked to over real loopback sockets (grpc.aio stub, httpx)."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

import grpc.aio
import httpx
from prometheus_client.parser import text_string_to_metric_families

from lossd.app import App
from lossd.settings import Settings
from lossd_client._proto.lossd.v1 import lossd_pb2_grpc as pb_grpc

Samples = dict[tuple[str, frozenset], float]


@contextlib.asynccontextmanager
async def running_app(**overrides: Any) -> AsyncIterator[App]:
    """A started, ready App on free 127.0.0.1 ports (no warm-up unless asked)."""
    values: dict[str, Any] = {"host": "127.0.0.1", "grpc_port": 0, "http_port": 0, "warmup": False,
                              "drain_delay": 0.0, "grace": 2.0, "workers": 2}
    values.update(overrides)
    app = App(Settings(**values))
    await app.start()
    try:
        await app.warm_up()
        yield app
    finally:
        await app.stop()


@contextlib.asynccontextmanager
async def stub_for(app: App) -> AsyncIterator[pb_grpc.LossServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        yield pb_grpc.LossServiceStub(channel)


async def metrics_text(app: App, accept: str | None = None, port: int | None = None) -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{port or app.http_port}/metrics", headers=headers)
    response.raise_for_status()
    return response


def parse(text: str) -> Samples:
    """``{(sample name, frozenset(labels)): value}`` of every sample in the exposition."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


async def scrape(app: App) -> Samples:
    return parse((await metrics_text(app)).text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def matching(samples: Samples, name: str, **labels: str) -> dict[frozenset, float]:
    """Every series of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return {key: v for (n, key), v in samples.items() if n == name and want <= key}
