"""Each REST evaluation reports one CallRecord(transport="rest") to plane.observer, like
the gRPC servicer: success and every error path (in-process app, real DataPlane)."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from lossd.core.dataplane import DataPlane
from lossd.core.observer import CallRecord
from lossd.http.app import build_http_app
from lossd.rest import EXCEPTION_HANDLERS, codec, rest_routes
from lossd.settings import Settings
from tests.rest.conftest import body


class Recorder:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.records: list[CallRecord] = []

    def call_started(self, transport: str) -> None:
        self.started.append(transport)

    def call_finished(self, record: CallRecord) -> None:
        self.records.append(record)


async def _calls(app, requests):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return [await c.post(path, content=raw, headers={"Content-Type": ctype})
                for path, raw, ctype in requests]


@pytest.fixture()
def plane():
    p = DataPlane(Settings(workers=1, max_message_bytes=10_000))
    p.ready = True
    p.observer = Recorder()
    yield p
    p.close()


def test_every_evaluate_is_reported(plane):
    x = np.ones((2, 3), np.float32)
    ok = codec.dumps({**body({"input": x, "target": x}), "request_id": "r1"})
    app = build_http_app(plane, extra_routes=rest_routes(plane), exception_handlers=EXCEPTION_HANDLERS)
    responses = asyncio.run(_calls(app, [
        ("/v1/losses/mse_loss:evaluate", ok, "application/json"),
        ("/v1/losses/mse:evaluate", b"{", "application/json"),
        ("/v1/losses/nope:evaluate", ok, "application/json"),
        ("/v1/losses/mse:evaluate", ok, "text/plain"),
        ("/v1/losses/mse:evaluate", b" " * 20_000, "application/json"),
    ]))
    assert [r.status_code for r in responses] == [200, 400, 404, 415, 413]
    rec = plane.observer
    assert rec.started == ["rest"] * 5
    assert [r.code for r in rec.records] == ["OK", "INVALID_ARGUMENT", "NOT_FOUND", "INVALID_ARGUMENT",
                                             "RESOURCE_EXHAUSTED"]
    assert all(r.transport == "rest" and r.method == "rest_evaluate" for r in rec.records)
    first = rec.records[0]
    assert first.loss == "mse" and first.request_id == "r1" and first.dtype == "float32"
    assert first.elements == 12 and first.request_bytes == len(ok)
    assert first.response_bytes == len(responses[0].content) and first.message == ""
    assert {"decode", "validate", "queue", "compute", "encode"} <= set(first.phases)
    assert rec.records[1].loss == "mse" and rec.records[1].message
    assert rec.records[2].loss == "unknown"
    assert rec.records[4].request_bytes == 20_000
