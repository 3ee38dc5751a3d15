"""A 64 MiB base64 body works end to end, and b64 tensors never go through Python lists."""

from __future__ import annotations

import asyncio
import base64

import httpx
import numpy as np

from lossd.http.app import build_http_app
from lossd.rest import EXCEPTION_HANDLERS, codec, rest_routes
from tests.rest.conftest import array, tensor

MIB = 1024 * 1024


async def _post(app, path: str, raw: bytes) -> httpx.Response:
    """POST to an in-process ASGI app (the plane's executor runs on this loop)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        return await c.post(path, content=raw, headers={"Content-Type": "application/json"})


def test_64_mib_b64_body(http, client):
    n = 6 * MIB  # two float32 inputs of 24 MiB: 64 MiB of base64
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    doc = {"inputs": {"input": tensor(x, "b64"), "target": tensor(y, "b64")}, "params": {"reduction": "sum"}}
    raw = codec.dumps(doc)
    assert len(raw) >= 64 * MIB
    response = http.post("/v1/losses/mse:evaluate", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text[:1000]
    out = response.json()
    expected = client.evaluate("mse", {"input": x, "target": y}, {"reduction": "sum"})
    assert array(out["loss"]).tobytes() == np.asarray(expected.loss).tobytes()
    for name in ("input", "target"):
        assert array(out["grads"][name]).tobytes() == expected.grads[name].tobytes()


def test_b64_decodes_with_frombuffer():
    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    a = codec.decode_tensor(tensor(x, "b64"), "inputs.x")
    base = a
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, bytes) and not a.flags.writeable  # a view of the decoded bytes
    assert a.tobytes() == x.tobytes()
    assert base64.b64decode(codec.encode_tensor(x, "b64")["b64"]) == x.tobytes()


def test_b64_request_never_builds_lists(plane, monkeypatch):
    """In-process: with the list decoder and list encoder disabled, an 8 MiB b64 request
    still evaluates (so neither direction touched Python lists)."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a b64 tensor went through Python lists")

    monkeypatch.setattr(codec, "_from_list", forbidden)
    app = build_http_app(plane, extra_routes=rest_routes(plane), exception_handlers=EXCEPTION_HANDLERS)
    x = np.linspace(-1, 1, MIB, dtype=np.float32)
    raw = codec.dumps({"inputs": {"input": tensor(x, "b64"), "target": tensor(x[::-1].copy(), "b64")}})
    response = asyncio.run(_post(app, "/v1/losses/mse:evaluate", raw))
    assert response.status_code == 200, response.text[:500]
    assert "b64" in response.json()["grads"]["input"]
