"""The SDK's own retries of UNAVAILABLE (grpc's retry filter is off in its channel).

A stand-in LossService in this process fails each method's first calls with UNAVAILABLE:
``Evaluate`` and ``ListLosses`` are retried whole; an ``EvaluateStream`` call that fails
before its first response is opened again and the unanswered requests are sent again; a
stream that fails after a response raises (see lossd_client.channel).
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent import futures
from typing import Iterator

import grpc
import numpy as np
import pytest

from lossd_client import AsyncLossClient, LossClient, Unavailable
from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client.channel import channel_options
from lossd_client.codec import build_request, encode_tensor

X = {"input": np.ones(3, np.float32), "target": np.zeros(3, np.float32)}


def _response(request: pb.EvaluateRequest) -> pb.EvaluateResponse:
    return pb.EvaluateResponse(loss=encode_tensor(np.float32(len(request.request_id))),
                               request_id=request.request_id, loss_id="mse")


class Flaky:
    """Each method fails its first ``failures`` calls with UNAVAILABLE (a stream: after
    reading its first request, or after its first response when ``after_response``);
    ``seen`` records the request ids (or method names) each call received."""

    def __init__(self, failures: int, after_response: bool = False) -> None:
        self.failures = failures
        self.after_response = after_response
        self.calls: dict[str, int] = {}
        self.seen: list[list[str]] = []
        self._lock = threading.Lock()

    def _fails(self, method: str) -> bool:
        with self._lock:
            self.calls[method] = self.calls.get(method, 0) + 1
            return self.calls[method] <= self.failures

    def list_losses(self, request: pb.ListLossesRequest,
                    context: grpc.ServicerContext) -> pb.ListLossesResponse:
        if self._fails("ListLosses"):
            context.abort(grpc.StatusCode.UNAVAILABLE, "not yet")
        return pb.ListLossesResponse(version="flaky")

    def evaluate(self, request: pb.EvaluateRequest, context: grpc.ServicerContext) -> pb.EvaluateResponse:
        if self._fails("Evaluate"):
            context.abort(grpc.StatusCode.UNAVAILABLE, "not yet")
        return _response(request)

    def evaluate_stream(self, requests: Iterator[pb.EvaluateRequest],
                        context: grpc.ServicerContext) -> Iterator[pb.EvaluateStreamResponse]:
        fails = self._fails("EvaluateStream")
        seen: list[str] = []
        self.seen.append(seen)
        for request in requests:
            seen.append(request.request_id)
            if fails and not self.after_response:
                context.abort(grpc.StatusCode.UNAVAILABLE, "not yet")
            yield pb.EvaluateStreamResponse(response=_response(request), request_id=request.request_id)
            if fails:
                context.abort(grpc.StatusCode.UNAVAILABLE, "gone")


@pytest.fixture
def flaky_server():
    """``start(flaky)`` serves a Flaky on a free loopback port and returns its target."""
    servers: list[grpc.Server] = []

    def start(flaky: Flaky) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(4))
        handlers = {
            "ListLosses": grpc.unary_unary_rpc_method_handler(
                flaky.list_losses, request_deserializer=pb.ListLossesRequest.FromString,
                response_serializer=pb.ListLossesResponse.SerializeToString),
            "Evaluate": grpc.unary_unary_rpc_method_handler(
                flaky.evaluate, request_deserializer=pb.EvaluateRequest.FromString,
                response_serializer=pb.EvaluateResponse.SerializeToString),
            "EvaluateStream": grpc.stream_stream_rpc_method_handler(
                flaky.evaluate_stream, request_deserializer=pb.EvaluateRequest.FromString,
                response_serializer=pb.EvaluateStreamResponse.SerializeToString),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("lossd.v1.LossService",
                                                                               handlers),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(0)


def test_channel_has_no_grpc_retries() -> None:
    options = dict(channel_options())
    assert options["grpc.enable_retries"] == 0
    config = json.loads(str(options["grpc.service_config"]))
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert "methodConfig" not in config  # no retry policy: the SDK retries


def test_list_losses_and_evaluate_retried(flaky_server) -> None:
    flaky = Flaky(failures=2)
    with LossClient(flaky_server(flaky), timeout=30) as client:
        assert client.list_losses() == []
        assert client.evaluate("mse", X, request_id="ab").loss == 2.0
    assert flaky.calls == {"ListLosses": 3, "Evaluate": 3}


def test_retries_bounded_by_attempts(flaky_server) -> None:
    flaky = Flaky(failures=5)
    with LossClient(flaky_server(flaky), timeout=30, retries=2) as client:
        with pytest.raises(Unavailable):
            client.list_losses()
        with pytest.raises(Unavailable):
            client.evaluate("mse", X)
    assert flaky.calls == {"ListLosses": 2, "Evaluate": 2}


def test_stream_failing_before_a_response_is_replayed(flaky_server) -> None:
    flaky = Flaky(failures=2)
    with LossClient(flaky_server(flaky), timeout=30) as client:
        with client.stream() as stream:
            first = stream.evaluate("mse", X, request_id="a")
            more = list(stream.evaluate_many([build_request("mse", X, request_id=r) for r in ("bb", "ccc")]))
    assert first.request_id == "a" and first.loss == 1.0
    assert [m.request_id for m in more] == ["bb", "ccc"]
    assert flaky.calls == {"EvaluateStream": 3}
    assert flaky.seen[:2] == [["a"], ["a"]]  # the failed calls read the first request, once each
    assert flaky.seen[2] == ["a", "bb", "ccc"]  # the replayed request, then the next ones


def test_stream_failing_after_a_response_raises(flaky_server) -> None:
    flaky = Flaky(failures=1, after_response=True)
    with LossClient(flaky_server(flaky), timeout=30) as client:
        with client.stream() as stream:
            assert stream.evaluate("mse", X, request_id="a").request_id == "a"
            with pytest.raises(Unavailable):
                stream.evaluate("mse", X, request_id="b")
    assert flaky.calls == {"EvaluateStream": 1}


def test_async_client_retries(flaky_server) -> None:
    flaky = Flaky(failures=2)
    target = flaky_server(flaky)

    async def main() -> tuple:
        async with AsyncLossClient(target, timeout=30) as client:
            losses = await client.list_losses()
            result = await client.evaluate("mse", X, request_id="ab")
            async with client.stream() as stream:
                streamed = [await stream.evaluate("mse", X, request_id=r) for r in ("a", "bb")]
        return losses, result, streamed

    losses, result, streamed = asyncio.run(main())
    assert losses == [] and result.loss == 2.0
    assert [s.request_id for s in streamed] == ["a", "bb"]
    assert flaky.calls == {"ListLosses": 3, "Evaluate": 3, "EvaluateStream": 3}
    assert flaky.seen == [["a"], ["a"], ["a", "bb"]]


def test_async_stream_failing_after_a_response_raises(flaky_server) -> None:
    flaky = Flaky(failures=1, after_response=True)
    target = flaky_server(flaky)

    async def main() -> str:
        async with AsyncLossClient(target, timeout=30) as client:
            async with client.stream() as stream:
                first = await stream.evaluate("mse", X, request_id="a")
                await asyncio.sleep(0.5)  # the status arrives (a write racing it fails INTERNAL)
                with pytest.raises(Unavailable):
                    await stream.evaluate("mse", X, request_id="b")
                return first.request_id

    assert asyncio.run(main()) == "a"
    assert flaky.calls == {"EvaluateStream": 1}
