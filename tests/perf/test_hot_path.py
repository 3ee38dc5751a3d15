"""Correctness of the hot-path shortcuts (no timing here; speed is measured in bench/).

* The finiteness check (kernels/finite.py: exponent bits, not a sum) must accept large
  finite values whose float32 sum would overflow, and name the index of a bad value.
* Tensors are filled in place (codec.fill_tensor, convert.fill_array): any layout, byte
  order or rank must still round-trip exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from lossd.core.evaluate import evaluate
from lossd.grpc.convert import encode_result
from lossd_client._proto.lossd.v1 import lossd_pb2 as pb
from lossd_client.codec import build_request, decode_tensor, encode_tensor
from lossd_client.errors import InvalidArgument
from lossd_client.result import EvaluateResult


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_finite_values_whose_sum_overflows_are_accepted(dtype):
    big = np.full(64, np.finfo(dtype).max / 2, dtype)
    result = evaluate("mse", {"input": big, "target": big})
    assert float(result.loss) == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_rejected_with_their_index(dtype, bad):
    x = np.full((4, 8), np.finfo(dtype).max / 2, dtype)
    x[2, 5] = bad
    with pytest.raises(InvalidArgument) as err:
        evaluate("mse", {"input": np.ones((4, 8), dtype), "target": x})
    assert "inputs.target" in str(err.value) and "(2, 5)" in str(err.value)


@pytest.mark.parametrize("array", [
    np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2],          # non-contiguous view
    np.arange(24, dtype=np.float64).reshape(2, 3, 4).transpose(2, 0, 1),
    np.asarray(np.float32(3.5)),                                     # 0-d
    np.arange(5, dtype=">f4"),                                       # big-endian
    np.arange(6, dtype=np.int32),
])
def test_tensors_round_trip_exactly(array):
    tensor = pb.Tensor.FromString(encode_tensor(array).SerializeToString())
    back = decode_tensor(tensor)
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    request = pb.EvaluateRequest.FromString(build_request("mse", {"input": array}).SerializeToString())
    np.testing.assert_array_equal(decode_tensor(request.inputs[0].tensor), array)


def test_response_encoding_round_trips():
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    result = evaluate("mse", {"input": x, "target": x[::-1].copy()}, {"reduction": "none"})
    message = pb.EvaluateResponse.FromString(encode_result(result).SerializeToString())
    back = EvaluateResult.from_proto(message)
    np.testing.assert_array_equal(back.loss, result.loss)
    assert set(back.grads) == {"input", "target"}
    for name, g in result.grads.items():
        np.testing.assert_array_equal(back.grads[name], g)
        assert back.grads[name].dtype == np.float32
