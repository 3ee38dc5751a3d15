"""Conversion between lossd.v1 protobuf messages and the core's Python values.

The only module of the server that knows the request/response message layouts
(besides the schema conversion below). Tensors decode zero-copy (``np.frombuffer``, on
the received bytes themselves for requests :func:`parse_request` scanned), and responses
are written with each array copied once (:func:`response_pieces`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from lossd.schema import all_schemas
from lossd_client import wire
from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client.codec import NUMPY_TO_WIRE, decode_param, decode_tensor
from lossd_client.errors import InvalidArgument
from lossd_client.result import EvaluateResult


class Received:
    """A parsed EvaluateRequest, the views its tensors' ``data`` refer to (None: the data
    is in the message itself) and its size on the wire."""

    __slots__ = ("message", "views", "size")

    def __init__(self, message: pb.EvaluateRequest, views: list[memoryview] | None, size: int) -> None:
        self.message = message
        self.views = views
        self.size = size

    @property
    def request_id(self) -> str:
        return self.message.request_id

    @property
    def loss(self) -> str:
        return self.message.loss

    def take_views(self) -> list[memoryview] | None:
        """The views, forgotten here so the received bytes die with the arrays on them."""
        views, self.views = self.views, None
        return views


def parse_request(raw: bytes) -> Received:
    """Parse a serialized EvaluateRequest, zero-copy for tensors when it is large (raises
    DecodeError like ``FromString``)."""
    if len(raw) >= wire.ZERO_COPY_MIN_BYTES:
        scanned = wire.scan(raw, wire.REQUEST_PATHS)
        if scanned is not None:
            try:
                return Received(pb.EvaluateRequest.FromString(scanned[0]), scanned[1], len(raw))
            except DecodeError:
                pass  # the plain parse below reports it
    return Received(pb.EvaluateRequest.FromString(raw), None, len(raw))


def decode_request(request: pb.EvaluateRequest, views: Sequence[memoryview] | None = None
                   ) -> tuple[dict[str, np.ndarray], dict[str, Any], list[str] | None]:
    """Inputs, params and grads of a request; duplicate names are InvalidArgument.
    ``views``: those of a request :func:`parse_request` scanned."""
    inputs: dict[str, np.ndarray] = {}
    for item in request.inputs:
        if item.name in inputs:
            raise InvalidArgument.field(f"inputs.{item.name}", "input given more than once")
        if not item.HasField("tensor"):
            raise InvalidArgument.field(f"inputs.{item.name}", "no tensor given")
        inputs[item.name] = decode_tensor(item.tensor, f"inputs.{item.name}", views)
    params: dict[str, Any] = {}
    for param in request.params:
        if param.name in params:
            raise InvalidArgument.field(f"params.{param.name}", "parameter given more than once")
        value = decode_param(param.value)
        if value is None:
            raise InvalidArgument.field(f"params.{param.name}", "no value given")
        params[param.name] = value
    grads = list(request.grads.names) if request.HasField("grads") else None
    return inputs, params, grads


def encode_array(array: np.ndarray) -> pb.Tensor:
    """A Tensor holding ``array``'s bytes."""
    tensor = pb.Tensor()
    fill_array(tensor, array)
    return tensor


def fill_array(tensor: pb.Tensor, array: np.ndarray) -> None:
    """Write ``array`` into a Tensor field of the message being built, in place: one copy
    by ``tobytes`` and one into the message (building a Tensor and then assigning it to a
    map or message field would deep-copy the bytes once more)."""
    array = np.asarray(array)
    tensor.dtype = NUMPY_TO_WIRE[array.dtype.newbyteorder("<")]
    tensor.shape.extend(array.shape)
    tensor.data = array.tobytes()  # C order, one copy even for a non-contiguous view


def _wire_dtype(array: np.ndarray) -> int:
    return NUMPY_TO_WIRE[array.dtype.newbyteorder("<")]


def response_pieces(result: EvaluateResult, request_id: str) -> list[wire.Piece]:
    """The serialized EvaluateResponse of ``result`` as pieces to join: each array is
    copied once, by the join (the same bytes as ``encode_result``, map order aside)."""
    loss = np.asarray(result.loss)
    pieces = wire.length_delimited(1, wire.tensor_pieces(loss, _wire_dtype(loss)))
    for number, tensors in ((2, result.grads), (3, result.outputs)):
        for name, array in tensors.items():
            array = np.asarray(array)
            pieces += wire.named_tensor(number, name, array, _wire_dtype(array))
    return pieces + wire.string_field(4, request_id) + wire.string_field(5, result.loss_id)


def stream_response_pieces(response: list[wire.Piece], request_id: str) -> list[wire.Piece]:
    """An EvaluateStreamResponse holding the response ``response_pieces`` made."""
    return wire.length_delimited(1, response) + wire.string_field(3, request_id)


def encode_response(result: EvaluateResult, request_id: str, stream: bool = False) -> tuple[bytes, int]:
    """The serialized EvaluateResponse of ``result`` (wrapped in an EvaluateStreamResponse
    when ``stream``) and the size of the EvaluateResponse in it: written piecewise when
    large, through the generated message (faster for small ones) otherwise."""
    arrays = [result.loss, *result.grads.values(), *result.outputs.values()]
    if sum(np.asarray(a).nbytes for a in arrays) >= wire.PIECEWISE_MIN_BYTES:
        pieces = response_pieces(result, request_id)
        size = sum(len(p) for p in pieces)
        return wire.join(stream_response_pieces(pieces, request_id) if stream else pieces), size
    response = encode_result(result)
    response.request_id = request_id
    if stream:
        wrapped = pb.EvaluateStreamResponse(response=response, request_id=request_id)
        return wrapped.SerializeToString(), response.ByteSize()
    data = response.SerializeToString()
    return data, len(data)


def encode_result(result: EvaluateResult) -> pb.EvaluateResponse:
    response = pb.EvaluateResponse(request_id=result.request_id, loss_id=result.loss_id)
    fill_array(response.loss, result.loss)
    for k, v in result.grads.items():
        fill_array(response.grads[k], v)
    for k, v in result.outputs.items():
        fill_array(response.outputs[k], v)
    return response


_SCHEMA_TYPES = {"double": "PARAM_TYPE_DOUBLE", "int64": "PARAM_TYPE_INT64",
                 "bool": "PARAM_TYPE_BOOL", "string": "PARAM_TYPE_STRING"}
_VALUE_FIELDS = {"double": "double_value", "int64": "int_value", "bool": "bool_value",
                 "string": "string_value"}


def _schema_message(schema: dict[str, Any]) -> pb.LossSchema:
    data = dict(schema)
    data["inputs"] = [{**i, "dtypes": ["DTYPE_" + d.upper() for d in i["dtypes"]]}
                      for i in schema["inputs"]]
    params = []
    for p in schema["params"]:
        q = {k: v for k, v in p.items() if k != "default"}
        q["type"] = _SCHEMA_TYPES[p["type"]]
        if "default" in p:
            q["default_value"] = {_VALUE_FIELDS[p["type"]]: p["default"]}
        params.append(q)
    data["params"] = params
    return json_format.ParseDict(data, pb.LossSchema())


def list_losses_response(version: str) -> pb.ListLossesResponse:
    return pb.ListLossesResponse(losses=[_schema_message(s) for s in all_schemas()], version=version)
