"""Conversion between NumPy arrays and lossd wire messages (tensors and parameters).

Tensors travel as raw little-endian C-order bytes; decoding is ``np.frombuffer`` (zero
copy, read-only view). The dtype mapping is one table and its inverse.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence, cast

import numpy as np

from lossd_client import wire
from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client.errors import InvalidArgument

#: wire dtype -> NumPy dtype (little-endian). bfloat16 has no NumPy dtype.
WIRE_TO_NUMPY: dict[int, np.dtype] = {
    pb.DTYPE_FLOAT32: np.dtype("<f4"),
    pb.DTYPE_FLOAT64: np.dtype("<f8"),
    pb.DTYPE_INT32: np.dtype("<i4"),
    pb.DTYPE_INT64: np.dtype("<i8"),
    pb.DTYPE_FLOAT16: np.dtype("<f2"),
    pb.DTYPE_INT8: np.dtype("i1"),
    pb.DTYPE_UINT8: np.dtype("u1"),
    pb.DTYPE_BOOL: np.dtype("?"),
}
#: NumPy dtype (native byte order normalised) -> wire dtype.
NUMPY_TO_WIRE: dict[np.dtype, int] = {dt: wire for wire, dt in WIRE_TO_NUMPY.items()}

#: dtype names as used in messages, schemas and REST.
DTYPE_NAMES: dict[int, str] = {
    pb.DTYPE_FLOAT32: "float32", pb.DTYPE_FLOAT64: "float64", pb.DTYPE_INT32: "int32",
    pb.DTYPE_INT64: "int64", pb.DTYPE_FLOAT16: "float16", pb.DTYPE_BFLOAT16: "bfloat16",
    pb.DTYPE_INT8: "int8", pb.DTYPE_UINT8: "uint8", pb.DTYPE_BOOL: "bool",
}
DTYPE_BY_NAME: dict[str, int] = {name: wire for wire, name in DTYPE_NAMES.items()}

MAX_RANK = 32


def wire_dtype(array: np.ndarray, field: str = "tensor") -> int:
    """The wire dtype of ``array`` (InvalidArgument when it has none)."""
    wire = NUMPY_TO_WIRE.get(array.dtype.newbyteorder("<"))
    if wire is None:
        raise InvalidArgument.field(
            field, f"dtype {array.dtype} cannot be sent; expected float32, float64, int32 or int64")
    return wire


def encode_tensor(value: Any, field: str = "tensor") -> pb.Tensor:
    """Encode an array-like as a Tensor; float32 stays float32 (no silent upcast)."""
    tensor = pb.Tensor()
    fill_tensor(tensor, value, field)
    return tensor


def fill_tensor(tensor: pb.Tensor, value: Any, field: str = "tensor") -> None:
    """Write an array-like into ``tensor`` in place (a field of a message being built).

    Filling in place saves the deep copy that ``message.add(tensor=Tensor(...))`` makes:
    the bytes are copied once by ``tobytes`` and once into the message, never a third time.
    """
    array = np.asarray(value)
    tensor.dtype = cast(Any, wire_dtype(array, field))
    tensor.shape.extend(array.shape)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    tensor.data = little.tobytes()  # C order, one copy even for a non-contiguous view


def check_extent(shape: tuple[int, ...], itemsize: int, field: str) -> None:
    """InvalidArgument unless NumPy can hold ``shape``: the product of its dimensions, zeros
    counted as one, times ``itemsize`` must fit in int64 (``(0, 2**62, 2**62)`` is empty
    but still no valid NumPy shape)."""
    extent = itemsize
    for d in shape:
        extent *= max(d, 1)
    if extent > 2**63 - 1:
        raise InvalidArgument.field(field, f"shape {list(shape)} is too large: its dimensions "
                                           f"multiply past the int64 range")


def decode_tensor(tensor: pb.Tensor, field: str = "tensor",
                  views: Sequence[memoryview] | None = None) -> np.ndarray:
    """Decode a Tensor as a read-only NumPy view of its bytes (zero copy). ``views``: the
    data views of a message parsed by :func:`lossd_client.wire.scan` (``data`` holds a
    reference into them).

    Raises InvalidArgument naming ``field`` when the dtype is unknown, a dimension is
    negative, the element count overflows, or the byte length does not match the shape.
    """
    dtype = WIRE_TO_NUMPY.get(tensor.dtype)
    if dtype is None:
        name = DTYPE_NAMES.get(tensor.dtype, f"enum value {tensor.dtype}")
        if tensor.dtype == pb.DTYPE_UNSPECIFIED:
            name = "DTYPE_UNSPECIFIED"
        raise InvalidArgument.field(
            field, f"dtype {name} is not supported; expected float32, float64, int32 or int64")
    # read once: each read of a bytes field copies it
    data = tensor.data if views is None else wire.resolve(tensor.data, views)
    shape = tuple(tensor.shape)
    if len(shape) <= 1:  # the common vectors and scalars: a length check is all it takes
        if len(data) == (shape[0] if shape else 1) * dtype.itemsize:
            array = np.frombuffer(data, dtype)
            return array if shape else array.reshape(())
    elif len(shape) > MAX_RANK:
        raise InvalidArgument.field(field, f"rank {len(shape)} exceeds the maximum {MAX_RANK}")
    if shape and min(shape) < 0:
        raise InvalidArgument.field(field, f"shape {list(shape)} has a negative dimension")
    count = math.prod(shape)
    if count == 0:  # an overflowing non-empty shape fails the byte-length check below
        check_extent(shape, dtype.itemsize, field)
    expected = count * dtype.itemsize
    got = len(data)
    if expected != got:
        raise InvalidArgument.field(
            field, f"byte length {got} does not match shape {list(shape)} of "
                   f"{DTYPE_NAMES[tensor.dtype]} (expected {expected} bytes)")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def encode_param(value: Any, field: str = "param") -> pb.ParamValue:
    """Encode a Python scalar as a typed ParamValue (bool before int)."""
    if isinstance(value, (bool, np.bool_)):
        return pb.ParamValue(bool_value=bool(value))
    if isinstance(value, (int, np.integer)):
        return pb.ParamValue(int_value=int(value))
    if isinstance(value, (float, np.floating)):
        return pb.ParamValue(double_value=float(value))
    if isinstance(value, str):
        return pb.ParamValue(string_value=value)
    raise InvalidArgument.field(
        field, f"a parameter must be a bool, int, float or str, got {type(value).__name__}")


def decode_param(value: pb.ParamValue) -> bool | int | float | str | None:
    """The Python value of a ParamValue (None when no kind is set)."""
    kind = value.WhichOneof("kind")
    return None if kind is None else getattr(value, kind)


def build_request(loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None,
                  grads: Any = None, request_id: str = "") -> pb.EvaluateRequest:
    """An EvaluateRequest from Python values (``grads=None``: every differentiable input)."""
    request = pb.EvaluateRequest(loss=loss, request_id=request_id)
    for name, value in inputs.items():
        fill_tensor(request.inputs.add(name=name).tensor, value, f"inputs.{name}")
    for name, value in (params or {}).items():
        request.params.add(name=name, value=encode_param(value, f"params.{name}"))
    if grads is not None:
        if isinstance(grads, str):
            grads = [grads]
        request.grads.SetInParent()
        request.grads.names.extend(list(grads))
    return request


def encode_request(loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None,
                   grads: Any = None, request_id: str = "") -> bytes:
    """The serialized EvaluateRequest: through the generated message when small (faster
    there), written directly by :func:`request_bytes` when large (fewer copies)."""
    arrays = {name: np.asarray(value) for name, value in inputs.items()}
    if sum(a.nbytes for a in arrays.values()) < wire.PIECEWISE_MIN_BYTES:
        return build_request(loss, arrays, params, grads, request_id).SerializeToString()
    return request_bytes(loss, arrays, params, grads, request_id)


def request_bytes(loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None,
                  grads: Any = None, request_id: str = "") -> bytes:
    """The serialized EvaluateRequest :func:`build_request` makes, written directly: each
    array is copied once, into the output (see :mod:`lossd_client.wire`)."""
    pieces: list[wire.Piece] = wire.string_field(1, loss)
    for name, value in inputs.items():
        field = f"inputs.{name}"
        array = np.asarray(value)
        pieces += wire.named_tensor(2, name, array, wire_dtype(array, field))
    for name, value in (params or {}).items():
        param = pb.Param(name=name, value=encode_param(value, f"params.{name}"))
        pieces += wire.length_delimited(3, [param.SerializeToString()])
    if grads is not None:
        names = [grads] if isinstance(grads, str) else list(grads)
        pieces += wire.length_delimited(4, [pb.GradSelection(names=names).SerializeToString()])
    pieces += wire.string_field(5, request_id)
    return wire.join(pieces)
