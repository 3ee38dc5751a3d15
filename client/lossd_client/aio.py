"""Asyncio lossd client over gRPC (same methods as LossClient, awaitable)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterable, Mapping, Sequence

import grpc
import grpc.aio

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
from lossd_client.errors import from_error_status, from_rpc_error
from lossd_client.result import EvaluateResult, parse_response


class AsyncLossClient:
    """Asyncio counterpart of :class:`lossd_client.LossClient`."""

    def __init__(self, target: str | Sequence[str], *, timeout: float | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, retries: int = 5,
                 credentials: grpc.ChannelCredentials | None = None, token: str | None = None,
                 options: Sequence[tuple[str, Any]] = ()) -> None:
        address = resolve_target(target)
        opts = channel_options(max_message_bytes, options)
        if credentials is not None:
            self._channel = grpc.aio.secure_channel(address, credentials, options=opts)
        else:
            self._channel = grpc.aio.insecure_channel(address, options=opts)
        self._stub = pb_grpc.LossServiceStub(self._channel)
        # serialized requests in, parsed responses out (tensors zero-copy when large)
        self._evaluate = self._channel.unary_unary(EVALUATE_METHOD, response_deserializer=parse_response)
        self._retries = retries
        self._timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()

    async def evaluate(self, loss: str, inputs: Mapping[str, Any],
                       params: Mapping[str, Any] | None = None, *, grads: Iterable[str] | None = None,
                       timeout: float | None = None, request_id: str = "") -> EvaluateResult:
        """Loss and gradients. ``grads=None``: every differentiable input; ``[]``: loss only.
        UNAVAILABLE is retried with backoff (``retries`` attempts in all, within the timeout)."""
        request = encode_request(loss, inputs, params, grads, request_id)
        return EvaluateResult.from_parsed(await self._call(self._evaluate, request, timeout))

    async def list_losses(self, *, timeout: float | None = None) -> list[pb.LossSchema]:
        """The schema of every loss the server offers (retried like ``evaluate``)."""
        response = await self._call(self._stub.ListLosses, pb.ListLossesRequest(), timeout)
        return list(response.losses)

    async def _call(self, method: Callable[..., Any], request: Any, timeout: float | None) -> Any:
        """``await method(request)`` with the SDK's retries of UNAVAILABLE (see lossd_client.channel)."""
        attempts = Attempts(self._retries, self._deadline(timeout))
        while True:
            try:
                return await method(request, timeout=attempts.timeout(), metadata=self._metadata)
            except grpc.RpcError as exc:
                await asyncio.sleep(attempts.pause(exc))

    def stream(self, *, timeout: float | None = None) -> AsyncEvaluateStream:
        """A bidirectional EvaluateStream; use with ``async with``."""
        return AsyncEvaluateStream(self._stub, Attempts(self._retries, self._deadline(timeout)),
                                   self._metadata)

    def _deadline(self, timeout: float | None) -> float | None:
        return self._timeout if timeout is None else timeout

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncLossClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncEvaluateStream:
    """One EvaluateStream call; ``await evaluate(...)`` sends one request, returns its result.
    A call that fails with UNAVAILABLE before its first response is opened again and the
    request sent again (``retries`` attempts in all, within the timeout); a later failure
    is raised."""

    def __init__(self, stub: pb_grpc.LossServiceStub, attempts: Attempts, metadata: tuple) -> None:
        self._stub = stub
        self._attempts = attempts
        self._metadata = metadata
        self._call = self._open()
        self._answered = False

    def _open(self) -> Any:
        return self._stub.EvaluateStream(timeout=self._attempts.timeout(), metadata=self._metadata)

    async def evaluate(self, loss: str, inputs: Mapping[str, Any],
                       params: Mapping[str, Any] | None = None, *, grads: Iterable[str] | None = None,
                       request_id: str = "") -> EvaluateResult:
        request = build_request(loss, inputs, params, grads, request_id)
        while True:
            try:
                if not self._call.done():  # else the read raises the call's status
                    await self._call.write(request)
                message = await self._call.read()
                break
            except grpc.RpcError as exc:
                if self._answered:
                    raise from_rpc_error(exc) from None
                await asyncio.sleep(self._attempts.pause(exc))
                self._call.cancel()
                self._call = self._open()
        if message is grpc.aio.EOF:
            raise from_rpc_error(self._call) if hasattr(self._call, "code") else RuntimeError("stream closed")
        self._answered = True
        if message.WhichOneof("result") == "error":
            raise from_error_status(message.error, message.request_id)
        return EvaluateResult.from_proto(message.response)

    async def close(self) -> None:
        await self._call.done_writing()

    async def __aenter__(self) -> AsyncEvaluateStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
