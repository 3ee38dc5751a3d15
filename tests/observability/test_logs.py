"""Request logs: one JSON line per call at debug, per error at warning; never tensor contents."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging

import httpx
import numpy as np

from lossd.logs import JsonFormatter
from lossd_client.codec import build_request
from tests.observability.harness import running_app, stub_for
from tests.observability.test_metrics import unary

# values that would show up verbatim if a tensor were ever logged
MARKERS = [1234.5678, -9876.125, 4242.4242]
KEYS = {"request_id", "transport", "method", "loss", "dtype", "elements", "code", "duration_ms",
        "request_bytes", "response_bytes", "phases_ms"}


@contextlib.contextmanager
def captured(level: int):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("lossd")
    saved = root.handlers[:], root.level, root.propagate
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    try:
        yield stream
    finally:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]


async def calls(app) -> None:
    x = np.array(MARKERS * 4, np.float32)
    async with stub_for(app) as stub:
        assert (await unary(stub, build_request("mse", {"input": x, "target": x[::-1].copy()},
                                                request_id="req-ok-1")))[0] == "OK"
        assert (await unary(stub, build_request("mse", {"input": x, "target": x[:5]},
                                                request_id="req-bad-2")))[0] == "INVALID_ARGUMENT"
        assert (await unary(stub, build_request("nope", {"input": x}, request_id="req-404-3")))[0] \
            == "NOT_FOUND"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}") as http:
        body = {"inputs": {"input": {"dtype": "float32", "shape": [3], "data": MARKERS},
                           "target": {"dtype": "float32", "shape": [3], "data": MARKERS}},
                "request_id": "req-rest-4"}
        assert (await http.post("/v1/losses/l1:evaluate", json=body)).status_code == 200


def lines_of(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_request_lines_at_debug_are_json_with_the_expected_keys_and_no_tensor_data():
    async def scenario():
        with captured(logging.DEBUG) as stream:
            async with running_app(warmup=True) as app:
                await calls(app)
        return stream

    stream = asyncio.run(scenario())
    records = lines_of(stream)
    requests = {r["request_id"]: r for r in records if r["logger"] == "lossd.requests"}
    assert set(requests) == {"req-ok-1", "req-bad-2", "req-404-3", "req-rest-4"}
    for r in requests.values():
        assert KEYS <= set(r), r
    ok, bad, missing, rest = (requests[k] for k in ("req-ok-1", "req-bad-2", "req-404-3", "req-rest-4"))
    assert (ok["level"], ok["code"], ok["loss"], ok["dtype"], ok["elements"]) == \
        ("debug", "OK", "mse", "float32", 24)
    assert ok["method"] == "Evaluate" and ok["transport"] == "grpc" and "error" not in ok
    assert set(ok["phases_ms"]) == {"decode", "queue", "validate", "compute", "encode"}
    assert ok["duration_ms"] > 0 and ok["request_bytes"] > 96 and ok["response_bytes"] > 0
    assert (bad["level"], bad["code"], bad["loss"]) == ("warning", "INVALID_ARGUMENT", "mse")
    assert "inputs.target" in bad["error"] or "target" in bad["error"]
    assert (missing["level"], missing["code"], missing["loss"]) == ("warning", "NOT_FOUND", "unknown")
    assert (rest["transport"], rest["code"], rest["loss"], rest["elements"]) == ("rest", "OK", "l1", 6)
    text = stream.getvalue()
    for marker in MARKERS:
        for form in (str(marker), str(np.float32(marker)), repr(float(np.float32(marker)))):
            assert form not in text
    infos = {r["message"] for r in records if r["level"] == "info" and r["logger"] == "lossd.app"}
    assert {"listening", "warm-up done"} <= infos


def test_at_info_only_errors_are_logged():
    async def scenario():
        with captured(logging.INFO) as stream:
            async with running_app() as app:
                await calls(app)
        return stream

    requests = [r for r in lines_of(asyncio.run(scenario())) if r["logger"] == "lossd.requests"]
    assert sorted(r["request_id"] for r in requests) == ["req-404-3", "req-bad-2"]
    assert {r["level"] for r in requests} == {"warning"}
