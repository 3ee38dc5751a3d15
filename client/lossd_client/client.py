"""Synchronous lossd client over gRPC."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import grpc

from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client._proto.lossd.v1 import lossd_pb2_grpc as pb_grpc
from lossd_client.channel import (
    DEFAULT_MAX_MESSAGE_BYTES,
    EVALUATE_METHOD,
    Attempts,
    channel_options,
    resolve_target,
)
from lossd_client.codec import build_request, encode_request
from lossd_client.errors import LossdError, from_error_status, from_rpc_error
from lossd_client.result import EvaluateResult, parse_response

_END = object()


class LossClient:
    """Evaluate losses on a lossd server.

    >>> with LossClient("127.0.0.1:50051") as client:
    ...     result = client.evaluate("mse", {"input": x, "target": y})
    ...     result.loss, result.grads["input"]

    ``target`` is ``"host:port"``, a resolver URI (``dns:///name:port``) or a list of
    addresses (spread round-robin). ``timeout`` is the default deadline in seconds.
    ``credentials`` makes a secure channel; ``token`` sends ``authorization: Bearer``.
    """

    def __init__(self, target: str | Sequence[str], *, timeout: float | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, retries: int = 5,
                 credentials: grpc.ChannelCredentials | None = None, token: str | None = None,
                 options: Sequence[tuple[str, Any]] = ()) -> None:
        address = resolve_target(target)
        opts = channel_options(max_message_bytes, options)
        if credentials is not None:
            self._channel = grpc.secure_channel(address, credentials, options=opts)
        else:
            self._channel = grpc.insecure_channel(address, options=opts)
        self._stub = pb_grpc.LossServiceStub(self._channel)
        # serialized requests in, parsed responses out (tensors zero-copy when large)
        self._evaluate = self._channel.unary_unary(EVALUATE_METHOD, response_deserializer=parse_response)
        self._retries = retries
        self._timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def evaluate(self, loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None,
                 *, grads: Iterable[str] | None = None, timeout: float | None = None,
                 request_id: str = "") -> EvaluateResult:
        """Loss and gradients. ``grads=None``: every differentiable input; ``[]``: loss only.
        UNAVAILABLE is retried with backoff (``retries`` attempts in all, within the timeout)."""
        request = encode_request(loss, inputs, params, grads, request_id)
        return EvaluateResult.from_parsed(self._call(self._evaluate, request, timeout))

    def list_losses(self, *, timeout: float | None = None) -> list[pb.LossSchema]:
        """The schema of every loss the server offers (retried like ``evaluate``)."""
        return list(self._call(self._stub.ListLosses, pb.ListLossesRequest(), timeout).losses)

    def _call(self, method: Callable[..., Any], request: Any, timeout: float | None) -> Any:
        """``method(request)`` with the SDK's retries of UNAVAILABLE (see lossd_client.channel)."""
        attempts = Attempts(self._retries, self._deadline(timeout))
        while True:
            try:
                return method(request, timeout=attempts.timeout(), metadata=self._metadata)
            except grpc.RpcError as exc:
                time.sleep(attempts.pause(exc))

    def stream(self, *, timeout: float | None = None) -> EvaluateStream:
        """A bidirectional EvaluateStream; use as a context manager."""
        return EvaluateStream(self._stub, Attempts(self._retries, self._deadline(timeout)), self._metadata)

    def _deadline(self, timeout: float | None) -> float | None:
        return self._timeout if timeout is None else timeout

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> LossClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EvaluateStream:
    """One EvaluateStream call: requests go out in order, one response each.

    ``evaluate`` sends one request and returns its result (or raises its typed error;
    the stream goes on). ``evaluate_many`` pipelines many requests and yields results
    or errors (as values, not raised) in order. A call that fails with UNAVAILABLE before
    its first response is opened again and the requests not answered are sent again
    (``retries`` attempts in all, within the timeout); a later failure is raised.
    """

    def __init__(self, stub: pb_grpc.LossServiceStub, attempts: Attempts, metadata: tuple) -> None:
        self._stub = stub
        self._attempts = attempts
        self._metadata = metadata
        self._pending: deque[pb.EvaluateRequest] = deque()  # sent, not answered yet
        self._lock = threading.Lock()
        self._requests: queue.Queue = queue.Queue()
        self._open()

    def _open(self) -> None:
        """Start a call and send it the requests not answered yet (ending the request
        iterator of the failed call this replaces)."""
        self._requests.put(_END)
        self._requests = queue.Queue()
        for request in self._pending:
            self._requests.put(request)
        self._answered = False
        self._responses: Iterator[pb.EvaluateStreamResponse] = self._stub.EvaluateStream(
            iter(self._requests.get, _END), timeout=self._attempts.timeout(), metadata=self._metadata)

    def _send(self, request: pb.EvaluateRequest) -> None:
        self._pending.append(request)
        self._requests.put(request)

    def evaluate(self, loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None,
                 *, grads: Iterable[str] | None = None, request_id: str = "") -> EvaluateResult:
        with self._lock:
            self._send(build_request(loss, inputs, params, grads, request_id))
            outcome = self._next()
        if isinstance(outcome, LossdError):
            raise outcome
        return outcome

    def evaluate_many(self, requests: Iterable[pb.EvaluateRequest]) -> Iterator[EvaluateResult | LossdError]:
        with self._lock:
            count = 0
            for request in requests:
                self._send(request)
                count += 1
            for _ in range(count):
                yield self._next()

    def _next(self) -> EvaluateResult | LossdError:
        while True:
            try:
                message = next(self._responses)
                break
            except grpc.RpcError as exc:
                if self._answered:
                    raise from_rpc_error(exc) from None
                time.sleep(self._attempts.pause(exc))
                self._open()
        self._answered = True
        self._pending.popleft()
        if message.WhichOneof("result") == "error":
            return from_error_status(message.error, message.request_id)
        return EvaluateResult.from_proto(message.response)

    def close(self) -> None:
        self._requests.put(_END)
        try:
            for _ in self._responses:  # drain until the server closes its side
                pass
        except grpc.RpcError:  # the call already failed; its error was raised to the caller
            pass

    def __enter__(self) -> EvaluateStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
