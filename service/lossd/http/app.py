"""The HTTP front (Starlette on uvicorn, in the gRPC server's event loop).

``/healthz`` answers 200 while the process runs; ``/readyz`` answers 200 only after
warm-up and 503 before it and during shutdown. Other routers (REST, metrics) are
added by the composition root through ``extra_routes``.
"""

from __future__ import annotations

from typing import Any, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route


def build_http_app(plane: Any, extra_routes: Sequence[BaseRoute] = (), **kwargs: Any) -> Starlette:
    """The Starlette application over ``plane`` (a DataPlane)."""

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        if plane.ready and not plane.draining:
            return JSONResponse({"status": "ready"})
        state = "draining" if plane.draining else "warming up"
        return JSONResponse({"status": state}, status_code=503)

    routes = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"]),
              *extra_routes]
    return Starlette(routes=routes, **kwargs)
