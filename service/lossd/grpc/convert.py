"""Conversion between lossd.v1 protobuf messages and the core's Python values.

The only module of the server that knows the request/response message layouts
(besides the schema conversion below). Tensors decode zero-copy (``np.frombuffer``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import json_format

from lossd.schema import all_schemas
from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client.codec import NUMPY_TO_WIRE, decode_param, decode_tensor
from lossd_client.errors import InvalidArgument
from lossd_client.result import EvaluateResult


def decode_request(request: pb.EvaluateRequest) -> tuple[dict[str, np.ndarray], dict[str, Any],
                                                         list[str] | None]:
    """Inputs, params and grads of a request; duplicate names are InvalidArgument."""
    inputs: dict[str, np.ndarray] = {}
    for item in request.inputs:
        if item.name in inputs:
            raise InvalidArgument.field(f"inputs.{item.name}", "input given more than once")
        if not item.HasField("tensor"):
            raise InvalidArgument.field(f"inputs.{item.name}", "no tensor given")
        inputs[item.name] = decode_tensor(item.tensor, f"inputs.{item.name}")
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
