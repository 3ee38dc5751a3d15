"""``inference.GRPCInferenceService`` (KServe V2 / Open Inference Protocol) over the DataPlane.

Served on lossd's gRPC port next to ``lossd.v1.LossService``; the method paths
(``/inference.GRPCInferenceService/ModelInfer``...) and messages are the standard
ones, the Python classes come from a private descriptor pool (``messages.py``).
Tensors arrive in ``raw_input_contents`` (decoded with ``np.frombuffer``) or in typed
``contents``; outputs always go back in ``raw_output_contents``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, AsyncIterator

import grpc
import numpy as np

from lossd.core.dataplane import DataPlane, Timings
from lossd.core.observer import CallRecord
from lossd.grpc.servicer import Malformed, Oversized, checked_deserializer, observed_call, oversized_error
from lossd.losses.registry import canonical_id, resolve
from lossd.v2 import messages as m
from lossd.v2.convert import (
    coerce_params,
    datatype_dtype,
    datatype_of,
    model_metadata,
    output_arrays,
    select_grads,
    server_metadata,
    spec_or_none,
)
from lossd_client.codec import MAX_RANK, check_extent
from lossd_client.errors import (
    Internal,
    InvalidArgument,
    LossdError,
    NotFound,
)

log = logging.getLogger("lossd.v2")

_CONTENTS = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT32": "int_contents",
             "INT64": "int64_contents"}


def _param_value(p: Any) -> Any:
    which = p.WhichOneof("parameter_choice")
    return None if which is None else getattr(p, which)


def decode_infer(request: Any) -> tuple[dict[str, np.ndarray], dict[str, Any], list[str] | None, list[str]]:
    """inputs, params, grads and requested output names of a ModelInferRequest."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument.field("raw_input_contents", f"{len(raw)} raw contents for "
                                                          f"{len(request.inputs)} inputs")
    inputs: dict[str, np.ndarray] = {}
    for index, tensor in enumerate(request.inputs):
        field = f"inputs.{tensor.name}"
        if tensor.name in inputs:
            raise InvalidArgument.field(field, "input given more than once")
        dtype = datatype_dtype(tensor.datatype, f"{field}.datatype")
        shape = tuple(int(d) for d in tensor.shape)
        if any(d < 0 for d in shape):
            raise InvalidArgument.field(f"{field}.shape", f"shape {list(shape)} has a negative dimension")
        if len(shape) > MAX_RANK:
            raise InvalidArgument.field(f"{field}.shape", f"rank {len(shape)} exceeds the maximum {MAX_RANK}")
        check_extent(shape, dtype.itemsize, f"{field}.shape")  # np.prod below would wrap silently
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if raw:
            data = raw[index]
            if len(data) != count * dtype.itemsize:
                raise InvalidArgument.field(field, f"{len(data)} bytes do not hold shape {list(shape)} "
                                                   f"of {tensor.datatype} ({count * dtype.itemsize} bytes)")
            array = np.frombuffer(data, dtype=dtype).reshape(shape)
        else:
            values = getattr(tensor.contents, _CONTENTS[tensor.datatype])
            if len(values) != count:
                raise InvalidArgument.field(field, f"{len(values)} values do not fill shape {list(shape)}")
            array = np.asarray(values, dtype=dtype).reshape(shape)
        inputs[tensor.name] = array
    spec = spec_or_none(request.model_name)
    params = coerce_params(spec, {k: _param_value(v) for k, v in request.parameters.items()})
    requested = [o.name for o in request.outputs]
    return inputs, params, select_grads(spec, requested), requested


def encode_infer(result: Any, request: Any, requested: list[str]) -> Any:
    response = m.ModelInferResponse(model_name=result.loss_id, model_version="1", id=request.id)
    for name, array in output_arrays(result, requested):
        array = np.asarray(array, order="C")
        response.outputs.add(name=name, datatype=datatype_of(array), shape=array.shape)
        response.raw_output_contents.append(array.tobytes())
    return response


def _metadata_message(data: dict[str, Any]) -> Any:
    def tensor(t: dict[str, Any]) -> Any:
        out = m.ModelMetadataResponse.TensorMetadata(name=t["name"], datatype=t["datatype"], shape=t["shape"])
        for key, value in t["parameters"].items():
            _set_param(out.parameters[key], value)
        return out

    message = m.ModelMetadataResponse(name=data["name"], versions=data["versions"],
                                      platform=data["platform"],
                                      inputs=[tensor(t) for t in data["inputs"]],
                                      outputs=[tensor(t) for t in data["outputs"]])
    for key, value in data["parameters"].items():
        _set_param(message.parameters[key], value)
    return message


def _set_param(p: Any, value: Any) -> None:
    if isinstance(value, bool):
        p.bool_param = value
    elif isinstance(value, int):
        p.int64_param = value
    elif isinstance(value, float):
        p.double_param = value
    else:
        p.string_param = str(value)


class InferenceServicer:
    """The V2 handlers over one DataPlane (the same admission and workers as lossd.v1)."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.limit = plane.settings.max_message_bytes

    # ---- health and metadata ----------------------------------------------------------
    async def ServerLive(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return m.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return m.ServerReadyResponse(ready=self.plane.ready and not self.plane.draining)

    async def ModelReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._check_model(request.name, request.version, context)
        return m.ModelReadyResponse(ready=self.plane.ready and not self.plane.draining)

    async def ServerMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        data = server_metadata()
        return m.ServerMetadataResponse(name=data["name"], version=data["version"],
                                        extensions=data["extensions"])

    async def ModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._check_model(request.name, request.version, context)
        start = time.perf_counter()
        self.plane.observer.call_started("grpc")
        response = _metadata_message(model_metadata(request.name))
        self.plane.observer.call_finished(CallRecord(
            transport="grpc", method="ModelMetadata", loss=canonical_id(request.name) or "unknown",
            code="OK", duration=time.perf_counter() - start, request_bytes=request.ByteSize(),
            response_bytes=response.ByteSize()))
        return response

    async def _check_model(self, name: str, version: str, context: grpc.aio.ServicerContext) -> None:
        try:
            resolve(name)
            if version not in ("", "1"):
                raise NotFound(f"model {name!r} has no version {version!r} (only '1')")
        except LossdError as error:
            await context.abort(error.code, error.message)

    # ---- inference ----------------------------------------------------------------------
    async def _infer(self, request: Any, context: grpc.aio.ServicerContext | None, timings: Timings) -> Any:
        if isinstance(request, Malformed):
            raise InvalidArgument.field("request", f"{request.size} bytes are not a valid "
                                                   f"inference.ModelInferRequest ({request.reason})")
        if isinstance(request, Oversized):
            raise oversized_error(request.size, self.limit)
        request_id = self.plane.new_request_id(request.id)
        timings.request_id = request_id
        timings.loss_id = canonical_id(request.model_name) or "unknown"
        if request.model_version not in ("", "1"):
            raise NotFound(f"model {request.model_name!r} has no version "
                           f"{request.model_version!r} (only '1')")
        resolve(request.model_name)  # an unknown model is NOT_FOUND before its inputs are read
        start = time.perf_counter()
        try:
            inputs, params, grads, requested = decode_infer(request)
        finally:
            timings.phases["decode"] = time.perf_counter() - start
        deadline = None
        if context is not None and context.time_remaining() is not None:
            deadline = time.monotonic() + context.time_remaining()
        result = await self.plane.evaluate(request.model_name, inputs, params, grads,
                                           request_id=request_id, nbytes=request.ByteSize(),
                                           timings=timings, deadline=deadline)
        start = time.perf_counter()
        response = encode_infer(result, request, requested)
        timings.phases["encode"] = time.perf_counter() - start
        return response

    async def _observed(self, request: Any, context: grpc.aio.ServicerContext, method: str
                        ) -> tuple[Any, LossdError | None]:
        """One inference reported to the observer; never raises (except cancellation)."""
        return await observed_call(
            self.plane.observer, request, context, method,
            lambda timings: self._infer(request, context, timings),
            lambda exc, timings: (exc if isinstance(exc, LossdError)
                                  else self._internal(exc, timings.request_id)))

    @staticmethod
    def _internal(exc: Exception, request_id: str) -> LossdError:
        log.error("unexpected error", exc_info=exc, extra={"request_id": request_id or "-"})
        return Internal(f"internal error (request id {request_id or '-'}); the server log has details")

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        response, error = await self._observed(request, context, "ModelInfer")
        if error is not None:
            await context.abort(error.code, error.message)
        return response

    async def ModelStreamInfer(self, requests: AsyncIterator[Any],
                               context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for request in requests:
            response, error = await self._observed(request, context, "ModelStreamInfer")
            if error is None:
                yield m.ModelStreamInferResponse(infer_response=response)
            else:  # an error response; the stream goes on
                yield m.ModelStreamInferResponse(
                    error_message=f"{error.code.name}: {error.message}",
                    infer_response=m.ModelInferResponse(
                        model_name=getattr(request, "model_name", ""), id=getattr(request, "id", "")))


def inference_handler(plane: DataPlane) -> grpc.GenericRpcHandler:
    """The generic handler of ``inference.GRPCInferenceService`` (add to the gRPC server)."""
    s = InferenceServicer(plane)
    unary = grpc.unary_unary_rpc_method_handler

    def plain(method: Any, req: Any, resp: Any) -> grpc.RpcMethodHandler:
        return unary(method, request_deserializer=req.FromString, response_serializer=resp.SerializeToString)

    infer_in = checked_deserializer(s.limit, m.ModelInferRequest)
    handlers = {
        "ServerLive": plain(s.ServerLive, m.ServerLiveRequest, m.ServerLiveResponse),
        "ServerReady": plain(s.ServerReady, m.ServerReadyRequest, m.ServerReadyResponse),
        "ModelReady": plain(s.ModelReady, m.ModelReadyRequest, m.ModelReadyResponse),
        "ServerMetadata": plain(s.ServerMetadata, m.ServerMetadataRequest, m.ServerMetadataResponse),
        "ModelMetadata": plain(s.ModelMetadata, m.ModelMetadataRequest, m.ModelMetadataResponse),
        "ModelInfer": unary(s.ModelInfer, request_deserializer=infer_in,
                            response_serializer=m.ModelInferResponse.SerializeToString),
        "ModelStreamInfer": grpc.stream_stream_rpc_method_handler(
            s.ModelStreamInfer, request_deserializer=infer_in,
            response_serializer=m.ModelStreamInferResponse.SerializeToString),
    }
    return grpc.method_handlers_generic_handler(m.SERVICE, handlers)
