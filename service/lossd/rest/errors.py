"""Errors mapped once for REST: a LossdError becomes an HTTP status and the body
``{"error": {"code", "message", "field_violations": [{"field", "description"}]}}``.

``code`` is the gRPC status name the same mistake gets over gRPC, so both transports
report one vocabulary; the HTTP status follows Google's API mapping, with 413 for an
oversized body and 415 for a wrong content type.
"""

from __future__ import annotations

from typing import Any, Mapping

import grpc
from starlette.responses import Response

from lossd.rest.codec import dumps
from lossd_client.errors import LossdError

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.INTERNAL: 500,
}


class HttpError(LossdError):
    """A LossdError with an explicit HTTP status (413, 415, 405...)."""

    def __init__(self, status: int, code: grpc.StatusCode, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.headers = dict(headers or {})


def status_of(error: LossdError) -> int:
    if isinstance(error, HttpError):
        return error.status
    return HTTP_STATUS.get(error.code, 500)


def error_body(error: LossdError) -> dict[str, Any]:
    return {"error": {"code": error.code.name, "message": error.message,
                      "field_violations": [{"field": v.field, "description": v.description}
                                           for v in error.field_violations]}}


def error_response(error: LossdError, headers: Mapping[str, str] | None = None) -> Response:
    extra = dict(error.headers) if isinstance(error, HttpError) else {}
    extra.update(headers or {})
    status = status_of(error)
    if status in (429, 503):
        extra.setdefault("Retry-After", "1")
    return Response(dumps(error_body(error)), status_code=status, media_type="application/json",
                    headers=extra)
