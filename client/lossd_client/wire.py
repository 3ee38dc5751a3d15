"""Protobuf wire format of the tensor-carrying lossd messages, with each tensor's bytes
copied at most once.

Encoding: a message is the concatenation of its serialized fields, so a ``Tensor`` is a
few header bytes (dtype, packed shape, the data field's tag and length) followed by the
array's own buffer; ``b"".join`` copies each array once, straight into the output, where
filling a generated message and serializing it copies it three times.

Decoding: :func:`scan` walks only the fields on the paths to tensor ``data`` fields (the
``*_PATHS`` trees), keeps each data field as a zero-copy memoryview into the received
bytes and rebuilds the message with every such field replaced by an 8-byte reference
(its index, little-endian). The generated parser then parses that small message, so it
still validates everything else and applies protobuf's rules (unknown fields, fields in
any order, repeated fields, split and merged sub-messages, last-one-wins scalars);
:func:`resolve` maps a parsed reference back to its memoryview. On anything the scanner
does not handle (groups, bad wire types, truncated varints or lengths) it returns None
and the caller parses the whole message the ordinary way, which then reports the error.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np

Piece = Union[bytes, memoryview]
#: a tree of field numbers from a message to its tensor ``data`` fields (DATA leaves)
Paths = Mapping[int, Any]

DATA = "data"
TENSOR_PATHS: Paths = {3: DATA}
REQUEST_PATHS: Paths = {2: {2: TENSOR_PATHS}}  # EvaluateRequest.inputs[].tensor.data
RESPONSE_PATHS: Paths = {1: TENSOR_PATHS,  # EvaluateResponse.loss, grads[].value, outputs[].value
                         2: {2: TENSOR_PATHS}, 3: {2: TENSOR_PATHS}}
STREAM_RESPONSE_PATHS: Paths = {1: RESPONSE_PATHS}  # EvaluateStreamResponse.response
REF_BYTES = 8

#: messages smaller than this are parsed the ordinary way: copying their tensors costs
#: less than scanning them in Python (an in-process A/B: about even at 128 KiB)
ZERO_COPY_MIN_BYTES = 256 * 1024
#: messages whose tensors hold at least this many bytes are written piecewise; smaller ones
#: through the generated message (faster there; about even at 64 KiB)
PIECEWISE_MIN_BYTES = 64 * 1024

LEN = 2


class Unusual(Exception):
    """The scanner met something it leaves to the generated parser."""


# ---------------------------------------------------------------------------- encoding

_ONE_BYTE = [bytes((i,)) for i in range(0x80)]


def varint(value: int) -> bytes:
    """The base-128 varint of an int (a negative int64 as its two's complement)."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def key(number: int, wire_type: int) -> bytes:
    return varint((number << 3) | wire_type)


def length_delimited(number: int, pieces: list[Piece]) -> list[Piece]:
    """Field ``number`` holding the concatenation of ``pieces`` (a sub-message or bytes)."""
    size = len(pieces[0]) if len(pieces) == 1 else sum([len(p) for p in pieces])
    return [key(number, LEN), varint(size), *pieces]


def string_field(number: int, text: str) -> list[Piece]:
    """A string field (omitted when empty, as proto3 does)."""
    return length_delimited(number, [text.encode("utf-8")]) if text else []


def array_bytes(array: np.ndarray) -> memoryview:
    """A byte view of ``array`` in little-endian C order (copies only a strided or
    big-endian array)."""
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return little.reshape(-1).view(np.uint8).data


_DTYPE_KEY, _SHAPE_KEY, _DATA_KEY = b"\x08", b"\x12", b"\x1a"


def tensor_pieces(array: np.ndarray, wire_dtype: int) -> list[Piece]:
    """The fields of a Tensor holding ``array`` (``wire_dtype`` checked by the caller):
    dtype, packed shape, data; proto3 leaves out the empty ones."""
    out: list[Piece] = [_DTYPE_KEY, varint(wire_dtype)] if wire_dtype else []
    if array.ndim:
        shape = b"".join([varint(d) for d in array.shape])
        out += [_SHAPE_KEY, varint(len(shape)), shape]
    if array.size:
        data = array_bytes(array)
        out += [_DATA_KEY, varint(len(data)), data]
    return out


def named_tensor(number: int, name: str, array: np.ndarray, wire_dtype: int) -> list[Piece]:
    """Field ``number`` holding ``{1: name, 2: Tensor}``: a NamedTensor or a map entry."""
    return length_delimited(number, [*string_field(1, name),
                                     *length_delimited(2, tensor_pieces(array, wire_dtype))])


def join(pieces: Iterable[Piece]) -> bytes:
    return b"".join(pieces)


# ---------------------------------------------------------------------------- decoding

def _varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    if pos < end and buf[pos] < 0x80:  # one byte: most tags and small lengths
        return buf[pos], pos + 1
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise Unusual("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _rebuild(buf: Any, pos: int, end: int, paths: Paths, views: list[memoryview],
             out: list[Piece]) -> None:
    """Append to ``out`` the pieces of message ``buf[pos:end]`` with the data fields on
    ``paths`` replaced by references to ``views``; the other fields are copied verbatim."""
    copied = pos  # start of the run of fields not yet appended
    while pos < end:
        start = pos
        tag, pos = _varint(buf, pos, end)
        tag_end = pos
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == LEN:
            size, body = _varint(buf, pos, end)
            pos = body + size
            if pos > end:
                raise Unusual("length past the end")
            sub = paths.get(number) if number else None
            if sub is not None:
                out.append(buf[copied:start])
                copied = pos
                if sub is DATA:
                    out += [buf[start:tag_end], varint(REF_BYTES), len(views).to_bytes(REF_BYTES, "little")]
                    views.append(buf[body:pos])
                else:
                    inner: list[Piece] = []
                    _rebuild(buf, body, pos, sub, views, inner)
                    out += [buf[start:tag_end], varint(sum([len(p) for p in inner])), *inner]
        else:  # groups (3, 4) and the invalid wire types 6, 7
            raise Unusual(f"wire type {wire}")
        if pos > end:
            raise Unusual("field past the end")
    out.append(buf[copied:end])


def scan(raw: bytes, paths: Paths) -> tuple[bytes, list[memoryview]] | None:
    """``(message with references, data views)``, or None when the message is unusual."""
    view = memoryview(raw)
    views: list[memoryview] = []
    out: list[Piece] = []
    try:
        _rebuild(view, 0, len(view), paths, views, out)
    except Unusual:
        return None
    return b"".join(out), views


def resolve(data: bytes, views: Sequence[memoryview] | None) -> Any:
    """The tensor bytes a parsed ``data`` field stands for (itself without ``views``, or
    when empty: a Tensor sent without data has no reference)."""
    if views is None or not data:
        return data
    return views[int.from_bytes(data, "little")]
