"""Admission and deadlines on a real server (both transports, in this process so a kernel
can be held at will):

* beyond --max-in-flight or --max-queued-bytes a new call is refused at once with
  RESOURCE_EXHAUSTED (gRPC) / 429 (REST) while the admitted calls hold their slots; the
  refused call has a 60 s deadline, so a server that queued it instead would fail the test;
* a call whose deadline passes while it is queued is never computed and frees its slot;
* a call cancelled while queued frees its slot at once and is never computed;
* a call cancelled while its kernel runs keeps its slot until the kernel returns (the
  kernel cannot be interrupted; the limit bounds the work really going on).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable, Iterator

import grpc
import httpx
import numpy as np
import pytest

from lossd.app import App
from lossd.losses.registry import resolve
from lossd.settings import Settings
from lossd_client._proto.lossd.v1 import lossd_pb2_grpc
from lossd_client.codec import build_request
from lossd_client.errors import from_rpc_error

X = np.arange(12, dtype=np.float32).reshape(3, 4)
GOOD = {"input": X, "target": np.zeros_like(X)}
REST_BODY = {"inputs": {"input": {"dtype": "float32", "shape": [2], "data": [1.0, 2.0]},
                        "target": {"dtype": "float32", "shape": [2], "data": [0.0, 0.0]}}}


class Gate:
    """Wraps mse's compute: calls whose request id starts with 'hold' wait for release()."""

    def __init__(self) -> None:
        self.started: list[str] = []     # request ids whose kernel began
        self.finished: list[str] = []
        self._open = threading.Event()

    def wrap(self, compute: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def gated(call: Any) -> Any:
            self.started.append(call.request_id)
            if call.request_id.startswith("hold"):
                assert self._open.wait(120), "gate never opened"
            try:
                return compute(call)
            finally:
                self.finished.append(call.request_id)
        return gated

    def release(self) -> None:
        self._open.set()


class Server:
    """An App on free loopback ports, run by an event loop in a background thread."""

    def __init__(self, **settings: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        # inline_bytes=0: every call goes through the executor, whose kernel these tests hold
        self.app = App(Settings(host="127.0.0.1", grpc_port=0, http_port=0, warmup=False,
                                metrics=False, drain_delay=0, grace=5, inline_bytes=0, **settings))
        self.run(self.app.start())
        self.run(self.app.warm_up())
        self.records: list[Any] = []
        observer = self.app.plane.observer
        outer = self

        class Recorder:
            def call_started(self, transport: str) -> None:
                observer.call_started(transport)

            def call_finished(self, record: Any) -> None:
                outer.records.append(record)
                observer.call_finished(record)

        self.app.plane.observer = Recorder()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.app.grpc_port}")
        self.stub = lossd_pb2_grpc.LossServiceStub(self.channel)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.app.http_port}", timeout=60)

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    @property
    def in_flight(self) -> int:
        return self.app.plane.admission.in_flight

    def call(self, request_id: str, timeout: float = 60, inputs: Any = None) -> Any:
        """An Evaluate future."""
        request = build_request("mse", inputs or GOOD, request_id=request_id)
        return self.stub.Evaluate.future(request, timeout=timeout)

    def close(self) -> None:
        self.http.close()
        self.channel.close()
        self.run(self.app.stop(grace=5))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def wait_until(condition: Callable[[], bool], what: str, limit: float = 60) -> None:
    """Poll ``condition`` (a liveness bound, not a timing assertion)."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


def code_of(future: Any) -> str:
    try:
        future.result()
    except grpc.RpcError as exc:
        return from_rpc_error(exc).code.name
    return "OK"


@pytest.fixture
def gate() -> Iterator[Gate]:
    spec = resolve("mse")
    original = spec.compute
    g = Gate()
    object.__setattr__(spec, "compute", g.wrap(original))
    yield g
    g.release()
    object.__setattr__(spec, "compute", original)


@pytest.fixture
def server_factory() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def make(**settings: Any) -> Server:
        servers.append(Server(**settings))
        return servers[-1]
    yield make
    for s in servers:
        s.close()


def test_over_in_flight_limit_refused_at_once_on_both_transports(gate, server_factory):
    server = server_factory(max_in_flight=2, workers=2)
    held = [server.call("hold-1"), server.call("hold-2")]
    wait_until(lambda: len(gate.started) == 2, "both held calls computing")
    assert server.in_flight == 2

    refused = server.call("extra", timeout=60)
    error = from_rpc_error(pytest.raises(grpc.RpcError, refused.result).value)
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "max-in-flight" in error.message
    response = server.http.post("/v1/losses/mse:evaluate", json=REST_BODY)
    assert response.status_code == 429 and response.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
    assert response.headers["retry-after"]
    assert "extra" not in gate.started  # refused calls never reach a kernel

    gate.release()
    assert [code_of(f) for f in held] == ["OK", "OK"]
    wait_until(lambda: server.in_flight == 0, "slots freed")
    assert code_of(server.call("after")) == "OK"
    assert server.http.post("/v1/losses/mse:evaluate", json=REST_BODY).status_code == 200


def test_over_queued_bytes_refused_at_once(gate, server_factory):
    server = server_factory(max_in_flight=8, max_queued_bytes=20_000, workers=2)
    held = server.call("hold-small")
    wait_until(lambda: gate.started == ["hold-small"], "held call computing")
    big = np.zeros(4000, np.float32)  # 2 x 16 kB: over the 20 kB still free
    refused = server.call("big", inputs={"input": big, "target": big})
    error = from_rpc_error(pytest.raises(grpc.RpcError, refused.result).value)
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "max-queued-bytes" in error.message
    body = {"inputs": {"input": {"dtype": "float32", "shape": [6000], "data": [0.0] * 6000},
                       "target": {"dtype": "float32", "shape": [6000], "data": [0.0] * 6000}}}
    response = server.http.post("/v1/losses/mse:evaluate", json=body)
    assert response.status_code == 429 and "max-queued-bytes" in response.json()["error"]["message"]
    gate.release()
    assert code_of(held) == "OK"
    wait_until(lambda: server.in_flight == 0, "slots freed")
    assert code_of(server.call("big-now", inputs={"input": big, "target": big})) == "OK"


def test_deadline_passed_while_queued_is_not_computed(gate, server_factory):
    server = server_factory(max_in_flight=4, workers=1)
    holder = server.call("hold-worker")
    wait_until(lambda: gate.started == ["hold-worker"], "the only worker busy")
    late = server.call("late", timeout=0.5)  # queued behind the held call
    assert code_of(late) == "DEADLINE_EXCEEDED"
    wait_until(lambda: server.in_flight == 1, "the expired call's slot freed")
    gate.release()
    assert code_of(holder) == "OK"
    assert code_of(server.call("next")) == "OK"
    assert "late" not in gate.started  # never computed
    assert gate.started == ["hold-worker", "next"]


def test_cancelled_while_queued_frees_its_slot_at_once(gate, server_factory):
    server = server_factory(max_in_flight=2, workers=1)
    holder = server.call("hold-worker")
    wait_until(lambda: gate.started == ["hold-worker"], "the only worker busy")
    queued = server.call("queued")
    wait_until(lambda: server.in_flight == 2, "second call admitted")
    assert code_of(server.call("third")) == "RESOURCE_EXHAUSTED"  # full
    queued.cancel()
    wait_until(lambda: server.in_flight == 1, "the cancelled call's slot freed")
    admitted = server.call("after-cancel")  # admitted now (queued behind the holder)
    wait_until(lambda: server.in_flight == 2, "new call admitted")
    gate.release()
    assert code_of(holder) == "OK" and code_of(admitted) == "OK"
    assert "queued" not in gate.started
    assert any(r.request_id == "queued" and r.code == "CANCELLED" for r in server.records)


def test_cancelled_while_computing_holds_its_slot_until_the_kernel_returns(gate, server_factory):
    server = server_factory(max_in_flight=1, workers=1)
    running = server.call("hold-running")
    wait_until(lambda: gate.started == ["hold-running"], "kernel running")
    running.cancel()
    wait_until(lambda: any(r.request_id == "hold-running" for r in server.records),
               "server saw the cancellation")
    assert [r.code for r in server.records if r.request_id == "hold-running"] == ["CANCELLED"]
    # the kernel still runs: its slot is still held, so a new call is refused
    assert server.in_flight == 1
    assert code_of(server.call("while-running")) == "RESOURCE_EXHAUSTED"
    gate.release()
    wait_until(lambda: server.in_flight == 0, "slot freed when the kernel returned")
    assert "hold-running" in gate.finished
    assert code_of(server.call("after")) == "OK"
