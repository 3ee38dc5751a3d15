"""One error hierarchy for lossd, shared by the SDK, the server and the in-process API.

Every error carries ``.code`` (a ``grpc.StatusCode``), ``.message`` and
``.field_violations`` (``FieldViolation(field, description)`` tuples). On the wire the
violations travel as a ``google.rpc.Status`` with a ``google.rpc.BadRequest`` detail in
the ``grpc-status-details-bin`` trailer; this module encodes and decodes that trailer
with wire-compatible messages of the lossd proto, so the SDK needs no googleapis package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import grpc
from google.protobuf import any_pb2

from lossd_client._proto.lossd.v1 import lossd_pb2 as pb

STATUS_DETAILS_KEY = "grpc-status-details-bin"
BAD_REQUEST_TYPE_URL = "type.googleapis.com/google.rpc.BadRequest"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: ``field`` names the input or parameter, ``description`` says why."""

    field: str
    description: str


class LossdError(Exception):
    """Base class of every lossd error. ``code`` is the gRPC status code."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, field_violations: Sequence[FieldViolation] = (),
                 *, code: grpc.StatusCode | None = None, request_id: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field_violations = tuple(field_violations)
        if code is not None:
            self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgument(LossdError):
    """The request is malformed: a bad input, parameter or grads list."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        """An error about one field, whose message is ``"<field>: <description>"``."""
        return cls(f"{field}: {description}", [FieldViolation(field, description)])


class NotFound(LossdError):
    """Unknown loss id (the message lists close matches)."""

    code = grpc.StatusCode.NOT_FOUND


class ResourceExhausted(LossdError):
    """A message over the size limit, or the server is at its in-flight limit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(LossdError):
    """The server is not reachable, not ready, or shutting down."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(LossdError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(LossdError):
    code = grpc.StatusCode.CANCELLED


class Unauthenticated(LossdError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(LossdError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Internal(LossdError):
    """An unexpected server-side failure (logged there with the request id)."""

    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[LossdError]] = {
    cls.code: cls
    for cls in (InvalidArgument, NotFound, ResourceExhausted, Unavailable, DeadlineExceeded,
                Cancelled, Unauthenticated, PermissionDenied, Internal)
}
_CODE_BY_NUMBER = {c.value[0]: c for c in grpc.StatusCode}


def status_code_from_number(number: int) -> grpc.StatusCode:
    """The ``grpc.StatusCode`` whose numeric value is ``number`` (UNKNOWN if none)."""
    return _CODE_BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


def make_error(code: grpc.StatusCode, message: str,
               field_violations: Iterable[FieldViolation] = (), request_id: str = "") -> LossdError:
    """The typed error for ``code``."""
    cls = _BY_CODE.get(code, LossdError)
    return cls(message, tuple(field_violations), code=code, request_id=request_id)


def encode_status_details(error: LossdError) -> bytes:
    """Serialize ``error`` as a google.rpc.Status with a BadRequest detail."""
    status = pb.RpcStatus(code=error.code.value[0], message=error.message)
    if error.field_violations:
        bad = pb.BadRequest(field_violations=[
            pb.FieldViolation(field=v.field, description=v.description)
            for v in error.field_violations])
        status.details.append(any_pb2.Any(type_url=BAD_REQUEST_TYPE_URL,
                                          value=bad.SerializeToString()))
    return status.SerializeToString()


def decode_status_details(blob: bytes) -> tuple[FieldViolation, ...]:
    """The field violations of a serialized google.rpc.Status (empty when none)."""
    status = pb.RpcStatus()
    try:
        status.ParseFromString(blob)
    except Exception:  # noqa: BLE001 - a malformed trailer must not hide the real error
        return ()
    out: list[FieldViolation] = []
    for detail in status.details:
        if detail.type_url.endswith("/google.rpc.BadRequest"):
            bad = pb.BadRequest()
            bad.ParseFromString(detail.value)
            out.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
    return tuple(out)


def from_rpc_error(exc: grpc.RpcError) -> LossdError:
    """Convert a grpc error (sync or aio) into the typed lossd error."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    message = exc.details() if hasattr(exc, "details") else str(exc)
    trailers = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    violations: tuple[FieldViolation, ...] = ()
    for key, value in trailers or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            violations = decode_status_details(value)
    return make_error(code or grpc.StatusCode.UNKNOWN, message or "", violations)


def from_error_status(status: pb.ErrorStatus, request_id: str = "") -> LossdError:
    """Convert the error of an EvaluateStream response into the typed lossd error."""
    return make_error(status_code_from_number(status.code), status.message,
                      [FieldViolation(v.field, v.description) for v in status.field_violations],
                      request_id)


def to_error_status(error: LossdError) -> pb.ErrorStatus:
    """The EvaluateStream form of ``error``."""
    return pb.ErrorStatus(code=error.code.value[0], message=error.message, field_violations=[
        pb.FieldViolation(field=v.field, description=v.description) for v in error.field_violations])
