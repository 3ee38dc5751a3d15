"""The hand-written wire format (lossd_client.wire) against the generated protobuf code.

* Encoders: ``codec.request_bytes`` writes the very bytes the generated message
  serializes to; ``convert.response_pieces`` parses back to the message
  ``convert.encode_result`` builds.
* Scanner: on any message (fields in any order, unknown fields of every wire type, split
  and repeated sub-messages, repeated data fields, empty tensors), scan + generated parse
  + resolve gives exactly what the plain generated parse gives, or the scanner declines;
  arbitrary bytes never crash it, and the server's deserializer answers them with the
  same verdict as the plain parse (a Malformed request is INVALID_ARGUMENT).
"""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossd.grpc import convert
from lossd.grpc.servicer import Malformed, request_deserializer
from lossd_client import wire
from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client.codec import build_request, decode_tensor, encode_request, request_bytes
from lossd_client.errors import InvalidArgument
from lossd_client.result import EvaluateResult, parse_response

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ARRAYS = [
    np.arange(6, dtype=np.float32).reshape(2, 3),
    np.arange(24, dtype=np.float64).reshape(2, 3, 4).transpose(2, 0, 1),  # non-contiguous
    np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2],
    np.arange(5, dtype=">f4"),  # big-endian
    np.asarray(np.float32(3.5)),  # 0-d
    np.zeros((0, 3), np.int64),  # empty
    np.zeros(0, np.float32),
    np.array([-1, 2**40], np.int64),
    np.array([True, False]),
    np.arange(300, dtype=np.int32).reshape(150, 2),  # multi-byte shape varints
    np.ones((1,) * 32, np.uint8),  # the maximum rank
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{a.shape}")
@pytest.mark.parametrize("extras", [
    ({}, None, ""),
    ({"reduction": "sum", "margin": 0.5, "k": 3, "flag": True}, ["input"], "rid-1"),
    ({}, [], "é"),
])
def test_request_bytes_equal_the_generated_serialization(array, extras):
    params, grads, request_id = extras
    inputs = {"input": array, "target": array[..., ::-1] if array.ndim else array, "": array}
    expected = build_request("mse", inputs, params, grads, request_id).SerializeToString()
    assert request_bytes("mse", inputs, params, grads, request_id) == expected
    assert encode_request("mse", inputs, params, grads, request_id) == expected


def test_request_bytes_refuse_what_the_generated_path_refuses():
    with pytest.raises(InvalidArgument):
        request_bytes("mse", {"input": np.zeros(3, np.complex64)})
    with pytest.raises(InvalidArgument):
        request_bytes("mse", {"input": np.zeros(3)}, {"p": [1]})


def _result(arrays: dict[str, np.ndarray], outputs: dict[str, np.ndarray] | None = None) -> EvaluateResult:
    return EvaluateResult(loss=np.asarray(np.float32(1.25)), grads=arrays, outputs=outputs or {},
                          request_id="ignored", loss_id="mse")


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{a.shape}")
def test_response_pieces_parse_to_the_generated_response(array):
    result = _result({"input": array, "t": array}, {"aux": array})
    raw = wire.join(convert.response_pieces(result, "rid"))
    native = array.astype(array.dtype.newbyteorder("="))  # encode_result would send big-endian
    expected = convert.encode_result(_result({"input": native, "t": native}, {"aux": native}))
    expected.request_id = "rid"
    assert pb.EvaluateResponse.FromString(raw) == expected
    stream = wire.join(convert.stream_response_pieces(convert.response_pieces(result, "rid"), "rid"))
    assert pb.EvaluateStreamResponse.FromString(stream) == pb.EvaluateStreamResponse(
        response=expected, request_id="rid")
    back = EvaluateResult.from_parsed(parse_response(raw))
    np.testing.assert_array_equal(back.grads["input"], array)
    assert back.grads["input"].dtype == array.dtype.newbyteorder("<")


@pytest.mark.parametrize("n", [3, wire.PIECEWISE_MIN_BYTES])  # generated path, piecewise path
def test_encode_response_both_paths(n):
    result = _result({"input": np.arange(n, dtype=np.float32)})
    expected = convert.encode_result(result)
    expected.request_id = "rid"
    data, size = convert.encode_response(result, "rid")
    assert pb.EvaluateResponse.FromString(data) == expected and size == len(data)
    data, size = convert.encode_response(result, "rid", stream=True)
    assert pb.EvaluateStreamResponse.FromString(data) == pb.EvaluateStreamResponse(
        response=expected, request_id="rid")
    assert size == expected.ByteSize()


# ------------------------------------------------------------------ raw message builder

def _field(number: int, wire_type: int, payload: bytes) -> bytes:
    return wire.key(number, wire_type) + payload


def _len(number: int, body: bytes) -> bytes:
    return _field(number, 2, wire.varint(len(body)) + body)


UNKNOWN = st.one_of(
    st.builds(lambda n, v: _field(n, 0, wire.varint(v)), st.integers(6, 40), st.integers(0, 2**64 - 1)),
    st.builds(lambda n, b: _field(n, 1, b), st.integers(6, 40), st.binary(min_size=8, max_size=8)),
    st.builds(lambda n, b: _field(n, 5, b), st.integers(6, 40), st.binary(min_size=4, max_size=4)),
    st.builds(lambda n, b: _len(n, b), st.integers(6, 40), st.binary(max_size=20)),
)


@st.composite
def tensor_body(draw: Any) -> bytes:
    fields = [_field(1, 0, wire.varint(draw(st.integers(0, 12))))] if draw(st.booleans()) else []
    dims = draw(st.lists(st.integers(0, 300), max_size=4))
    if dims and draw(st.booleans()):  # packed
        fields.append(_len(2, b"".join(wire.varint(d) for d in dims)))
    else:
        fields += [_field(2, 0, wire.varint(d)) for d in dims]
    fields += [_len(3, draw(st.binary(max_size=64))) for _ in range(draw(st.integers(0, 2)))]
    fields += draw(st.lists(UNKNOWN, max_size=2))
    return b"".join(draw(st.permutations(fields)))


@st.composite
def request_raw(draw: Any) -> bytes:
    fields = [_len(1, draw(st.sampled_from([b"mse", b"l1", b""])))]
    for _ in range(draw(st.integers(0, 3))):
        inner = [_len(1, draw(st.sampled_from([b"input", b"target", b""])))]
        inner += [_len(2, draw(tensor_body())) for _ in range(draw(st.integers(0, 2)))]  # split tensors
        inner += draw(st.lists(UNKNOWN, max_size=1))
        fields.append(_len(2, b"".join(draw(st.permutations(inner)))))
    if draw(st.booleans()):
        fields.append(build_request("x", {}, {"reduction": "sum"}).SerializeToString())
    if draw(st.booleans()):
        fields.append(_len(4, _len(1, b"input")))
    fields.append(_len(5, draw(st.binary(max_size=6))))  # may be invalid UTF-8
    fields += draw(st.lists(UNKNOWN, max_size=2))
    return b"".join(draw(st.permutations(fields)))


@st.composite
def response_raw(draw: Any) -> bytes:
    fields = [_len(1, draw(tensor_body())) for _ in range(draw(st.integers(0, 2)))]
    for number in (2, 3):
        for _ in range(draw(st.integers(0, 2))):
            key = _len(1, draw(st.sampled_from([b"input", b"target"])))
            fields.append(_len(number, b"".join(draw(st.permutations(
                [key, *[_len(2, draw(tensor_body())) for _ in range(draw(st.integers(0, 2)))]])))))
    fields += [_len(4, b"rid"), _len(5, b"mse"), *draw(st.lists(UNKNOWN, max_size=2))]
    return b"".join(draw(st.permutations(fields)))


def _resolved_request(message: pb.EvaluateRequest, views: list[memoryview]) -> pb.EvaluateRequest:
    for item in message.inputs:
        if item.HasField("tensor"):
            item.tensor.data = bytes(wire.resolve(item.tensor.data, views))
    return message


def _resolved_response(message: pb.EvaluateResponse, views: list[memoryview]) -> pb.EvaluateResponse:
    tensors = [message.loss] if message.HasField("loss") else []
    tensors += list(message.grads.values()) + list(message.outputs.values())
    for tensor in tensors:
        tensor.data = bytes(wire.resolve(tensor.data, views))
    return message


def _same_as_plain(raw: bytes, paths: wire.Paths, cls: Any, resolved: Any) -> None:
    try:
        plain = cls.FromString(raw)
    except DecodeError:
        plain = None
    scanned = wire.scan(raw, paths)
    if scanned is None:
        return
    try:
        message = cls.FromString(scanned[0])
    except DecodeError:
        assert plain is None
        return
    assert plain is not None and resolved(message, scanned[1]) == plain


@FUZZ
@given(request_raw())
def test_scanned_requests_parse_exactly_like_the_plain_parse(raw: bytes) -> None:
    assert wire.scan(raw, wire.REQUEST_PATHS) is not None  # nothing unusual in these
    _same_as_plain(raw, wire.REQUEST_PATHS, pb.EvaluateRequest, _resolved_request)


@FUZZ
@given(response_raw())
def test_scanned_responses_parse_exactly_like_the_plain_parse(raw: bytes) -> None:
    assert wire.scan(raw, wire.RESPONSE_PATHS) is not None
    _same_as_plain(raw, wire.RESPONSE_PATHS, pb.EvaluateResponse, _resolved_response)


@FUZZ
@given(request_raw(), st.data())
def test_mutated_requests_never_crash_the_scanner(raw: bytes, data: Any) -> None:
    buf = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        if buf:
            buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    mutated = bytes(buf[:data.draw(st.integers(0, len(buf)))])
    _same_as_plain(mutated, wire.REQUEST_PATHS, pb.EvaluateRequest, _resolved_request)
    _deserializer_verdict(mutated)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_scanner(raw: bytes) -> None:
    _same_as_plain(raw, wire.REQUEST_PATHS, pb.EvaluateRequest, _resolved_request)
    _same_as_plain(raw, wire.RESPONSE_PATHS, pb.EvaluateResponse, _resolved_response)
    _deserializer_verdict(raw)


def _deserializer_verdict(raw: bytes) -> None:
    """The server's deserializer, scanning every size, agrees with the plain parse; the
    decoder raises nothing but InvalidArgument."""
    original = wire.ZERO_COPY_MIN_BYTES
    wire.ZERO_COPY_MIN_BYTES = 0
    try:
        received = request_deserializer(1 << 20)(raw)
    finally:
        wire.ZERO_COPY_MIN_BYTES = original
    try:
        plain = pb.EvaluateRequest.FromString(raw)
    except DecodeError:
        assert isinstance(received, Malformed)
        return
    assert isinstance(received, convert.Received) and received.size == len(raw)
    try:
        inputs, _, _ = convert.decode_request(received.message, received.take_views())
    except InvalidArgument:
        return
    for item in plain.inputs:
        assert inputs[item.name].tobytes() == item.tensor.data


def test_groups_and_bad_wire_types_are_left_to_the_plain_parser():
    assert wire.scan(_field(9, 3, b"") + _field(9, 4, b""), wire.REQUEST_PATHS) is None
    assert wire.scan(_field(9, 6, b""), wire.REQUEST_PATHS) is None
    assert wire.scan(_len(2, b"\x12\x05ab"), wire.REQUEST_PATHS) is None  # length past the end
    assert wire.scan(b"\x08\xff\xff", wire.REQUEST_PATHS) is None  # truncated varint


def test_large_requests_decode_zero_copy_from_the_received_bytes():
    x = np.arange(wire.ZERO_COPY_MIN_BYTES, dtype=np.float32)
    raw = request_bytes("mse", {"input": x, "target": x[::-1]})
    received = convert.parse_request(raw)
    assert received.views is not None
    inputs, _, _ = convert.decode_request(received.message, received.take_views())
    assert received.views is None
    np.testing.assert_array_equal(inputs["target"], x[::-1])
    assert not inputs["input"].flags.writeable
    assert np.shares_memory(inputs["input"], np.frombuffer(raw, np.uint8))


def test_tensor_without_data_decodes_as_empty():
    raw = _len(2, _len(1, b"x") + _len(2, b"\x08\x01\x12\x01\x00")) + b"\x00" * 0
    scanned = wire.scan(raw, wire.REQUEST_PATHS)
    assert scanned is not None
    message = pb.EvaluateRequest.FromString(scanned[0])
    assert decode_tensor(message.inputs[0].tensor, "x", scanned[1]).shape == (0,)


@pytest.mark.parametrize("shape, nbytes, error", [
    ((), 4, ""), ((3,), 12, ""), ((0,), 0, ""), ((2, 3), 24, ""),
    ((), 8, "does not match shape"), ((3,), 8, "does not match shape"), ((0,), 4, "does not match shape"),
    ((-2,), 8, "negative dimension"), ((2, -3), 24, "negative dimension"),
    ((1,) * 33, 4, "exceeds the maximum"),
])
def test_decode_tensor_scalars_vectors_and_errors(shape, nbytes, error):
    """The length-check fast path for 0-d and 1-d tensors and the general path agree:
    same arrays (read-only views), same errors."""
    data = np.arange(nbytes // 4, dtype="<f4").tobytes()
    tensor = pb.Tensor(dtype=pb.DTYPE_FLOAT32, shape=shape, data=data)
    if error:
        with pytest.raises(InvalidArgument, match=error):
            decode_tensor(tensor, "t")
        return
    array = decode_tensor(tensor, "t")
    assert array.shape == shape and array.dtype == np.float32 and not array.flags.writeable
    np.testing.assert_array_equal(array.reshape(-1), np.arange(nbytes // 4, dtype=np.float32))


def test_evaluate_large_and_small_through_the_server(client):
    for n in (8, wire.PIECEWISE_MIN_BYTES // 4 + 1, wire.ZERO_COPY_MIN_BYTES):  # each path
        x = np.linspace(-1, 1, n, dtype=np.float32)
        y = x[::-1].copy()
        result = client.evaluate("mse", {"input": x, "target": y}, {"reduction": "sum"})
        np.testing.assert_allclose(result.loss, np.sum((x - y) ** 2), rtol=1e-5)
        np.testing.assert_allclose(result.grads["input"], 2 * (x - y), rtol=1e-5)
        with client.stream() as stream:
            again = stream.evaluate("mse", {"input": x, "target": y}, {"reduction": "sum"})
        np.testing.assert_array_equal(again.grads["target"], result.grads["target"])


def test_unavailable_is_retried_by_the_sdk():
    """A fake server answering UNAVAILABLE twice, then a response: the SDK's own retry
    (grpc's channel retry is off for Evaluate) gets the result in the third attempt."""
    from concurrent.futures import ThreadPoolExecutor

    from lossd_client import LossClient
    from lossd_client.errors import Unavailable

    calls = []
    response = wire.join(convert.response_pieces(_result({"input": np.ones(2, np.float32)}), "r"))

    def evaluate(request: bytes, context: grpc.ServicerContext) -> bytes:
        calls.append(len(request))
        if len(calls) % 3:
            context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        return response

    server = grpc.server(ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "lossd.v1.LossService", {"Evaluate": grpc.unary_unary_rpc_method_handler(evaluate)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with LossClient(f"127.0.0.1:{port}", timeout=10) as client:
            result = client.evaluate("mse", {"input": np.ones(2, np.float32)})
            assert len(calls) == 3 and result.grads["input"].tolist() == [1.0, 1.0]
        with LossClient(f"127.0.0.1:{port}", timeout=10, retries=1) as client:
            with pytest.raises(Unavailable):
                client.evaluate("mse", {"input": np.ones(2, np.float32)})
    finally:
        server.stop(None)
