"""REST handlers over the DataPlane: read the body (size and content-type checked),
decode, await the same core the gRPC servicer awaits, encode. Each evaluate call is
reported to ``plane.observer`` with a CallRecord(transport="rest") like the servicer's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from lossd import __version__
from lossd.core.dataplane import DataPlane, Timings
from lossd.core.observer import CallRecord
from lossd.losses import registry
from lossd.losses.registry import canonical_id, resolve
from lossd.rest import codec
from lossd.rest.errors import HttpError, error_response
from lossd.rest.openapi import docs_html, openapi_document
from lossd.schema import loss_schema
from lossd_client.errors import Cancelled, Internal, InvalidArgument, LossdError, NotFound, Unavailable

log = logging.getLogger("lossd.rest")
JSON = "application/json"
EVALUATE_SUFFIX = ":evaluate"


def _too_large(size: int | None, limit: int) -> HttpError:
    what = f"request body of {size} bytes" if size is not None else "request body"
    return HttpError(413, grpc.StatusCode.RESOURCE_EXHAUSTED,
                     f"{what} exceeds the limit of {limit} bytes "
                     f"(raise it with --max-message-bytes / LOSSD_MAX_MESSAGE_BYTES)")


def check_content_type(request: Request) -> None:
    """415 unless the body is declared ``application/json`` (charset, if any, UTF-8)."""
    header = request.headers.get("content-type", "")
    media, _, rest = header.partition(";")
    charset = ""
    for part in rest.split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if media.strip().lower() != JSON or charset not in ("", "utf-8", "utf8"):
        raise HttpError(415, grpc.StatusCode.INVALID_ARGUMENT,
                        f"content type {header or '(none)'!r} is not supported; send "
                        f"'Content-Type: application/json' (UTF-8)")


async def read_body(request: Request, limit: int, sizes: list[int]) -> bytearray:
    """The whole body, refusing (413) above ``limit`` from Content-Length or while reading."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        sizes.append(int(declared))
        raise _too_large(int(declared), limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            sizes.append(len(body))
            raise _too_large(None, limit)
    sizes.append(len(body))
    return body


class RestApi:
    """The REST endpoints of one server (one DataPlane shared with gRPC)."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.limit = plane.settings.max_message_bytes
        self._cache: dict[str, bytes | str] = {}

    def _cached(self, key: str) -> Any:
        """Documents built on first use (after warm-up has loaded the registry)."""
        if key not in self._cache:
            if key == "openapi":
                self._cache[key] = codec.dumps(openapi_document(__version__))
            elif key == "docs":
                self._cache[key] = docs_html(__version__)
            else:
                self._cache[key] = codec.dumps({"losses": [loss_schema(s) for s in registry.SPECS],
                                                "version": __version__})
        return self._cache[key]

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/losses/{loss}" + EVALUATE_SUFFIX, self.evaluate, methods=["POST"]),
            Route("/v1/losses", self.list_losses, methods=["GET"]),
            Route("/v1/losses/{loss}", self.get_loss, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/docs", self.docs, methods=["GET"]),
        ]

    async def list_losses(self, request: Request) -> Response:
        return Response(self._cached("list"), media_type=JSON)

    async def get_loss(self, request: Request) -> Response:
        name = request.path_params["loss"]
        if name.endswith(EVALUATE_SUFFIX):  # GET on the evaluate path
            raise HTTPException(405, headers={"Allow": "POST"})
        try:
            spec = resolve(name)
        except NotFound as exc:
            return error_response(exc)
        return Response(codec.dumps(loss_schema(spec)), media_type=JSON)

    async def openapi(self, request: Request) -> Response:
        return Response(self._cached("openapi"), media_type=JSON)

    async def docs(self, request: Request) -> Response:
        return HTMLResponse(self._cached("docs"))

    async def evaluate(self, request: Request) -> Response:
        """POST /v1/losses/{loss}:evaluate, reported to the observer; never raises."""
        observer = self.plane.observer
        observer.call_started("rest")
        timings = Timings()
        loss = request.path_params["loss"]
        timings.loss_id = canonical_id(loss) or "unknown"
        start = time.perf_counter()
        sizes: list[int] = []
        body: bytes = b""
        error: LossdError | None = None
        try:
            body = await self._evaluate(request, loss, timings, sizes)
        except asyncio.CancelledError:
            error = Cancelled("the client cancelled the call")
            raise
        except ClientDisconnect:
            error = Cancelled("the client went away while sending its request")
        except Exception as exc:  # noqa: BLE001 - mapped once, here
            error = self._as_error(exc, timings.request_id)
        finally:
            observer.call_finished(CallRecord(
                transport="rest", method="rest_evaluate", loss=timings.loss_id or "unknown",
                code="OK" if error is None else error.code.name,
                duration=time.perf_counter() - start, phases=dict(timings.phases),
                request_bytes=sizes[0] if sizes else 0, response_bytes=len(body),
                request_id=timings.request_id, dtype=timings.dtype, elements=timings.elements,
                message="" if error is None else error.message))
        headers = {"X-Request-Id": timings.request_id} if timings.request_id else {}
        if error is not None:
            return error_response(error, headers)
        return Response(body, media_type=JSON, headers=headers)

    async def _evaluate(self, request: Request, loss: str, timings: Timings, sizes: list[int]) -> bytes:
        if not self.plane.ready:  # the registry may still be loading: never load it on the event loop
            raise Unavailable("server is warming up (compiling kernels); retry shortly")
        resolve(loss)  # the path names the resource: an unknown loss is 404 before the body is read
        check_content_type(request)
        raw = await read_body(request, self.limit, sizes)
        start = time.perf_counter()
        try:
            doc = codec.parse_json(raw)
            del raw
            parsed = codec.decode_request(doc)
            del doc
        finally:
            timings.phases["decode"] = time.perf_counter() - start
        request_id = self.plane.new_request_id(parsed.request_id)
        timings.request_id = request_id
        result = await self.plane.evaluate(loss, parsed.inputs, parsed.params, parsed.grads,
                                           request_id=request_id, nbytes=sizes[0], timings=timings)
        start = time.perf_counter()
        form = parsed.output_format
        body = codec.dumps({
            "loss": codec.encode_tensor(result.loss, form),
            "grads": {k: codec.encode_tensor(v, form) for k, v in result.grads.items()},
            "outputs": {k: codec.encode_tensor(v, form) for k, v in result.outputs.items()},
            "request_id": request_id,
            "loss_id": result.loss_id,
        })
        timings.phases["encode"] = time.perf_counter() - start
        return body

    @staticmethod
    def _as_error(exc: Exception, request_id: str) -> LossdError:
        if isinstance(exc, LossdError):
            return exc
        if isinstance(exc, HTTPException):  # e.g. a client disconnect while reading
            return InvalidArgument(str(exc.detail))
        log.error("unexpected error", exc_info=exc, extra={"request_id": request_id or "-"})
        return Internal(f"internal error (request id {request_id or '-'}); the server log has details")


async def not_found(request: Request, exc: Exception) -> Response:
    return error_response(NotFound(f"no route for {request.method} {request.url.path}; "
                                   f"see /openapi.json or /docs"))


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    allow = getattr(exc, "headers", None) or {}
    return error_response(HttpError(405, grpc.StatusCode.UNIMPLEMENTED,
                                    f"method {request.method} is not allowed on {request.url.path}"
                                    f"{'; allowed: ' + allow['Allow'] if 'Allow' in allow else ''}",
                                    headers=allow))


EXCEPTION_HANDLERS = {404: not_found, 405: method_not_allowed}


def rest_routes(plane: DataPlane) -> list[BaseRoute]:
    """The REST routes over ``plane`` (pass to ``build_http_app(extra_routes=...)``)."""
    return RestApi(plane).routes()
