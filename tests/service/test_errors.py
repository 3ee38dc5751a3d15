"""Every error class through the real server: code, message naming the field, and the
google.rpc.BadRequest field violations decoded by the SDK."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from lossd_client import InvalidArgument, LossClient, NotFound, ResourceExhausted
from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client._proto.lossd.v1 import lossd_pb2_grpc as pb_grpc
from lossd_client.errors import from_rpc_error

X = np.ones((2, 3), np.float32)


def _fields(exc):
    return [v.field for v in exc.field_violations]


@pytest.mark.parametrize("inputs,params,grads,field,words", [
    ({"input": X, "target": X[:1]}, {}, None, "inputs.target", "shape"),
    ({"input": X, "target": X.astype(np.float64)}, {}, None, "inputs.target", "mixed"),
    ({"input": X.astype(np.int32), "target": X}, {}, None, "inputs.input", "float32 or float64"),
    ({"input": X.astype(np.float16), "target": X}, {}, None, "inputs.input", "float16"),
    ({"input": X}, {}, None, "inputs.target", "missing"),
    ({"input": X, "target": X, "bogus": X}, {}, None, "inputs.bogus", "takes no input"),
    ({"input": np.array([[np.nan, 0, 0]], np.float32), "target": X[:1]}, {}, None, "inputs.input",
     "finite"),
    ({"input": np.array([[np.inf, 0, 0]], np.float32), "target": X[:1]}, {}, None, "inputs.input",
     "finite"),
    ({"input": np.ones((0, 3), np.float32), "target": np.ones((0, 3), np.float32)}, {}, None,
     "inputs.input", "non-empty"),
    ({"input": np.float32(1.0), "target": np.float32(1.0)}, {}, None, "inputs.input", "0-d"),
    ({"input": X, "target": X}, {"reduction": "avg"}, None, "params.reduction", "one of"),
    ({"input": X, "target": X}, {"reduction": 1}, None, "params.reduction", "string"),
    ({"input": X, "target": X}, {"beta": 1.0}, None, "params.beta", "takes no parameter"),
    ({"input": X, "target": X}, {}, ["weight"], "grads", "not given"),
    ({"input": X, "target": X}, {}, ["input", "input"], "grads", "twice"),
])
def test_invalid_argument_mse(client, inputs, params, grads, field, words):
    with pytest.raises(InvalidArgument) as err:
        client.evaluate("mse", inputs, params, grads=grads)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in err.value.message and words in err.value.message
    assert field in _fields(err.value)


@pytest.mark.parametrize("inputs,params,grads,field,words", [
    ({"input": X, "target": np.array([0, 3])}, {}, None, "inputs.target", "[0, 3)"),
    ({"input": X, "target": np.array([0, -1])}, {}, None, "inputs.target", "got -1"),
    ({"input": X, "target": np.array([0.0, 1.0], np.float32)}, {}, None, "inputs.target", "shape"),
    ({"input": X, "target": np.array([0, 1])}, {"label_smoothing": 1.5}, None,
     "params.label_smoothing", "[0, 1]"),
    ({"input": X, "target": np.array([0, 1])}, {"ignore_index": 1.0}, None, "params.ignore_index",
     "integer"),
    ({"input": X, "target": np.array([0, 1])}, {"ignore_index": True}, None, "params.ignore_index",
     "integer"),
    ({"input": X, "target": np.array([0, 1]), "weight": np.ones(2, np.float32)}, {}, None,
     "inputs.weight", "(3,)"),
    ({"input": X, "target": np.array([0, 1]), "weight": -np.ones(3, np.float32)}, {}, None,
     "inputs.weight", "[0, inf]"),
    ({"input": X, "target": np.array([0, 1])}, {}, ["target"], "grads", "not differentiable"),
    ({"input": X, "target": X * 0.5}, {"ignore_index": 0}, None, "params.ignore_index", "negative"),
    ({"input": X, "target": X * 2}, {}, None, "inputs.target", "[0, 1]"),
])
def test_invalid_argument_cross_entropy(client, inputs, params, grads, field, words):
    with pytest.raises(InvalidArgument) as err:
        client.evaluate("softmax_cross_entropy", inputs, params, grads=grads)
    assert field in err.value.message and words in err.value.message, err.value.message
    assert field in _fields(err.value)


def test_not_found_lists_close_matches(client):
    with pytest.raises(NotFound) as err:
        client.evaluate("mse_los", {"input": X, "target": X})
    assert err.value.code == grpc.StatusCode.NOT_FOUND
    assert "mse_loss" in err.value.message


def _raw_stub(server):
    channel = grpc.insecure_channel(server.grpc_target)
    return channel, pb_grpc.LossServiceStub(channel)


def test_wire_level_errors(server):
    channel, stub = _raw_stub(server)
    cases = [
        (pb.Tensor(dtype=pb.DTYPE_FLOAT32, shape=[2, 3], data=b"\0" * 20), "byte length 20"),
        (pb.Tensor(dtype=pb.DTYPE_FLOAT32, shape=[2, -3], data=b""), "negative"),
        (pb.Tensor(dtype=pb.DTYPE_UNSPECIFIED, shape=[1], data=b"\0" * 4), "DTYPE_UNSPECIFIED"),
        (pb.Tensor(dtype=pb.DTYPE_BFLOAT16, shape=[1], data=b"\0" * 2), "bfloat16"),
        (pb.Tensor(dtype=pb.DTYPE_FLOAT32, shape=[1 << 62, 1 << 62], data=b""), "does not match"),
    ]
    with channel:
        for tensor, words in cases:
            request = pb.EvaluateRequest(loss="mse")
            request.inputs.add(name="input", tensor=tensor)
            request.inputs.add(name="target", tensor=tensor)
            with pytest.raises(grpc.RpcError) as err:
                stub.Evaluate(request, timeout=10)
            error = from_rpc_error(err.value)
            assert isinstance(error, InvalidArgument), error
            assert "inputs.input" in error.message and words in error.message
            assert _fields(error) == ["inputs.input"]
        duplicate = pb.EvaluateRequest(loss="mse")
        t = pb.Tensor(dtype=pb.DTYPE_FLOAT32, shape=[1], data=b"\0" * 4)
        for name in ("input", "target", "input"):
            duplicate.inputs.add(name=name, tensor=t)
        with pytest.raises(grpc.RpcError) as err:
            stub.Evaluate(duplicate, timeout=10)
        assert "more than once" in err.value.details()
        no_value = pb.EvaluateRequest(loss="mse")
        for name in ("input", "target"):
            no_value.inputs.add(name=name, tensor=t)
        no_value.params.add(name="reduction")
        with pytest.raises(grpc.RpcError) as err:
            stub.Evaluate(no_value, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "params.reduction" in err.value.details()


def test_oversized_message_names_limit_and_flag(server):
    from tests.serverproc import start_server

    small = start_server("--max-message-bytes", "100000", "--warmup", "false")
    try:
        with LossClient(small.grpc_target, timeout=30) as c:
            big = np.zeros(30000, np.float32)
            with pytest.raises(ResourceExhausted) as err:
                c.evaluate("mse", {"input": big, "target": big})
            assert "100000" in err.value.message and "--max-message-bytes" in err.value.message
            ok = c.evaluate("mse", {"input": big[:10], "target": big[:10]})
            assert ok.loss == 0
    finally:
        assert small.terminate() == 0


def test_server_keeps_serving_after_errors(client):
    for _ in range(3):
        with pytest.raises(InvalidArgument):
            client.evaluate("mse", {"input": X, "target": X[:1]})
    assert client.evaluate("mse", {"input": X, "target": X * 0}).loss == 1.0
