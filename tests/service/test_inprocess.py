"""The in-process API: same validation and error types as the server."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

import lossd
from lossd_client import InvalidArgument, NotFound


def test_evaluate_returns_result_with_grads_and_outputs():
    x = np.array([[1.0, 2.0]], np.float32)
    result = lossd.evaluate("mse", {"input": x, "target": np.zeros_like(x)})
    assert result.loss == np.float32(2.5) and result.outputs == {}
    np.testing.assert_array_equal(result.grads["input"], np.array([[1.0, 2.0]], np.float32))


def test_errors_carry_code_and_violations():
    with pytest.raises(InvalidArgument) as err:
        lossd.evaluate("mse", {"input": np.ones(3), "target": np.ones(4)})
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in err.value.field_violations] == ["inputs.target"]
    with pytest.raises(NotFound) as err:
        lossd.evaluate("msee", {"input": np.ones(3)})
    assert err.value.code == grpc.StatusCode.NOT_FOUND


def test_writable_and_non_contiguous_inputs_accepted():
    x = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]
    y = np.zeros_like(x)
    result = lossd.evaluate("mse", {"input": x, "target": y}, {"reduction": "sum"})
    assert result.loss == np.sum(x * x)


def test_list_losses_has_every_registered_id():
    from lossd.losses.registry import SPECS

    assert [s["id"] for s in lossd.list_losses()] == [s.id for s in SPECS]
