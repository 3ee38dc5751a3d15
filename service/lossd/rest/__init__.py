"""The REST/JSON front: ``POST /v1/losses/{loss}:evaluate``, the loss schemas, the OpenAPI
document and a docs page, over the same DataPlane as gRPC (see ``routes.py``)."""

from lossd.rest.routes import EXCEPTION_HANDLERS, RestApi, rest_routes

__all__ = ["EXCEPTION_HANDLERS", "RestApi", "rest_routes"]
