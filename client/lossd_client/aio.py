"""Asyncio lossd client over gRPC (same methods as LossClient, awaitable)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Iterable, Mapping, Sequence

import grpc
import grpc.aio

from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client._proto.lossd.v1 import lossd_pb2_grpc as pb_grpc
from lossd_client.channel import (
    DEFAULT_MAX_MESSAGE_BYTES,
    EVALUATE_METHOD,
    channel_options,
    remaining,
    resolve_target,
    retry_delays,
    should_retry,
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
        opts = channel_options(max_message_bytes, retries, options)
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
        seconds = self._deadline(timeout)
        deadline = None if seconds is None else time.monotonic() + seconds
        delays = retry_delays(self._retries)
        while True:
            try:
                parsed = await self._evaluate(request, timeout=remaining(deadline),
                                              metadata=self._metadata)
                break
            except grpc.RpcError as exc:
                delay = next(delays, None)
                if delay is None or not should_retry(exc, delay, deadline):
                    raise from_rpc_error(exc) from None
                await asyncio.sleep(delay)
        return EvaluateResult.from_parsed(parsed)

    async def list_losses(self, *, timeout: float | None = None) -> list[pb.LossSchema]:
        try:
            response = await self._stub.ListLosses(pb.ListLossesRequest(),
                                                   timeout=self._deadline(timeout),
                                                   metadata=self._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        return list(response.losses)

    def stream(self, *, timeout: float | None = None) -> AsyncEvaluateStream:
        """A bidirectional EvaluateStream; use with ``async with``."""
        return AsyncEvaluateStream(self._stub, self._deadline(timeout), self._metadata)

    def _deadline(self, timeout: float | None) -> float | None:
        return self._timeout if timeout is None else timeout

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncLossClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncEvaluateStream:
    """One EvaluateStream call; ``await evaluate(...)`` sends one request, returns its result."""

    def __init__(self, stub: pb_grpc.LossServiceStub, timeout: float | None, metadata: tuple) -> None:
        self._call = stub.EvaluateStream(timeout=timeout, metadata=metadata)

    async def evaluate(self, loss: str, inputs: Mapping[str, Any],
                       params: Mapping[str, Any] | None = None, *, grads: Iterable[str] | None = None,
                       request_id: str = "") -> EvaluateResult:
        try:
            await self._call.write(build_request(loss, inputs, params, grads, request_id))
            message = await self._call.read()
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        if message is grpc.aio.EOF:
            raise from_rpc_error(self._call) if hasattr(self._call, "code") else RuntimeError("stream closed")
        if message.WhichOneof("result") == "error":
            raise from_error_status(message.error, message.request_id)
        return EvaluateResult.from_proto(message.response)

    async def close(self) -> None:
        await self._call.done_writing()

    async def __aenter__(self) -> AsyncEvaluateStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
