"""JSON <-> NumPy for the REST front: tensors as lists or base64, requests and responses.

A tensor is ``{"dtype", "shape", "data"}`` (``data`` a flat or nested list of numbers) or
``{"dtype", "shape", "b64"}`` (base64 of the raw little-endian C-order bytes). The b64
form goes ``base64 -> bytes -> np.frombuffer`` and never through Python lists.

Exact floats: float64 values are written in their shortest round-trip form; float32
values are written as the float64 shortest form of the (exactly widened) float32 value,
a decimal that parses as float64 to exactly the float32 value and, parsed straight to
float32, to the same value. Non-finite values, which JSON numbers cannot hold, are the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (as in protobuf's JSON mapping).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from lossd_client.codec import MAX_RANK, check_extent
from lossd_client.errors import InvalidArgument

#: dtype names a REST tensor may declare -> little-endian NumPy dtype.
DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"), "float64": np.dtype("<f8"),
    "int32": np.dtype("<i4"), "int64": np.dtype("<i8"),
}
NAME_OF: dict[np.dtype, str] = {dt: name for name, dt in DTYPES.items()}
TOKENS: dict[str, float] = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
FORMATS = ("lists", "b64")
REQUEST_KEYS = ("inputs", "params", "grads", "request_id", "output_format")
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1


@dataclass
class Request:
    """A decoded evaluate request body."""

    inputs: dict[str, np.ndarray]
    params: dict[str, Any]
    grads: list[str] | None
    request_id: str
    output_format: str


def _bad(field: str, description: str) -> InvalidArgument:
    return InvalidArgument.field(field, description)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def parse_json(body: bytes | bytearray) -> Any:
    """The parsed body; malformed JSON, non-UTF-8 text, nesting over 1024 levels and
    numbers beyond float64 are InvalidArgument."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"request body is not valid JSON: {exc}") from None


def decode_request(doc: Any) -> Request:
    """Inputs, params, grads, request id and output format of a parsed body."""
    if not isinstance(doc, dict):
        raise InvalidArgument(f"request body must be a JSON object, got {_type_name(doc)}")
    for key in doc:
        if key not in REQUEST_KEYS:
            raise _bad(str(key), f"unknown field; expected {', '.join(REQUEST_KEYS)}")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, dict):
        raise _bad("inputs", f"expected an object of name -> tensor, got {_type_name(raw_inputs)}")
    forms: set[str] = set()
    inputs = {name: decode_tensor(t, f"inputs.{name}", forms) for name, t in raw_inputs.items()}
    params = decode_params(doc.get("params"))
    grads = doc.get("grads")
    if grads is not None:
        if not isinstance(grads, list) or not all(isinstance(g, str) for g in grads):
            raise _bad("grads", f"expected an array of input names, got {_type_name(grads)}"
                       if not isinstance(grads, list) else "expected an array of input names (strings)")
    request_id = doc.get("request_id")
    if request_id is None:
        request_id = ""
    elif not isinstance(request_id, str):
        raise _bad("request_id", f"expected a string, got {_type_name(request_id)}")
    output_format = doc.get("output_format")
    if output_format is None:
        output_format = "b64" if "b64" in forms else "lists"
    elif output_format not in FORMATS:
        raise _bad("output_format", f"expected one of {', '.join(FORMATS)}, got {output_format!r}")
    return Request(inputs, params, grads, request_id, output_format)


def decode_params(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _bad("params", f"expected an object of name -> value, got {_type_name(raw)}")
    params: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None:
            continue  # null = unset: the default applies (as an absent value in gRPC)
        if not isinstance(value, (bool, int, float, str)):
            raise _bad(f"params.{name}", f"expected a boolean, number or string, got {_type_name(value)}")
        if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
            raise _bad(f"params.{name}", f"integer {value} is outside the int64 range")
        params[name] = value
    return params


def _shape(raw: Any, field: str) -> tuple[int, ...]:
    if not isinstance(raw, list) or not all(type(d) is int for d in raw):
        raise _bad(field, "shape must be an array of non-negative integers")
    if len(raw) > MAX_RANK:
        raise _bad(field, f"rank {len(raw)} exceeds the maximum {MAX_RANK}")
    if any(d < 0 for d in raw):
        raise _bad(field, f"shape {raw} has a negative dimension")
    if any(d > INT64_MAX for d in raw):
        raise _bad(field, f"shape {raw} has a dimension beyond int64")
    return tuple(raw)


def decode_tensor(raw: Any, field: str, forms: set[str] | None = None) -> np.ndarray:
    """One tensor object as a NumPy array (b64: a read-only view of the decoded bytes)."""
    if not isinstance(raw, dict):
        raise _bad(field, f"expected a tensor object {{dtype, shape, data | b64}}, got {_type_name(raw)}")
    for key in raw:
        if key not in ("dtype", "shape", "data", "b64"):
            raise _bad(field, f"unknown tensor field {key!r}; expected dtype, shape and data or b64")
    name = raw.get("dtype")
    dtype = DTYPES.get(name) if isinstance(name, str) else None
    if dtype is None:
        raise _bad(field, f"dtype {name!r} is not supported; expected {', '.join(DTYPES)}")
    if "shape" not in raw:
        raise _bad(field, "shape is required")
    shape = _shape(raw["shape"], field)
    count = 1
    for d in shape:
        count *= d
    if count == 0:  # an overflowing non-empty shape fails the size checks below
        check_extent(shape, dtype.itemsize, field)
    has_data, has_b64 = "data" in raw, "b64" in raw
    if has_data == has_b64:
        raise _bad(field, "give exactly one of data (a list of numbers) or b64 (base64 bytes)")
    if has_b64:
        if forms is not None:
            forms.add("b64")
        return _from_b64(raw["b64"], dtype, shape, count, field, name)
    if forms is not None:
        forms.add("lists")
    return _from_list(raw["data"], dtype, shape, count, field)


def _from_b64(text: Any, dtype: np.dtype, shape: tuple[int, ...], count: int, field: str,
              name: str) -> np.ndarray:
    if not isinstance(text, str):
        raise _bad(field, f"b64 must be a base64 string, got {_type_name(text)}")
    expected = count * dtype.itemsize
    if (len(text) // 4) * 3 > expected + 3:  # clearly too long: do not decode at all
        raise _bad(field, f"b64 holds about {len(text) // 4 * 3} bytes; shape {list(shape)} of "
                          f"{name} needs {expected}")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad(field, f"b64 is not valid base64: {exc}") from None
    if len(data) != expected:
        raise _bad(field, f"byte length {len(data)} does not match shape {list(shape)} of {name} "
                          f"(expected {expected} bytes)")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _check_leaves(data: Any, depth: int, field: str) -> list:
    """Check a nested list: numbers (or non-finite tokens) only; return it with the
    tokens replaced by floats. Runs at C speed per innermost list."""
    if depth > MAX_RANK:
        raise _bad(field, f"data is nested deeper than the maximum rank {MAX_RANK}")
    kinds = set(map(type, data))
    if list in kinds:
        if kinds != {list}:
            raise _bad(field, "data mixes numbers and arrays at one level (ragged)")
        return [_check_leaves(x, depth + 1, field) for x in data]
    if kinds <= {int, float}:
        return data
    if str in kinds and kinds <= {int, float, str}:
        try:
            return [TOKENS[x] if type(x) is str else x for x in data]
        except KeyError as exc:
            raise _bad(field, f"data holds the string {exc.args[0]!r}; only numbers and "
                              f"\"NaN\", \"Infinity\", \"-Infinity\" are allowed") from None
    bad = next(k for k in kinds if k not in (int, float, str))
    raise _bad(field, f"data must hold numbers only, got {_type_name(bad())}")


def _from_list(data: Any, dtype: np.dtype, shape: tuple[int, ...], count: int, field: str) -> np.ndarray:
    if not isinstance(data, list):
        raise _bad(field, f"data must be an array of numbers, got {_type_name(data)}")
    data = _check_leaves(data, 1, field)
    try:
        if dtype.kind == "f":
            array = np.array(data, dtype=np.float64)
        else:
            array = np.array(data)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _bad(field, f"data is not a regular array: {exc}") from None
    if dtype.kind == "i":
        if array.size and array.dtype.kind not in "iu":
            raise _bad(field, f"{NAME_OF[dtype]} data must hold integers only")
        if array.size:
            info = np.iinfo(dtype)
            lo, hi = int(array.min()), int(array.max())
            if lo < info.min or hi > info.max:
                value = lo if lo < info.min else hi
                raise _bad(field, f"value {value} is outside the {NAME_OF[dtype]} range")
    if array.ndim > 1 and array.shape != shape:
        raise _bad(field, f"nested data has shape {list(array.shape)}, not the declared {list(shape)}")
    if array.size != count:
        raise _bad(field, f"data holds {array.size} values; shape {list(shape)} needs {count}")
    return array.astype(dtype, copy=False).reshape(shape)


def encode_tensor(array: np.ndarray, form: str) -> dict[str, Any]:
    """A tensor object in ``form`` ("lists": flat C-order data; "b64": raw bytes)."""
    array = np.asarray(array, order="C")
    little = array.dtype.newbyteorder("<")
    name = NAME_OF.get(little)
    if name is None:  # an auxiliary output of another dtype: widen to a supported one
        array = array.astype(np.float64 if array.dtype.kind in "fc" else np.int64)
        little = array.dtype.newbyteorder("<")
        name = NAME_OF[little]
    shape = list(array.shape)
    if form == "b64":
        raw = array.astype(little, copy=False).tobytes()
        return {"dtype": name, "shape": shape, "b64": base64.b64encode(raw).decode("ascii")}
    flat = array.reshape(-1)
    if array.dtype.kind == "f":
        flat = flat.astype(np.float64)  # exact widening: float32 values keep their value
        if not np.isfinite(flat).all():
            return {"dtype": name, "shape": shape, "data": [_token(v) for v in flat.tolist()]}
    return {"dtype": name, "shape": shape, "data": flat}


def _token(value: float) -> float | str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def dumps(doc: Any) -> bytes:
    """JSON bytes (NumPy arrays serialised natively by orjson)."""
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
