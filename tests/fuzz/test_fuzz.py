"""In-process fuzzing of the request decoders and the validators.

Properties, for random shapes, dtypes, byte strings and parameter values:

* nothing escapes but the typed lossd errors (InvalidArgument; NotFound for an unknown
  loss), each naming a field where the input is at fault;
* no kernel runs on an invalid request: every spec's ``compute`` is wrapped to record
  its calls, and a request that fails decoding or validation has recorded none;
* a request that passes validation computes without an error.

The number of examples comes from the hypothesis profile (tests/fuzz/conftest.py).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

import grpc
import numpy as np
import orjson
import pytest
from hypothesis import assume, example, given, note
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lossd.core.evaluate import run
from lossd.core.validation import prepare
from lossd.grpc.convert import decode_request as grpc_decode
from lossd.grpc.servicer import Malformed, Oversized, checked_deserializer
from lossd.losses.registry import SPECS
from lossd.rest import codec as rest_codec
from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client.codec import MAX_RANK, WIRE_TO_NUMPY, build_request, decode_tensor
from lossd_client.errors import InvalidArgument, LossdError

MAX_ELEMENTS = 20_000
INPUT_CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
CALLS: list[str] = []
COUNTS = {"valid": 0, "invalid": 0}


@pytest.fixture(scope="module", autouse=True)
def recorded_compute() -> Iterator[None]:
    """Wrap every spec's compute to record that a kernel ran (specs are frozen dataclasses)."""
    originals = {spec.id: spec.compute for spec in SPECS}

    def wrap(spec_id: str, compute: Any) -> Any:
        def recording(call: Any) -> Any:
            CALLS.append(spec_id)
            return compute(call)
        return recording

    for spec in SPECS:
        object.__setattr__(spec, "compute", wrap(spec.id, spec.compute))
    yield
    for spec in SPECS:
        object.__setattr__(spec, "compute", originals[spec.id])
    print(f"fuzz pipeline: {COUNTS['valid']} valid, {COUNTS['invalid']} invalid requests")


def assert_typed(error: BaseException) -> None:
    """``error`` is a typed input error naming a field (or the loss, for NOT_FOUND)."""
    assert isinstance(error, LossdError), f"untyped {type(error).__name__}: {error}"
    assert error.code in INPUT_CODES, f"{error.code}: {error}"
    if isinstance(error, InvalidArgument):
        assert error.message
        for v in error.field_violations:  # "a: ..." or "a, b: ..." for a joint violation
            assert v.field in error.message.split(": ", 1)[0]


@contextlib.contextmanager
def only_typed_errors() -> Iterator[list[LossdError]]:
    caught: list[LossdError] = []
    try:
        yield caught
    except Exception as exc:  # noqa: BLE001 - the property under test
        assert_typed(exc)
        caught.append(exc)  # type: ignore[arg-type]


# ------------------------------------------------------------------ strategies

WIRE_DTYPES = st.one_of(st.sampled_from(list(pb.DType.values())), st.integers(-3, 40))
DIMS = st.one_of(st.integers(0, 6), st.integers(-3, -1), st.integers(2**31, 2**63 - 1))
SHAPES = st.lists(DIMS, max_size=MAX_RANK + 3)


@st.composite
def wire_tensors(draw: st.DrawFn) -> pb.Tensor:
    dtype = draw(WIRE_DTYPES)
    shape = draw(SHAPES)
    if draw(st.booleans()) and all(0 <= d <= 6 for d in shape):  # a matching byte length
        count = math.prod(shape)
        size = count * (WIRE_TO_NUMPY[dtype].itemsize if dtype in WIRE_TO_NUMPY else 2)
        data = draw(st.binary(min_size=size, max_size=size))
    else:
        data = draw(st.binary(max_size=64))
    return pb.Tensor(dtype=dtype, shape=shape, data=data)


PARAM_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                         st.sampled_from(["mean", "sum", "none", "batchmean", "kl", "exact", "l1"]))
NUMPY_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.uint8, np.int32, np.int64, np.bool_]


@st.composite
def mutated_requests(draw: st.DrawFn) -> tuple[str, dict[str, np.ndarray], dict[str, Any], Any]:
    """A loss's own (valid) example, then 0-3 random mutations (most make it invalid)."""
    spec = draw(st.sampled_from(SPECS))
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    examples = spec.examples(dtype)
    inputs, params = examples[draw(st.integers(0, len(examples) - 1))]
    inputs = {k: np.array(v) for k, v in inputs.items()}
    params = dict(params)
    loss = spec.id if draw(st.integers(0, 30)) else draw(st.text(max_size=12))
    grads: Any = None
    for _ in range(draw(st.integers(0, 3))):
        names = list(inputs)
        kind = draw(st.sampled_from(["drop", "add", "cast", "reshape", "poke", "int", "slice",
                                     "param", "grads"]))
        name = draw(st.sampled_from(names)) if names else "input"
        a = inputs.get(name)
        if kind == "drop" and names:
            inputs.pop(name)
        elif kind == "add":
            inputs[draw(st.sampled_from([*names, "bogus", ""]))] = np.ones(3, dtype)
        elif kind == "cast" and a is not None:
            inputs[name] = a.astype(draw(st.sampled_from(NUMPY_DTYPES)))
        elif kind == "reshape" and a is not None:
            shape = draw(st.lists(st.integers(0, 5), max_size=4))
            inputs[name] = draw(hnp.arrays(a.dtype, shape, elements=_elements(a.dtype)))
        elif kind == "poke" and a is not None and a.size and a.dtype.kind == "f":
            value = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e308, -1e30, -1.0, 0.0, 2.0]))
            a = a.copy()
            a.reshape(-1)[draw(st.integers(0, a.size - 1))] = value
            inputs[name] = a
        elif kind == "int" and a is not None and a.size and a.dtype.kind in "iu":
            a = a.copy()
            a.reshape(-1)[draw(st.integers(0, a.size - 1))] = draw(
                st.integers(int(np.iinfo(a.dtype).min), int(np.iinfo(a.dtype).max)))
            inputs[name] = a
        elif kind == "slice" and a is not None and a.ndim and a.shape[0] > 1:
            inputs[name] = a[1:]
        elif kind == "param":
            pname = draw(st.sampled_from([p.name for p in spec.all_params] + ["bogus"]))
            value = draw(PARAM_VALUES)
            if value is None:
                params.pop(pname, None)
            else:
                params[pname] = value
        elif kind == "grads":
            grads = draw(st.lists(st.sampled_from([*names, "bogus"]), max_size=3))
    return loss, inputs, params, grads


def _elements(dtype: np.dtype) -> st.SearchStrategy:
    if dtype.kind == "f":
        return st.floats(-10, 10, width=32 if dtype.itemsize <= 4 else 64)
    if dtype.kind == "b":
        return st.booleans()
    return st.integers(0 if dtype.kind == "u" else -2, 12)


def pipeline(loss: str, inputs: dict[str, Any], params: dict[str, Any], grads: Any) -> bool:
    """prepare, then run; True when the request was valid (and computed)."""
    CALLS.clear()
    try:
        call = prepare(loss, inputs, params, grads, "fuzz", MAX_ELEMENTS)
    except Exception as exc:  # noqa: BLE001 - the property under test
        assert_typed(exc)
        assert CALLS == [], f"a kernel ran on an invalid request: {CALLS}"
        COUNTS["invalid"] += 1
        return False
    result = run(call)  # a validated request must compute without an error
    assert CALLS == [call.spec.id]
    assert np.asarray(result.loss).dtype == call.dtype
    COUNTS["valid"] += 1
    return True


# ------------------------------------------------------------------ targets

@given(wire_tensors())
@example(pb.Tensor(dtype=pb.DTYPE_FLOAT32, shape=[0, 2**62, 2**62]))  # found by `make fuzz`
def test_decode_tensor(tensor: pb.Tensor) -> None:
    with only_typed_errors() as caught:
        array = decode_tensor(tensor, "inputs.x")
    if caught:
        assert [v.field for v in caught[0].field_violations] == ["inputs.x"]
        return
    assert array.shape == tuple(tensor.shape) and array.nbytes == len(tensor.data)
    assert not array.flags.writeable


@given(st.binary(max_size=300))
def test_grpc_deserializer_and_decoder_on_random_bytes(raw: bytes) -> None:
    message = checked_deserializer(200)(raw)
    if isinstance(message, Oversized):  # Malformed is one too
        assert len(raw) > 200 or isinstance(message, Malformed)
        return
    with only_typed_errors():
        inputs, params, grads = grpc_decode(message)
        pipeline(message.loss, inputs, params, grads)


@given(mutated_requests())
def test_grpc_request_pipeline(request: tuple) -> None:
    loss, inputs, params, grads = request
    try:
        message = build_request(loss, inputs, params, grads)
    except (InvalidArgument, ValueError, TypeError):  # the SDK refuses to encode it
        assume(False)
    raw = message.SerializeToString()
    decoded = checked_deserializer(1 << 30)(raw)
    assert not isinstance(decoded, Oversized)
    with only_typed_errors():
        inputs2, params2, grads2 = grpc_decode(decoded)
        note(f"{loss} {[(k, v.dtype, v.shape) for k, v in inputs2.items()]} {params2} {grads2}")
        pipeline(decoded.loss, inputs2, params2, grads2)


def _json_tensor(a: np.ndarray) -> Any:
    flat = [("NaN" if v != v else "Infinity" if v == math.inf else "-Infinity" if v == -math.inf
             else v) if isinstance(v, float) else v for v in a.reshape(-1).tolist()]
    return {"dtype": a.dtype.name, "shape": list(a.shape), "data": flat}


@given(mutated_requests())
def test_rest_request_pipeline(request: tuple) -> None:
    loss, inputs, params, grads = request
    doc: dict[str, Any] = {"inputs": {k: _json_tensor(v) for k, v in inputs.items()}, "params": params}
    if grads is not None:
        doc["grads"] = grads
    raw = orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS) if _jsonable(params) else None
    assume(raw is not None)
    with only_typed_errors():
        parsed = rest_codec.decode_request(rest_codec.parse_json(raw))
        pipeline(loss, parsed.inputs, parsed.params, parsed.grads)


def _jsonable(params: dict[str, Any]) -> bool:
    return all(not isinstance(v, float) or math.isfinite(v) for v in params.values())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["inputs", "params", "grads", "dtype", "shape", "data", "b64", "input",
                         "target", "request_id", "output_format", "reduction", "x"]), children,
        max_size=5),
    max_leaves=30)


@given(st.one_of(JSON.map(lambda d: orjson.dumps(d)), st.binary(max_size=200)))
def test_rest_json_decoder(raw: bytes) -> None:
    with only_typed_errors():
        parsed = rest_codec.decode_request(rest_codec.parse_json(raw))
        pipeline("mse", parsed.inputs, parsed.params, parsed.grads)


ANY_ARRAY = hnp.arrays(
    st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.uint16, np.int32, np.int64,
                     np.uint64, np.bool_, np.complex64, "U3", "M8[s]", object]),
    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
LOOSE_VALUES = st.one_of(ANY_ARRAY, st.lists(st.floats() | st.integers() | st.text(max_size=2),
                                             max_size=4), st.text(max_size=4), st.none())


@given(st.sampled_from(SPECS), st.data())
def test_validation_on_arbitrary_values(spec: Any, data: st.DataObject) -> None:
    """prepare() with arbitrary Python/NumPy values (the in-process API accepts any)."""
    names = [s.name for s in spec.inputs]
    inputs = data.draw(st.dictionaries(st.sampled_from([*names, "other"]), LOOSE_VALUES, max_size=5))
    params = data.draw(st.dictionaries(st.sampled_from([p.name for p in spec.all_params]), PARAM_VALUES,
                                       max_size=3))
    grads = data.draw(st.none() | st.lists(st.sampled_from([*names, "x"]), max_size=3))
    pipeline(spec.id, inputs, params, grads)
