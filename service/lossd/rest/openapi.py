"""The OpenAPI 3.1 document of the REST front, generated from the registry's specs, and a
self-contained human docs page rendered from the same data (no CDN, no JavaScript).

Each loss gets its own operation ``POST /v1/losses/<id>:evaluate`` whose request schema
names its inputs (with the dtypes each accepts), its parameters (types, enums of
choices, numeric bounds) and its differentiable inputs for ``grads``; the templated
``POST /v1/losses/{loss}:evaluate`` covers aliases and answers 404 for unknown ids.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from lossd.losses import registry
from lossd.rest.codec import DTYPES, FORMATS, TOKENS
from lossd.schema import loss_schema
from lossd.spec import LossSpec, ParamSpec
from lossd_client.codec import MAX_RANK

REF = "#/components/schemas/"
ERROR_CODES = ["INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "UNIMPLEMENTED",
               "DEADLINE_EXCEEDED", "INTERNAL", "CANCELLED"]
EXAMPLE_ELEMENTS = 64  # per-loss request examples up to this many elements in all


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _tensor_schemas(dtypes: list[str]) -> dict[str, Any]:
    dtype = {"type": "string", "enum": dtypes}
    common = {"dtype": dtype, "shape": _ref("Shape")}
    return {"oneOf": [
        {"type": "object", "title": "ListTensor", "required": ["dtype", "shape", "data"],
         "additionalProperties": False, "properties": {**common, "data": _ref("NumberArray")}},
        {"type": "object", "title": "B64Tensor", "required": ["dtype", "shape", "b64"],
         "additionalProperties": False, "properties": {**common, "b64": _ref("Base64")}},
    ]}


def _param_schema(p: ParamSpec) -> dict[str, Any]:
    if p.type is float:
        out: dict[str, Any] = {"type": ["number", "null"]}
    elif p.type is int:
        out = {"type": ["integer", "null"], "minimum": -(2 ** 63), "maximum": 2 ** 63 - 1}
    elif p.type is bool:
        out = {"type": ["boolean", "null"]}
    else:
        out = {"type": ["string", "null"]}
        if p.choices:
            out["enum"] = [*p.choices, None]
    if p.minimum is not None:
        out["exclusiveMinimum" if p.exclusive_minimum else "minimum"] = p.minimum
    if p.maximum is not None:
        out["exclusiveMaximum" if p.exclusive_maximum else "maximum"] = p.maximum
    desc = f"{p.description}; {p.range_text()}"
    if p.default is not None:
        desc += f"; default {p.default!r}"
        out["default"] = p.default
    out["description"] = desc + " (null: the default)"
    return out


def _example(spec: LossSpec) -> dict[str, Any] | None:
    """A request body from the loss's own first example (lists form), if small."""
    inputs, params = spec.examples(np.dtype(np.float64))[0]
    if sum(np.asarray(a).size for a in inputs.values()) > EXAMPLE_ELEMENTS:
        return None
    tensors = {}
    for name, a in inputs.items():
        a = np.asarray(a)
        kind = "float64" if a.dtype.kind == "f" else ("int64" if a.dtype.itemsize == 8 else "int32")
        tensors[name] = {"dtype": kind, "shape": list(a.shape), "data": a.ravel().tolist()}
    return {"inputs": tensors, "params": {k: (v.item() if hasattr(v, "item") else v)
                                           for k, v in params.items()}}


def request_schema(spec: LossSpec) -> dict[str, Any]:
    inputs = {i.name: {**_tensor_schemas(list(i.kind.dtypes)), "description":
                       f"{i.description}; shape {i.shape}"} for i in spec.inputs}
    return {
        "type": "object", "additionalProperties": False, "required": ["inputs"],
        "properties": {
            "inputs": {"type": "object", "additionalProperties": False, "properties": inputs,
                       "required": [i.name for i in spec.inputs if i.required]},
            "params": {"type": ["object", "null"], "additionalProperties": False,
                       "properties": {p.name: _param_schema(p) for p in spec.all_params}},
            "grads": {"type": ["array", "null"], "uniqueItems": True,
                      "items": {"type": "string", "enum": list(spec.differentiable)},
                      "description": "inputs whose gradient is returned (absent or null: every "
                                     "differentiable input given; []: the loss only)"},
            "request_id": _ref("RequestId"),
            "output_format": _ref("OutputFormat"),
        },
    }


GENERIC_REQUEST = {
    "type": "object", "additionalProperties": False, "required": ["inputs"],
    "properties": {
        "inputs": {"type": "object", "additionalProperties": _ref("Tensor")},
        "params": {"type": ["object", "null"], "additionalProperties": {
            "type": ["number", "integer", "boolean", "string", "null"]}},
        "grads": {"type": ["array", "null"], "items": {"type": "string"}},
        "request_id": _ref("RequestId"),
        "output_format": _ref("OutputFormat"),
    },
}


def _evaluate_operation(op_id: str, summary: str, schema: dict[str, Any],
                        example: dict[str, Any] | None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {
        "operationId": op_id, "summary": summary, "tags": ["evaluate"],
        "requestBody": {"required": True, "content": {"application/json": media}},
        "responses": {
            "200": {"description": "the loss, requested gradients and auxiliary outputs",
                    "headers": {"X-Request-Id": {"schema": {"type": "string"}}},
                    "content": {"application/json": {"schema": _ref("EvaluateResponse")}}},
            "400": _error("malformed JSON, wrong types, or an input/parameter the loss rejects"),
            "404": _error("unknown loss id"),
            "413": _error("body over --max-message-bytes"),
            "415": _error("content type is not application/json"),
            "429": _error("server at its concurrency or queued-bytes limit; retry later"),
            "503": _error("warming up or shutting down; retry later"),
        },
    }


def openapi_document(version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for spec in registry.SPECS:
        paths[f"/v1/losses/{spec.id}:evaluate"] = {"post": _evaluate_operation(
            f"evaluate_{spec.id}", f"{spec.id}: {spec.summary}", request_schema(spec), _example(spec))}
    loss_param = {"name": "loss", "in": "path", "required": True, "schema": {"type": "string"},
                  "description": "a loss id or alias (GET /v1/losses lists them)"}
    generic = _evaluate_operation("evaluate", "Evaluate any loss by id or alias", _ref("EvaluateRequest"),
                                  None)
    generic["parameters"] = [loss_param]
    paths["/v1/losses/{loss}:evaluate"] = {"post": generic}
    paths["/v1/losses"] = {"get": {
        "operationId": "list_losses", "summary": "Every loss with its inputs, parameters and outputs",
        "tags": ["schema"],
        "responses": {"200": {"description": "the ListLosses schema",
                              "content": {"application/json": {"schema": _ref("ListLossesResponse")}}}}}}
    paths["/v1/losses/{loss}"] = {"get": {
        "operationId": "get_loss", "summary": "One loss's schema (by id or alias)", "tags": ["schema"],
        "parameters": [loss_param],
        "responses": {"200": {"description": "the loss schema",
                              "content": {"application/json": {"schema": _ref("LossSchema")}}},
                      "404": _error("unknown loss id"),
                      "405": _error("GET on an evaluate path (use POST)")}}}
    for path, what in (("/healthz", "200 while the process runs"),
                       ("/readyz", "200 once warm-up is done; 503 before and while draining")):
        paths[path] = {"get": {"operationId": path.strip("/"), "summary": what, "tags": ["health"],
                               "responses": {code: {"description": code, "content": {"application/json": {
                                   "schema": {"type": "object", "properties": {"status": {"type": "string"}},
                                              "required": ["status"]}}}}
                                   for code in (("200",) if path == "/healthz" else ("200", "503"))}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "lossd REST API", "version": version,
                 "description": "Losses and their gradients over JSON. The same core, validation and "
                                "numbers as the gRPC service lossd.v1.LossService."},
        "paths": paths,
        "components": {"schemas": _components()},
    }


def _components() -> dict[str, Any]:
    names = list(DTYPES)
    param = {"type": "object", "required": ["name", "type", "range", "description"], "properties": {
        "name": {"type": "string"}, "type": {"type": "string", "enum": ["double", "int64", "bool", "string"]},
        "range": {"type": "string"}, "description": {"type": "string"},
        "default": {"type": ["number", "integer", "boolean", "string"]},
        "allowed_values": {"type": "array", "items": {"type": "string"}},
        "minimum": {"type": "number"}, "maximum": {"type": "number"},
        "exclusive_minimum": {"type": "boolean"}, "exclusive_maximum": {"type": "boolean"}}}
    loss = {"type": "object", "required": ["id", "aliases", "description", "inputs", "params", "reductions",
                                           "default_reduction", "loss_shape", "outputs"],
            "properties": {
                "id": {"type": "string"}, "aliases": {"type": "array", "items": {"type": "string"}},
                "description": {"type": "string"},
                "inputs": {"type": "array", "items": {"type": "object", "required": [
                    "name", "dtypes", "shape", "differentiable", "required", "description"], "properties": {
                    "name": {"type": "string"},
                    "dtypes": {"type": "array", "items": {"type": "string", "enum": names}},
                    "shape": {"type": "string"}, "differentiable": {"type": "boolean"},
                    "required": {"type": "boolean"}, "description": {"type": "string"}}}},
                "params": {"type": "array", "items": param},
                "reductions": {"type": "array", "items": {"type": "string"}},
                "default_reduction": {"type": "string"}, "loss_shape": {"type": "string"},
                "outputs": {"type": "array", "items": {"type": "object", "required": [
                    "name", "shape", "description"], "properties": {
                    "name": {"type": "string"}, "shape": {"type": "string"},
                    "description": {"type": "string"}}}}}}
    return {
        "Shape": {"type": "array", "maxItems": MAX_RANK, "items": {"type": "integer", "minimum": 0},
                  "description": "dimensions, C order"},
        "NumberArray": {"type": "array", "description": "values in C order: a flat list, or lists nested "
                                                        "like the shape; non-finite values as the strings "
                                                        "NaN, Infinity, -Infinity",
                        "items": {"anyOf": [{"type": "number"}, {"type": "string", "enum": list(TOKENS)},
                                            _ref("NumberArray")]}},
        "Base64": {"type": "string", "contentEncoding": "base64",
                   "pattern": "^[A-Za-z0-9+/]*={0,2}$",
                   "description": "standard base64 of the raw little-endian C-order bytes"},
        "Tensor": _tensor_schemas(names),
        "RequestId": {"type": ["string", "null"], "description": "echoed back (one is made if absent)"},
        "OutputFormat": {"type": ["string", "null"], "enum": [*FORMATS, None],
                         "description": "form of the response tensors (default: b64 if any input "
                                        "used b64, else lists)"},
        "EvaluateRequest": GENERIC_REQUEST,
        "EvaluateResponse": {"type": "object",
                             "required": ["loss", "grads", "outputs", "request_id", "loss_id"],
                             "properties": {
                                 "loss": _ref("Tensor"),
                                 "grads": {"type": "object", "additionalProperties": _ref("Tensor")},
                                 "outputs": {"type": "object", "additionalProperties": _ref("Tensor")},
                                 "request_id": {"type": "string"},
                                 "loss_id": {"type": "string", "enum": [s.id for s in registry.SPECS]}}},
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message", "field_violations"], "properties": {
                "code": {"type": "string", "enum": ERROR_CODES}, "message": {"type": "string"},
                "field_violations": {"type": "array", "items": {
                    "type": "object", "required": ["field", "description"],
                    "properties": {"field": {"type": "string"}, "description": {"type": "string"}}}}}}}},
        "LossSchema": loss,
        "ListLossesResponse": {"type": "object", "required": ["losses", "version"], "properties": {
            "losses": {"type": "array", "items": _ref("LossSchema")}, "version": {"type": "string"}}},
    }


def docs_html(version: str) -> str:
    """A readable page: endpoints, tensor forms, every loss with inputs and parameters."""
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>lossd REST API</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "code,pre{background:#f4f4f4}td,th{border:1px solid #ccc;padding:.2em .5em;vertical-align:top}"
        "table{border-collapse:collapse;margin-bottom:1em}</style></head><body>",
        f"<h1>lossd REST API {e(version)}</h1>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1).</p>",
        "<h2>Endpoints</h2><ul>",
        "<li><code>POST /v1/losses/{loss}:evaluate</code> with <code>Content-Type: application/json</code>"
        " and body <code>{\"inputs\": {name: tensor}, \"params\": {...}, \"grads\": [...]}</code></li>",
        "<li><code>GET /v1/losses</code>, <code>GET /v1/losses/{loss}</code>: the loss schemas</li>",
        "<li><code>GET /healthz</code>, <code>GET /readyz</code></li></ul>",
        "<h2>Tensors</h2><p><code>{\"dtype\": \"float32\", \"shape\": [2, 3], \"data\": [...]}</code> "
        "(flat or nested list) or <code>{\"dtype\": ..., \"shape\": ..., \"b64\": \"...\"}</code> (base64 "
        "of the raw little-endian C-order bytes). Responses use the request's form unless "
        "<code>output_format</code> says <code>lists</code> or <code>b64</code>. Floats round-trip "
        "exactly; non-finite values are the strings NaN, Infinity, -Infinity.</p>",
        "<h2>Errors</h2><p><code>{\"error\": {\"code\", \"message\", \"field_violations\": [{\"field\", "
        "\"description\"}]}}</code> with 400 (bad input), 404 (unknown loss or path), 405, 413 (body too "
        "large), 415 (not JSON), 429 (overloaded), 503 (not ready).</p>",
        "<h2>Losses</h2>",
    ]
    for spec in registry.SPECS:
        s = loss_schema(spec)
        aliases = f" (aliases: {e(', '.join(s['aliases']))})" if s["aliases"] else ""
        parts.append(f"<h3 id='{e(s['id'])}'>{e(s['id'])}{aliases}</h3><p>{e(s['description'])} "
                     f"Loss shape: {e(s['loss_shape'])}.</p>")
        parts.append("<table><tr><th>input</th><th>dtypes</th><th>shape</th><th>grad</th><th></th></tr>")
        for i in s["inputs"]:
            req = "" if i["required"] else " (optional)"
            parts.append(f"<tr><td><code>{e(i['name'])}</code>{req}</td><td>{e(', '.join(i['dtypes']))}</td>"
                         f"<td>{e(i['shape'])}</td><td>{'yes' if i['differentiable'] else ''}</td>"
                         f"<td>{e(i['description'])}</td></tr>")
        parts.append("</table><table><tr><th>parameter</th><th>type</th><th>values</th><th>default</th>"
                     "<th></th></tr>")
        for p in s["params"]:
            parts.append(f"<tr><td><code>{e(p['name'])}</code></td><td>{e(p['type'])}</td>"
                         f"<td>{e(p['range'])}</td><td>{e(repr(p.get('default', '')))}</td>"
                         f"<td>{e(p['description'])}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)
