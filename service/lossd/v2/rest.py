"""Open Inference Protocol (KServe V2) REST routes on lossd's HTTP port.

``/v2/health/live``, ``/v2/health/ready``, ``/v2``, ``/v2/models/{loss}[/versions/1]``,
``.../ready`` and ``POST .../infer`` with JSON ``data`` or the binary tensor extension:
an ``Inference-Header-Content-Length`` header splits the body into the JSON header and
the concatenated raw tensors (each input's ``parameters.binary_data_size``); outputs
asked for with ``binary_data`` (per output) or ``binary_data_output`` (request) come
back the same way. Raw bytes go straight to ``np.frombuffer``; only JSON ``data`` is
ever a list. Errors are ``{"error": message}`` with the status lossd's REST API uses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from lossd.core.dataplane import DataPlane, Timings
from lossd.core.observer import CallRecord
from lossd.losses.registry import canonical_id, resolve
from lossd.rest.errors import status_of
from lossd.rest.routes import read_body
from lossd.v2.convert import (
    coerce_params,
    datatype_dtype,
    datatype_of,
    model_metadata,
    output_arrays,
    select_grads,
    server_metadata,
)
from lossd_client.codec import MAX_RANK, check_extent
from lossd_client.errors import Cancelled, Internal, InvalidArgument, LossdError, NotFound

log = logging.getLogger("lossd.v2")
HEADER_LENGTH = "Inference-Header-Content-Length"
JSON = "application/json"


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type=JSON, headers=headers)


def _error(error: LossdError, headers: dict[str, str] | None = None) -> Response:
    return _json({"error": error.message}, status_of(error), headers)


def _check_version(request: Request) -> str:
    name = request.path_params["loss"]
    resolve(name)  # NotFound
    version = request.path_params.get("version", "")
    if version not in ("", "1"):
        raise NotFound(f"model {name!r} has no version {version!r} (only '1')")
    return name


def _decode_inputs(doc: dict[str, Any], binary: memoryview) -> dict[str, np.ndarray]:
    items = doc.get("inputs")
    if not isinstance(items, list) or not items:
        raise InvalidArgument.field("inputs", "a non-empty list of input tensors is required")
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidArgument.field("inputs", "each input needs a name, datatype, shape and data")
        name = item["name"]
        field = f"inputs.{name}"
        if name in inputs:
            raise InvalidArgument.field(field, "input given more than once")
        dtype = datatype_dtype(str(item.get("datatype")), f"{field}.datatype")
        shape = item.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise InvalidArgument.field(f"{field}.shape", "shape must be a list of non-negative integers")
        if len(shape) > MAX_RANK:
            raise InvalidArgument.field(f"{field}.shape", f"rank {len(shape)} exceeds the maximum {MAX_RANK}")
        check_extent(tuple(shape), dtype.itemsize, f"{field}.shape")  # np.prod would overflow
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        size = (item.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size != count * dtype.itemsize:
                raise InvalidArgument.field(field, f"binary_data_size {size!r} does not hold shape {shape} "
                                                   f"of {item['datatype']} ({count * dtype.itemsize} bytes)")
            if offset + size > len(binary):
                raise InvalidArgument.field(field, "the binary data is shorter than binary_data_size says")
            array = np.frombuffer(binary[offset:offset + size], dtype=dtype).reshape(shape)
            offset += size
        else:
            if "data" not in item:
                raise InvalidArgument.field(field, "no data and no binary_data_size given")
            try:
                array = np.asarray(item["data"], dtype=dtype)
            except (TypeError, ValueError, OverflowError):
                raise InvalidArgument.field(f"{field}.data", f"data is not a list of {item['datatype']} "
                                                             f"numbers") from None
            if array.size != count:
                raise InvalidArgument.field(f"{field}.data", f"{array.size} values do not fill shape {shape}")
            array = array.reshape(shape)
        inputs[name] = array
    if offset != len(binary):
        raise InvalidArgument.field("inputs", f"{len(binary) - offset} bytes of binary data are not "
                                              f"claimed by any input's binary_data_size")
    return inputs


class V2Api:
    """The V2 REST endpoints over one DataPlane."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.limit = plane.settings.max_message_bytes

    def routes(self) -> list[BaseRoute]:
        model = "/v2/models/{loss}"
        versioned = "/v2/models/{loss}/versions/{version}"
        return [
            Route("/v2/health/live", self.live, methods=["GET"]),
            Route("/v2/health/ready", self.ready, methods=["GET"]),
            Route("/v2", self.metadata, methods=["GET"]),
            Route(model, self.model_metadata, methods=["GET"]),
            Route(versioned, self.model_metadata, methods=["GET"]),
            Route(model + "/ready", self.model_ready, methods=["GET"]),
            Route(versioned + "/ready", self.model_ready, methods=["GET"]),
            Route(model + "/infer", self.infer, methods=["POST"]),
            Route(versioned + "/infer", self.infer, methods=["POST"]),
        ]

    def _is_ready(self) -> bool:
        return self.plane.ready and not self.plane.draining

    async def live(self, request: Request) -> Response:
        return _json({"live": True})

    async def ready(self, request: Request) -> Response:
        ready = self._is_ready()
        return _json({"ready": ready}, 200 if ready else 503)

    async def metadata(self, request: Request) -> Response:
        return _json(server_metadata())

    async def model_metadata(self, request: Request) -> Response:
        try:
            name = _check_version(request)
        except LossdError as error:
            return _error(error)
        start = time.perf_counter()
        self.plane.observer.call_started("rest")
        data = model_metadata(name)
        body = orjson.dumps(data)
        self.plane.observer.call_finished(CallRecord(
            transport="rest", method="ModelMetadata", loss=canonical_id(name) or "unknown", code="OK",
            duration=time.perf_counter() - start, response_bytes=len(body)))
        return Response(body, media_type=JSON)

    async def model_ready(self, request: Request) -> Response:
        try:
            name = _check_version(request)
        except LossdError as error:
            return _error(error)
        ready = self._is_ready()
        return _json({"name": canonical_id(name), "ready": ready}, 200 if ready else 503)

    async def infer(self, request: Request) -> Response:
        """POST .../infer, reported to the observer; never raises."""
        observer = self.plane.observer
        observer.call_started("rest")
        timings = Timings()
        name = request.path_params["loss"]
        timings.loss_id = canonical_id(name) or "unknown"
        start = time.perf_counter()
        sizes: list[int] = []
        response: Response | None = None
        error: LossdError | None = None
        try:
            response = await self._infer(request, name, timings, sizes)
        except asyncio.CancelledError:
            error = Cancelled("the client cancelled the call")
            raise
        except Exception as exc:  # noqa: BLE001 - mapped once, here
            if isinstance(exc, LossdError):
                error = exc
            else:
                log.error("unexpected error", exc_info=exc, extra={"request_id": timings.request_id or "-"})
                error = Internal(f"internal error (request id {timings.request_id or '-'}); "
                                 f"the server log has details")
        finally:
            observer.call_finished(CallRecord(
                transport="rest", method="ModelInfer", loss=timings.loss_id or "unknown",
                code="OK" if error is None else error.code.name,
                duration=time.perf_counter() - start, phases=dict(timings.phases),
                request_bytes=sizes[0] if sizes else 0,
                response_bytes=len(response.body) if response is not None else 0,
                request_id=timings.request_id, dtype=timings.dtype, elements=timings.elements,
                message="" if error is None else error.message))
        headers = {"X-Request-Id": timings.request_id} if timings.request_id else {}
        if error is not None:
            return _error(error, headers)
        assert response is not None
        response.headers.update(headers)
        return response

    async def _infer(self, request: Request, name: str, timings: Timings, sizes: list[int]) -> Response:
        _check_version(request)
        spec = resolve(name)
        raw = await read_body(request, self.limit, sizes)
        start = time.perf_counter()
        try:
            declared = request.headers.get(HEADER_LENGTH)
            if declared is not None:
                if not declared.strip().isdigit() or int(declared) > len(raw):
                    raise InvalidArgument.field(HEADER_LENGTH, f"{declared!r} is not a length within "
                                                               f"the {len(raw)}-byte body")
                split = int(declared)
            else:
                split = len(raw)
            view = memoryview(raw)
            try:
                doc = orjson.loads(view[:split])
            except orjson.JSONDecodeError as exc:
                raise InvalidArgument.field("body", f"the inference header is not valid JSON "
                                                    f"({exc})") from None
            if not isinstance(doc, dict):
                raise InvalidArgument.field("body", "the inference header must be a JSON object")
            inputs = _decode_inputs(doc, view[split:])
            raw_params = doc.get("parameters") or {}
            if not isinstance(raw_params, dict):
                raise InvalidArgument.field("parameters", "parameters must be a JSON object")
            outputs = doc.get("outputs") or []
            if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                        for o in outputs):
                raise InvalidArgument.field("outputs", "outputs must be a list of {\"name\": ...} objects")
            requested = [o["name"] for o in outputs]
            params = coerce_params(spec, raw_params)
            grads = select_grads(spec, requested)
        finally:
            timings.phases["decode"] = time.perf_counter() - start
        request_id = self.plane.new_request_id(str(doc.get("id", "")))
        timings.request_id = request_id
        result = await self.plane.evaluate(name, inputs, params, grads, request_id=request_id,
                                           nbytes=sizes[0], timings=timings)
        start = time.perf_counter()
        binary_default = bool(raw_params.get("binary_data_output", False))
        binary_of = {o["name"]: bool((o.get("parameters") or {}).get("binary_data", binary_default))
                     for o in outputs}
        out_docs, blobs = [], []
        for out_name, array in output_arrays(result, requested):
            array = np.asarray(array, order="C")
            entry: dict[str, Any] = {"name": out_name, "datatype": datatype_of(array),
                                     "shape": list(array.shape)}
            if binary_of.get(out_name, binary_default):
                blob = array.tobytes()
                entry["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                entry["data"] = array.ravel()
            out_docs.append(entry)
        header = orjson.dumps({"model_name": result.loss_id, "model_version": "1",
                               "id": str(doc.get("id", "")), "outputs": out_docs},
                              option=orjson.OPT_SERIALIZE_NUMPY)
        timings.phases["encode"] = time.perf_counter() - start
        if not blobs:
            return Response(header, media_type=JSON)
        return Response(b"".join([header, *blobs]), media_type="application/octet-stream",
                        headers={HEADER_LENGTH: str(len(header))})


def v2_routes(plane: DataPlane) -> list[BaseRoute]:
    """The V2 REST routes over ``plane`` (pass to ``build_http_app(extra_routes=...)``)."""
    return V2Api(plane).routes()
