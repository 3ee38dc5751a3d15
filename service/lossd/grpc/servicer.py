"""The LossService servicer: each handler converts, awaits the data plane, converts back.

Errors are mapped once, here: a LossdError becomes its status code with the message and
``google.rpc.BadRequest`` field violations in the ``grpc-status-details-bin`` trailer;
any other exception is logged with the request id and returned as INTERNAL without a
traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable

import grpc
from google.protobuf.message import DecodeError

from lossd import __version__
from lossd.core.dataplane import DataPlane, Timings
from lossd.core.observer import CallRecord
from lossd.grpc.convert import Received, decode_request, encode_response, list_losses_response, parse_request
from lossd.losses.registry import canonical_id
from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client.errors import (
    STATUS_DETAILS_KEY,
    Cancelled,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    LossdError,
    ResourceExhausted,
    encode_status_details,
    to_error_status,
)

log = logging.getLogger("lossd.grpc")


class Oversized:
    """Stand-in for a request whose serialized size is over the limit (not parsed)."""

    def __init__(self, size: int) -> None:
        self.size = size


class Malformed(Oversized):
    """Stand-in for request bytes that are not a valid EvaluateRequest (garbage, truncated,
    invalid UTF-8 in a string field): INVALID_ARGUMENT, not the UNKNOWN grpc would send."""

    def __init__(self, size: int, reason: str) -> None:
        super().__init__(size)
        self.reason = reason


def checked_deserializer(limit: int, message: Any = pb.EvaluateRequest):
    """A deserializer of ``message`` that refuses to parse requests over ``limit`` bytes
    (Oversized) and turns undecodable bytes into Malformed instead of raising."""
    def deserialize(raw: bytes) -> Any:
        if len(raw) > limit:
            return Oversized(len(raw))
        try:
            return message.FromString(raw)
        except DecodeError as exc:
            return Malformed(len(raw), str(exc))
    return deserialize


def request_deserializer(limit: int):
    """The EvaluateRequest deserializer: Oversized over ``limit`` bytes, Malformed for bytes
    that do not parse, else a :class:`Received` (tensors zero-copy when large)."""
    def deserialize(raw: bytes) -> Any:
        if len(raw) > limit:
            return Oversized(len(raw))
        try:
            return parse_request(raw)
        except DecodeError as exc:
            return Malformed(len(raw), str(exc))
    return deserialize


def oversized_error(size: int, limit: int) -> ResourceExhausted:
    return ResourceExhausted(f"request of {size} bytes exceeds the limit of {limit} bytes "
                             f"(raise it with --max-message-bytes / LOSSD_MAX_MESSAGE_BYTES)")


async def observed_call(observer: Any, request: Any, context: grpc.aio.ServicerContext | None,
                        method: str, work: Callable[[Timings], Awaitable[Any]],
                        as_error: Callable[[Exception, Timings], LossdError]
                        ) -> tuple[Any, LossdError | None]:
    """Run ``work`` for one gRPC call and report it to ``observer`` as one CallRecord.

    Returns ``(response, None)`` or ``(None, error)``; never raises except on cancellation,
    which is recorded as DEADLINE_EXCEEDED or CANCELLED and re-raised. Shared by the native
    and the KServe V2 services.
    """
    observer.call_started("grpc")
    timings = Timings()
    start = time.perf_counter()
    response: Any = None
    error: LossdError | None = None
    try:
        response = await work(timings)
    except asyncio.CancelledError:  # the client went away, or its deadline passed
        remaining = context.time_remaining() if context is not None else None
        error = (DeadlineExceeded("the call's deadline passed") if remaining is not None
                 and remaining <= 0 else Cancelled("the client cancelled the call"))
        raise
    except Exception as exc:  # noqa: BLE001 - mapped once, here
        error = as_error(exc, timings)
    finally:
        size = request.size if isinstance(request, (Oversized, Received)) else request.ByteSize()
        observer.call_finished(CallRecord(
            transport="grpc", method=method, loss=timings.loss_id or "unknown",
            code="OK" if error is None else error.code.name,
            duration=time.perf_counter() - start, phases=dict(timings.phases),
            request_bytes=size, response_bytes=(0 if response is None else timings.response_bytes
                                                or response.ByteSize()),
            request_id=timings.request_id, dtype=timings.dtype, elements=timings.elements,
            message="" if error is None else error.message))
    return response, error


class LossServicer:
    """Handlers of lossd.v1.LossService over one DataPlane."""

    def __init__(self, plane: DataPlane, observer: Any = None) -> None:
        self.plane = plane
        self.observer = observer
        self.limit = plane.settings.max_message_bytes
        self._schemas: pb.ListLossesResponse | None = None  # built on first use (after warm-up)

    async def _evaluate(self, request: Any, context: grpc.aio.ServicerContext | None,
                        timings: Timings, stream: bool = False) -> bytes:
        """One evaluation: its serialized EvaluateResponse (EvaluateStreamResponse when
        ``stream``); raises LossdError (or any exception, mapped by the caller)."""
        request_id = self.plane.new_request_id(getattr(request, "request_id", ""))
        timings.request_id = request_id
        if isinstance(request, Malformed):
            raise InvalidArgument.field("request", f"{request.size} bytes are not a valid "
                                                   f"lossd.v1.EvaluateRequest message ({request.reason})")
        if isinstance(request, Oversized):
            raise oversized_error(request.size, self.limit)
        timings.loss_id = canonical_id(request.loss) or "unknown"  # also for calls failing in decode
        start = time.perf_counter()
        try:
            inputs, params, grads = decode_request(request.message, request.take_views())
        finally:
            timings.phases["decode"] = time.perf_counter() - start
        deadline = None
        remaining = context.time_remaining() if context is not None else None
        if remaining is not None:
            deadline = time.monotonic() + remaining
        result = await self.plane.evaluate(request.loss, inputs, params, grads,
                                           request_id=request_id, nbytes=request.size,
                                           timings=timings, deadline=deadline)
        del inputs  # the received bytes can go before the response is written
        start = time.perf_counter()
        response, timings.response_bytes = encode_response(result, request_id, stream)
        timings.phases["encode"] = time.perf_counter() - start
        return response

    async def _observed(self, request: Any, context: grpc.aio.ServicerContext, method: str,
                        stream: bool = False) -> tuple[bytes | None, LossdError | None]:
        """Run one evaluation and report it to the observer; never raises."""
        return await observed_call(self.plane.observer, request, context, method,
                                   lambda timings: self._evaluate(request, context, timings, stream),
                                   lambda exc, timings: self._as_error(exc, request))

    async def Evaluate(self, request: Any, context: grpc.aio.ServicerContext) -> bytes:
        """A serialized EvaluateResponse (the method's response serializer passes it on)."""
        response, error = await self._observed(request, context, "Evaluate")
        if error is not None:
            await context.abort(error.code, error.message,
                                trailing_metadata=((STATUS_DETAILS_KEY, encode_status_details(error)),))
        assert response is not None
        return response

    async def EvaluateStream(self, requests: AsyncIterator[Any],
                             context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        """Serialized EvaluateStreamResponses, one per request."""
        async for request in requests:
            response, error = await self._observed(request, context, "EvaluateStream", stream=True)
            if error is None:
                assert response is not None
                yield response
            else:  # an error response; the stream goes on
                yield pb.EvaluateStreamResponse(error=to_error_status(error),
                                                request_id=getattr(request, "request_id", "")
                                                ).SerializeToString()

    async def ListLosses(self, request: pb.ListLossesRequest,
                         context: grpc.aio.ServicerContext) -> pb.ListLossesResponse:
        observer = self.plane.observer  # loss "": not about one loss
        start = time.perf_counter()
        observer.call_started("grpc")
        if self._schemas is None:
            self._schemas = list_losses_response(__version__)
        observer.call_finished(CallRecord(transport="grpc", method="ListLosses", loss="", code="OK",
                                          duration=time.perf_counter() - start,
                                          request_bytes=request.ByteSize(),
                                          response_bytes=self._schemas.ByteSize()))
        return self._schemas

    @staticmethod
    def _as_error(exc: Exception, request: Any) -> LossdError:
        if isinstance(exc, LossdError):
            return exc
        request_id = getattr(request, "request_id", "") or "-"
        log.error("unexpected error", exc_info=exc, extra={"request_id": request_id})
        return Internal(f"internal error (request id {request_id}); the server log has details")


def generic_handler(servicer: LossServicer) -> grpc.GenericRpcHandler:
    """Method handlers with the size-checking deserializer for both evaluation RPCs."""
    deserialize = request_deserializer(servicer.limit)
    handlers = {  # the evaluation handlers return serialized responses: no serializer
        "Evaluate": grpc.unary_unary_rpc_method_handler(
            servicer.Evaluate, request_deserializer=deserialize),
        "EvaluateStream": grpc.stream_stream_rpc_method_handler(
            servicer.EvaluateStream, request_deserializer=deserialize),
        "ListLosses": grpc.unary_unary_rpc_method_handler(
            servicer.ListLosses, request_deserializer=pb.ListLossesRequest.FromString,
            response_serializer=pb.ListLossesResponse.SerializeToString),
    }
    return grpc.method_handlers_generic_handler("lossd.v1.LossService", handlers)
