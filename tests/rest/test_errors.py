"""Every REST error class: status, the {"error": {code, message, field_violations}} body,
and the same message and field as gRPC for validation errors. Never a 500."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from lossd_client import InvalidArgument
from tests.rest.conftest import body, tensor
from tests.serverproc import start_server

X = np.ones((2, 3), np.float32)
URL = "/v1/losses/mse:evaluate"
JSON = {"Content-Type": "application/json"}
GOOD = body({"input": X, "target": X})


def _error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()
    assert set(doc) == {"error"} and set(doc["error"]) == {"code", "message", "field_violations"}
    err = doc["error"]
    assert err["code"] == code and isinstance(err["message"], str) and err["message"]
    assert all(set(v) == {"field", "description"} for v in err["field_violations"])
    return err


def _with(tensor_=None, **top):
    doc = json.loads(json.dumps(GOOD))
    if tensor_ is not None:
        doc["inputs"]["input"] = tensor_
    doc.update(top)
    return json.dumps(doc).encode()


RAW_400 = {
    "malformed": b'{"inputs": {',
    "trailing garbage": b'{"inputs": {}} x',
    "empty body": b"",
    "non-utf8": b'{"inputs": {"\xff\xfe": 1}}',
    "deep nesting": b"[" * 5000 + b"]" * 5000,
    "deep nesting in data": _with({"dtype": "float32", "shape": [1], "data": json.loads("[" * 600 + "1"
                                                                                      + "]" * 600)}),
    "number beyond float64": _with({"dtype": "float64", "shape": [1], "data": [1]}).replace(
        b'"data": [1]', b'"data": [1e400]'),
    "body not an object": b"[1, 2, 3]",
    "inputs not an object": _with(None, inputs=[1]),
    "tensor not an object": _with("abc"),
    "unknown top-level field": _with(None, bogus=1),
    "unknown tensor field": _with({**tensor(X), "extra": 1}),
    "dtype missing": _with({"shape": [2, 3], "data": [1] * 6}),
    "dtype unknown": _with({"dtype": "complex64", "shape": [2, 3], "data": [1] * 6}),
    "dtype not a string": _with({"dtype": 7, "shape": [2, 3], "data": [1] * 6}),
    "shape missing": _with({"dtype": "float32", "data": [1] * 6}),
    "shape negative": _with({"dtype": "float32", "shape": [-2, -3], "data": [1] * 6}),
    "shape of strings": _with({"dtype": "float32", "shape": ["2", "3"], "data": [1] * 6}),
    "shape of floats": _with({"dtype": "float32", "shape": [2.0, 3.0], "data": [1] * 6}),
    "rank over 32": _with({"dtype": "float32", "shape": [1] * 33, "data": [1]}),
    "data and b64": _with({**tensor(X), "b64": "AAAA"}),
    "neither data nor b64": _with({"dtype": "float32", "shape": [2, 3]}),
    "data a string": _with({"dtype": "float32", "shape": [2, 3], "data": "1,2,3"}),
    "data with booleans": _with({"dtype": "float32", "shape": [2, 3], "data": [1, 1, 1, 1, 1, True]}),
    "data with null": _with({"dtype": "float32", "shape": [2, 3], "data": [1, 1, 1, 1, 1, None]}),
    "data with a string": _with({"dtype": "float32", "shape": [2, 3], "data": [1, 1, 1, 1, 1, "1"]}),
    "data with an object": _with({"dtype": "float32", "shape": [2, 3], "data": [1, 1, 1, 1, 1, {}]}),
    "data ragged": _with({"dtype": "float32", "shape": [2, 3], "data": [[1, 1, 1], [1, 1]]}),
    "data mixed levels": _with({"dtype": "float32", "shape": [2, 3], "data": [[1, 1, 1], 1, 1, 1]}),
    "data too short": _with({"dtype": "float32", "shape": [2, 3], "data": [1] * 5}),
    "nested shape differs": _with({"dtype": "float32", "shape": [2, 3], "data": [[1, 1], [1, 1], [1, 1]]}),
    "b64 invalid": _with({"dtype": "float32", "shape": [2, 3], "b64": "not base64!"}),
    "b64 not a string": _with({"dtype": "float32", "shape": [2, 3], "b64": 12}),
    "b64 wrong length": _with({"dtype": "float32", "shape": [2, 3], "b64": "AAAAAAAA"}),
    "b64 far too long": _with({"dtype": "float32", "shape": [1], "b64": "AAAA" * 1000}),
    "params not an object": _with(None, params=[1]),
    "param a list": _with(None, params={"reduction": ["sum"]}),
    "param beyond int64": _with(None, params={"reduction": 2 ** 70}),
    "grads not a list": _with(None, grads="input"),
    "grads of numbers": _with(None, grads=[1]),
    "request_id a number": _with(None, request_id=5),
    "output_format unknown": _with(None, output_format="xml"),
}


@pytest.mark.parametrize("raw", list(RAW_400.values()), ids=list(RAW_400))
def test_client_mistakes_are_400(http, raw):
    _error(http.post(URL, content=raw, headers=JSON), 400, "INVALID_ARGUMENT")


INT_400 = {
    "float data for int32": {"dtype": "int32", "shape": [2], "data": [0.5, 1]},
    "int32 out of range": {"dtype": "int32", "shape": [2], "data": [0, 2 ** 31]},
    "int64 out of range": {"dtype": "int64", "shape": [2], "data": [0, 2 ** 64 - 1]},
}


@pytest.mark.parametrize("target", list(INT_400.values()), ids=list(INT_400))
def test_integer_tensors(http, target):
    doc = body({"input": X[:2]})
    doc["inputs"]["target"] = target
    err = _error(http.post("/v1/losses/softmax_cross_entropy:evaluate", json=doc), 400, "INVALID_ARGUMENT")
    assert err["field_violations"][0]["field"] == "inputs.target"


@pytest.mark.parametrize("inputs,params,grads", [
    ({"input": X, "target": X[:1]}, {}, None),
    ({"input": X, "target": X.astype(np.float64)}, {}, None),
    ({"input": X.astype(np.int32), "target": X}, {}, None),
    ({"input": X}, {}, None),
    ({"input": X, "target": X, "bogus": X}, {}, None),
    ({"input": np.array([[0, 0, 0]], np.float32), "target": X[:1]}, {"reduction": "avg"}, None),
    ({"input": np.ones((0, 3), np.float32), "target": np.ones((0, 3), np.float32)}, {}, None),
    ({"input": X, "target": X}, {"reduction": 1}, None),
    ({"input": X, "target": X}, {"beta": 1.0}, None),
    ({"input": X, "target": X}, {}, ["weight"]),
    ({"input": X, "target": X}, {}, ["input", "input"]),
])
@pytest.mark.parametrize("form", ["lists", "b64"])
def test_validation_errors_match_grpc(http, client, inputs, params, grads, form):
    with pytest.raises(InvalidArgument) as grpc_err:
        client.evaluate("mse", inputs, params, grads=grads)
    doc = body(inputs, params, form)
    if grads is not None:
        doc["grads"] = grads
    err = _error(http.post(URL, json=doc), 400, "INVALID_ARGUMENT")
    assert err["message"] == grpc_err.value.message
    assert err["field_violations"] == [{"field": v.field, "description": v.description}
                                       for v in grpc_err.value.field_violations]


def test_non_finite_token_input_is_rejected_like_grpc(http, client):
    doc = body({"input": X, "target": X})
    doc["inputs"]["input"]["data"][4] = "NaN"
    err = _error(http.post(URL, json=doc), 400, "INVALID_ARGUMENT")
    assert "finite" in err["message"] and err["field_violations"][0]["field"] == "inputs.input"
    doc["inputs"]["input"]["data"][4] = "nan"
    assert "only numbers" in _error(http.post(URL, json=doc), 400, "INVALID_ARGUMENT")["message"]


def test_unknown_loss_is_404_with_close_matches(http):
    err = _error(http.post("/v1/losses/mse_los:evaluate", json=GOOD), 404, "NOT_FOUND")
    assert "mse_loss" in err["message"]
    # the path names the resource: 404 even when the body is bad too
    _error(http.post("/v1/losses/nope:evaluate", content=b"{", headers=JSON), 404, "NOT_FOUND")
    _error(http.get("/v1/losses/nope"), 404, "NOT_FOUND")


@pytest.mark.parametrize("method,path", [("GET", "/nope"), ("POST", "/v1/losses/mse"),
                                         ("GET", "/v1/losses/mse/evaluate"), ("POST", "/v1/evaluate")])
def test_unknown_path_is_404(http, method, path):
    response = http.request(method, path, json=GOOD if method == "POST" else None)
    if response.status_code == 405:  # POST /v1/losses/mse exists for GET only
        _error(response, 405, "UNIMPLEMENTED")
        assert "GET" in response.headers["allow"]
    else:
        _error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize("method,path,allow", [
    ("GET", URL, "POST"), ("PUT", URL, "POST"), ("DELETE", "/v1/losses", "GET"),
    ("POST", "/v1/losses", "GET"), ("DELETE", "/v1/losses/mse", "GET"), ("POST", "/openapi.json", "GET"),
])
def test_wrong_method_is_405(http, method, path, allow):
    response = http.request(method, path)
    _error(response, 405, "UNIMPLEMENTED")
    assert allow in response.headers["allow"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "application/json; charset=latin-1", "application/jsonx"])
def test_wrong_content_type_is_415(http, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    raw = json.dumps(GOOD).encode()
    request = http.build_request("POST", URL, content=raw, headers=headers)
    assert request.headers.get("content-type") == content_type
    _error(http.send(request), 415, "INVALID_ARGUMENT")


def test_json_content_type_with_utf8_charset_is_accepted(http):
    raw = json.dumps(GOOD).encode()
    assert http.post(URL, content=raw, headers={"Content-Type": "Application/JSON; charset=UTF-8"}
                     ).status_code == 200


@pytest.fixture(scope="module")
def limited():
    """A server with a 100 kB body limit and no admission slots (every evaluation: 429)."""
    proc = start_server("--max-message-bytes", "100000", "--max-in-flight", "0", "--warmup", "false")
    with httpx.Client(base_url=proc.http_base, timeout=60) as c:
        yield c
    proc.terminate()


def test_body_over_limit_by_content_length_is_413(limited):
    big = np.ones(30000, np.float32)
    err = _error(limited.post(URL, json=body({"input": big, "target": big}, form="b64")), 413,
                 "RESOURCE_EXHAUSTED")
    assert "100000" in err["message"]


def test_body_over_limit_while_streaming_is_413(limited):
    """No Content-Length (chunked): the limit is enforced while the body is read."""
    raw = json.dumps(body({"input": np.ones(30000, np.float32), "target": np.ones(30000, np.float32)},
                          form="b64")).encode()

    def chunks():
        for i in range(0, len(raw), 16384):
            yield raw[i:i + 16384]

    response = limited.post(URL, content=chunks(), headers=JSON)
    assert "content-length" not in {k.lower() for k in response.request.headers}
    _error(response, 413, "RESOURCE_EXHAUSTED")


def test_overloaded_is_429(limited):
    response = limited.post(URL, json=GOOD)
    err = _error(response, 429, "RESOURCE_EXHAUSTED")
    assert "max-in-flight" in err["message"] and response.headers["retry-after"]
    # GET endpoints are not evaluations: never refused
    assert limited.get("/v1/losses").status_code == 200
