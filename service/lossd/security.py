"""Transport security: TLS / mutual TLS for gRPC and HTTPS for REST, and optional
bearer-token authentication on both transports.

* TLS: ``--tls-cert`` and ``--tls-key`` (PEM files) turn on TLS on both ports;
  ``--tls-client-ca`` additionally requires client certificates signed by that CA
  (mutual TLS).
* Tokens: ``--auth-token`` (or ``--auth-token-file``) requires ``authorization: Bearer
  <token>`` on every call, compared in constant time (``hmac.compare_digest``). Without
  it a gRPC call fails with UNAUTHENTICATED and an HTTP request with 401. gRPC health
  checks, ``/healthz`` and ``/readyz`` stay open (probes carry no token); ``/metrics``
  is open unless ``--metrics-auth`` is set.
"""

from __future__ import annotations

import hmac
import pathlib
from typing import Any, Awaitable, Callable

import grpc
import grpc.aio

from lossd.settings import Settings

OPEN_GRPC_PREFIXES = ("/grpc.health.v1.Health/",)
OPEN_HTTP_PATHS = ("/healthz", "/readyz")


def auth_token(settings: Settings) -> str:
    """The configured token ('' when authentication is off).

    An empty token file is an error, not "authentication off": a misconfigured secret
    must not silently open the server.
    """
    if settings.auth_token_file:
        token = pathlib.Path(settings.auth_token_file).read_text().strip()
        if not token:
            raise ValueError(f"--auth-token-file {settings.auth_token_file} is empty")
        return token
    return settings.auth_token


def token_matches(header: str | bytes | None, token: str) -> bool:
    """Constant-time check of an ``authorization`` header value against ``token``
    (raw header bytes are compared as sent, so a non-ASCII token matches too)."""
    expected = f"Bearer {token}".encode()
    given = header if isinstance(header, bytes) else (header or "").encode()
    return hmac.compare_digest(given, expected)


def grpc_server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS (or mutual TLS) credentials for the gRPC port, or None for plaintext.

    Incomplete TLS settings are an error: ``--tls-client-ca`` without ``--tls-cert`` must
    not quietly serve plaintext without client authentication.
    """
    if (settings.tls_client_ca or settings.tls_key) and not settings.tls_cert:
        raise ValueError("--tls-key and --tls-client-ca need --tls-cert (TLS on both ports)")
    if not settings.tls_cert:
        return None
    if not settings.tls_key:
        raise ValueError("--tls-cert needs --tls-key")
    key = pathlib.Path(settings.tls_key).read_bytes()
    cert = pathlib.Path(settings.tls_cert).read_bytes()
    ca = pathlib.Path(settings.tls_client_ca).read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                       require_client_auth=ca is not None)


def uvicorn_tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for HTTPS (empty for plain HTTP)."""
    if not settings.tls_cert:
        return {}
    import ssl

    options: dict[str, Any] = {"ssl_certfile": settings.tls_cert, "ssl_keyfile": settings.tls_key}
    if settings.tls_client_ca:
        options.update(ssl_ca_certs=settings.tls_client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """Rejects gRPC calls without the bearer token (health checks stay open)."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]],
                                handler_call_details: grpc.HandlerCallDetails) -> Any:
        method = handler_call_details.method
        if method.startswith(OPEN_GRPC_PREFIXES):
            return await continuation(handler_call_details)
        header = dict(handler_call_details.invocation_metadata or ()).get("authorization")
        if token_matches(header if isinstance(header, str) else None, self.token):
            return await continuation(handler_call_details)
        handler = await continuation(handler_call_details)
        return _denying(handler)


def _ignore(raw: bytes) -> None:
    return None


def _denying(handler: Any) -> Any:
    """A handler of the same kind as ``handler`` that fails with UNAUTHENTICATED."""
    message = "missing or invalid bearer token (send 'authorization: Bearer <token>')"

    async def deny_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def deny_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover - makes this an async generator

    if handler is None:
        return None
    # the request of an unauthenticated call is never parsed (only received, within the size limit)
    kwargs = dict(request_deserializer=_ignore, response_serializer=handler.response_serializer)
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(deny_unary, **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(deny_stream, **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(deny_unary, **kwargs)
    return grpc.stream_stream_rpc_method_handler(deny_stream, **kwargs)


class TokenMiddleware:
    """ASGI middleware: 401 with the lossd JSON error body without the bearer token."""

    def __init__(self, app: Any, token: str, protect_metrics: bool) -> None:
        self.app = app
        self.token = token
        self.open_paths = OPEN_HTTP_PATHS if protect_metrics else (*OPEN_HTTP_PATHS, "/metrics")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        header = None
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                header = value
        if token_matches(header, self.token):
            await self.app(scope, receive, send)
            return
        body = (b'{"error": {"code": "UNAUTHENTICATED", "message": "missing or invalid bearer token '
                b'(send \'Authorization: Bearer <token>\')", "field_violations": []}}')
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"www-authenticate", b"Bearer"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
