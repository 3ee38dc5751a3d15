"""mse (core.md §2.1) against the float64 reference, finite differences, hand-picked
values and rejections through the live server."""

from __future__ import annotations

import numpy as np
import pytest

import lossd
from tests.losses._pairwise import (
    against_reference_test,
    finite_differences_test,
    grads_subsets_test,
    pair_data,
    rejections_test,
)
from tests.losses._shared import DTYPES, assert_alias_and_dtypes, assert_rejected, normal
from tests.losses.harness import assert_close
from tests.reference.mse import reference

LOSS = "mse"


_data = pair_data


test_against_reference = against_reference_test(LOSS, _data, reference)


test_grads_subsets = grads_subsets_test(LOSS, _data, reference)


test_finite_differences = finite_differences_test(LOSS, _data((3, 4), np.float64, 11))


@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_picked(dtype):
    x = np.array([[1.0, -2.0, 3.0], [0.5, 0.0, 4.0]], dtype)
    y = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype)
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "none"})
    assert_close(r.loss, [[0.0, 9.0, 4.0], [0.25, 0.0, 16.0]], dtype, what="loss")
    assert_close(r.grads["input"], [[0.0, -6.0, 4.0], [1.0, 0.0, 8.0]], dtype, what="dx")
    assert_close(r.grads["target"], [[0.0, 6.0, -4.0], [-1.0, 0.0, -8.0]], dtype, what="dy")
    r = lossd.evaluate(LOSS, {"input": x, "target": y})
    assert_close(r.loss, 29.25 / 6, dtype, what="mean")
    assert_close(r.grads["input"], np.array([[0.0, -6.0, 4.0], [1.0, 0.0, 8.0]]) / 6, dtype, what="dx")
    r = lossd.evaluate(LOSS, {"input": x, "target": y}, {"reduction": "batchmean"})
    assert_close(r.loss, 29.25 / 2, dtype, what="batchmean")


def test_zero_error_is_exactly_zero():
    x = normal((5, 3), np.float64, 2)
    r = lossd.evaluate(LOSS, {"input": x, "target": x.copy()})
    assert r.loss == 0.0 and not r.grads["input"].any() and not r.grads["target"].any()


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_float32_no_intermediate_overflow():
    # d^2 = 4e38 is beyond float32 (the sum is +Inf as expected), but the mean 2e38 is
    # not: the float64 computation has no intermediate overflow
    x = np.array([[2e19, 0.0]], np.float32)
    r = lossd.evaluate(LOSS, {"input": x, "target": np.zeros_like(x)}, {"reduction": "sum"})
    assert np.isposinf(r.loss)
    r = lossd.evaluate(LOSS, {"input": x, "target": np.zeros_like(x)})
    assert_close(r.loss, 2e38, np.float32, what="mean")


test_rejections = rejections_test(LOSS, _data)


def test_rejects_shape_mismatch(client):
    inputs = _data((3, 2), np.float64, 0)
    assert_rejected(client, LOSS, {**inputs, "target": inputs["target"][:, :1]}, {}, "inputs.target")
    assert_rejected(client, LOSS, {**inputs, "target": inputs["target"].T.copy()}, {}, "inputs.target")


def test_alias_and_dtypes(client):
    assert_alias_and_dtypes(client, LOSS, "mse_loss", _data((3, 2), np.float64, 0))
