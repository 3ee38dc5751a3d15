"""The hostile-input corpus: malformed requests over gRPC and REST, each with the status it
must get and the field (or words) its message must name.

gRPC cases are raw request bytes sent through a generic channel (so garbage, truncated
and oversized messages can be sent at all); REST cases are raw HTTP bodies. The server
they are meant for runs with ``SERVER_ARGS`` (a small element and message limit).
"""

from __future__ import annotations

import base64
import json
import socket
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

import grpc
import httpx
import numpy as np

from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client.codec import build_request, encode_param
from lossd_client.errors import from_rpc_error
from tests.procstat import rss_bytes

MIB = 1024 * 1024
MAX_ELEMENTS = 100_000
MAX_MESSAGE = 4 * MIB
SERVER_ARGS = ("--max-elements", str(MAX_ELEMENTS), "--max-message-bytes", str(MAX_MESSAGE),
               "--workers", "2")
EVALUATE = "/lossd.v1.LossService/Evaluate"
F32, F64, I32, I64 = np.float32, np.float64, np.int32, np.int64


@dataclass
class Case:
    """One malformed request and what the server must answer."""

    name: str
    transport: str                # "grpc" or "rest"
    code: str                     # gRPC status name (REST: the body's error.code)
    field: str | None             # the field violation the answer names (None: body-level)
    words: str                    # a fragment of the message (case-insensitive)
    payload: Any = None           # gRPC: request bytes; REST: body bytes
    loss: str = "mse"             # REST: the loss in the path
    status: int = 400             # REST: HTTP status
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    send: Callable[[Any], tuple[str, str, list[str], int]] | None = None  # custom sender


@dataclass
class Outcome:
    code: str
    message: str
    fields: list[str]
    status: int = 0


# ---------------------------------------------------------------- gRPC requests

def tensor(dtype: int, shape: list[int], data: bytes) -> pb.Tensor:
    return pb.Tensor(dtype=dtype, shape=shape, data=data)


def t(a: Any, dtype: Any = None) -> pb.Tensor:
    """A well-formed Tensor of ``a``."""
    a = np.asarray(a, dtype=dtype)
    return build_request("x", {"a": a}).inputs[0].tensor


def req(loss: str = "mse", inputs: Any = None, params: Any = (), grads: Any = None) -> bytes:
    """Request bytes from (name, Tensor) pairs (duplicates allowed) and (name, value) pairs."""
    r = pb.EvaluateRequest(loss=loss)
    for name, ten in inputs if inputs is not None else GOOD_MSE:
        item = r.inputs.add(name=name)
        if ten is not None:
            item.tensor.CopyFrom(ten)
    for name, value in params:
        p = r.params.add(name=name)
        if value is not None:
            p.value.CopyFrom(encode_param(value))
    if grads is not None:
        r.grads.SetInParent()
        r.grads.names.extend(grads)
    return r.SerializeToString()


X = np.arange(6, dtype=F32).reshape(2, 3)
GOOD_MSE = [("input", t(X)), ("target", t(np.zeros_like(X)))]
LOGITS = t(np.zeros((4, 5), F32))


def mse_with(**kw: pb.Tensor) -> list[tuple[str, pb.Tensor]]:
    pairs = dict(GOOD_MSE)
    pairs.update(kw)
    return list(pairs.items())


def ce(target: Any, **extra: pb.Tensor) -> list[tuple[str, pb.Tensor]]:
    return [("input", LOGITS), ("target", target), *extra.items()]


def f32_bytes(values: list[float]) -> bytes:
    return np.asarray(values, F32).tobytes()


GOOD_BYTES = req()
INVALID = "INVALID_ARGUMENT"


def g(name: str, payload: bytes, field: str | None, words: str, code: str = INVALID) -> Case:
    return Case(name, "grpc", code, field, words, payload)


def _utf8_broken() -> bytes:
    raw = pb.EvaluateRequest(loss="mse\u00e9").SerializeToString()
    return raw.replace("\u00e9".encode(), b"\xff\xfe")


GRPC_CASES = [
    g("garbage bytes", b"\xff\xff\xff\xff", "request", "not a valid"),
    g("truncated message", GOOD_BYTES[: len(GOOD_BYTES) // 2], "request", "not a valid"),
    g("length-delimited field overflowing the message", b"\x12\xff\xff\xff\x0f" + b"\x00" * 8,
      "request", "not a valid"),
    g("non-UTF-8 loss name", _utf8_broken(), "request", "not a valid"),
    g("byte length not matching the shape",
      req(inputs=mse_with(input=tensor(pb.DTYPE_FLOAT32, [2, 3], b"\0" * 23))), "inputs.input",
      "byte length 23"),
    g("data for more elements than the shape",
      req(inputs=mse_with(target=tensor(pb.DTYPE_FLOAT32, [2, 3], b"\0" * 28))), "inputs.target",
      "byte length 28"),
    g("negative dimension", req(inputs=mse_with(input=tensor(pb.DTYPE_FLOAT32, [-2, -3], b"\0" * 24))),
      "inputs.input", "negative dimension"),
    g("dimension product overflowing int64",
      req(inputs=mse_with(input=tensor(pb.DTYPE_FLOAT32, [2**62, 2**62, 4], b"\0" * 24))),
      "inputs.input", "does not match shape"),
    g("int64-max dimension", req(inputs=mse_with(input=tensor(pb.DTYPE_FLOAT64, [2**63 - 1], b""))),
      "inputs.input", "does not match shape"),
    g("empty shape with huge dimensions", req(inputs=mse_with(
        input=tensor(pb.DTYPE_FLOAT32, [0, 2**62, 2**62], b""))), "inputs.input", "past the int64 range"),
    g("rank above 32", req(inputs=mse_with(input=tensor(pb.DTYPE_FLOAT32, [1] * 40, b"\0" * 4))),
      "inputs.input", "rank 40"),
    g("shape over the element limit",
      req(inputs=[("input", t(np.zeros(60_000, F32))), ("target", t(np.zeros(60_000, F32)))]),
      "inputs", "exceed the limit"),
    g("DTYPE_UNSPECIFIED", req(inputs=mse_with(input=tensor(pb.DTYPE_UNSPECIFIED, [2, 3], b"\0" * 24))),
      "inputs.input", "DTYPE_UNSPECIFIED"),
    g("unknown dtype enum value", req(inputs=mse_with(input=tensor(99, [6], b"\0" * 24))),
      "inputs.input", "enum value 99"),
    g("bfloat16 (no NumPy dtype)", req(inputs=mse_with(input=tensor(pb.DTYPE_BFLOAT16, [6], b"\0" * 12))),
      "inputs.input", "bfloat16"),
    g("float16 input", req(inputs=mse_with(input=t(X, np.float16))), "inputs.input", "float16"),
    g("int32 input for a float input", req(inputs=mse_with(input=t(X, I32))), "inputs.input",
      "got int32"),
    g("bool input", req(inputs=mse_with(input=t(X > 1))), "inputs.input", "got bool"),
    g("uint8 class indices", req("softmax_cross_entropy", ce(t([0, 1, 2, 3], np.uint8))),
      "inputs.target", "got uint8"),
    g("float class indices for nll_loss", req("nll_loss", ce(t([0, 1, 2, 3], F32))), "inputs.target",
      "got float32"),
    g("mixed float dtypes", req(inputs=mse_with(target=t(np.zeros_like(X), F64))), "inputs.target",
      "mixed float dtypes"),
    g("shape (2,) against (2, 3)", req(inputs=mse_with(
        input=tensor(pb.DTYPE_FLOAT32, [2], f32_bytes([1, 2])))), "inputs.target", "shape"),
    g("NaN in a float input", req(inputs=mse_with(input=t(np.where(X == 4, np.nan, X)))),
      "inputs.input", "finite"),
    g("+Inf in the target", req(inputs=mse_with(target=t(np.where(X == 1, np.inf, X)))),
      "inputs.target", "finite"),
    g("-Inf float64", req(inputs=[("input", t(np.full(3, -np.inf))), ("target", t(np.zeros(3)))]),
      "inputs.input", "finite"),
    g("negative class index", req("softmax_cross_entropy", ce(t([0, -1, 2, 3], I64))), "inputs.target",
      "got -1"),
    g("class index equal to C", req("softmax_cross_entropy", ce(t([0, 1, 5, 3], I64))),
      "inputs.target", "got 5"),
    g("class index far beyond C (int32)", req("nll_loss", ce(t([0, 2**31 - 1, 2, 3], I32))),
      "inputs.target", "2147483647"),
    g("float margin where an integer is required", req("sphereface", [
        ("features", t(np.ones((2, 3), F32))), ("weight", t(np.ones((4, 3), F32))),
        ("labels", t([0, 1], I64))], [("margin", 2.5)]), "params.margin", "expected an integer"),
    g("float ignore_index", req("softmax_cross_entropy", ce(t([0, 1, 2, 3], I64)),
                                [("ignore_index", -100.0)]), "params.ignore_index", "integer"),
    g("unknown loss", req("msee"), None, "unknown loss", "NOT_FOUND"),
    g("empty request (no loss)", b"", None, "unknown loss", "NOT_FOUND"),
    g("unknown input name", req(inputs=[*GOOD_MSE, ("bogus", t(X))]), "inputs.bogus", "no input"),
    g("unknown parameter", req(params=[("bogus", 1.0)]), "params.bogus", "no parameter"),
    g("reduction of the wrong type", req(params=[("reduction", 3)]), "params.reduction",
      "expected a string"),
    g("reduction not among the choices", req(params=[("reduction", "median")]), "params.reduction",
      "median"),
    g("bool parameter as a string", req("poisson_nll", params=[("log_input", "yes")]),
      "params.log_input", "boolean"),
    g("NaN float parameter", req("smooth_l1", params=[("beta", float("nan"))]), "params.beta",
      "finite"),
    g("Inf float parameter", req("huber", params=[("delta", float("inf"))]), "params.delta", "finite"),
    g("parameter out of range", req("huber", params=[("delta", -1.0)]), "params.delta", "-1.0"),
    g("parameter without a value", req(params=[("reduction", None)]), "params.reduction",
      "no value"),
    g("duplicate input names", req(inputs=[*GOOD_MSE, ("input", t(X))]), "inputs.input",
      "more than once"),
    g("duplicate parameter names", req(params=[("reduction", "sum"), ("reduction", "mean")]),
      "params.reduction", "more than once"),
    g("input without a tensor", req(inputs=[("input", None), ("target", t(X))]), "inputs.input",
      "no tensor"),
    g("empty tensor", req(inputs=[("input", t(np.zeros(0, F32))), ("target", t(np.zeros(0, F32)))]),
      "inputs.input", "non-empty"),
    g("0-d tensor", req(inputs=[("input", t(np.float32(1))), ("target", t(np.float32(1)))]),
      "inputs.input", "0-d"),
    g("missing required input", req(inputs=[("input", t(X))]), "inputs.target", "required"),
    g("shapes that do not match", req(inputs=mse_with(target=t(np.zeros((3, 2), F32)))),
      "inputs.target", "shape"),
    g("grads naming an input not given", req(grads=["weight"]), "grads", "weight"),
    g("grads naming an input twice", req(grads=["input", "input"]), "grads", "twice"),
    g("gradient of class indices", req("softmax_cross_entropy", ce(t([0, 1, 2, 3], I64)),
                                       grads=["target"]), "grads", "not differentiable"),
    g("sign target holding 0", req("hinge_embedding", mse_with(target=t(np.zeros_like(X)))),
      "inputs.target", "-1 or +1"),
    g("binary label holding 2", req("contrastive", [("x1", t(X)), ("x2", t(X)), ("label", t([0, 2], I64))]),
      "inputs.label", "0 or 1"),
    g("rank-3 triplet anchor", req("triplet_margin", [("anchor", t(np.ones((2, 3, 1), F32))),
                                                      ("positive", t(X)), ("negative", t(X))]),
      "inputs.anchor", "rank"),
    g("class weight of the wrong length", req("softmax_cross_entropy", ce(
        t([0, 1, 2, 3], I64), weight=t(np.ones(6, F32)))), "inputs.weight", "(5,)"),
    g("message over --max-message-bytes", req(inputs=[("input", t(np.zeros(600_000, F32))),
                                                       ("target", t(np.zeros(600_000, F32)))]),
      None, "max-message-bytes", "RESOURCE_EXHAUSTED"),
]


def send_grpc(channel: grpc.Channel, payload: bytes, timeout: float = 60) -> Outcome:
    call = channel.unary_unary(EVALUATE)
    try:
        call(payload, timeout=timeout)
    except grpc.RpcError as exc:
        error = from_rpc_error(exc)
        return Outcome(error.code.name, error.message, [v.field for v in error.field_violations])
    return Outcome("OK", "", [])


def send_huge_grpc(channel: grpc.Channel) -> Outcome:
    """A 300 MiB message (over every limit; refused by the gRPC layer)."""
    return send_grpc(channel, b"\x0a" + b"\x00" * (300 * MIB))


HUGE_GRPC = Case("a 300 MiB message", "grpc", "RESOURCE_EXHAUSTED", None, "larger than max")


# ---------------------------------------------------------------- REST requests

def body(inputs: Any = None, **extra: Any) -> bytes:
    doc = {"inputs": inputs if inputs is not None else GOOD_JSON}
    doc.update(extra)
    return json.dumps(doc).encode()


def jt(data: Any, dtype: str = "float32", shape: Any = None) -> dict[str, Any]:
    if shape is not None:  # data as given (ragged, strings...)
        return {"dtype": dtype, "shape": shape, "data": data}
    a = np.asarray(data)
    return {"dtype": dtype, "shape": list(a.shape), "data": a.tolist()}


GOOD_JSON = {"input": jt([[0, 1, 2], [3, 4, 5]]), "target": jt([[0, 0, 0], [0, 0, 0]])}
CE_JSON = {"input": jt(np.zeros((4, 5))), "target": jt([0, 1, 2, 3], "int64")}


def rest(name: str, payload: bytes, field: str | None, words: str, *, status: int = 400,
         code: str = INVALID, loss: str = "mse", headers: dict[str, str] | None = None) -> Case:
    c = Case(name, "rest", code, field, words, payload, loss=loss, status=status)
    if headers is not None:
        c.headers = headers
    return c


def with_input(**kw: Any) -> bytes:
    return body({**GOOD_JSON, **kw})


B64_6 = base64.b64encode(np.zeros(6, F32).tobytes()).decode()

REST_CASES = [
    rest("not JSON", b"{inputs: nope", None, "not valid JSON"),
    rest("non-UTF-8 body", b'{"inputs": "\xff\xfe"}', None, "not valid JSON"),
    rest("deeply nested arrays", b"[" * 100_000 + b"]" * 100_000, None, "not valid JSON"),
    rest("deeply nested objects", b'{"a":' * 5000 + b"1" + b"}" * 5000, None, "not valid JSON"),
    rest("number too large for float64", b'{"inputs": {"input": {"dtype": "float64", "shape": [1], '
                                          b'"data": [1e400]}}}', None, "not valid JSON"),
    rest("truncated JSON", body()[:-7], None, "not valid JSON"),
    rest("empty body", b"", None, "not valid JSON"),
    rest("body a JSON array", b"[1, 2]", None, "JSON object"),
    rest("unknown top-level field", body(bogus=1), "bogus", "unknown field"),
    rest("inputs not an object", json.dumps({"inputs": [1, 2]}).encode(), "inputs", "object"),
    rest("tensor not an object", with_input(input=[1, 2, 3]), "inputs.input", "tensor object"),
    rest("unknown tensor field", with_input(input={**jt([1.0]), "strides": [4]}), "inputs.input",
         "strides"),
    rest("unsupported dtype", with_input(input=jt([1.0], "float16")), "inputs.input", "float16"),
    rest("dtype not a string", with_input(input=jt([1.0], 32)), "inputs.input", "not supported"),
    rest("missing shape", with_input(input={"dtype": "float32", "data": [1.0]}), "inputs.input",
         "shape is required"),
    rest("negative dimension", with_input(input=jt([1.0, 2.0], shape=[-2])), "inputs.input",
         "negative dimension"),
    rest("fractional dimension", with_input(input=jt([1.0, 2.0], shape=[2.5])), "inputs.input",
         "shape must be"),
    rest("dimension beyond int64", with_input(input=jt([1.0], shape=[2**64])), "inputs.input",
         "shape"),
    rest("dimension product overflowing int64", with_input(input=jt([1.0], shape=[2**62, 2**62])),
         "inputs.input", "needs"),
    rest("empty shape with huge dimensions", with_input(input=jt([], shape=[0, 2**62, 2**62])),
         "inputs.input", "past the int64 range"),
    rest("rank above 32", with_input(input=jt([1.0], shape=[1] * 33)), "inputs.input", "rank 33"),
    rest("data and b64 both", with_input(input={**jt([1.0] * 6, shape=[2, 3]), "b64": B64_6}),
         "inputs.input", "exactly one"),
    rest("invalid base64", with_input(input={"dtype": "float32", "shape": [2, 3], "b64": "!!!!"}),
         "inputs.input", "base64"),
    rest("b64 length not matching the shape", with_input(
        input={"dtype": "float32", "shape": [2, 4], "b64": B64_6}), "inputs.input", "byte length"),
    rest("b64 far too long (not decoded)", with_input(
        input={"dtype": "float32", "shape": [1], "b64": "A" * 400_000}), "inputs.input", "needs"),
    rest("data count not matching the shape", with_input(input=jt([1.0, 2.0, 3.0], shape=[2, 3])),
         "inputs.input", "needs 6"),
    rest("ragged nested data", with_input(input=jt([[1.0, 2.0], [3.0]], shape=[2, 2])),
         "inputs.input", "not a regular array"),
    rest("string in data", with_input(input=jt(["1.0", 2.0], shape=[2])), "inputs.input", "'1.0'"),
    rest("null in data", with_input(input={"dtype": "float32", "shape": [2], "data": [1.0, None]}),
         "inputs.input", "numbers only"),
    rest("bool in data", with_input(input={"dtype": "float32", "shape": [2], "data": [True, 1.0]}),
         "inputs.input", "numbers only"),
    rest("nesting deeper than rank 32", with_input(input={"dtype": "float32", "shape": [1],
                                                          "data": json.loads("[" * 40 + "1" + "]" * 40)}),
         "inputs.input", "deeper"),
    rest("NaN token", with_input(input=jt(["NaN", 1, 2, 3, 4, 5], shape=[2, 3])), "inputs.input",
         "finite"),
    rest("-Infinity token", with_input(target=jt([0, 0, 0, 0, 0, "-Infinity"], shape=[2, 3])),
         "inputs.target", "finite"),
    rest("int64 value beyond int64", body({**CE_JSON, "target": jt([0, 1, 2, 2**63], "int64")}),
         "inputs.target", "integers only", loss="softmax_cross_entropy"),
    rest("float in int64 data", body({**CE_JSON, "target": jt([0, 1, 2.5, 3], "int64")}),
         "inputs.target", "integers only", loss="softmax_cross_entropy"),
    rest("class index equal to C", body({**CE_JSON, "target": jt([0, 1, 5, 3], "int64")}),
         "inputs.target", "got 5", loss="softmax_cross_entropy"),
    rest("negative class index", body({**CE_JSON, "target": jt([0, -7, 1, 3], "int32")}),
         "inputs.target", "got -7", loss="nll_loss"),
    rest("mixed float dtypes", with_input(target=jt(np.zeros((2, 3)), "float64")), "inputs.target",
         "mixed"),
    rest("empty tensor", body({"input": jt([], shape=[0]), "target": jt([], shape=[0])}),
         "inputs.input", "non-empty"),
    rest("shape over the element limit", body({
        "input": {"dtype": "float32", "shape": [60_000], "b64": base64.b64encode(bytes(240_000)).decode()},
        "target": {"dtype": "float32", "shape": [60_000], "b64": base64.b64encode(bytes(240_000)).decode()}}),
        "inputs", "exceed the limit"),
    rest("unknown input", with_input(bogus=jt([1.0])), "inputs.bogus", "no input"),
    rest("params not an object", body(params=[1]), "params", "object"),
    rest("parameter an array", body(params={"margin": [1]}), "params.margin", "got an array",
         loss="hinge_embedding"),
    rest("parameter of the wrong type", body(params={"beta": "wide"}), "params.beta", "real number",
         loss="smooth_l1"),
    rest("float where an integer is required", body(params={"ignore_index": 1.5}, inputs=CE_JSON),
         "params.ignore_index", "integer", loss="softmax_cross_entropy"),
    rest("integer parameter beyond int64", body(params={"ignore_index": 2**64}, inputs=CE_JSON),
         "params.ignore_index", "expected an integer", loss="softmax_cross_entropy"),
    rest("unknown parameter", body(params={"bogus": 1}), "params.bogus", "no parameter"),
    rest("grads not a list of names", body(grads=[1, 2]), "grads", "names"),
    rest("grads naming an unknown input", body(grads=["weight"]), "grads", "weight"),
    rest("request_id a number", body(request_id=7), "request_id", "string"),
    rest("unknown output_format", body(output_format="xml"), "output_format", "xml"),
    rest("unknown loss in the path", body(), None, "unknown loss", status=404, code="NOT_FOUND",
         loss="msee"),
    rest("wrong content type", body(), None, "content type", status=415,
         headers={"Content-Type": "text/plain"}),
    rest("JSON declared in another charset", body(), None, "content type", status=415,
         headers={"Content-Type": "application/json; charset=latin-1"}),
    rest("body over --max-message-bytes", b'{"inputs": {"input": {"dtype": "float32", "data": ['
         + b"0," * (3 * MIB) + b"0]}}}", None, "max-message-bytes", status=413, code="RESOURCE_EXHAUSTED"),
]


def send_rest(http: httpx.Client, case: Case) -> Outcome:
    response = http.post(f"/v1/losses/{case.loss}:evaluate", content=case.payload, headers=case.headers)
    return rest_outcome(response.status_code, response.content)


def rest_outcome(status: int, content: bytes) -> Outcome:
    try:
        error = json.loads(content)["error"]
    except (ValueError, KeyError, TypeError):
        return Outcome("OK" if status == 200 else "?", content[:200].decode("latin-1"), [], status)
    return Outcome(error["code"], error["message"], [v["field"] for v in error["field_violations"]],
                   status)


def send_huge_rest(http_base: str) -> Outcome:
    """Headers declaring a 300 MiB body and its first MiB; the server must answer 413 without
    reading the rest (raw socket: an HTTP client would insist on sending it all)."""
    url = urlsplit(http_base)
    with socket.create_connection((url.hostname, url.port), timeout=60) as s:
        head = (f"POST /v1/losses/mse:evaluate HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {300 * MIB}\r\n\r\n")
        s.sendall(head.encode() + b'{"inputs": {"input": ' + b" " * MIB)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.find(b"\r\n\r\n") + 4 + _length(data):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head_text, _, content = data.partition(b"\r\n\r\n")
    status = int(head_text.split(b" ", 2)[1])
    return rest_outcome(status, content)


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30


HUGE_REST = Case("a 300 MiB body (by Content-Length)", "rest", "RESOURCE_EXHAUSTED", None,
                 "max-message-bytes", status=413)


def check(case: Case, outcome: Outcome) -> list[str]:
    """What is wrong with ``outcome`` for ``case`` (empty: as specified)."""
    problems = []
    if outcome.code != case.code:
        problems.append(f"code {outcome.code}, expected {case.code}")
    if case.transport == "rest" and outcome.status != case.status:
        problems.append(f"HTTP {outcome.status}, expected {case.status}")
    if case.field is not None:
        if case.field not in outcome.fields:
            problems.append(f"field violations {outcome.fields}, expected {case.field!r}")
        if not outcome.message.startswith(case.field):
            problems.append(f"message {outcome.message!r} does not name {case.field!r}")
    if case.words.lower() not in outcome.message.lower():
        problems.append(f"message {outcome.message[:300]!r} lacks {case.words!r}")
    return problems


__all__ = ["Case", "GRPC_CASES", "REST_CASES", "HUGE_GRPC", "HUGE_REST", "check", "rss_bytes",
           "send_grpc", "send_rest", "send_huge_grpc", "send_huge_rest"]
